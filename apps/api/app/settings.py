"""Where the api and its Celery processes find Postgres, Redis and Django: the environment."""

import os

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://app@postgres:5432/app")
REDIS_URL = os.environ.get("REDIS_URL", "redis://redis:6379/0")
# Django is internal: the api reaches it by its name on the backend network, never
# through the edge.
DJANGO_URL = os.environ.get("DJANGO_URL", "http://django:8001")
# Hosts the api answers for; localhost is always allowed so the container's own
# health check (curl http://localhost:8000/api/health) is served.
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("ALLOWED_HOSTS", "*").split(",")
    if host.strip()
] + ["localhost", "127.0.0.1"]
# Seconds any one dependency may take to answer a health check or a request.
DEPENDENCY_TIMEOUT = float(os.environ.get("DEPENDENCY_TIMEOUT", "2"))
