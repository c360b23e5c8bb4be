"""Fixtures shared by every test package: private Redis, the breaker runtime, tenant databases."""

from __future__ import annotations

import itertools
import os
import threading
import uuid

import pytest

from breaker_worker.sandbox import PostgresServer, RedisServer, create_database, drop_database, free_port
from breaker_worker.store import RedisBreakerStore

LOCAL_PG_PORT = int(os.environ.get("TB_TEST_PG_PORT", "5432"))  # server B of the seed: already running


@pytest.fixture(scope="session")
def redis_server():
    """A Redis of our own on a free port: tests may flush it, stop it, or kill it."""
    server = RedisServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def store(redis_url):
    return RedisBreakerStore.from_url(redis_url)


@pytest.fixture(scope="session")
def standby_server():
    """Server A of the seed: a second PostgreSQL on a free port (5000 when free)."""
    server = PostgresServer(free_port(5000)).start()
    yield server
    server.stop()


_names = itertools.count(1)


@pytest.fixture
def tenant_dbname():
    """A fresh database name, unique per test, for tenant data on both servers."""
    return f"tb_test_{os.getpid()}_{next(_names)}_{uuid.uuid4().hex[:6]}"


@pytest.fixture
def seed_databases(standby_server, tenant_dbname):
    """The seed: the tenant's database on :5432 without test_app_users, on A with it."""
    create_database(LOCAL_PG_PORT, tenant_dbname, with_seed_table=False)
    create_database(standby_server.port, tenant_dbname, with_seed_table=True)
    yield {"name": tenant_dbname, "b_port": LOCAL_PG_PORT, "a_port": standby_server.port}
    for port in (LOCAL_PG_PORT, standby_server.port):
        drop_database(port, tenant_dbname)


def url(port: int, dbname: str, password: str = "pw") -> str:
    return f"postgres://postgres:{password}@127.0.0.1:{port}/{dbname}"


@pytest.fixture
def breaker(redis_url, settings, monkeypatch):
    """A fresh per-process breaker runtime on the private Redis; tenant connections closed after."""

    from breaker_worker import services
    from breaker_worker.db import runtime as runtime_module
    from breaker_worker.policies import PolicyBook

    settings.REDIS_URL = redis_url
    services.get_store.cache_clear()
    monkeypatch.setattr(services, "_policy_book", PolicyBook())  # versions restart with each flushed Redis
    fresh = runtime_module.BreakerRuntime(redis_url, settings.BREAKER_POLICY, sync_seconds=0.1)
    monkeypatch.setattr(runtime_module, "_runtime", fresh)
    yield fresh
    fresh.stop()
    forget_tenant_connections()
    services.get_store.cache_clear()


def run_in_thread(function):
    """``function()`` in a thread of its own (its own Django connections), its result or error
    handed back."""
    from django.db import connections

    result: dict = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as exc:  # handed back to the test
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def forget_tenant_connections() -> None:
    """Close and drop this thread's tenant connections and their lazily added settings."""
    from django.db import connections

    from breaker_worker.db.registry import TENANT_ALIAS

    for alias in [a for a in dict.keys(connections.settings) if TENANT_ALIAS.match(a)]:
        if hasattr(connections._connections, alias):
            connections[alias].close()
            del connections[alias]
        del connections.settings[alias]


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """The test control DB, always: pytest-django sets up only what django_db marks ask for,
    and these tests use control_db instead (below)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture
def control_db(django_db_setup, django_db_blocker):
    """The test control DB, committed for real so that other threads see it; emptied after.

    Not pytest-django's django_db: its TestCase forbids connections to aliases it was not told
    of at class set-up, and tenant aliases appear only once a test registers them."""
    from django.db import connections

    from breaker_worker.models import Tenant

    assert "test" in str(connections["default"].settings_dict["NAME"]), "tests must not touch the dev control DB"
    with django_db_blocker.unblock():
        yield
        Tenant.objects.all().delete()


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks the services send, captured instead of queued (end-to-end tests run real workers)."""
    from celery import Celery

    sent: list[tuple[str, list]] = []
    # On the class: ``current_app`` is per thread, and services run in threads of their own too.
    monkeypatch.setattr(Celery, "send_task", lambda self, name, args=(), **kw: sent.append((name, list(args))))
    return sent
