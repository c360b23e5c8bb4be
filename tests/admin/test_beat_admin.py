"""The evaluator's periodic task in django-celery-beat's admin: an interval changed there reaches
the running beat, which notices changes through PeriodicTasks.last_update."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from .page import changelist_rows, form_data

TASK = "breaker_worker.evaluate"


@pytest.fixture
def evaluator(control_db):
    task = PeriodicTask.objects.get(name=TASK)
    interval = task.interval
    yield task
    PeriodicTask.objects.filter(pk=task.pk).update(interval=interval)  # other tests expect the migration's row
    IntervalSchedule.objects.exclude(pk=interval.pk).filter(period="seconds", every=2).delete()


def test_the_evaluators_periodic_task_is_listed(superuser_client, evaluator):
    rows = changelist_rows(superuser_client.get(reverse("admin:django_celery_beat_periodictask_changelist")))
    assert [row["name"] for row in rows if row["name"] == TASK] == [TASK]


def test_changing_its_interval_in_the_admin_tells_the_running_beat(superuser_client, evaluator):
    every_2s = IntervalSchedule.objects.create(every=2, period="seconds")
    before = PeriodicTasks.last_change()
    path = reverse("admin:django_celery_beat_periodictask_change", args=[evaluator.pk])
    data = form_data(superuser_client.get(path), "periodictask_form")
    data["interval"] = [str(every_2s.pk)]
    response = superuser_client.post(path, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert PeriodicTask.objects.get(name=TASK).interval.every == 2
    assert PeriodicTasks.last_change() > before
