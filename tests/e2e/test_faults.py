"""Faults end to end: a worker killed mid-failover, two beats and two workers at once."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import redis

from .conftest import finish, wait_until
from .test_seed_scenario import register

pytestmark = pytest.mark.e2e


def count_hints(messages: list[dict], generation: int) -> int:
    return sum(1 for m in messages if json.loads(m["data"]) == {"alias": "1-default", "generation": generation})


def drain(pubsub, seconds: float = 2.0) -> list[dict]:
    """Every message received so far (get_message also returns None for control messages)."""
    messages = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            messages.append(message)
    return messages


def test_a_worker_killed_during_failover_completes_it_exactly_once_after_restart(make_system, seed_databases, tmp_path):
    marker = tmp_path / "failover-started"
    system = make_system(
        BREAKER_UPDATE_DB_CONFIG="tests.e2e.slow_failover.update_db_config_for_tenant",
        TB_SLOW_FAILOVER_MARK=str(marker),
        CELERY_VISIBILITY_TIMEOUT="5",  # the orphaned failover is redelivered 5-10 s after it began
        BREAKER_OPEN_SECONDS="120",  # no half-open before the redelivered failover runs
    )
    seed = seed_databases
    register(system, seed, seed["b_port"], seed["a_port"])
    hints = redis.Redis.from_url(system.redis.url).pubsub(ignore_subscribe_messages=True)
    hints.subscribe("cb:pool-reset")

    busy = system.client("loop", "1-default")
    wait_until(marker.exists, 60, "the failover task to start")
    worker = system.processes["worker"]
    os.killpg(worker.pid, signal.SIGKILL)  # the whole worker: main process and children
    worker.wait(10)
    assert system.transitions("1-default") == [("closed", "open")]
    assert [r for r in system.history("1-default") if r["kind"] == "failover"] == []

    system.start_celery("worker", "worker", "--concurrency", "2", "--without-mingle", "--without-gossip")
    wait_until(
        lambda: ("half_open", "closed") in system.transitions("1-default"), 90, "the redelivered failover to finish"
    )
    wait_until(lambda: system.status("1-default")["calls"] >= 10, 30, "traffic on the standby")
    results = finish(busy)

    assert [r["reason"] for r in system.history("1-default") if r["kind"] == "failover"] == [
        f"moved from 127.0.0.1:{seed['b_port']} to 127.0.0.1:{seed['a_port']}"
    ]
    assert system.transitions("1-default") == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert system.status("1-default")["generation"] == 2
    assert count_hints(drain(hints), 2) == 1
    assert {r["port"] for r in results if r["ok"]} == {seed["a_port"]}


def test_two_beats_and_two_workers_make_one_transition_per_incident(make_system, seed_databases):
    system = make_system()
    system.start_celery("beat2", "beat", "--schedule", str(system.directory / "beat2-schedule"))
    system.start_celery(
        "worker2", "worker", "--concurrency", "2", "--without-mingle", "--without-gossip", "-n", "w2@%h"
    )
    seed = seed_databases
    register(system, seed, seed["b_port"], seed["a_port"])

    busy = system.client("loop", "1-default")
    wait_until(lambda: ("half_open", "closed") in system.transitions("1-default"), 90, "the incident to close")
    wait_until(lambda: system.status("1-default")["calls"] >= 20, 30, "traffic on the standby")
    finish(busy)

    assert system.transitions("1-default") == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert len([r for r in system.history("1-default") if r["kind"] == "failover"]) == 1
    assert system.status("1-default")["generation"] == 2
    assert system.log("beat2").count("Sending due task breaker_worker.evaluate") >= 3  # both beats really ran
