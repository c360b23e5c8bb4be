"""The Celery app: `celery -A project worker` and `celery -A project beat`."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def refuse_misconfiguration(**kwargs) -> None:
    from breaker_worker.checks import refuse_to_start_if_misconfigured

    refuse_to_start_if_misconfigured()
