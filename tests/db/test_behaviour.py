"""One behaviour suite for both breakers: real queries on a tenant alias, aggregator and sequential.

Each test runs twice. In aggregator mode the evaluator decides (a flush, then one tick of
``services.evaluate_breakers``); in sequential mode the failing call decides inline and the
process's sync publishes that transition through the same service. Where the two modes
legitimately differ, the test says so and asserts the difference.

The runtime's background sync thread is stopped: each test decides when this process syncs, so
that what it asserts between two decisions cannot race a sync (the thread is tested in
test_backend.py).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass

import psycopg2
import pytest
from django.db import DatabaseError, connections
from django.db.utils import OperationalError, ProgrammingError

from breaker_worker import services
from breaker_worker.core.machine import State
from breaker_worker.core.window import Counts
from breaker_worker.db import runtime as runtime_module
from breaker_worker.db.errors import BreakerOpenError
from breaker_worker.models import BreakerEvent, BreakerPolicy, TenantDatabase
from breaker_worker.sandbox import free_port
from breaker_worker.selectors import breaker_statuses
from tests.conftest import forget_tenant_connections, run_in_thread, url

pytestmark = pytest.mark.usefixtures("control_db")

ALIAS = "1-default"
PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"
RETRY_AFTER = re.compile(r"; retry after \d+\.\ds$")


@dataclass
class Mode:
    name: str
    runtime: runtime_module.BreakerRuntime

    @property
    def sequential(self) -> bool:
        return self.name == "sequential"

    def decide(self, *others: runtime_module.BreakerRuntime) -> None:
        """Let the breaker decide, the way this mode does, then let every process learn the verdict."""
        runtimes = [self.runtime, *others]
        if self.sequential:
            for runtime in runtimes:
                runtime.sync()  # the failing call decided already; this publishes its transition
        else:
            for runtime in runtimes:
                runtime.flush()
            services.evaluate_breakers()
        for runtime in runtimes:
            runtime.sync()

    def in_another_process(self, work) -> runtime_module.BreakerRuntime:
        """Run ``work`` in a thread whose connections belong to a second runtime of this mode,
        as in another process: its own recording, flushes and (sequential) state machine."""
        other = new_runtime(self.runtime.redis_url, self.runtime.policy, self.sequential)
        mine, runtime_module._runtime = runtime_module._runtime, other
        try:
            run_in_thread(work)
        finally:
            runtime_module._runtime = mine
        return other


def new_runtime(redis_url, policy, sequential: bool) -> runtime_module.BreakerRuntime:
    runtime = runtime_module.BreakerRuntime(redis_url, policy, sync_seconds=0.1, sequential=sequential)
    runtime.stop()  # its sync thread exits at once: the test syncs by hand
    return runtime


@pytest.fixture(params=["aggregator", "sequential"])
def mode(request, breaker, settings, monkeypatch):
    settings.BREAKER_MODE = request.param
    breaker.stop()
    runtime = new_runtime(settings.REDIS_URL, settings.BREAKER_POLICY, request.param == "sequential")
    monkeypatch.setattr(runtime_module, "_runtime", runtime)
    forget_tenant_connections()
    yield Mode(request.param, runtime)
    forget_tenant_connections()


@pytest.fixture
def alias(mode, seed_databases):
    """1-default on server B (no test_app_users) with server A (which has it) as candidate."""
    name = seed_databases["name"]
    services.register_alias(
        ALIAS, [url(seed_databases["b_port"], name), url(seed_databases["a_port"], name)], PROBE_SQL
    )
    return ALIAS


def set_policy(alias_name: str, **overrides) -> None:
    """The alias's own policy (a BreakerPolicy row), before its first query."""
    BreakerPolicy.objects.create(database=TenantDatabase.objects.get(alias=alias_name), **overrides)


def server_port(alias_name: str = ALIAS) -> int:
    with connections[alias_name].cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        return cursor.fetchone()[0]


def fail(alias_name: str = ALIAS, table: str = "test_app_users") -> None:
    """One query that fails because this server lacks the table (42P01: a counted failure)."""
    with pytest.raises(ProgrammingError, match=f'relation "{table}" does not exist'):
        with connections[alias_name].cursor() as cursor:
            cursor.execute(f"SELECT first_name FROM {table}")


def execute(sql: str, alias_name: str = ALIAS) -> None:
    with connections[alias_name].cursor() as cursor:
        cursor.execute(sql)


def state(store, alias_name: str = ALIAS):
    return store.states([alias_name])[alias_name]


def window(store, alias_name: str = ALIAS) -> Counts:
    return store.views([alias_name], time.time(), 10)[alias_name].counts


def transitions(alias_name: str = ALIAS) -> list[tuple[str, str, int]]:
    rows = BreakerEvent.objects.filter(database__alias=alias_name, kind=BreakerEvent.Kind.TRANSITION)
    return [(e.from_state, e.to_state, e.epoch) for e in rows]


# --- (a) not enough data ---------------------------------------------------------------------


def test_below_minimum_calls_nothing_trips_and_the_rate_is_unknown_not_zero(mode, alias, store, sent_tasks, settings):
    minimum = settings.BREAKER_POLICY.minimum_calls
    for _ in range(minimum - 1):
        fail()
    mode.decide()

    assert state(store).state is State.CLOSED
    [status] = breaker_statuses([alias])
    assert (status["calls"], status["failures"], status["failure_rate"]) == (minimum - 1, minimum - 1, None)
    assert transitions() == [] and sent_tasks == []
    fail()  # still reaches the server: this is the call that brings enough data
    mode.decide()

    assert state(store).state is State.OPEN
    assert breaker_statuses([alias])[0]["failure_rate"] == 1.0


# --- (b) failure rate ------------------------------------------------------------------------


def test_the_failure_rate_trips_at_the_threshold_and_then_queries_fail_fast(mode, alias, store, sent_tasks):
    for _ in range(10):
        assert server_port() == 5432
    for _ in range(9):
        fail()
    mode.decide()
    assert state(store).state is State.CLOSED  # 9 of 19: 47 % < 50 %
    assert window(store) == Counts(19, 9, 0)

    fail()  # 10 of 20: 50 % >= 50 %
    mode.decide()

    record = state(store)
    assert (record.state, record.reason) == (State.OPEN, "failure rate 50% >= 50% (10 of 20 calls in 10s)")
    [event] = BreakerEvent.objects.filter(database__alias=alias)
    assert (event.calls, event.failure_rate) == (20, 0.5)
    for _ in range(3):
        with pytest.raises(BreakerOpenError) as caught:
            server_port()
        assert str(caught.value).startswith(f"circuit breaker for database '{alias}' is open ({record.reason})")
        assert RETRY_AFTER.search(str(caught.value))
        assert abs(caught.value.retry_after - (record.open_until - time.time())) < 0.5
        assert 0 < caught.value.retry_after <= 5.5  # open_seconds 5, +10 % jitter at most
    with pytest.raises(BreakerOpenError):  # a thread that never had a connection: rejected too
        run_in_thread(server_port)
    mode.runtime.flush()
    assert window(store) == Counts(20, 10, 0)  # rejected calls are not outcomes


def test_sequential_opens_on_the_failing_call_itself_the_aggregator_waits_for_the_evaluator(
    mode, alias, store, sent_tasks
):
    for _ in range(10):
        fail()
    if mode.sequential:
        # No evaluator, no Celery, not even a sync: the tenth failure opened this process's breaker.
        with pytest.raises(BreakerOpenError, match=r"is open \(opened in this process\); retry after"):
            server_port()
        assert state(store).state is State.CLOSED  # nobody else knows yet
        assert sent_tasks == []
        mode.runtime.sync()  # the process publishes what it decided
        assert state(store).reason == "failure rate 100% >= 50% (10 of 10 calls in 10s)"
        [event] = BreakerEvent.objects.filter(database__alias=alias)
        assert event.actor == f"sequential (pid {os.getpid()})"
    else:
        fail()  # recorded, not judged: the query path only counts
        mode.runtime.sync()
        fail()
        assert state(store).state is State.CLOSED and sent_tasks == []
        mode.decide()
        assert state(store).reason == "failure rate 100% >= 50% (12 of 12 calls in 10s)"
        [event] = BreakerEvent.objects.filter(database__alias=alias)
        assert event.actor == "evaluator"
    assert state(store).state is State.OPEN
    assert sent_tasks == [("breaker_worker.failover", [alias, 1])]


# --- (c) slow calls --------------------------------------------------------------------------


def test_the_slow_call_rate_trips(mode, alias, store, sent_tasks):
    set_policy(alias, slow_call_seconds=0.2, slow_call_rate=75, minimum_calls=5)
    execute("SELECT 1")  # quick: a call, not a slow one
    for _ in range(3):
        execute("SELECT pg_sleep(0.25)")
    mode.decide()
    assert state(store).state is State.CLOSED  # 4 calls < minimum_calls
    assert window(store) == Counts(4, 0, 3)

    execute("SELECT pg_sleep(0.25)")  # 4 of 5 slow: 80 % >= 75 %
    mode.decide()

    record = state(store)
    assert (record.state, record.reason) == (
        State.OPEN,
        "slow-call rate 80% >= 75% (4 of 5 calls slower than 0.2s)",
    )
    assert sent_tasks == [("breaker_worker.failover", [alias, 1])]
    with pytest.raises(BreakerOpenError):
        execute("SELECT 1")


def test_a_statement_timeout_counts_as_slow_not_as_a_failure(mode, alias, store, sent_tasks):
    # Slow only by SQLSTATE 57014: each timed-out query takes 50 ms, far below slow_call_seconds.
    set_policy(alias, slow_call_seconds=10, slow_call_rate=50, minimum_calls=5)
    execute("SET statement_timeout = 50")
    for _ in range(3):
        with pytest.raises(OperationalError, match="canceling statement due to statement timeout") as caught:
            execute("SELECT pg_sleep(5)")
        assert caught.value.__cause__.pgcode == "57014"
    mode.decide()
    assert window(store) == Counts(4, 0, 3)
    assert state(store).state is State.CLOSED

    with pytest.raises(OperationalError):
        execute("SELECT pg_sleep(5)")
    mode.decide()

    # Counted as failures, the same four would trip on the failure rate (80 % >= 50 %).
    record = state(store)
    assert (record.state, record.reason) == (State.OPEN, "slow-call rate 80% >= 50% (4 of 5 calls slower than 10s)")
    assert window(store) == Counts(5, 0, 4)


# --- (d) failed connects ---------------------------------------------------------------------


def test_consecutive_failed_connects_trip_a_quiet_alias(mode, store, sent_tasks, tenant_dbname, settings):
    nothing_listens = free_port()
    services.register_alias("2-default", [url(nothing_listens, tenant_dbname)])
    streak = settings.BREAKER_POLICY.connect_failures
    assert streak < settings.BREAKER_POLICY.minimum_calls  # quiet: the rates cannot judge
    for _ in range(streak - 1):
        with pytest.raises(OperationalError, match="Connection refused|could not connect"):
            server_port("2-default")
    mode.decide()
    assert state(store, "2-default").state is State.CLOSED

    with pytest.raises(OperationalError):
        server_port("2-default")
    mode.decide()

    record = state(store, "2-default")
    assert (record.state, record.reason) == (State.OPEN, f"{streak} consecutive connection failures")
    assert sent_tasks == [("breaker_worker.failover", ["2-default", 1])]
    with pytest.raises(BreakerOpenError):  # rejected before connecting: not another failed connect
        server_port("2-default")
    mode.runtime.flush()
    assert store.views(["2-default"], time.time(), 10)["2-default"].connect_failures == streak


# --- (e) one history row, one failover task ----------------------------------------------------


def test_the_open_transition_writes_one_history_row_and_sends_one_failover_for_its_epoch(
    mode, alias, store, sent_tasks
):
    # Earlier operator moves: the epoch that opens is 3, not 1.
    services.force_state(alias, State.FORCED_OPEN, "alice")
    services.force_state(alias, State.CLOSED, "alice")
    mode.runtime.sync()
    for _ in range(10):
        fail()

    def failing_elsewhere():
        for _ in range(10):
            fail()

    other = mode.in_another_process(failing_elsewhere)  # a second process sees the same failures
    mode.decide(other)
    other.flush()
    services.evaluate_breakers()  # the evaluator runs in a sequential deployment too
    mode.decide(other)  # and again: nothing new to decide

    record = state(store)
    assert (record.state, record.epoch) == (State.OPEN, 3)
    assert [t for t in transitions() if t[1] == "open"] == [("closed", "open", 3)]
    assert sent_tasks == [("breaker_worker.failover", [alias, 3])]


# --- (f) half-open and the probe -------------------------------------------------------------


def test_a_shared_half_open_admits_no_application_query_and_the_probe_closes_it(
    mode, alias, store, sent_tasks, seed_databases
):
    set_policy(alias, probes=2)
    a_port = seed_databases["a_port"]
    for _ in range(10):
        fail()
    mode.decide()
    [(task, [_, epoch])] = sent_tasks
    assert task == "breaker_worker.failover"

    assert services.fail_over(alias, epoch)["status"] == "moved"  # what the worker's task runs
    mode.decide()

    assert state(store).state is State.HALF_OPEN
    assert sent_tasks[1:] == [("breaker_worker.probe", [alias])]
    # More queries than a process's own half-open would admit as trial calls: none gets through.
    for _ in range(3):
        with pytest.raises(BreakerOpenError, match=rf"\(failed over to 127.0.0.1:{a_port}\); retry once"):
            server_port()
    with pytest.raises(BreakerOpenError):
        run_in_thread(server_port)
    mode.runtime.flush()
    assert window(store) == Counts()

    result = services.probe(alias)  # what the worker's probe task runs
    mode.decide()

    assert (result["ok"], result["state"], result["port"]) == (True, "closed", a_port)
    assert [t[:2] for t in transitions()] == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert BreakerEvent.objects.filter(database__alias=alias).last().reason == (
        f"2 probe(s) succeeded on 127.0.0.1:{a_port}"
    )
    assert server_port() == a_port
    assert run_in_thread(server_port) == a_port


# --- (g) outcomes measured against the old server --------------------------------------------


def test_a_call_started_before_the_failover_is_not_counted_against_the_new_server(
    mode, alias, store, sent_tasks, seed_databases
):
    b_port, a_port, name = seed_databases["b_port"], seed_databases["a_port"], seed_databases["name"]
    # A session on B holds an advisory lock: the straggler's query waits for it, then fails.
    holder = psycopg2.connect(host="127.0.0.1", port=b_port, user="postgres", dbname=name)
    holder.autocommit = True
    holder.cursor().execute("SELECT pg_advisory_lock(4242)")
    straggler_errors: list[DatabaseError] = []

    def straggler():
        try:
            execute("DO $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RAISE 'gone' USING ERRCODE = '42P01'; END $$")
        except DatabaseError as exc:
            straggler_errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=straggler)
    try:
        thread.start()
        deadline = time.monotonic() + 10
        with holder.cursor() as cursor:
            while True:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                if cursor.fetchone()[0] == 1:
                    break
                assert time.monotonic() < deadline, "the straggler's query never started waiting on B"
                time.sleep(0.02)

        for _ in range(10):
            fail()
        mode.decide()
        [(_, [_, epoch])] = sent_tasks
        assert services.fail_over(alias, epoch)["status"] == "moved"  # the real failover: generation 2
        mode.decide()
        assert services.probe(alias)["state"] == "closed"
        mode.decide()
        assert thread.is_alive()  # still waiting on B, after the move and the close
    finally:
        holder.close()  # releases the lock: the straggler fails on B now
        thread.join(30)
    assert straggler_errors and "gone" in str(straggler_errors[0])

    # Nine failures on A: with the straggler's failure counted, ten would trip the new server.
    for _ in range(9):
        fail(table="no_such_table")
    assert connections[alias].connection.info.port == a_port
    mode.decide()

    assert state(store).state is State.CLOSED
    assert window(store) == Counts(9, 9, 0)
    assert TenantDatabase.objects.get(alias=alias).generation == 2


# --- count-based window ----------------------------------------------------------------------


def test_a_count_based_window_holds_no_call_older_than_window_seconds(mode, alias, store, sent_tasks):
    """Policy: window_calls N > 0 is "the last N calls (no older than window_seconds)"."""
    set_policy(alias, window_calls=10, window_seconds=1)
    for _ in range(9):
        fail()
    mode.decide()
    assert state(store).state is State.CLOSED
    last_failure = int(time.time())
    while int(time.time()) < last_failure + 2:  # the nine failures leave the 1 s window
        time.sleep(0.05)

    fail()  # the last 10 calls are 10 failures, but only this one is inside the window
    mode.decide()

    assert state(store).state is State.CLOSED  # 1 call: not enough data
    assert sent_tasks == []
