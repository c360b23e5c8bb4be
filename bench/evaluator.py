"""Cost of one evaluation tick over 10,000 aliases, and Redis memory per alias.

What it measures:

* the wall time of ``breaker_worker.services.evaluate_breakers(now)`` (what the beat-scheduled
  ``breaker_worker.evaluate`` task runs every second) over ``--aliases`` (10,000) aliases that
  all have outcomes in their 10 s window, in a steady state: before every tick one more second
  of outcomes is recorded for every alias (untimed, as the web processes' flushes would), and
  ``now`` advances by one second per tick, so each tick also prunes one expired second per
  alias. Mostly healthy traffic (1-50 calls a second, an occasional failure): no transitions.
  The median of ``--ticks`` ticks is reported, split into the store's ``recent_aliases`` and
  ``views`` (one pipeline read, one pipeline prune) and the rest (``decide`` per alias);
* that a healthy tick reads Redis only: the number of control-DB queries it makes (expected 0);
* Redis memory per alias: ``INFO memory`` used_memory before/after populating, divided by the
  number of aliases, and ``MEMORY USAGE`` of one alias's keys (window hash; state hash and
  generation string, which exist once an alias was registered or has transitioned) plus its
  share of the global ``cb:recent`` sorted set;
* for scale, ticks in which 1 % and 10 % of the aliases trip (registered aliases, so every
  transition also writes its history row and enqueues a failover task, as in production).

Targets from the issue: <= 200 ms per tick, <= 2 KB per alias.

Run: ``.venv/bin/python bench/evaluator.py [--aliases 10000] [--ticks 9]`` (about a minute).
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and ``redis-server`` on PATH; it starts
its own Redis and uses a temporary control DB. No worker runs: enqueued tasks stay queued.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_PORT = 5432
WINDOW = 10
GENERATION = 1  # what register_alias starts a new alias at; unregistered aliases accept any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aliases", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=9, help="timed healthy ticks (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="tb-bench-evaluator-"))
    dbname = f"tb_bench_evaluator_{os.getpid()}"
    redis_server = None
    created_db = False
    try:
        from breaker_worker.sandbox import RedisServer, create_database, free_port

        redis_server = RedisServer(free_port()).start()
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "project.settings",
                "TENANTBREAKER_VAR_DIR": str(var_dir),
                "REDIS_URL": redis_server.url,
                "CELERY_BROKER_URL": redis_server.url,
                "DJANGO_DEBUG": "0",
                "LOG_LEVEL": "ERROR",  # one warning line per transition would flood the table
                "BREAKER_WINDOW_SECONDS": str(WINDOW),
            }
        )
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        create_database(PG_PORT, dbname, with_seed_table=False)
        created_db = True
        run(args, dbname, redis_server)
    finally:
        if created_db:
            from breaker_worker.sandbox import drop_database

            drop_database(PG_PORT, dbname)
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args, dbname: str, redis_server) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from breaker_worker.core.machine import State
    from breaker_worker.core.window import Counts
    from breaker_worker.services import evaluate_breakers, get_store, register_alias
    from breaker_worker.store.base import OutcomeBatch
    from breaker_worker.store.redis_store import RECENT_KEY, TRIPPED_KEY, key

    rng = random.Random(args.seed)
    store = get_store()
    client = store.client
    url = f"postgres://postgres:x@127.0.0.1:{PG_PORT}/{dbname}"
    registered = "1-default"  # one registered alias among the healthy ones
    register_alias(registered, [url], "SELECT 1")
    aliases = [registered] + [f"{n}-default" for n in range(2, args.aliases + 1)]

    def healthy(second: int) -> Counts:
        calls = rng.randint(1, 50)
        return Counts(calls, 1 if rng.random() < 0.05 else 0, 0)

    def record_second(names, second: int, now: float, counts=healthy) -> None:
        for start in range(0, len(names), 1000):
            batch = [OutcomeBatch(a, GENERATION, {second: counts(second)}) for a in names[start : start + 1000]]
            store.record(batch, now, ttl=WINDOW * 2 + 60)

    # --- populate: 10 seconds of outcomes per alias --------------------------------------
    t0 = int(time.time())
    client.execute_command("MEMORY", "PURGE")
    before = int(client.info("memory")["used_memory"])
    started = time.perf_counter()
    for start in range(0, len(aliases), 1000):
        names = aliases[start : start + 1000]
        batch = [OutcomeBatch(a, GENERATION, {s: healthy(s) for s in range(t0 - WINDOW + 1, t0 + 1)}) for a in names]
        store.record(batch, t0 + 0.2, ttl=WINDOW * 2 + 60)
    populate_seconds = time.perf_counter() - started
    after = int(client.info("memory")["used_memory"])
    per_alias_info = (after - before) / len(aliases)

    def usage(name: str) -> int:
        return int(client.memory_usage(name, samples=0) or 0)

    sample = aliases[len(aliases) // 2]
    window_bytes = usage(key(sample, "window"))
    window_fields = client.hlen(key(sample, "window"))
    generation_bytes = usage(key(registered, "generation"))
    recent_share = usage(RECENT_KEY) / len(aliases)
    # A state hash exists once an alias has transitioned: make one on a spare alias, measure it.
    spare = f"{args.aliases + 100_000}-spare"
    epoch = store.transition(spare, State.CLOSED, 0, State.OPEN, t0, "failure rate 100% >= 50% (10 of 10)", t0 + 5)
    state_bytes = usage(key(spare, "state"))
    tripped_share = usage(TRIPPED_KEY)  # one entry: the spare alias
    store.transition(spare, State.OPEN, epoch, State.HALF_OPEN, t0, "open wait elapsed")
    store.forget(spare)

    # --- healthy ticks: steady state, one new second recorded before each ----------------
    phases: dict[str, float] = {}

    def timed(name, method):
        def wrapper(*a, **kw):
            begun = time.perf_counter()
            try:
                return method(*a, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - begun

        return wrapper

    store.recent_aliases = timed("recent_aliases", store.recent_aliases)
    store.views = timed("views", store.views)
    # Split views into pipeline round trips (redis-py packing, Redis, reply parsing) and the
    # store's own Python work, by timing Pipeline.execute of this process only.
    pipeline_class = type(client.pipeline())
    pipeline_class.execute = timed("pipeline.execute", pipeline_class.execute)

    def tick(now: float) -> tuple[float, dict, dict, int]:
        phases.clear()
        with CaptureQueriesContext(connection) as queries:
            begun = time.perf_counter()
            result = evaluate_breakers(now)
            elapsed = time.perf_counter() - begun
        return elapsed, dict(phases), result, len(queries)

    healthy_ticks = []
    second = t0
    tick(second + 0.5)  # warm-up: connections, script loading; nothing to prune yet
    for _ in range(args.ticks):
        second += 1
        record_second(aliases, second, second + 0.2)
        healthy_ticks.append(tick(second + 0.5))
    fields_after = client.hlen(key(sample, "window"))
    client.execute_command("MEMORY", "PURGE")
    steady = int(client.info("memory")["used_memory"])
    per_alias_steady = (steady - before) / len(aliases)

    # --- ticks in which some aliases trip ------------------------------------------------
    def failing(_second: int) -> Counts:
        return Counts(1000, 1000, 0)

    trip_rows = []
    groups = [("1 %", len(aliases) // 100), ("1 %", len(aliases) // 100), ("10 %", len(aliases) // 10)]
    pool = aliases[1:]
    rng.shuffle(pool)
    offset = 0
    register_started = time.perf_counter()
    picked = []
    for _, size in groups:
        picked.append(pool[offset : offset + size])
        offset += size
    for names in picked:
        for alias in names:
            register_alias(alias, [url], "SELECT 1")  # forgets its Redis keys: a fresh window
    register_seconds = time.perf_counter() - register_started
    for (label, _), names in zip(groups, picked, strict=True):
        second += 1
        record_second(aliases, second, second + 0.2)
        record_second(names, second, second + 0.2, counts=failing)
        elapsed, phase, result, queries = tick(second + 0.5)
        trip_rows.append((label, len(names), elapsed, phase, result, queries))

    # --- report -----------------------------------------------------------------------------
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:8.1f} ms"

    times = [t for t, _, _, _ in healthy_ticks]
    recent = [p.get("recent_aliases", 0.0) for _, p, _, _ in healthy_ticks]
    views = [p.get("views", 0.0) for _, p, _, _ in healthy_ticks]
    rest = [t - r - v for t, r, v in zip(times, recent, views, strict=True)]
    # recent_aliases is one pipeline: what remains of pipeline time is inside views.
    view_pipes = [p.get("pipeline.execute", 0.0) - r for (_, p, _, _), r in zip(healthy_ticks, recent, strict=True)]
    view_python = [v - vp for v, vp in zip(views, view_pipes, strict=True)]
    evaluated = {r["evaluated"] for _, _, r, _ in healthy_ticks}
    transitions = sum(r["transitions"] for _, _, r, _ in healthy_ticks)
    sql = sum(q for _, _, _, q in healthy_ticks)
    n = len(aliases)
    print(
        f"tenantbreaker evaluator: {n} aliases with outcomes in a {WINDOW}s window (populated in "
        f"{populate_seconds:.1f}s), {args.ticks} timed steady-state ticks, private Redis {redis_server.url}"
    )
    print()
    print(f"{'healthy tick (median of ' + str(args.ticks) + ')':<48} {'median':>11} {'min':>11} {'max':>11}")
    print("-" * 84)
    for label, values in (
        ("evaluate_breakers(now): whole tick", times),
        ("  store.recent_aliases (1 pipeline)", recent),
        ("  store.views (read pipeline + prune pipeline)", views),
        ("    pipeline.execute x2 (pack, Redis, parse)", view_pipes),
        ("    queue 30k commands, parse, sum, prune list", view_python),
        ("  decide() per alias and the rest", rest),
    ):
        print(f"{label:<48} {ms(statistics.median(values))} {ms(min(values))} {ms(max(values))}")
    tick_ms = statistics.median(times) * 1000
    print(f"{'per alias':<48} {tick_ms * 1000 / n:8.1f} µs")
    print(
        f"aliases evaluated per tick: {sorted(evaluated)}; transitions: {transitions}; "
        f"control-DB queries during healthy ticks: {sql}; window fields per alias after ticks: {fields_after}"
    )
    print(f"tick / target 200 ms: {tick_ms / 200:.2f}  ({'meets' if tick_ms <= 200 else 'MISSES'} the target)")
    print()
    print(f"{'Redis memory per alias':<64} {'bytes':>9}")
    print("-" * 84)
    print(f"{'INFO used_memory delta after populating / aliases':<64} {per_alias_info:9.0f}")
    print(f"{'INFO used_memory delta in steady state / aliases':<64} {per_alias_steady:9.0f}")
    print(f"{f'MEMORY USAGE window hash ({window_fields} fields, one alias)':<64} {window_bytes:9d}")
    print(f"{'MEMORY USAGE cb:recent / aliases (sorted set share)':<64} {recent_share:9.0f}")
    print(f"{'MEMORY USAGE generation string (registered aliases)':<64} {generation_bytes:9d}")
    print(f"{'MEMORY USAGE state hash (aliases that ever transitioned)':<64} {state_bytes:9d}")
    print(f"{'MEMORY USAGE cb:tripped with one entry (tripped aliases)':<64} {tripped_share:9d}")
    worst = window_bytes + recent_share + generation_bytes + state_bytes + tripped_share
    print(f"{'worst case by MEMORY USAGE (all of the above for one alias)':<64} {worst:9.0f}")
    per_alias = max(per_alias_info, per_alias_steady)
    print(
        f"per alias / target 2 KB: {per_alias / 2048:.2f} by INFO, {worst / 2048:.2f} worst case by MEMORY USAGE"
        f"  ({'meets' if max(per_alias, worst) <= 2048 else 'MISSES'} the target)"
    )
    print()
    print(
        f"ticks with tripping aliases (registered: {sum(len(p) for p in picked)} aliases in "
        f"{register_seconds:.1f}s; each transition writes a history row and enqueues a failover task)"
    )
    print(
        f"{'tripping':<10} {'aliases':>8} {'tick':>11} {'views':>11} {'transitions':>12} "
        f"{'SQL queries':>12} {'per trip':>11}"
    )
    print("-" * 84)
    healthy_rest = statistics.median(rest)
    for label, size, elapsed, phase, result, queries in trip_rows:
        trip_rest = elapsed - phase.get("views", 0.0) - phase.get("recent_aliases", 0.0)
        per_trip = (trip_rest - healthy_rest) / max(1, result["transitions"])
        print(
            f"{label:<10} {size:8d} {ms(elapsed)} {ms(phase.get('views', 0.0))} {result['transitions']:12d} "
            f"{queries:12d} {per_trip * 1000:8.2f} ms"
        )
    print(
        "(per trip = (tick - views - recent_aliases - the same for a healthy tick) / transitions: applied one by one)"
    )


if __name__ == "__main__":
    main()
