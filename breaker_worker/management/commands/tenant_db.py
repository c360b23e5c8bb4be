"""`tenant_db set ALIAS URL [URL ...]`: register or replace a tenant alias and its candidates."""

import json

from django.core.management.base import BaseCommand, CommandError

from breaker_worker.services import InvalidConfigError, register_alias, register_alias_if_absent
from breaker_worker.store import StoreUnavailableError


class Command(BaseCommand):
    help = "Manage tenant database aliases protected by the breaker."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        set_parser = sub.add_parser("set", help="Create or replace an alias; the first URL is active.")
        set_parser.add_argument("alias", help="<tenant id>-<name>, e.g. 1-default")
        set_parser.add_argument("urls", nargs="+", metavar="URL", help="postgres://USER:PASSWORD@HOST:PORT/DBNAME")
        set_parser.add_argument("--probe-sql", help="query proving a server can serve this tenant (default SELECT 1)")
        set_parser.add_argument(
            "--if-absent",
            action="store_true",
            help="leave an alias that exists as it is (active server, candidates, generation); "
            "for start-up scripts run on every start, which must not undo a failover",
        )
        set_parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, action, **options):
        created = True
        try:
            if options["if_absent"]:
                database, created = register_alias_if_absent(options["alias"], options["urls"], options["probe_sql"])
            else:
                database = register_alias(options["alias"], options["urls"], options["probe_sql"])
        except InvalidConfigError as exc:
            raise CommandError(str(exc)) from None
        except StoreUnavailableError as exc:
            raise CommandError(
                f"{options['alias']} was saved, but Redis could not be told ({exc}); "
                "running processes pick the change up once Redis answers and the command is run again"
            ) from None
        rows = list(database.candidates.order_by("position"))
        candidates = [
            {"position": c.position, "host": c.host, "port": c.port, "name": c.name, "user": c.user} for c in rows
        ]
        if options["json"]:
            result = {"alias": database.alias, "generation": database.generation, "candidates": candidates}
            if options["if_absent"]:
                result["created"] = created
            self.stdout.write(json.dumps(result))
            return
        if not created:
            self.stdout.write(f"{database.alias} exists: left as it is (--if-absent)")
        self.stdout.write(f"{database.alias}: generation {database.generation}")
        for row in rows:
            role = "active" if row.id == database.active_candidate_id else "failover"
            self.stdout.write(f"  {role:8} {row.user}@{row.host}:{row.port}/{row.name}")
