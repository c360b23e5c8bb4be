"""`breaker_status [--json] [ALIAS ...]`: the live state of breakers."""

import json

from django.core.management.base import BaseCommand, CommandError

from breaker_worker.selectors import breaker_statuses
from breaker_worker.store import StoreUnavailableError


class Command(BaseCommand):
    help = "Show breaker states, windows and active candidates."

    def add_arguments(self, parser):
        parser.add_argument("aliases", nargs="*", metavar="ALIAS")
        parser.add_argument("--json", action="store_true", help="print a JSON array")

    def handle(self, *args, aliases, **options):
        try:
            statuses = breaker_statuses(aliases)
        except StoreUnavailableError as exc:
            raise CommandError(f"cannot read breaker states: {exc}") from None
        unknown = sorted(set(aliases) - {s["alias"] for s in statuses})
        if unknown:
            raise CommandError(f"unknown alias(es): {', '.join(unknown)}")
        if options["json"]:
            self.stdout.write(json.dumps(statuses))
            return
        header = (
            f"{'ALIAS':<16} {'STATE':<11} {'RATE':>6} {'CALLS':>7} {'FAILS':>7} {'SERVER':<22} {'GEN':>4} {'EPOCH':>6}"
        )
        self.stdout.write(header)
        for s in statuses:
            state = f"{s['state']}!" if s["guarded"] else s["state"]
            rate = "-" if s["failure_rate"] is None else f"{s['failure_rate']:.0%}"
            server = f"{s['host']}:{s['port']}"
            self.stdout.write(
                f"{s['alias']:<16} {state:<11} {rate:>6} {s['calls']:>7} {s['failures']:>7} "
                f"{server:<22} {s['generation']:>4} {s['epoch']:>6}"
            )
        guard = next((s["guard_reason"] for s in statuses if s["guarded"]), None)
        if guard:
            self.stdout.write(f"! mass outage guard: {guard}")
