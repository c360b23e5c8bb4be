"""The Celery app: `celery -A project worker` and `celery -A project beat`."""

import functools
import os

from celery import Celery, signals
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


class Consumer(CeleryConsumer):
    """The worker's broker consumer, retrying a lost broker every second.

    Celery passes kombu no retry intervals, so it waits 2, 4, 6 ... up to 30 s between
    attempts: after a Redis outage of 13 s the worker noticed Redis was back 7 s late, and
    nothing was evaluated meanwhile. Configured as CELERY_WORKER_CONSUMER."""

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=1, interval_step=0, interval_max=1
        )
        return super().ensure_connected(conn)


app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def refuse_misconfiguration(**kwargs) -> None:
    from breaker_worker.checks import refuse_to_start_if_misconfigured

    refuse_to_start_if_misconfigured()
