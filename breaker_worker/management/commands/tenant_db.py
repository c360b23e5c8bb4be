"""`tenant_db set ALIAS URL [URL ...]`: register or replace a tenant alias and its candidates."""

import json

from django.core.management.base import BaseCommand, CommandError

from breaker_worker.services import InvalidConfigError, register_alias
from breaker_worker.store import StoreUnavailableError


class Command(BaseCommand):
    help = "Manage tenant database aliases protected by the breaker."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        set_parser = sub.add_parser("set", help="Create or replace an alias; the first URL is active.")
        set_parser.add_argument("alias", help="<tenant id>-<name>, e.g. 1-default")
        set_parser.add_argument("urls", nargs="+", metavar="URL", help="postgres://USER:PASSWORD@HOST:PORT/DBNAME")
        set_parser.add_argument("--probe-sql", help="query proving a server can serve this tenant (default SELECT 1)")
        set_parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, action, **options):
        try:
            database = register_alias(options["alias"], options["urls"], options["probe_sql"])
        except InvalidConfigError as exc:
            raise CommandError(str(exc)) from None
        except StoreUnavailableError as exc:
            raise CommandError(
                f"{options['alias']} was saved, but Redis could not be told ({exc}); "
                "running processes pick the change up once Redis answers and the command is run again"
            ) from None
        candidates = [
            {"position": c.position, "host": c.host, "port": c.port, "name": c.name, "user": c.user}
            for c in database.candidates.order_by("position")
        ]
        if options["json"]:
            result = {"alias": database.alias, "generation": database.generation, "candidates": candidates}
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"{database.alias}: generation {database.generation}")
        for c in candidates:
            role = "active" if c["position"] == 0 else "failover"
            self.stdout.write(f"  {role:8} {c['user']}@{c['host']}:{c['port']}/{c['name']}")
