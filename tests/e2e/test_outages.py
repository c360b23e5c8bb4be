"""Outages end to end: Redis restarting empty, PostgreSQL restarting under the active server,
a standby that is down too; real worker, beat and application processes."""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime

import pytest
import redis

from breaker_worker.sandbox import SEED_TABLE, PostgresServer, create_database, drop_database, execute, free_port
from breaker_worker.store import RedisBreakerStore

from .conftest import finish, results_so_far, wait_until
from .test_seed_scenario import PASSWORD, PROBE_SQL, register

pytestmark = pytest.mark.e2e


def at(row: dict) -> float:
    """A history row's time, in epoch seconds (SQLite keeps it as naive UTC text)."""
    return datetime.fromisoformat(row["at"]).replace(tzinfo=UTC).timestamp()


def first_time(predicate, deadline: float, interval: float = 0.05) -> float | None:
    """When ``predicate`` first held (time.time()), polling until ``deadline``; None if never."""
    while True:
        if predicate():
            return time.time()
        if time.time() > deadline:
            return None
        time.sleep(interval)


@pytest.fixture
def tenant_databases(standby_server, tenant_dbname):
    """Databases of one test on the private PostgreSQL of the session, dropped afterwards."""
    names: list[str] = []

    def make(suffix: str, with_seed_table: bool) -> str:
        name = f"{tenant_dbname}_{suffix}"
        create_database(standby_server.port, name, with_seed_table=with_seed_table)
        names.append(name)
        return name

    make.port = standby_server.port
    yield make
    for name in names:
        drop_database(standby_server.port, name)


@pytest.fixture
def own_server():
    """A private PostgreSQL this test may stop and start (never the machine's shared one)."""
    server = PostgresServer(free_port()).start()
    yield server
    server.stop()


# Celery's own broker reconnect waits 2, 4, 6 ... 30 s: the 13 s outage proves the worker's
# consumer (project.celery.Consumer) retries every second instead.
@pytest.mark.parametrize("outage", [4.5, 13.0])
def test_redis_restarting_empty_mid_traffic_costs_no_query_and_recording_and_evaluation_resume_within_5s(
    make_system, tenant_databases, outage
):
    """1-default stays healthy; 2-default is open in Redis (60 s wait) on a server repaired
    meanwhile; 3-default starts failing while Redis is away. One application process queries
    all three while the System's own Redis (also the broker) stops and comes back empty."""
    system = make_system(BREAKER_WINDOW_SECONDS="5", BREAKER_OPEN_SECONDS="60")
    port = tenant_databases.port
    names = {
        "1-default": tenant_databases("healthy", with_seed_table=True),
        "2-default": tenant_databases("repaired", with_seed_table=False),
        "3-default": tenant_databases("failing", with_seed_table=True),
    }
    for alias, name in names.items():
        url = f"postgres://postgres:{PASSWORD}@127.0.0.1:{port}/{name}"
        system.manage("tenant_db", "set", alias, url, "--probe-sql", PROBE_SQL)
    store = RedisBreakerStore.from_url(system.redis.url)

    def calls(alias: str) -> int:
        return store.views([alias], time.time(), 5)[alias].counts.calls

    app = system.client("loop", ",".join(names))
    # 2-default trips (no other candidate: it stays open), then its server is repaired: the
    # breaker still rejects it, as it should until the open wait ends.
    wait_until(lambda: [r for r in system.history("2-default") if r["kind"] == "failover"], 60, "2-default to trip")
    execute(port, names["2-default"], *SEED_TABLE)
    repaired = time.time()
    wait_until(lambda: calls("1-default") >= 10 and calls("3-default") >= 10, 30, "traffic recorded in Redis")
    wait_until(
        lambda: [r for r in results_so_far(app) if r["alias"] == "2-default" and r["t"] > repaired + 0.5],
        30,
        "queries of 2-default after its repair",
    )

    down = time.time()
    system.redis.process.kill()  # a crash: Redis keeps nothing (no persistence)
    system.redis.process.wait()
    time.sleep(1.0)
    execute(port, names["3-default"], "DROP TABLE test_app_users")  # 3-default starts failing
    time.sleep(max(0.0, down + outage - time.time()))
    system.redis.start()  # same port, empty
    redis.Redis.from_url(system.redis.url).ping()
    back = time.time()

    # Recording resumes: the healthy alias's window in the new Redis has calls again.
    recorded = first_time(lambda: calls("1-default") > 0, back + 5)

    # Evaluation resumes: the evaluator (worker and beat reconnected) opens the failing alias.
    def opened_since_back() -> list[dict]:
        return [r for r in system.history("3-default") if r["kind"] == "transition" and at(r) > back]

    evaluated = first_time(opened_since_back, back + 25)
    assert recorded is not None, "no outcome of 1-default reached the new Redis within 5 s"
    assert evaluated is not None, "no evaluation transition within 25 s of Redis being back"
    opened = opened_since_back()[0]
    print(
        f"\nRedis away {back - down:.1f}s; once back: 1-default recorded after {recorded - back:.2f}s, "
        f"3-default opened after {at(opened) - back:.2f}s"
    )
    assert recorded - back <= 5
    assert (opened["from_state"], opened["actor"]) == ("closed", "evaluator")
    assert opened["reason"].startswith("failure rate ")
    time.sleep(2)  # let the application run on a little after the new open
    results = finish(app)
    by_alias = collections.defaultdict(list)
    for r in results:
        by_alias[r["alias"]].append(r)

    # The healthy alias: not one error, before, during or after the outage.
    healthy = by_alias["1-default"]
    assert [r for r in healthy if not r["ok"]] == []
    assert len([r for r in healthy if down + 0.5 < r["t"] < back]) >= 20  # it kept running
    assert {r["port"] for r in healthy} == {port}

    # 2-default was rejected while open; with Redis gone, the stale "open" no longer rejects,
    # and the Redis that came back empty holds no open state for it: it serves.
    rejected = [r for r in by_alias["2-default"] if repaired + 0.5 < r["t"] < down]
    assert rejected and all(r["error"] == "BreakerOpenError" for r in rejected)
    after = [r for r in by_alias["2-default"] if r["t"] > down + 1.0]
    assert after and all(r["ok"] for r in after)
    assert [r for r in system.history("2-default") if at(r) > down] == []
    status = system.status("2-default")
    assert (status["state"], status["reason"]) == ("closed", "")

    # 3-default was cut off by the application's own judgement while Redis was away.
    local = [r for r in by_alias["3-default"] if down < r["t"] < back and not r["ok"]]
    assert {r["error"] for r in local} == {"ProgrammingError", "BreakerOpenError"}
    assert any("opened in this process" in r["message"] for r in local if r["error"] == "BreakerOpenError")

    # One line when Redis went away, one when it came back; not one per query.
    log = app.log_path.read_text()
    assert log.count(f"breaker store {system.redis.url} unreachable") == 1
    assert log.count(f"breaker store {system.redis.url} is reachable again") == 1

    # Last, so that a long outage (expected to fail here) has passed every other check.
    assert at(opened) - back <= 5


def test_a_postgres_blip_under_traffic_rides_through_and_a_long_outage_fails_over(
    make_system, own_server, seed_databases
):
    system = make_system(BREAKER_CONNECT_TIMEOUT="1")  # a 10 s window
    seed = seed_databases
    create_database(own_server.port, seed["name"], with_seed_table=True)
    register(system, seed, own_server.port, seed["a_port"])
    store = RedisBreakerStore.from_url(system.redis.url)
    app = system.client("requests", "1-default")
    wait_until(lambda: len([r for r in results_so_far(app) if r["ok"]]) >= 100, 60, "steady traffic")

    blip = time.time()
    own_server.halt()
    time.sleep(0.5)
    own_server.resume()
    resumed = time.time()
    window = store.views(["1-default"], time.time(), 10)["1-default"].counts
    assert window.failures > 0  # the breaker saw the blip
    time.sleep(4)  # four evaluations with the blip in the window
    during = [r for r in results_so_far(app) if blip <= r["t"] <= resumed]
    later = [r for r in results_so_far(app) if r["t"] > resumed + 1]
    print(f"\nblip: {resumed - blip:.2f}s, {window.failures} of {window.calls} calls failed in the window")
    assert any(not r["ok"] for r in during)
    assert later and all(r["ok"] and r["port"] == own_server.port for r in later)
    assert system.history("1-default") == []  # no transition, no failover
    status = system.status("1-default")
    assert (status["state"], status["generation"], status["port"]) == ("closed", 1, own_server.port)

    outage = time.time()
    own_server.halt()  # longer than the window: it stays down
    moved = wait_until(
        lambda: [r for r in results_so_far(app) if r["ok"] and r["port"] == seed["a_port"]], 60, "the standby"
    )[0]["t"]
    wait_until(lambda: ("half_open", "closed") in system.transitions("1-default"), 30, "the breaker to close")
    wait_until(lambda: len([r for r in results_so_far(app) if r["t"] > moved]) >= 20, 30, "traffic on the standby")
    results = finish(app)

    print(f"long outage: the application reached the standby {moved - outage:.2f}s after the server stopped")
    assert system.transitions("1-default") == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    opened = system.history("1-default")[0]
    assert opened["reason"].startswith("failure rate ") and at(opened) > outage
    assert [r["reason"] for r in system.history("1-default") if r["kind"] == "failover"] == [
        f"moved from 127.0.0.1:{own_server.port} to 127.0.0.1:{seed['a_port']}"
    ]
    assert all(r["ok"] and r["port"] == seed["a_port"] for r in results if r["t"] >= moved)
    status = system.status("1-default")
    assert (status["state"], status["generation"], status["port"]) == ("closed", 2, seed["a_port"])


def test_with_the_standby_down_too_the_breaker_stays_open_retries_once_per_growing_wait_and_never_moves(
    make_system, seed_databases
):
    system = make_system(BREAKER_OPEN_SECONDS="2", BREAKER_CONNECT_TIMEOUT="1")
    standby = PostgresServer(free_port()).start()
    standby.halt()  # the only other candidate: down
    try:
        seed = seed_databases
        register(system, seed, seed["b_port"], standby.port)  # the active server lacks the table
        store = RedisBreakerStore.from_url(system.redis.url)
        app = system.client("loop", "1-default")

        opens: dict[int, float] = {}  # epoch -> open wait (open_until - since)

        def three_opens_each_with_its_failover() -> bool:
            record = store.states(["1-default"])["1-default"]
            if record.state.value == "open":
                opens[record.epoch] = record.open_until - record.since
            failovers = [r for r in system.history("1-default") if r["kind"] == "failover"]
            return len(opens) >= 3 and {r["epoch"] for r in failovers} >= set(opens)

        wait_until(three_opens_each_with_its_failover, 90, "three opens and their failover attempts", interval=0.1)
        status = wait_until(
            lambda: (s := system.status("1-default"))["state"] == "open" and s, 30, "breaker_status to show it open"
        )
        history = system.history("1-default")
        results = finish(app)
    finally:
        standby.stop()

    waits = [opens[epoch] for epoch in sorted(opens)]
    print(f"\nopen waits: {', '.join(f'{w:.2f}s' for w in waits)}")
    assert 1.8 <= waits[0] <= 2.2  # BREAKER_OPEN_SECONDS, +-10 % jitter
    assert all(later >= 1.6 * earlier for earlier, later in zip(waits, waits[1:], strict=False))

    opened = [r["epoch"] for r in history if r["kind"] == "transition" and r["to_state"] == "open"]
    failovers = [r for r in history if r["kind"] == "failover"]
    attempts = collections.Counter(r["epoch"] for r in failovers)
    assert set(opens) <= set(opened)
    # Exactly one failover attempt per open (the newest one's may still be under way), each
    # finding no healthy candidate.
    assert set(attempts.values()) == {1}
    assert set(opened[:-1]) <= set(attempts) <= set(opened)
    assert all(r["reason"].startswith("no healthy candidate") for r in failovers)
    assert all(r["moved_to"] == "" for r in failovers)
    assert {(r["from_state"], r["to_state"]) for r in history if r["kind"] == "transition"} <= {
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
    }
    assert "no healthy candidate" in status["reason"]
    assert (status["generation"], status["port"]) == (1, seed["b_port"])  # it never moved
    assert results and not any(r["ok"] for r in results)
