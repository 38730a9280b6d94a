"""The shop's api: FastAPI on uvicorn, Postgres through psycopg2, Celery through Redis,
and Django (internal only) over the backend network.

    GET  /api               what the api offers
    GET  /api/health        200 when Postgres and Redis answer, else 503 naming which failed
    POST /api/tasks         {"a": 2, "b": 3} → records the request in Postgres, enqueues add(a, b)
    GET  /api/tasks/{id}    the recorded request and the worker's result once computed
    GET  /api/whoami        asks Django's internal route /internal/users/me
"""

import json
import urllib.request

import psycopg2
import redis
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app import settings
from app.worker import add, celery

app = FastAPI(title="shop api")
app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.ALLOWED_HOSTS)


def connect_postgres():
    return psycopg2.connect(
        settings.DATABASE_URL, connect_timeout=int(settings.DEPENDENCY_TIMEOUT)
    )


def check_postgres() -> None:
    with connect_postgres() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()


def check_redis() -> None:
    redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=settings.DEPENDENCY_TIMEOUT,
        socket_connect_timeout=settings.DEPENDENCY_TIMEOUT,
    ).ping()


@app.get("/api")
def index():
    """What the api offers (the edge's route check asks its prefix, `/api`, for an answer)."""
    return {"service": "shop api", "endpoints": ["/api/health", "/api/tasks", "/api/whoami"]}


@app.get("/api/health")
def health():
    failed = {}
    for name, check in (("postgres", check_postgres), ("redis", check_redis)):
        try:
            check()
        except Exception as error:  # any failure makes the dependency unhealthy
            failed[name] = f"{type(error).__name__}: {error}".strip()
    if failed:
        return JSONResponse(
            status_code=503,
            content={"status": "unavailable", "failed": sorted(failed), "errors": failed},
        )
    return {"status": "ok", "postgres": "ok", "redis": "ok"}


class Addition(BaseModel):
    a: int
    b: int


CREATE_TASKS_TABLE = """
CREATE TABLE IF NOT EXISTS api_tasks (
    id text PRIMARY KEY,
    a bigint NOT NULL,
    b bigint NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
)
"""


@app.post("/api/tasks", status_code=202)
def enqueue(addition: Addition):
    result = add.delay(addition.a, addition.b)
    with connect_postgres() as connection, connection.cursor() as cursor:
        cursor.execute(CREATE_TASKS_TABLE)
        cursor.execute(
            "INSERT INTO api_tasks (id, a, b) VALUES (%s, %s, %s)",
            (result.id, addition.a, addition.b),
        )
    connection.close()
    return {"id": result.id}


@app.get("/api/tasks/{task_id}")
def task(task_id: str):
    with connect_postgres() as connection, connection.cursor() as cursor:
        cursor.execute(CREATE_TASKS_TABLE)
        cursor.execute("SELECT a, b FROM api_tasks WHERE id = %s", (task_id,))
        row = cursor.fetchone()
    connection.close()
    if row is None:
        raise HTTPException(status_code=404, detail=f"no task {task_id}")
    result = celery.AsyncResult(task_id)
    return {
        "id": task_id,
        "a": row[0],
        "b": row[1],
        "state": result.state,
        "result": result.result if result.successful() else None,
    }


@app.get("/api/whoami")
def whoami():
    url = f"{settings.DJANGO_URL}/internal/users/me"
    try:
        with urllib.request.urlopen(url, timeout=settings.DEPENDENCY_TIMEOUT) as response:
            return {"via": "django", "django": json.load(response)}
    except Exception as error:
        raise HTTPException(status_code=502, detail=f"django did not answer {url}: {error}")
