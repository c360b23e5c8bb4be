"""`breaker_probe ALIAS [--wait]`: enqueue a probe of the alias's active server."""

import json

from celery import current_app
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.core.management.base import BaseCommand, CommandError

from breaker_worker.management.actor import command_actor
from breaker_worker.models import TenantDatabase


class Command(BaseCommand):
    help = "Probe an alias's active server through a Celery worker."

    def add_arguments(self, parser):
        parser.add_argument("alias")
        parser.add_argument("--wait", action="store_true", help="wait for the result and print it")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (with --wait)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, alias, **options):
        if not TenantDatabase.objects.filter(alias=alias).exists():
            raise CommandError(f"unknown alias {alias!r}: register it with `manage.py tenant_db set`")
        result = current_app.send_task("breaker_worker.probe", args=[alias, command_actor()])
        if not options["wait"]:
            self.stdout.write(json.dumps({"alias": alias, "task_id": result.id}) if options["json"] else result.id)
            return
        try:
            outcome = result.get(timeout=options["timeout"])
        except CeleryTimeoutError:
            raise CommandError(
                f"no result within {options['timeout']:g}s: is a worker running (`celery -A project worker`)?"
            ) from None
        if options["json"]:
            self.stdout.write(json.dumps(outcome))
            return
        verdict = {True: "ok", False: "FAILED", None: "skipped"}[outcome["ok"]]
        self.stdout.write(
            f"{alias}: probe {verdict} on {outcome['host']}:{outcome['port']}: {outcome['detail']}"
            + (f" (breaker {outcome['state']})" if "state" in outcome else "")
        )
