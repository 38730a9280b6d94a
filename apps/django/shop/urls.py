from django.contrib import admin
from django.urls import path

from shop import views

urlpatterns = [
    path("internal/users/me", views.current_user),
    path("admin/", admin.site.urls),
]
