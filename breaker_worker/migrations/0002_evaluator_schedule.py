"""The evaluator's periodic task for django-celery-beat: no manual admin step is needed."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TASK = "breaker_worker.evaluate"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    seconds = settings.BREAKER_POLICY.evaluate_every
    # Whole seconds as seconds (what the admin shows best); a fraction as microseconds.
    every, period = (int(seconds), "seconds") if float(seconds).is_integer() else (round(seconds * 1e6), "microseconds")
    # IntervalSchedule has no unique constraint: reuse a matching row instead of adding one.
    interval = IntervalSchedule.objects.filter(every=every, period=period).first()
    if interval is None:
        interval = IntervalSchedule.objects.create(every=every, period=period)
    PeriodicTask.objects.update_or_create(
        name=TASK,
        defaults={
            "task": TASK,
            "interval": interval,
            "enabled": True,
            # A tick that waited in the queue longer than a few intervals is worthless.
            "expire_seconds": max(5, round(seconds * 5)),
            "description": "Evaluate every breaker's window and move breakers between states.",
        },
    )
    # Historical models send no signals: tell the running beat that the schedule changed.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("breaker_worker", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
