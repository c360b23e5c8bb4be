"""PostgreSQL restarting under the active candidate: a short blip rides through, a long outage trips."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import DatabaseError, close_old_connections, connections

from breaker_worker import services
from breaker_worker.core.machine import State
from breaker_worker.core.policy import Policy
from breaker_worker.db import runtime as runtime_module
from breaker_worker.sandbox import PostgresServer, create_database, free_port
from tests.conftest import forget_tenant_connections, url

pytestmark = pytest.mark.usefixtures("control_db")

SHORT = Policy(window_seconds=4, minimum_calls=10, failure_rate=50, open_seconds=5)


@pytest.fixture
def own_server():
    server = PostgresServer(free_port()).start()
    create_database(server.port, "tenant", with_seed_table=True)
    yield server
    server.stop()


class Traffic:
    """An application thread querying ~100 times a second, closing broken connections between
    queries as Django does between requests."""

    def __init__(self, alias: str) -> None:
        self.alias, self.ok, self.failed = alias, 0, 0
        self.unexpected: list[str] = []  # anything but a database error: a bug, reported by the test
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            close_old_connections()
            try:
                with connections[self.alias].cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM test_app_users")
                self.ok += 1
            except DatabaseError:
                self.failed += 1
            except Exception as exc:
                self.unexpected.append(repr(exc))
            time.sleep(0.01)
        connections.close_all()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def run_for(seconds: float) -> None:
    """Evaluate as beat would (more often, to catch any transition), for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        services.evaluate_breakers()
        time.sleep(0.25)


def test_a_short_restart_rides_through_and_a_long_outage_trips(
    own_server, breaker, store, settings, monkeypatch, sent_tasks
):
    settings.BREAKER_POLICY = SHORT
    breaker.stop()
    runtime = runtime_module.BreakerRuntime(settings.REDIS_URL, SHORT, sync_seconds=0.1)
    monkeypatch.setattr(runtime_module, "_runtime", runtime)
    forget_tenant_connections()
    services.register_alias("1-default", [url(own_server.port, "tenant")])
    traffic = Traffic("1-default")
    try:
        run_for(2)
        own_server.halt()
        time.sleep(0.5)
        own_server.resume()
        run_for(3)
        blip_failures = traffic.failed
        assert blip_failures > 0, traffic.unexpected  # the blip was seen
        record = store.states(["1-default"])["1-default"]
        assert (record.state, record.reason) == (State.CLOSED, ""), (traffic.ok, traffic.failed)
        assert sent_tasks == []

        own_server.halt()
        run_for(SHORT.window_seconds + 1)
        assert store.states(["1-default"])["1-default"].state is State.OPEN, (traffic.ok, traffic.failed)
        assert [name for name, _ in sent_tasks] == ["breaker_worker.failover"]
        assert traffic.unexpected == []
    finally:
        traffic.stop()
        runtime.stop()
        forget_tenant_connections()


def test_a_connection_the_server_dropped_is_replaced_without_a_request_boundary(own_server, breaker, store):
    """A loop outside the request cycle never calls close_old_connections(): after a restart
    Django's backend would fail with "connection already closed" for ever, unrecorded."""
    services.register_alias("1-default", [url(own_server.port, "tenant")])

    def backend_pid():
        with connections["1-default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    before = backend_pid()
    own_server.halt()
    own_server.resume()
    with pytest.raises(DatabaseError, match="server closed the connection|terminating connection"):
        backend_pid()  # the dropped connection's one failure: recorded
    assert backend_pid() != before  # the next query reconnects by itself
    breaker.flush()
    counts = store.views(["1-default"], time.time(), 10)["1-default"].counts
    assert (counts.calls, counts.failures) == (3, 1)


def test_a_request_boundary_drops_a_dead_connection_without_connecting_again(own_server, breaker):
    """close_old_connections() runs in Django's request signals: with the server still down it
    must drop the broken connection quietly, not try a new one (and raise)."""
    services.register_alias("1-default", [url(own_server.port, "tenant")])
    connection = connections["1-default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    own_server.halt()
    with pytest.raises(DatabaseError):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    close_old_connections()  # would raise "Connection refused" if it reconnected
    assert connection.connection is None
    own_server.resume()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
