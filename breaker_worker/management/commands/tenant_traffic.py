"""`tenant_traffic [ALIAS]`: application queries on a tenant alias in a loop, one line each.

What an application sees through the breaker: each query's rows or its error, the server the
connection reached (libpq's host and port), and the breaker's transitions and failovers as they
are recorded. docker-compose's `traffic` service runs it on 1-default, so that `docker compose
up` replays the seed: failures on postgres_2, the trip, the failover, rows from postgres_1.

The server is read from the connection rather than with a second query (`SELECT
inet_server_port()`): a second query would succeed on postgres_2 and halve the failure rate
the breaker sees, and in compose both servers listen on 5432 inside their containers.
"""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from breaker_worker.db.errors import BreakerOpenError
from breaker_worker.models import BreakerEvent, TenantDatabase

DEFAULT_SQL = "SELECT first_name, last_name FROM test_app_users"
SHOWN_ROWS = 3


class Command(BaseCommand):
    help = "Run an application query on a tenant alias in a loop; print each result and the server it reached."

    def add_arguments(self, parser):
        parser.add_argument("alias", nargs="?", default="1-default", help="tenant alias (default 1-default)")
        parser.add_argument("--sql", default=DEFAULT_SQL, help=f"the application query (default {DEFAULT_SQL})")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between queries (default 0.5)")
        parser.add_argument("--count", type=int, default=0, help="stop after this many queries (default: run on)")

    def handle(self, *args, alias, sql, interval, count, **options):
        if interval < 0 or count < 0:
            raise CommandError("--interval and --count must not be negative")
        database = TenantDatabase.objects.filter(alias=alias).first()
        if database is None:
            raise CommandError(f"{alias} is not registered: run `manage.py tenant_db set {alias} URL [URL ...]` first")
        self.started = time.monotonic()
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)  # as PID 1 of a container, SIGTERM is ignored otherwise
        last_event = database.events.order_by("-id").values_list("id", flat=True).first() or 0
        tally = {"ok": 0, "failed": 0, "rejected": 0}
        self.say(f"querying {alias} every {interval:g}s: {sql}")
        sent = 0
        try:
            while not self.stopping and (not count or sent < count):
                kind, line = self._query(alias, sql)
                sent += 1
                tally[kind] += 1
                self.say(f"{alias}: {line}")
                for event in BreakerEvent.objects.filter(database=database, id__gt=last_event).order_by("id"):
                    last_event = event.id
                    arrow = f"{event.from_state} -> {event.to_state}" if event.kind == "transition" else event.kind
                    self.say(f"breaker {alias}: {arrow}: {event.reason}")
                if not count or sent < count:
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass
        finally:
            connections.close_all()
        self.say(f"{sent} queries: {tally['ok']} ok, {tally['failed']} failed, {tally['rejected']} rejected")

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def say(self, message: str) -> None:
        self.stdout.write(f"[{time.monotonic() - self.started:7.2f}s] {message}")

    def _query(self, alias: str, sql: str) -> tuple[str, str]:
        connection = connections[alias]
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                rows = cursor.fetchall() if cursor.description else []
        except BreakerOpenError as exc:
            return "rejected", f"rejected, no server touched: {exc}"
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return "failed", f"{type(exc).__name__} on {self._server(connection)}: {first_line}"
        shown = ", ".join(" ".join(str(value) for value in row) for row in rows[:SHOWN_ROWS])
        more = f", … {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
        return "ok", f"ok, {len(rows)} rows from {self._server(connection)}: {shown}{more}"

    @staticmethod
    def _server(connection) -> str:
        """host:port the current connection reached, or '-' when it has none (a failed connect)."""
        raw = connection.connection
        if raw is None:
            return "-"
        try:
            return f"{raw.info.host}:{raw.info.port}"
        except Exception:
            return "-"
