"""Time to heal: from the first failing query to the first successful query on the standby.

What it measures: the seed scenario, end to end, with real processes. Server B is the
PostgreSQL on 127.0.0.1:5432, where the tenant's database lacks ``test_app_users``; server A
is a private PostgreSQL (``breaker_worker.sandbox.PostgresServer`` on a free port) whose copy
of the database has the table. The alias is registered with B active and A as its failover
candidate; a real ``celery -A project worker`` and ``celery -A project beat`` (evaluation every
1 s) run against a private Redis and a temporary SQLite control DB. This process queries the
alias through Django in a loop (``SELECT inet_server_port(), first_name FROM test_app_users``,
one query every ``--pause`` seconds, as an application would) and timestamps every result.
Each run starts at a random phase of the evaluation interval.

Reported per run, and the median of ``--repeats`` runs (a fresh alias and database each time):
total = first failing query (its start) -> first successful query on A (its end), split into
first failure -> open transition (the ``at`` of the closed -> open BreakerEvent row),
open -> failover (the failover row's ``at``), failover -> first success on A; plus the queries
that failed on B and those rejected with BreakerOpenError meanwhile, and when the breaker
closed again. Target from the issue: <= 3 s.

Run: ``.venv/bin/python bench/heal.py [--repeats 3] [--mode aggregator|sequential]``
(about a minute). Needs PostgreSQL 15 binaries (initdb/postgres), PostgreSQL on
127.0.0.1:5432 (user postgres, trust) and ``redis-server`` on PATH.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

B_PORT = 5432
PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"
QUERY = "SELECT inet_server_port(), first_name FROM test_app_users"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between the application's queries")
    parser.add_argument("--mode", default="aggregator", help="BREAKER_MODE of every process")
    parser.add_argument("--timeout", type=float, default=45.0, help="per run")
    parser.add_argument("--verbose", action="store_true", help="print each run's timeline")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="tb-bench-heal-"))
    redis_server = standby = None
    processes: dict[str, subprocess.Popen] = {}
    databases: list[tuple[int, str]] = []
    try:
        from breaker_worker.sandbox import PostgresServer, RedisServer, free_port

        redis_server = RedisServer(free_port()).start()
        standby = PostgresServer(free_port(5000)).start()
        env = {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "TENANTBREAKER_VAR_DIR": str(var_dir),
            "REDIS_URL": redis_server.url,
            "CELERY_BROKER_URL": redis_server.url,
            "DJANGO_DEBUG": "0",
            "BREAKER_MODE": args.mode,
            "BREAKER_EVALUATE_EVERY": "1",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(env)
        os.environ.pop("DATABASE_URL", None)
        os.environ["LOG_LEVEL"] = "ERROR"  # this process only: keep the table readable
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # creates the evaluator's beat row (every 1 s)

        celery_env = {**os.environ, "LOG_LEVEL": "INFO"}
        for name, command in (
            ("worker", ["worker", "--concurrency", "2", "--without-mingle", "--without-gossip"]),
            ("beat", ["beat", "--schedule", str(var_dir / "beat-schedule")]),
        ):
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "project", *command, "--loglevel", "INFO"],
                cwd=ROOT,
                env=celery_env,
                stdout=open(var_dir / f"{name}.log", "w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        wait_for(lambda: "ready." in log(var_dir, "worker"), 90, "the celery worker to be ready", processes)
        # Beat -> broker -> worker is running once an evaluation has completed.
        wait_for(
            lambda: "breaker_worker.evaluate" in log(var_dir, "worker") and "succeeded" in log(var_dir, "worker"),
            60,
            "a first evaluation by the worker",
            processes,
        )
        startup = time.monotonic() - started

        runs = []
        for index in range(1, args.repeats + 1):
            dbname = f"tb_bench_heal_{os.getpid()}_{index}"
            runs.append(one_run(index, dbname, standby.port, args, databases))
        report(args, runs, standby.port, startup)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # our own child's session, started above
        for process in processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        try:
            from django.db import connections

            from breaker_worker.db.runtime import get_runtime

            get_runtime().stop()  # its sync thread would log that Redis is gone
            connections.close_all()
        except Exception:
            pass
        from breaker_worker.sandbox import drop_database

        for port, dbname in databases:
            if port == B_PORT:
                try:
                    drop_database(port, dbname)
                except Exception as exc:
                    print(f"could not drop {dbname} on :{port}: {exc}", file=sys.stderr)
        if standby is not None:
            standby.stop()
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def log(var_dir: Path, name: str) -> str:
    path = var_dir / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(predicate, timeout: float, what: str, processes=None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for name, process in (processes or {}).items():
            if process.poll() is not None:
                raise RuntimeError(f"celery {name} exited with code {process.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def one_run(index: int, dbname: str, a_port: int, args, databases: list) -> dict:
    from django.db import connections

    from breaker_worker.db.errors import BreakerOpenError
    from breaker_worker.models import BreakerEvent
    from breaker_worker.sandbox import create_database
    from breaker_worker.services import get_store, register_alias

    alias = f"1-heal{index}"
    create_database(B_PORT, dbname, with_seed_table=False)
    databases.append((B_PORT, dbname))
    create_database(a_port, dbname, with_seed_table=True)
    databases.append((a_port, dbname))
    register_alias(
        alias,
        [f"postgres://postgres:x@127.0.0.1:{port}/{dbname}" for port in (B_PORT, a_port)],
        PROBE_SQL,
    )

    # Start at a random phase of the 1 s evaluation interval: back-to-back runs would otherwise
    # all start at about the same phase and share their luck.
    time.sleep(random.uniform(0.0, 1.0))
    first_failure = first_success = None
    failed_on_b = rejected = other = 0
    timeline: list[tuple[float, str]] = []  # (time, outcome) whenever the outcome changes
    deadline = time.monotonic() + args.timeout
    while first_success is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {index}: no successful query on :{a_port} within {args.timeout:g}s")
        begun = time.time()
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(QUERY)
                row = cursor.fetchone()
            ended = time.time()
            outcome = f"ok on :{row[0]}"
            if row[0] == a_port:
                first_success = ended
            else:
                other += 1
        except BreakerOpenError:
            rejected += 1
            outcome = "BreakerOpenError"
        except Exception as exc:
            if first_failure is None:
                first_failure = begun
            failed_on_b += 1
            outcome = type(exc).__name__
        if not timeline or timeline[-1][1] != outcome:
            timeline.append((begun, outcome))
        time.sleep(args.pause)

    # Let the probes close the breaker before the next run (not part of the figure).
    store = get_store()
    closed = wait_for(lambda: store.states([alias])[alias].state.value == "closed", 30, f"{alias} to close")
    events = list(BreakerEvent.objects.filter(database__alias=alias).order_by("at", "id"))
    connections[alias].close()

    def at(predicate) -> float | None:
        for event in events:
            if predicate(event):
                return event.at.timestamp()
        return None

    if args.verbose:
        print(f"--- run {index} ({alias}), times from the first failing query:")
        entries = [(t, f"query: {what}") for t, what in timeline]
        entries += [
            (e.at.timestamp(), f"event: {e.kind} {e.from_state} -> {e.to_state} by {e.actor}: {e.reason}")
            for e in events
        ]
        for when, what in sorted(entries):
            print(f"  {when - first_failure:+7.3f}s {what}")
    opened = at(lambda e: e.kind == "transition" and e.to_state == "open")
    failover = at(lambda e: e.kind == "failover")
    closed_at = at(lambda e: e.kind == "transition" and e.to_state == "closed") if closed else None
    return {
        "alias": alias,
        "first_failure": first_failure,
        "opened": opened,
        "failover": failover,
        "first_success": first_success,
        "closed": closed_at,
        "failed_on_b": failed_on_b,
        "rejected": rejected,
        "other": other,
        "actors": sorted({e.actor.split(" (")[0] for e in events}),
    }


def report(args, runs: list[dict], a_port: int, startup: float) -> None:
    def span(a, b) -> float | None:
        return None if a is None or b is None else b - a

    def fmt(value: float | None) -> str:
        return f"{value:7.2f} s" if value is not None else f"{'n/a':>9}"

    print(
        f"tenantbreaker heal time: seed scenario, B=127.0.0.1:{B_PORT} (no table) -> A=127.0.0.1:{a_port}, "
        f"BREAKER_MODE={args.mode}, evaluation every 1 s, one query every {args.pause * 1000:.0f} ms; "
        f"worker+beat ready in {startup:.1f}s"
    )
    print()
    header = (
        f"{'run':<4} {'alias':<9} {'fail->open':>10} {'open->failover':>14} {'failover->ok':>12} "
        f"{'TOTAL':>9} {'failed on B':>11} {'rejected':>8} {'closed after':>12}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for number, run in enumerate(runs, 1):
        parts = (
            span(run["first_failure"], run["opened"]),
            span(run["opened"], run["failover"]),
            span(run["failover"], run["first_success"]),
            span(run["first_failure"], run["first_success"]),
            span(run["first_failure"], run["closed"]),
        )
        rows.append(parts)
        print(
            f"{number:<4} {run['alias']:<9} {fmt(parts[0]):>10} {fmt(parts[1]):>14} {fmt(parts[2]):>12} "
            f"{fmt(parts[3])} {run['failed_on_b']:11d} {run['rejected']:8d} {fmt(parts[4]):>12}"
        )
    print("-" * len(header))

    def med(i: int) -> str:
        values = [r[i] for r in rows if r[i] is not None]
        return fmt(statistics.median(values)) if values else fmt(None)

    failed = statistics.median(r["failed_on_b"] for r in runs)
    rejected = statistics.median(r["rejected"] for r in runs)
    print(
        f"{'med':<4} {'':<9} {med(0):>10} {med(1):>14} {med(2):>12} {med(3)} {failed:11.0f} {rejected:8.0f} "
        f"{med(4):>12}"
    )
    totals = [r[3] for r in rows if r[3] is not None]
    if totals:
        total = statistics.median(totals)
        verdict = "meets" if total <= 3 else "MISSES"
        print(f"\nmedian heal time / target 3 s: {total / 3:.2f} ({verdict} the target)")
    print(f"transition actors seen: {sorted({a for r in runs for a in r['actors']})}")
    if any(r["other"] for r in runs):
        print(f"successful queries on B (unexpected): {[r['other'] for r in runs]}")


if __name__ == "__main__":
    main()
