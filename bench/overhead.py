"""Query-path overhead of the breaker, and the cost of failing fast.

What it measures (median time per query, in one run, side by side):

* ``cursor.execute("SELECT 1"); cursor.fetchone()`` through Django on a tenant alias (the
  connection stays open, one cursor per query as Django apps do) in processes with
  BREAKER_ENABLED=0 ("off"), BREAKER_ENABLED=1 BREAKER_MODE=aggregator ("on") and
  BREAKER_MODE=sequential (printed as n/a when the settings or system checks reject that mode);
* the same query wrapped by pybreaker 1.4.1 with ``CircuitRedisStorage`` on the same private
  Redis, in a breaker-off process: the reference a Redis-backed breaker is compared with;
* fail-fast: a query on a second alias whose breaker is open (``open_until`` an hour ahead,
  written with the store's compare-and-set transition) that raises ``BreakerOpenError``, and
  pybreaker's rejection (``CircuitBreakerError``) of an open breaker with Redis storage.

How: the script starts a private Redis, a temporary control DB (``TENANTBREAKER_VAR_DIR``), a
tenant database on 127.0.0.1:5432 and two registered aliases, then one child process of itself
per configuration. The parent runs the rounds interleaved: in every round it tells each child
in turn (the breaker-off, aggregator and sequential ones back to back in a freshly shuffled
order, then the slower pybreaker one) to time ``--queries`` calls of each of its operations, one
``perf_counter_ns`` pair per call, and to answer with the round's median and mean; only one
child works at a time, so machine noise hits every configuration alike. Figures are medians
over rounds; ratios are medians of per-round ratios (IQR shown). Django runs with DEBUG off
(no query log). Also an in-process A/B in each breaker-on process (the same connection with
the breaker switched off for alternate loops), free of the bias of process placement on 2 cores.
Targets from the issue: on/off <= 1.03 and fail-fast <= 0.1 x SELECT 1.

Run: ``.venv/bin/python bench/overhead.py [--rounds 150] [--queries 100]`` (about 40 s).
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and ``redis-server`` on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OK_ALIAS = "1-bench_overhead"  # closed breaker: the SELECT 1 measurements
OPEN_ALIAS = "2-bench_overhead"  # open breaker: the fail-fast measurements
PG_PORT = 5432

# name -> (label, environment overrides, operations)
CONFIGS = {
    "off": ("breaker off (BREAKER_ENABLED=0)", {"BREAKER_ENABLED": "0"}, ("select1",)),
    "on": (
        "breaker on, aggregator",
        {"BREAKER_ENABLED": "1", "BREAKER_MODE": "aggregator"},
        ("select1", "failfast"),
    ),
    "sequential": (
        "breaker on, sequential",
        {"BREAKER_ENABLED": "1", "BREAKER_MODE": "sequential"},
        ("select1", "failfast"),
    ),
    "pybreaker": (
        "pybreaker 1.4.1 + Redis (breaker off)",
        {"BREAKER_ENABLED": "0"},
        ("select1", "failfast"),
    ),
}


# --- child: one configuration, timing on request ---------------------------------------------


def child(config: str) -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # only the protocol goes to the parent's pipe

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core import checks

        serious = [e for e in checks.run_checks() if e.is_serious() and (e.id or "").startswith("breaker_worker")]
        if serious:
            send({"unsupported": "; ".join(f"{e.id}: {e.msg}" for e in serious)})
            return
    except Exception as exc:  # settings that refuse the configuration at import
        send({"unsupported": f"{type(exc).__name__}: {exc}"})
        return

    from django.db import connections

    from breaker_worker.db.errors import BreakerOpenError
    from breaker_worker.db.runtime import get_runtime

    def query(alias: str):
        def run() -> None:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        return run

    unexpected = {"count": 0}
    ops = {}
    contexts = {}

    @contextlib.contextmanager
    def bypassed():
        """The same process, connection and backend with the breaker switched off (every new
        cursor is Django's own, no reject check): free of the bias of process placement."""
        runtime = get_runtime()
        runtime.enabled = False
        try:
            yield
        finally:
            runtime.enabled = True

    if config == "pybreaker":
        import pybreaker
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)  # decode_responses=False, as pybreaker expects
        closed = pybreaker.CircuitBreaker(
            fail_max=5,
            reset_timeout=3600,
            state_storage=pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="bench-closed"),
        )
        opened = pybreaker.CircuitBreaker(
            fail_max=5,
            reset_timeout=3600,
            state_storage=pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="bench-open"),
        )
        opened.open()
        select1 = query(OK_ALIAS)

        def pb_select1() -> None:
            closed.call(select1)

        def pb_failfast() -> None:
            try:
                opened.call(select1)
            except pybreaker.CircuitBreakerError:
                return
            unexpected["count"] += 1

        ops = {"select1": pb_select1, "failfast": pb_failfast}
    else:
        ops["select1"] = query(OK_ALIAS)
        if get_runtime().enabled:
            ops["select1_bypassed"] = query(OK_ALIAS)
            contexts["select1_bypassed"] = bypassed
        if "failfast" in CONFIGS[config][2]:
            rejected_query = query(OPEN_ALIAS)

            def failfast() -> None:
                try:
                    rejected_query()
                except BreakerOpenError:
                    return
                unexpected["count"] += 1

            # Wait until this process's runtime has synced the open state from Redis.
            connections[OPEN_ALIAS]  # noqa: B018 - loads the target and starts the sync thread
            runtime = get_runtime()
            deadline = time.monotonic() + 15
            while True:
                record = runtime.states.get(OPEN_ALIAS)
                if record is not None and record.state.value == "open":
                    break
                if time.monotonic() > deadline:
                    break  # measured anyway; rejections are counted and reported
                time.sleep(0.05)
            ops["failfast"] = failfast

    for name, fn in ops.items():  # warm up: connection, caches, branch predictors
        with contexts.get(name, contextlib.nullcontext)():
            for _ in range(300):
                fn()
    unexpected["count"] = 0

    runtime = get_runtime()
    send(
        {
            "ready": True,
            "enabled": runtime.enabled,
            "mode": settings.BREAKER_MODE,
            "runtime": f"{type(runtime).__module__}.{type(runtime).__qualname__}",
            "sequential_flag": str(getattr(runtime, "sequential", "absent")),
            "ops": list(ops),
        }
    )
    clock = time.perf_counter_ns
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        n, round_index = int(command[1]), int(command[2])
        result = {}
        names = list(ops) if round_index % 2 == 0 else list(reversed(ops))  # no fixed op order
        for name in names:
            fn = ops[name]
            samples = [0] * n
            with contexts.get(name, contextlib.nullcontext)():
                for i in range(n):
                    started = clock()
                    fn()
                    samples[i] = clock() - started
            result[name] = {"median": statistics.median(samples), "mean": statistics.fmean(samples)}
        result["unexpected"] = unexpected["count"]
        unexpected["count"] = 0
        send(result)
    connections.close_all()


# --- parent: set-up, interleaved rounds, table -----------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--queries", type=int, default=100, help="calls per operation per round")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round order shuffle")
    parser.add_argument("--dump", help="also write the per-round figures to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    var_dir = Path(tempfile.mkdtemp(prefix="tb-bench-overhead-"))
    dbname = f"tb_bench_overhead_{os.getpid()}"
    redis_server = None
    children: dict[str, subprocess.Popen] = {}
    created_db = False
    try:
        from breaker_worker.sandbox import RedisServer, create_database, drop_database, free_port

        redis_server = RedisServer(free_port()).start()
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "project.settings",
                "TENANTBREAKER_VAR_DIR": str(var_dir),
                "REDIS_URL": redis_server.url,
                "CELERY_BROKER_URL": redis_server.url,
                "DJANGO_DEBUG": "0",
                "LOG_LEVEL": "WARNING",
            }
        )
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.core.management import call_command

        from breaker_worker.core.machine import State
        from breaker_worker.services import get_store, register_alias

        call_command("migrate", verbosity=0)
        create_database(PG_PORT, dbname, with_seed_table=False)
        created_db = True
        for alias in (OK_ALIAS, OPEN_ALIAS):
            register_alias(alias, [f"postgres://postgres:x@127.0.0.1:{PG_PORT}/{dbname}"], "SELECT 1")
        now = time.time()
        store = get_store()
        epoch = store.states([OPEN_ALIAS])[OPEN_ALIAS].epoch
        assert store.transition(OPEN_ALIAS, State.CLOSED, epoch, State.OPEN, now, "benchmark", now + 3600) is not None

        infos = {}
        for name, (_, overrides, _) in CONFIGS.items():
            children[name] = subprocess.Popen(
                [sys.executable, __file__, "--child", name],
                cwd=ROOT,
                env={**os.environ, **overrides},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        for name, process in list(children.items()):
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"child {name} exited during set-up (exit code {process.wait()})")
            info = json.loads(line)
            infos[name] = info
            if "unsupported" in info:
                process.wait(10)
                del children[name]

        rounds: dict[str, list[dict]] = {name: [] for name in children}
        # The configurations compared with "off" run back to back in a fresh order each round
        # (no one always follows the same other); the slow pybreaker reference runs after them,
        # so it never sits between two figures that make a ratio.
        compared = [name for name in children if name != "pybreaker"]
        references = [name for name in children if name == "pybreaker"]
        shuffle = random.Random(args.seed).shuffle
        started = time.monotonic()
        for index in range(args.rounds):
            shuffle(compared)
            for name in compared + references:
                process = children[name]
                process.stdin.write(f"run {args.queries} {index}\n")
                process.stdin.flush()
                line = process.stdout.readline()
                if not line:
                    raise RuntimeError(f"child {name} died (exit code {process.wait()})")
                rounds[name].append(json.loads(line))
        elapsed = time.monotonic() - started
        recorded = store.views([OK_ALIAS], time.time(), 10)[OK_ALIAS].counts.calls

        if args.dump:
            Path(args.dump).write_text(json.dumps({"infos": infos, "rounds": rounds}, indent=1))
        report(args, infos, rounds, elapsed, recorded)
    finally:
        for process in children.values():
            if process.poll() is None:
                try:
                    process.stdin.write("quit\n")
                    process.stdin.flush()
                    process.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    process.kill()
                    process.wait()
        if created_db:
            from breaker_worker.sandbox import drop_database

            drop_database(PG_PORT, dbname)
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def _median_of(rounds: list[dict], op: str, stat: str = "median") -> float:
    return statistics.median(r[op][stat] for r in rounds)


def _ratio(rounds_a: list[dict], op_a: str, rounds_b: list[dict], op_b: str, stat: str = "median") -> float:
    """Median over rounds of a/b, each round's pair measured back to back."""
    return statistics.median(a[op_a][stat] / b[op_b][stat] for a, b in zip(rounds_a, rounds_b, strict=True))


def _spread(rounds_a, op_a, rounds_b, op_b) -> str:
    ratios = sorted(a[op_a]["median"] / b[op_b]["median"] for a, b in zip(rounds_a, rounds_b, strict=True))
    q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
    return f"[{q1:.3f}..{q3:.3f}]"


def _fmt(ns: float) -> str:
    return f"{ns / 1000:8.2f} µs" if ns >= 1000 else f"{ns:8.0f} ns"


def report(args, infos, rounds, elapsed, recorded) -> None:
    print(
        f"tenantbreaker query-path overhead: {args.rounds} interleaved rounds x {args.queries} calls per operation, "
        f"{elapsed:.1f}s; SELECT 1 on 127.0.0.1:{PG_PORT}, one open connection, a cursor per query"
    )
    print()
    print(f"{'configuration':<40} {'operation':<32} {'median':>11} {'mean':>11}")
    print("-" * 97)
    descriptions = {
        "select1": "SELECT 1 (ok)",
        "failfast": "query on open alias -> rejected",
        "select1_bypassed": None,
    }
    for name, (label, _, _) in CONFIGS.items():
        info = infos.get(name, {})
        if "unsupported" in info:
            print(f"{label:<40} {'SELECT 1 (ok)':<32} {'n/a':>11} {'n/a':>11}   ({info['unsupported']})")
            continue
        for op in info["ops"]:
            what = descriptions[op]
            if what is None:
                continue
            if name == "pybreaker" and op == "failfast":
                what = "open breaker -> CircuitBreakerError"
            elif op == "failfast":
                what = "open alias -> BreakerOpenError"
            unexpected = sum(r["unexpected"] for r in rounds[name])
            note = f"   ({unexpected} calls NOT rejected)" if unexpected else ""
            print(
                f"{label:<40} {what:<32} {_fmt(_median_of(rounds[name], op))} "
                f"{_fmt(_median_of(rounds[name], op, 'mean'))}{note}"
            )
    print()
    print(f"{'ratio a / b':<44} {'median':>7} {'IQR':>15} {'medians':>8} {'a - b':>11}  target")
    print("-" * 97)
    off = rounds["off"]
    lines = []
    for name, label in (("on", "on (aggregator) / off"), ("sequential", "on (sequential) / off")):
        if name in rounds:
            lines.append((label, rounds[name], "select1", off, "select1", "<= 1.03"))
        else:
            print(f"{label:<44} {'n/a':>7}")
    for name, label in (
        ("on", "on / bypassed, same process (aggregator)"),
        ("sequential", "on / bypassed, same process (sequential)"),
    ):
        if name in rounds and "select1_bypassed" in infos[name]["ops"]:
            lines.append((label, rounds[name], "select1", rounds[name], "select1_bypassed", "<= 1.03"))
    lines.append(("pybreaker+Redis / off", rounds["pybreaker"], "select1", off, "select1", "(reference)"))
    for name, label in (
        ("on", "failfast (aggregator) / off SELECT 1"),
        ("sequential", "failfast (sequential) / off SELECT 1"),
    ):
        if name in rounds:
            lines.append((label, rounds[name], "failfast", off, "select1", "<= 0.10"))
    lines.append(("pybreaker failfast / off SELECT 1", rounds["pybreaker"], "failfast", off, "select1", "(reference)"))
    for label, a, op_a, b, op_b, target in lines:
        delta = statistics.median(x[op_a]["median"] - y[op_b]["median"] for x, y in zip(a, b, strict=True))
        sign = "-" if delta < 0 else "+"
        print(
            f"{label:<44} {_ratio(a, op_a, b, op_b):7.3f} {_spread(a, op_a, b, op_b):>15} "
            f"{_median_of(a, op_a) / _median_of(b, op_b):8.3f} {sign}{_fmt(abs(delta)).strip():>10}  {target}"
        )
    print(
        "median: of per-round ratios (each round's a and b measured back to back); IQR: of those ratios;\n"
        "medians: ratio of the overall medians above; a - b: median of per-round differences.\n"
        "'bypassed, same process': the breaker-on process's own connection with the breaker switched off\n"
        "for alternate loops: free of the bias of process placement on 2 cores."
    )
    print()
    for name in ("on", "sequential"):
        info = infos.get(name)
        if info and "unsupported" not in info:
            print(
                f"{name}: BREAKER_MODE={info['mode']}, runtime {info['runtime']} (sequential={info['sequential_flag']})"
            )
    print(f"outcomes of {OK_ALIAS} flushed to Redis in the last 10 s window: {recorded}")


if __name__ == "__main__":
    main()
