"""The seed scenario end to end: real PostgreSQL servers, Redis, celery worker and beat."""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import pytest
import redis

from .conftest import finish, wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "Seed-Pa55word-xyz"
PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"


BODY = re.compile(r'body\\*"\s*:\s*\\*"([A-Za-z0-9+/=]{8,})')  # a kombu message body, in MONITOR output


def watch_every_redis_command(url: str) -> list[str]:
    """Every command Redis executes from now on (MONITOR), as text, collected in the background."""
    seen: list[str] = []

    def listen() -> None:
        try:
            with redis.Redis.from_url(url).monitor() as monitor:
                for command in monitor.listen():
                    seen.append(command["command"])
        except redis.RedisError:
            pass  # the server stopped at the end of the test

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.2)
    return seen


def register(system, seed, *ports: int) -> None:
    urls = [f"postgres://postgres:{PASSWORD}@127.0.0.1:{port}/{seed['name']}" for port in ports]
    system.manage("tenant_db", "set", "1-default", *urls, "--probe-sql", PROBE_SQL)


@pytest.mark.parametrize("mode", ["aggregator", "sequential"])
def test_breaker_trips_fails_over_and_every_process_follows(make_system, seed_databases, mode):
    system = make_system(BREAKER_MODE=mode)
    seed = seed_databases
    register(system, seed, seed["b_port"], seed["a_port"])
    assert system.status("1-default")["port"] == seed["b_port"]

    hints = redis.Redis.from_url(system.redis.url).pubsub(ignore_subscribe_messages=True)
    hints.subscribe("cb:pool-reset")
    redis_traffic = watch_every_redis_command(system.redis.url)
    idle = system.client("idle", "1-default")  # connects to B, never sees a failure
    assert json.loads(idle.stdout.readline())["port"] == seed["b_port"]

    busy = system.client("loop", "1-default")
    wait_until(
        lambda: system.status("1-default")["state"] == "closed" and len(system.transitions("1-default")) >= 3,
        90,
        "the breaker to trip, fail over and close again",
    )
    results = finish(busy)

    # The application first failed on B (no such table), then succeeded on A, never back on B.
    failures = [r for r in results if not r["ok"]]
    successes = [r for r in results if r["ok"]]
    assert failures and failures[0]["error"] == "ProgrammingError"
    assert 'relation "test_app_users" does not exist' in failures[0]["message"]
    assert successes and {r["port"] for r in successes} == {seed["a_port"]}
    assert all(r["rows"] == 3 for r in successes)
    assert max(r["t"] for r in failures) < min(r["t"] for r in successes)

    # The history: closed -> open -> half_open -> closed, each with its reason; one failover.
    history = system.history("1-default")
    assert system.transitions("1-default") == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    opened, half_opened, closed = [r for r in history if r["kind"] == "transition"]
    assert opened["reason"].startswith("failure rate ") and opened["calls"] >= 10
    assert half_opened["reason"] == f"failed over to 127.0.0.1:{seed['a_port']}"
    # The probe task or, in sequential mode, the application's own trial calls close it.
    assert closed["reason"] in (f"2 probe(s) succeeded on 127.0.0.1:{seed['a_port']}", "2 trial call(s) succeeded")
    assert opened["at"] <= half_opened["at"] <= closed["at"]
    failovers = [r for r in history if r["kind"] == "failover"]
    assert [r["reason"] for r in failovers] == [f"moved from 127.0.0.1:{seed['b_port']} to 127.0.0.1:{seed['a_port']}"]

    status = system.status("1-default")
    assert (status["state"], status["port"], status["generation"], status["epoch"]) == (
        "closed",
        seed["a_port"],
        2,
        3,
    )

    # A process that never failed drops its connection to B and reaches A on its next query.
    idle.stdin.write("go\n")
    idle.stdin.flush()
    assert json.loads(idle.stdout.readline())["port"] == seed["a_port"]
    idle.wait(30)

    # The pool-reset hint went out, carrying alias and generation only.
    message = wait_until(lambda: hints.get_message(timeout=1), 10, "the pool-reset hint")
    assert json.loads(message["data"]) == {"alias": "1-default", "generation": 2}

    # The password never left the control DB: not in any log, Celery message (the broker is
    # this Redis), pub/sub message or store write.
    for name in ("worker", "beat"):
        assert PASSWORD not in system.log(name)
    assert any("breaker_worker.failover" in command for command in redis_traffic)  # it saw the tasks
    task_bodies = [base64.b64decode(body).decode() for c in redis_traffic for body in BODY.findall(c)]
    assert any('"1-default"' in body for body in task_bodies)  # Celery bodies are base64: decoded
    assert not [text for text in redis_traffic + task_bodies if PASSWORD in text]
    # Nor in what the application's processes printed, nor in the commands' output.
    printed = [path.read_text() for path in system.directory.glob("client-*")]
    printed += [system.manage("breaker_status", "--json").stdout, system.manage("breaker_status").stdout]
    assert not [text for text in printed if PASSWORD in text]

    # Celery accepts JSON only: a pickled message is refused by the worker, not run.
    from celery import Celery

    sender = Celery(broker=system.redis.url, set_as_current=False)  # not this test process's app
    sender.send_task("breaker_worker.probe", args=["1-default"], serializer="pickle")
    refused = "Refusing to deserialize untrusted content of type pickle"
    wait_until(lambda: refused in system.log("worker"), 30, "the worker to refuse a pickled message")


def test_without_a_healthy_candidate_the_breaker_stays_open_and_fails_fast(make_system, seed_databases):
    system = make_system(BREAKER_OPEN_SECONDS="2")
    seed = seed_databases
    register(system, seed, seed["b_port"])  # no failover candidate at all

    busy = system.client("loop", "1-default")
    wait_until(lambda: ("half_open", "open") in system.transitions("1-default"), 90, "a failed half-open probe")
    results = finish(busy)

    rejected = [r for r in results if not r["ok"] and r["error"] == "BreakerOpenError"]
    assert rejected, "queries must fail fast while the breaker is open"
    assert "circuit breaker for database '1-default' is open" in rejected[0]["message"]
    assert "retry after" in rejected[0]["message"]
    assert not any(r["ok"] for r in results)

    history = system.history("1-default")
    assert system.transitions("1-default")[:3] == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]
    assert [r["reason"] for r in history if r["kind"] == "failover"][0].startswith("no healthy candidate")
    half_open = [r for r in history if r["kind"] == "transition" and r["to_state"] == "half_open"][0]
    assert half_open["reason"] == "open wait elapsed"
    reopened = [r for r in history if r["kind"] == "transition" and r["from_state"] == "half_open"][0]
    assert 'relation "test_app_users" does not exist' in reopened["reason"]
    assert system.status("1-default")["port"] == seed["b_port"]


def test_two_processes_querying_at_once_move_together(make_system, seed_databases):
    system = make_system()
    seed = seed_databases
    register(system, seed, seed["b_port"], seed["a_port"])

    clients = [system.client("loop", "1-default") for _ in range(2)]
    wait_until(lambda: len(system.transitions("1-default")) >= 3, 90, "the breaker to close after failover")
    # Let both processes run a little on the new server before stopping them.
    wait_until(lambda: system.status("1-default")["calls"] >= 20, 30, "traffic on the standby")
    outputs = [finish(c) for c in clients]

    for results in outputs:
        ports = [r["port"] for r in results if r["ok"]]
        assert ports and set(ports) == {seed["a_port"]}
        assert any(not r["ok"] for r in results)  # each saw B fail before the move
    assert system.transitions("1-default") == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert len([r for r in system.history("1-default") if r["kind"] == "failover"]) == 1
    assert system.status("1-default")["generation"] == 2
