"""Fixtures of the store tests: a raw client beside the store, and Redis servers that stop answering."""

from __future__ import annotations

import os
import signal

import pytest
import redis

from breaker_worker.sandbox import RedisServer, free_port
from breaker_worker.store import RedisBreakerStore


@pytest.fixture
def raw(redis_url):
    """A plain client on the store's Redis, to look at keys the way an operator would."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def make_store(redis_url):
    """More stores on the test's Redis, each with its own client and pool: separate evaluators."""
    stores: list[RedisBreakerStore] = []

    def make() -> RedisBreakerStore:
        stores.append(RedisBreakerStore.from_url(redis_url))
        return stores[-1]

    yield make
    for store in stores:
        store.client.close()


@pytest.fixture
def own_redis():
    """A running Redis of our own, which the test may stop, kill or pause."""
    server = RedisServer(free_port()).start()
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)  # SIGKILL works on a stopped process, but be tidy
    server.stop()


@pytest.fixture(params=["fresh client", "pooled connection"])
def down_store(request, own_redis):
    """A store whose Redis has gone away: built after the stop, or holding a connection made before it."""
    if request.param == "pooled connection":
        store = RedisBreakerStore.from_url(own_redis.url)
        assert store.client.ping() is True
        own_redis.stop()
    else:
        own_redis.stop()
        store = RedisBreakerStore.from_url(own_redis.url)
    yield store
    store.client.close()


@pytest.fixture
def paused_store(own_redis):
    """A store whose Redis process is stopped (SIGSTOP): the kernel accepts connections, nobody answers."""
    store = RedisBreakerStore.from_url(own_redis.url)
    assert store.client.ping() is True
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    yield store
    os.kill(own_redis.process.pid, signal.SIGCONT)
    store.client.close()
