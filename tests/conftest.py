"""Fixtures shared by every test package: private Redis, the breaker runtime, tenant databases."""

from __future__ import annotations

import itertools
import os
import uuid

import pytest

from breaker_worker.sandbox import PostgresServer, RedisServer, create_database, free_port
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
    return {"name": tenant_dbname, "b_port": LOCAL_PG_PORT, "a_port": standby_server.port}
