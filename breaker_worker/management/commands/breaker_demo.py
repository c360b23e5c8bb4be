"""`breaker_demo`: replay the seed scenario on this machine and narrate it as it happens.

Server B is the PostgreSQL on 127.0.0.1:5432 (the tenant's database there lacks
test_app_users); server A is a throwaway PostgreSQL started on port 5000 (or a free port)
holding the table. Tenant 1's alias 1-default points at B with A as candidate; this process
queries it while the worker and beat trip the breaker, fail over and close it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from breaker_worker import sandbox
from breaker_worker.models import BreakerEvent
from breaker_worker.selectors import breaker_statuses
from breaker_worker.services import get_store

ALIAS = "1-default"
DBNAME = "tenantbreaker_demo"
PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"


class Command(BaseCommand):
    help = "Replay the seed scenario: trip, fail over from :5432 to a standby, close again."

    def add_arguments(self, parser):
        parser.add_argument("--b-port", type=int, default=5432, help="the PostgreSQL already running (server B)")
        parser.add_argument("--a-port", type=int, default=5000, help="port for the standby (server A) if free")
        parser.add_argument("--timeout", type=float, default=90.0)

    def handle(self, *args, b_port, a_port, timeout, **options):
        self.started = time.monotonic()
        self._check_services(b_port)
        call_command("migrate", verbosity=0)
        standby = sandbox.PostgresServer(sandbox.free_port(a_port))
        self.say(f"starting server A (standby) on 127.0.0.1:{standby.port}")
        standby.start()
        workers: list[subprocess.Popen] = []
        try:
            sandbox.create_database(b_port, DBNAME, with_seed_table=False)
            sandbox.create_database(standby.port, DBNAME, with_seed_table=True)
            self.say(f"server B 127.0.0.1:{b_port}/{DBNAME} has no test_app_users; server A has 3 rows")
            call_command(
                "tenant_db",
                "set",
                ALIAS,
                f"postgres://postgres@127.0.0.1:{b_port}/{DBNAME}",
                f"postgres://postgres@127.0.0.1:{standby.port}/{DBNAME}",
                "--probe-sql",
                PROBE_SQL,
                stdout=self.stdout,
            )
            workers = self._ensure_worker_and_beat()
            self._replay(timeout, standby.port)
        finally:
            for process in workers:
                process.terminate()
            for process in workers:
                process.wait(20)
            connections.close_all()
            standby.stop()
            self.say("stopped server A" + (", worker and beat" if workers else ""))

    def say(self, message: str) -> None:
        self.stdout.write(f"[{time.monotonic() - self.started:6.2f}s] {message}")

    def _check_services(self, b_port: int) -> None:
        try:
            get_store().client.ping()
        except Exception as exc:
            raise CommandError(
                f"Redis is not answering at {settings.REDIS_URL} ({exc}). Start it "
                "(Debian: redis-server --daemonize yes) or set REDIS_URL."
            ) from None
        try:
            sandbox.execute(b_port, "postgres", "SELECT 1")
        except Exception as exc:
            raise CommandError(
                f"PostgreSQL is not answering on 127.0.0.1:{b_port} as user postgres ({exc}). "
                "Start it (Debian: pg_ctlcluster 15 main start) or pass --b-port."
            ) from None

    def _ensure_worker_and_beat(self) -> list[subprocess.Popen]:
        if current_app.control.ping(timeout=1.0):
            self.say("using the running celery worker and beat")
            return []
        self.say("no celery worker answered: starting `celery -A project worker` and `celery -A project beat`")
        log_dir = Path(settings.VAR_DIR)
        root = Path(settings.BASE_DIR)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "project", *command, "--loglevel", "INFO"],
                cwd=root,
                env=env,
                stdout=open(log_dir / f"demo-{command[0]}.log", "w"),
                stderr=subprocess.STDOUT,
            )
            for command in (["worker", "--concurrency", "2"], ["beat"])
        ]
        deadline = time.monotonic() + 60
        while not current_app.control.ping(timeout=1.0):
            if time.monotonic() > deadline:
                raise CommandError(f"the celery worker did not start: see {log_dir / 'demo-worker.log'}")
        self.say(f"worker and beat running (logs in {log_dir})")
        return processes

    def _replay(self, timeout: float, a_port: int) -> None:
        seen_events = set(BreakerEvent.objects.filter(database__alias=ALIAS).values_list("id", flat=True))
        last_result = None
        closed_on_a_since = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self._query()
            if result != last_result:
                self.say(f"application query: {result}")
                last_result = result
            for event in BreakerEvent.objects.filter(database__alias=ALIAS).exclude(id__in=seen_events):
                seen_events.add(event.id)
                arrow = f"{event.from_state} -> {event.to_state}" if event.kind == "transition" else "failover"
                self.say(f"breaker {ALIAS}: {arrow}: {event.reason}")
            status = breaker_statuses([ALIAS])[0]
            if status["state"] == "closed" and status["port"] == a_port and result.startswith("ok"):
                closed_on_a_since = closed_on_a_since or time.monotonic()
                if time.monotonic() - closed_on_a_since > 2:
                    self.say(
                        f"done: {ALIAS} is closed and served by 127.0.0.1:{a_port} (generation "
                        f"{status['generation']}, epoch {status['epoch']})"
                    )
                    return
            time.sleep(0.05)
        raise CommandError(f"the scenario did not complete within {timeout:g}s; see the worker and beat logs")

    def _query(self) -> str:
        try:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("SELECT inet_server_port(), first_name, last_name FROM test_app_users")
                rows = cursor.fetchall()
            return f"ok, {len(rows)} rows from the server on port {rows[0][0]}"
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
