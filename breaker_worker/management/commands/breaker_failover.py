"""`breaker_failover ALIAS [--json]`: move an alias to its next healthy candidate now."""

import json

from django.core.management.base import BaseCommand, CommandError

from breaker_worker.management.actor import command_actor
from breaker_worker.services import InvalidConfigError, fail_over_now
from breaker_worker.store import StoreUnavailableError


class Command(BaseCommand):
    help = "Fail an alias over to the first healthy candidate after its active one, whatever its breaker state."

    def add_arguments(self, parser):
        parser.add_argument("alias")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, alias, **options):
        try:
            result = fail_over_now(alias, actor=command_actor())
        except InvalidConfigError as exc:
            raise CommandError(str(exc)) from None
        except StoreUnavailableError as exc:
            raise CommandError(f"cannot fail {alias} over: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps(result))
        elif result["status"] == "moved":
            self.stdout.write(f"{alias}: moved to {result['to']} (generation {result['generation']})")
        if result["status"] != "moved":
            raise CommandError(f"{alias}: no healthy candidate answered; it stays on its active server")
