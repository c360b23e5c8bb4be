"""Faults end to end: a worker killed mid-failover (before or after its commit), two beats and
two workers at once, a schedule changed under a running beat."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from datetime import datetime

import pytest
import redis

from breaker_worker.store import RedisBreakerStore

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


def restart_the_worker_and_see_the_failover_finish_once(system, busy, seed) -> list[dict]:
    """A worker again: the redelivered failover completes, with one move and the whole cycle.
    Returns what the busy client saw."""
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
    return results


def kill_the_worker_in_its_failover(make_system, seed, marker, **settings):
    """A system whose failover stalls once ``marker`` is written (``settings`` say where and
    how), under traffic; its worker is killed there. Returns the system, the busy client and a
    subscription to pool resets."""
    system = make_system(
        CELERY_VISIBILITY_TIMEOUT="5",  # the orphaned failover is redelivered 5-10 s after it began
        BREAKER_OPEN_SECONDS="120",  # no half-open from the open wait: only the failover moves it on
        **settings,
    )
    register(system, seed, seed["b_port"], seed["a_port"])
    hints = redis.Redis.from_url(system.redis.url).pubsub(ignore_subscribe_messages=True)
    hints.subscribe("cb:pool-reset")
    busy = system.client("loop", "1-default")
    wait_until(marker.exists, 60, f"the failover to write {marker.name}")
    worker = system.processes["worker"]
    os.killpg(worker.pid, signal.SIGKILL)  # the whole worker: main process and children
    worker.wait(10)
    return system, busy, hints


def test_a_worker_killed_during_failover_completes_it_exactly_once_after_restart(make_system, seed_databases, tmp_path):
    seed = seed_databases
    marker = tmp_path / "failover-started"
    system, busy, hints = kill_the_worker_in_its_failover(
        make_system,
        seed,
        marker,
        BREAKER_UPDATE_DB_CONFIG="tests.e2e.slow_failover.update_db_config_for_tenant",
        TB_SLOW_FAILOVER_MARK=str(marker),
    )
    assert system.transitions("1-default") == [("closed", "open")]
    assert [r for r in system.history("1-default") if r["kind"] == "failover"] == []

    results = restart_the_worker_and_see_the_failover_finish_once(system, busy, seed)
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


def test_a_worker_killed_after_the_failover_committed_finishes_it_without_a_second_move(
    make_system, seed_databases, tmp_path
):
    seed = seed_databases
    marker = tmp_path / "failover-committed"
    system, busy, hints = kill_the_worker_in_its_failover(
        make_system,
        seed,
        marker,
        BREAKER_UPDATE_DB_CONFIG="tests.e2e.stall_after_commit.update_db_config_for_tenant",
        TB_STALL_AFTER_COMMIT_MARK=str(marker),
    )
    store = RedisBreakerStore.from_url(system.redis.url)
    # Killed in the gap: the move is saved in the control DB, Redis and the breaker know nothing.
    assert [r["moved_to"] for r in system.history("1-default") if r["kind"] == "failover"] == [
        f"127.0.0.1:{seed['a_port']}"
    ]
    assert system.status("1-default")["generation"] == 2
    record = store.states(["1-default"])["1-default"]
    assert (record.state.value, record.generation) == ("open", 1)
    assert system.transitions("1-default") == [("closed", "open")]

    results = restart_the_worker_and_see_the_failover_finish_once(system, busy, seed)
    status = system.status("1-default")
    assert (status["state"], status["generation"], status["port"]) == ("closed", 2, seed["a_port"])
    assert store.states(["1-default"])["1-default"].generation == 2
    # Every hint names generation 2 (the evaluator's generation reconcile may send one too).
    assert {json.loads(m["data"])["generation"] for m in drain(hints)} == {2}
    # One pool reset in the application process, to the new server.
    assert busy.log_path.read_text().count("alias 1-default: generation 1 -> 2, connections move") == 1
    assert {r["port"] for r in results if r["ok"]} == {seed["a_port"]}


def sends(beat_log: str) -> list[tuple[float, str]]:
    """(time, line) of beat's log lines from its scheduler: sends and schedule reloads."""
    lines = []
    for line in beat_log.splitlines():
        if "Sending due task breaker_worker.evaluate" in line or "Schedule changed" in line:
            lines.append((datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp(), line))
    return lines


def test_a_changed_evaluator_interval_reaches_the_running_beat(make_system):
    system = make_system()
    wait_until(lambda: len(sends(system.log("beat"))) >= 6, 60, "beat sending every second")

    # As the admin does: edit the evaluator's interval and save the model (its post_save signal
    # bumps PeriodicTasks.last_update, which the DatabaseScheduler watches).
    system.manage(
        "shell",
        "-c",
        "from django_celery_beat.models import PeriodicTask\n"
        "interval = PeriodicTask.objects.get(name='breaker_worker.evaluate').interval\n"
        "interval.every = 3\n"
        "interval.save()",
    )
    changed = time.time()
    wait_until(
        lambda: len([t for t, line in sends(system.log("beat")) if t > changed and "Sending" in line]) >= 5,
        40,
        "five sends after the change",
    )
    log = sends(system.log("beat"))
    reload = next(i for i, (_, line) in enumerate(log) if "Schedule changed" in line)
    before = [t for t, line in log[:reload] if "Sending" in line]
    after = [t for t, line in log[reload + 1 :] if "Sending" in line]
    before_gaps = [b - a for a, b in zip(before[1:], before[2:], strict=False)]  # start-up may send twice
    after_gaps = [b - a for a, b in zip(after[1:], after[2:], strict=False)]  # from the first send on
    print(f"\nevaluate sent every {statistics.median(before_gaps):.2f}s, then {statistics.median(after_gaps):.2f}s")
    assert 0.8 <= statistics.median(before_gaps) <= 1.2
    assert 2.8 <= statistics.median(after_gaps) <= 3.2
    assert min(after_gaps) >= 2.5
    assert log[reload][0] - changed < 5  # picked up within a few ticks, without a restart
    assert system.processes["beat"].poll() is None
