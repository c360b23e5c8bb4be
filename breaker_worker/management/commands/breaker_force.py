"""`breaker_force ALIAS open|closed|disabled [--json]`: an operator's override of a breaker."""

import json

from django.core.management.base import BaseCommand, CommandError

from breaker_worker.core.machine import State
from breaker_worker.management.actor import command_actor
from breaker_worker.services import InvalidConfigError, force_state
from breaker_worker.store import StoreUnavailableError

TARGETS = {"open": State.FORCED_OPEN, "closed": State.CLOSED, "disabled": State.DISABLED}


class Command(BaseCommand):
    help = "Force a breaker open (reject every query), reset it to closed, or disable it (record, never trip)."

    def add_arguments(self, parser):
        parser.add_argument("alias")
        parser.add_argument("state", choices=sorted(TARGETS), help="open = forced open; closed = reset")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, alias, state, **options):
        try:
            result = force_state(alias, TARGETS[state], actor=command_actor())
        except InvalidConfigError as exc:
            raise CommandError(str(exc)) from None
        except StoreUnavailableError as exc:
            raise CommandError(f"cannot change breaker {alias}: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        how = "now" if result["changed"] else "already"
        self.stdout.write(f"{alias}: {how} {result['state']} (epoch {result['epoch']})")
