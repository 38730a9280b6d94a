"""The Celery application: the api enqueues, `celery -A app.worker worker` computes, and
`celery -A app.worker beat` enqueues the periodic heartbeat. Redis is broker and result
store."""

from celery import Celery

from app import settings

celery = Celery("shop", broker=settings.REDIS_URL, backend=settings.REDIS_URL)
celery.conf.update(
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    # The image's files belong to root and the process runs as an unprivileged user:
    # beat keeps its schedule where it may write.
    beat_schedule_filename="/tmp/celerybeat-schedule",
    beat_schedule={
        "heartbeat-every-minute": {"task": "app.worker.heartbeat", "schedule": 60.0},
    },
)


@celery.task
def add(a: int, b: int) -> int:
    return a + b


@celery.task
def heartbeat() -> str:
    return "alive"
