"""The protected backend against real PostgreSQL servers and a real Redis."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
import time

import pytest
from django.db import DatabaseError, connections, transaction
from django.db.utils import ConnectionDoesNotExist, OperationalError, ProgrammingError

from breaker_worker import services
from breaker_worker.core.machine import State
from breaker_worker.core.window import Counts
from breaker_worker.db.errors import BreakerOpenError
from breaker_worker.models import TenantDatabase
from breaker_worker.sandbox import RedisServer, free_port
from breaker_worker.store import RedisBreakerStore
from tests.conftest import forget_tenant_connections, run_in_thread, url

pytestmark = pytest.mark.usefixtures("control_db")

PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"


@pytest.fixture
def alias(breaker, seed_databases):
    services.register_alias("1-default", [url(seed_databases["b_port"], seed_databases["name"])], PROBE_SQL)
    return "1-default"


def server_port(alias_name: str) -> int:
    with connections[alias_name].cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        return cursor.fetchone()[0]


def window(store, alias_name: str) -> Counts:
    return store.views([alias_name], time.time(), 10)[alias_name].counts


def test_every_query_outcome_is_recorded_exactly(alias, breaker, store):
    for _ in range(7):
        assert server_port(alias) == 5432
    for _ in range(3):
        with pytest.raises(ProgrammingError), connections[alias].cursor() as cursor:
            cursor.execute("SELECT first_name FROM test_app_users")
    breaker.flush()
    assert window(store, alias) == Counts(calls=10, failures=3, slow=0)


def test_caller_mistakes_are_not_counted(alias, breaker, store):
    with pytest.raises(DatabaseError), connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1/0")  # 22012: the caller's mistake
    with pytest.raises(DatabaseError), connections[alias].cursor() as cursor:
        cursor.execute("SELEC 1")  # 42601: syntax
    server_port(alias)
    breaker.flush()
    assert window(store, alias) == Counts(calls=1, failures=0, slow=0)


def test_a_failed_connect_is_recorded_as_a_failure(breaker, store, tenant_dbname):
    closed_port = free_port()
    services.register_alias("2-default", [url(closed_port, tenant_dbname)])
    with pytest.raises(OperationalError, match="Connection refused|could not connect"):
        server_port("2-default")
    breaker.flush()
    assert window(store, "2-default") == Counts(calls=1, failures=1, slow=0)


def test_an_open_breaker_rejects_queries_without_touching_the_database(breaker, store, tenant_dbname):
    closed_port = free_port()  # if the query reached for the server, it would fail differently
    services.register_alias("3-default", [url(closed_port, tenant_dbname)])
    store.transition("3-default", State.CLOSED, 0, State.OPEN, time.time(), "test", open_until=time.time() + 30)
    breaker.target("3-default")
    breaker.sync()

    with pytest.raises(BreakerOpenError) as caught:
        server_port("3-default")
    assert isinstance(caught.value, DatabaseError)
    assert caught.value.alias == "3-default"
    assert 25 < caught.value.retry_after <= 30
    assert str(caught.value).startswith("circuit breaker for database '3-default' is open (test); retry after ")
    assert connections["3-default"].connection is None
    breaker.flush()
    assert window(store, "3-default") == Counts()  # rejected calls are not outcomes


def test_a_thread_moves_to_the_new_generation_at_its_next_query_outside_atomic(alias, breaker, seed_databases):
    assert server_port(alias) == seed_databases["b_port"]
    with transaction.atomic(using=alias):
        assert server_port(alias) == seed_databases["b_port"]
        # Fail over while this thread is inside a transaction on the old server.
        database = TenantDatabase.objects.get(alias=alias)
        services.register_alias(alias, [url(seed_databases["a_port"], seed_databases["name"])], PROBE_SQL)
        breaker.sync()
        assert breaker.targets[alias].generation == database.generation + 1
        assert server_port(alias) == seed_databases["b_port"]  # never inside an atomic block
    assert server_port(alias) == seed_databases["a_port"]
    # Another thread, which never had a connection, goes straight to the new server.
    assert run_in_thread(lambda: server_port(alias)) == seed_databases["a_port"]


def test_a_callers_own_execute_wrapper_does_not_remove_recording(alias, breaker, store):
    seen = []

    def callers_wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(callers_wrapper):
        server_port(alias)
    server_port(alias)
    breaker.flush()
    assert seen == ["SELECT inet_server_port()"]
    assert window(store, alias) == Counts(calls=2, failures=0, slow=0)


def test_threads_record_exactly(alias, breaker, store):
    def work():
        for _ in range(25):
            server_port(alias)

    threads = [threading.Thread(target=lambda: (work(), connections.close_all())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    breaker.flush()
    assert window(store, alias) == Counts(calls=200, failures=0, slow=0)


def test_the_counters_of_connections_that_are_gone_are_read_then_forgotten(alias, breaker, store):
    """Quick successes are counted per connection; a thread that ends takes its connection
    along, and its counter goes once everything it counted has been flushed."""
    server_port(alias)
    breaker.stop()  # this test decides when to flush
    breaker._thread.join(5)  # noqa: SLF001
    breaker.flush()
    mine = list(breaker.gates[alias].counters)
    assert [c.generation for c in mine] == [1]  # this thread's: the one of generation 0 is gone
    for _ in range(3):
        run_in_thread(lambda: [server_port(alias) for _ in range(5)])
    gc.collect()  # a DatabaseWrapper sits in reference cycles (features, ops)
    assert len(breaker.gates[alias].counters) > len(mine)
    breaker.flush()
    assert window(store, alias) == Counts(calls=16, failures=0, slow=0)
    assert breaker.gates[alias].counters == mine
    server_port(alias)
    breaker.flush()
    assert window(store, alias) == Counts(calls=17, failures=0, slow=0)


def test_a_forked_child_counts_only_its_own_queries(alias, breaker, store):
    """A prefork worker forks a process that already counted queries: each counts its own."""
    for _ in range(4):
        server_port(alias)
    connections[alias].close()  # a child must not share its parent's socket
    pid = os.fork()
    if pid == 0:  # the child: three queries of its own, flushed at once
        code = 1
        try:
            for _ in range(3):
                server_port(alias)
            breaker.flush()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    breaker.flush()
    assert window(store, alias) == Counts(calls=7, failures=0, slow=0)


def test_drop_in_transactions_savepoints_server_side_cursors_introspection(alias, seed_databases):
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE drop_in (n int)")
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO drop_in VALUES (1)")
        with pytest.raises(RuntimeError), transaction.atomic(using=alias):  # savepoint rolled back
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO drop_in VALUES (2)")
            raise RuntimeError
    with transaction.atomic(using=alias):
        cursor = connection.chunked_cursor()  # a server-side cursor
        cursor.execute("SELECT n FROM drop_in")
        assert cursor.fetchall() == [(1,)]
        cursor.close()
    assert "drop_in" in connection.introspection.table_names()
    assert connection.vendor == "postgresql"


@pytest.fixture
def own_redis(breaker, monkeypatch):
    """A Redis of this test's own, to stop, and this process's runtime on it: (runtime, server)."""
    from breaker_worker.db import runtime as runtime_module

    server = RedisServer(free_port()).start()
    breaker.stop()
    runtime = runtime_module.BreakerRuntime(server.url, breaker.policy, sync_seconds=0.05)
    monkeypatch.setattr(runtime_module, "_runtime", runtime)
    forget_tenant_connections()
    yield runtime, server
    runtime.stop()
    server.stop()


def test_while_redis_is_away_queries_run_and_this_process_protects_itself(breaker, seed_databases, caplog, own_redis):
    """Redis stops mid-traffic: healthy queries see no error caused by the breaker, a failing
    alias is still cut off locally, one line says so; all resumes when Redis is back."""
    cut_off, own = own_redis
    name = seed_databases["name"]
    services.register_alias("1-default", [url(seed_databases["b_port"], name)])  # lacks the table
    services.register_alias("2-default", [url(seed_databases["a_port"], name)])  # healthy
    caplog.set_level(logging.WARNING, logger="breaker_worker.db.runtime")
    assert server_port("2-default") == seed_databases["a_port"]
    for _ in range(30):  # judged by the evaluator: they must not dilute this process's own verdict
        assert server_port("1-default") == seed_databases["b_port"]
    own.stop()
    time.sleep(0.5)  # ten sync attempts against the stopped Redis

    for _ in range(100):
        assert server_port("2-default") == seed_databases["a_port"]
    failures = 0
    with pytest.raises(BreakerOpenError, match="opened in this process"):
        for _ in range(breaker.policy.minimum_calls + 1):
            try:
                with connections["1-default"].cursor() as cursor:
                    cursor.execute("SELECT * FROM test_app_users")
            except ProgrammingError:
                failures += 1
    assert failures == breaker.policy.minimum_calls
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "this process judges its own queries" in errors[0].getMessage()

    own.start()  # same port, empty: as after a Redis restart
    deadline = time.monotonic() + 5
    while cut_off._store_down and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cut_off._store_down
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    # The outcomes kept meanwhile reached Redis; the local verdict is gone.
    counts = RedisBreakerStore.from_url(own.url).views(["1-default", "2-default"], time.time(), 3600)
    assert counts["1-default"].counts.failures == breaker.policy.minimum_calls
    assert counts["2-default"].counts.calls >= 100
    with pytest.raises(ProgrammingError):
        with connections["1-default"].cursor() as cursor:
            cursor.execute("SELECT * FROM test_app_users")


def test_in_sequential_mode_the_successes_before_redis_went_away_still_count(breaker, seed_databases, monkeypatch):
    """The quick successes of the last moments before an outage are judged with the failures
    after it: with 20 successes first, 50 % needs 20 failures, not 10."""
    from breaker_worker.db import runtime as runtime_module

    server = RedisServer(free_port()).start()
    breaker.stop()
    # Its first sync would come after 5 s: the successes are still unjudged when Redis stops.
    runtime = runtime_module.BreakerRuntime(server.url, breaker.policy, sync_seconds=5, sequential=True)
    monkeypatch.setattr(runtime_module, "_runtime", runtime)
    forget_tenant_connections()
    try:
        services.register_alias("1-default", [url(seed_databases["b_port"], seed_databases["name"])])
        for _ in range(20):
            assert server_port("1-default") == seed_databases["b_port"]
        server.stop()
        deadline = time.monotonic() + 5
        while not runtime._store_down and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.05)
        assert runtime._store_down  # noqa: SLF001
        for _ in range(19):
            with pytest.raises(ProgrammingError), connections["1-default"].cursor() as cursor:
                cursor.execute("SELECT first_name FROM test_app_users")
        assert runtime.local["1-default"].state is State.CLOSED  # 19 of 39 failed
        with pytest.raises(ProgrammingError), connections["1-default"].cursor() as cursor:
            cursor.execute("SELECT first_name FROM test_app_users")
        assert runtime.local["1-default"].state is State.OPEN  # 20 of 40
    finally:
        runtime.stop()
        server.stop()
        forget_tenant_connections()


def test_unknown_tenant_alias_is_not_a_connection(breaker):
    with pytest.raises(ConnectionDoesNotExist):
        connections["99-missing"]
    assert "99-missing" not in connections.settings


def test_breaker_disabled_follows_targets_but_neither_records_nor_rejects(alias, store, settings, monkeypatch):
    from breaker_worker.db import runtime as runtime_module

    off = runtime_module.BreakerRuntime(settings.REDIS_URL, settings.BREAKER_POLICY, 0.1, enabled=False)
    monkeypatch.setattr(runtime_module, "_runtime", off)
    forget_tenant_connections()
    store.transition(alias, State.CLOSED, 0, State.OPEN, time.time(), "test", open_until=time.time() + 30)
    assert server_port(alias) == 5432
    off.flush()
    assert window(store, alias) == Counts()


@pytest.fixture
def sequential(alias, breaker, settings, monkeypatch):
    """This process's runtime in sequential mode, in place of the aggregator one."""
    from breaker_worker.db import runtime as runtime_module

    breaker.stop()
    runtime = runtime_module.BreakerRuntime(
        settings.REDIS_URL, settings.BREAKER_POLICY, sync_seconds=0.1, sequential=True
    )
    monkeypatch.setattr(runtime_module, "_runtime", runtime)
    forget_tenant_connections()
    yield runtime
    runtime.stop()
    forget_tenant_connections()


def test_sequential_mode_opens_inline_and_starts_the_same_failover_workflow(
    alias, sequential, store, sent_tasks, settings
):
    from breaker_worker.models import BreakerEvent

    for _ in range(settings.BREAKER_POLICY.minimum_calls):  # no evaluator runs in this test
        with pytest.raises(ProgrammingError), connections[alias].cursor() as cursor:
            cursor.execute("SELECT first_name FROM test_app_users")
    with pytest.raises(BreakerOpenError, match="opened in this process"):
        server_port(alias)

    # The sync thread writes the history row, then sends the failover task: wait for both.
    deadline = time.monotonic() + 10
    while not sent_tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    [event] = BreakerEvent.objects.filter(database__alias=alias)
    assert (event.from_state, event.to_state, event.actor) == ("closed", "open", f"sequential (pid {os.getpid()})")
    assert event.reason == "failure rate 100% >= 50% (10 of 10 calls in 10s)"
    assert sent_tasks == [("breaker_worker.failover", [alias, 1])]
    assert store.states([alias])[alias].state is State.OPEN


def test_sequential_mode_judges_a_failure_with_every_success_before_it(alias, sequential, sent_tasks):
    """Quick successes on a closed breaker skip the state machine step; the next failure still
    sees them: with 20 successes first, 50 % needs 20 failures, not 10."""
    for _ in range(20):
        assert server_port(alias) == 5432
    for _ in range(19):
        with pytest.raises(ProgrammingError), connections[alias].cursor() as cursor:
            cursor.execute("SELECT first_name FROM test_app_users")
    assert sequential.local[alias].state is State.CLOSED
    with pytest.raises(ProgrammingError), connections[alias].cursor() as cursor:
        cursor.execute("SELECT first_name FROM test_app_users")
    assert sequential.local[alias].state is State.OPEN
    with pytest.raises(BreakerOpenError, match="opened in this process"):
        server_port(alias)


def test_failed_connects_build_a_streak_that_trips_a_quiet_alias(breaker, store, tenant_dbname, sent_tasks):
    services.register_alias("4-default", [url(free_port(), tenant_dbname)])
    for _ in range(5):
        with pytest.raises(OperationalError):
            server_port("4-default")
    breaker.flush()
    view = store.views(["4-default"], time.time(), 10)["4-default"]
    assert (view.counts.calls, view.connect_failures) == (5, 5)
    services.evaluate_breakers()
    assert store.states(["4-default"])["4-default"].reason == "5 consecutive connection failures"


def test_quick_successes_before_failed_connects_do_not_end_their_streak(alias, breaker, store):
    """The server of a busy connection dies: its successes and the failed connects after them
    reach Redis in one flush, and the streak still counts every failed connect."""
    breaker.target(alias)  # starts the sync thread
    breaker.stop()  # one flush, when this test says
    breaker._thread.join(5)  # noqa: SLF001
    for _ in range(3):
        server_port(alias)
    connections[alias].close()
    target = breaker.targets[alias]
    breaker.targets[alias] = dataclasses.replace(target, port=free_port())  # same generation, gone
    for _ in range(4):
        with pytest.raises(OperationalError):
            server_port(alias)
    breaker.flush()
    view = store.views([alias], time.time(), 10)[alias]
    assert (view.counts.calls, view.counts.failures, view.connect_failures) == (7, 4, 4)


def test_half_open_rejects_application_queries_while_the_prober_works(alias, breaker, store):
    now = time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, now, "test")
    store.transition(alias, State.OPEN, 1, State.HALF_OPEN, now, "failed over to 127.0.0.1:5000")
    breaker.target(alias)
    breaker.sync()
    with pytest.raises(BreakerOpenError, match="failed over to 127.0.0.1:5000"):
        server_port(alias)


def test_a_state_change_reaches_a_process_at_once_not_at_its_next_poll(alias, breaker, store, monkeypatch, settings):
    from breaker_worker.db import runtime as runtime_module

    breaker.stop()
    slow_poller = runtime_module.BreakerRuntime(settings.REDIS_URL, settings.BREAKER_POLICY, sync_seconds=60)
    monkeypatch.setattr(runtime_module, "_runtime", slow_poller)
    forget_tenant_connections()
    server_port(alias)  # starts the sync thread: it now waits up to 60 s between polls
    time.sleep(0.5)  # let it subscribe
    services.force_state(alias, State.FORCED_OPEN, "test")  # publishes the state change

    deadline = time.monotonic() + 10
    while alias not in slow_poller._rejected and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(BreakerOpenError, match="set by test"):
        server_port(alias)
    slow_poller.stop()


def test_malformed_and_forged_hints_change_nothing(alias, breaker, store, caplog):
    """Pub/sub carries hints only: the truth is read from the store, so a forged message can
    at most cause an extra poll."""
    import redis as redis_py

    server_port(alias)
    before = breaker.targets[alias]
    time.sleep(0.3)  # the sync thread is subscribed
    caplog.set_level(logging.WARNING, logger="breaker_worker.db.runtime")
    client = redis_py.Redis.from_url(breaker.redis_url)
    for channel, message in [
        ("cb:pool-reset", "not json"),
        ("cb:pool-reset", '{"alias": "1-default"}'),
        ("cb:pool-reset", '{"alias": "1-default", "generation": 99}'),  # forged: Redis says 1
        ("cb:pool-reset", '{"alias": "77-unknown", "generation": 2}'),
        ("cb:state", '{"alias": "1-default", "epoch": 12}'),
        ("cb:state", "\\x00\\xff"),
    ]:
        client.publish(channel, message)
    time.sleep(0.5)

    assert breaker.targets[alias] is before  # same server, same generation
    assert server_port(alias) == 5432
    # Counted for this runtime's sync thread only: another test's runtime may still be listening.
    malformed = [
        r.getMessage()
        for r in caplog.records
        if "malformed pool-reset message" in r.getMessage() and r.thread == breaker._thread.ident
    ]
    assert len(malformed) == 2
    assert "77-unknown" not in breaker.targets


def test_a_running_process_takes_a_changed_policy_at_its_next_poll(alias, breaker, store):
    from breaker_worker.models import BreakerPolicy

    server_port(alias)
    assert breaker.policy_of(alias).window_seconds == 10
    BreakerPolicy.objects.create(
        database=TenantDatabase.objects.get(alias=alias), window_seconds=30, slow_call_seconds=0.05
    )
    breaker.sync()
    assert breaker.policy_of(alias).window_seconds == 30
    assert breaker.targets[alias].address == "127.0.0.1:5432"  # same server, same connection
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.06)")  # slow by the new policy only
    breaker.flush()
    assert window(store, alias) == Counts(calls=2, failures=0, slow=1)


@pytest.fixture
def own_alias(breaker, seed_databases):
    """An alias of the project's own settings protected by changing only its ENGINE (not
    registered with tenant_db): here on server B, without test_app_users."""
    entry = connections.configure_settings(
        {
            "default": {
                "ENGINE": "breaker_worker.db.backends.postgresql",
                "NAME": seed_databases["name"],
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": seed_databases["b_port"],
            }
        }
    )["default"]
    dict.__setitem__(connections.settings, "reports", entry)
    yield "reports"
    if hasattr(connections._connections, "reports"):
        connections["reports"].close()
        del connections["reports"]
    dict.__delitem__(connections.settings, "reports")


def test_an_alias_protected_by_its_engine_alone_trips_fails_fast_and_closes(own_alias, breaker, store, sent_tasks):
    """DESIGN: a user protects an alias of their own project by changing only its ENGINE."""
    for _ in range(10):
        with pytest.raises(ProgrammingError), connections[own_alias].cursor() as cursor:
            cursor.execute("SELECT first_name FROM test_app_users")
    breaker.flush()
    services.evaluate_breakers()
    assert store.states([own_alias])[own_alias].state is State.OPEN
    assert sent_tasks == []  # no candidates to fail over to

    breaker.sync()
    with pytest.raises(BreakerOpenError):
        server_port(own_alias)

    record = store.states([own_alias])[own_alias]
    services.evaluate_breakers(record.open_until + 0.1)  # the open wait ends: half-open, probe
    assert sent_tasks == [("breaker_worker.probe", [own_alias])]
    assert services.probe(own_alias)["ok"] is True  # SELECT 1 on the server its settings name
    assert store.states([own_alias])[own_alias].state is State.CLOSED
    breaker.sync()
    assert server_port(own_alias) == 5432


def test_while_redis_is_away_a_stale_open_lets_queries_through_but_an_operators_forced_open_stays(
    seed_databases, own_redis
):
    away, own = own_redis
    name = seed_databases["name"]
    services.register_alias("1-default", [url(seed_databases["a_port"], name)])
    services.register_alias("2-default", [url(seed_databases["a_port"], name)])
    own_store = RedisBreakerStore.from_url(own.url)
    now = time.time()
    own_store.transition("1-default", State.CLOSED, 0, State.FORCED_OPEN, now, "set by pat")
    own_store.transition("2-default", State.CLOSED, 0, State.OPEN, now, "tripped", open_until=now + 60)
    for alias_name in ("1-default", "2-default"):
        away.target(alias_name)
    away.sync()
    for alias_name in ("1-default", "2-default"):
        with pytest.raises(BreakerOpenError):
            server_port(alias_name)

    own.stop()
    deadline = time.monotonic() + 5
    while not away._store_down and time.monotonic() < deadline:
        time.sleep(0.05)
    assert away._store_down
    assert server_port("2-default") == seed_databases["a_port"]  # nobody could close it: let through
    with pytest.raises(BreakerOpenError, match="set by pat"):
        server_port("1-default")  # deliberate: stays


def test_a_sync_failure_that_is_not_redis_keeps_the_known_states_and_says_so_once(
    alias, breaker, store, monkeypatch, caplog
):
    from breaker_worker.db import runtime as runtime_module

    server_port(alias)
    now = time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, now, "tripped", open_until=now + 60)
    deadline = time.monotonic() + 5
    while alias not in breaker._rejected and time.monotonic() < deadline:
        time.sleep(0.05)

    def control_db_down(alias_name):
        raise OperationalError("control DB unreachable")

    caplog.set_level(logging.ERROR, logger="breaker_worker.db.runtime")
    monkeypatch.setattr(runtime_module, "load_target", control_db_down)
    store.bump_policy_version()  # every sync now reloads policies, and fails
    time.sleep(1.0)  # about ten sync attempts

    with pytest.raises(BreakerOpenError, match="tripped"):
        server_port(alias)
    assert not breaker._store_down
    failures = [r for r in caplog.records if "breaker sync failed" in r.getMessage()]
    assert len(failures) == 1


def test_a_transaction_opened_by_hand_is_not_cut_by_a_reconnect(alias, breaker, seed_databases):
    connection = connections[alias]

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    connection.set_autocommit(False)
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE by_hand (n int) ON COMMIT PRESERVE ROWS")
        cursor.execute("INSERT INTO by_hand VALUES (1)")
    services.register_alias(alias, [url(seed_databases["b_port"], seed_databases["name"])], PROBE_SQL)  # generation 2
    breaker.sync()
    assert breaker.targets[alias].generation == 2

    assert backend_pid() == pid  # same session: the uncommitted insert is still there
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM by_hand")
        assert cursor.fetchone()[0] == 1
    connection.commit()
    connection.set_autocommit(True)
    assert backend_pid() != pid  # the transaction ended: now it moves to the new generation
