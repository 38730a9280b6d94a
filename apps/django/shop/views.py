from django.contrib.auth import get_user_model
from django.http import JsonResponse


def current_user(request):
    """Who is asking, and how many users Django knows: the count reads the auth tables,
    so it fails until `manage.py migrate` has run."""
    user = request.user
    return JsonResponse(
        {
            "username": user.get_username() if user.is_authenticated else None,
            "authenticated": user.is_authenticated,
            "users_in_database": get_user_model().objects.count(),
        }
    )
