"""`manage.py breaker_demo` replays the seed scenario on its own: standby, worker and beat included."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from breaker_worker.sandbox import RedisServer, free_port

from .conftest import ROOT

pytestmark = pytest.mark.e2e

LINE = re.compile(r"^\[\s*\d+\.\d\ds\] (?P<message>.*)$")


@pytest.fixture
def demo_env(tmp_path):
    """A private Redis (so no worker answers and the demo starts its own) and a fresh control DB."""
    redis = RedisServer(free_port()).start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "TENANTBREAKER_VAR_DIR": str(tmp_path),
        "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_RESULT_BACKEND", None)
    yield env
    redis.stop()


def test_breaker_demo_trips_fails_over_to_the_standby_and_closes(demo_env, tmp_path):
    a_port = free_port()
    result = subprocess.run(
        [sys.executable, "manage.py", "breaker_demo", "--a-port", str(a_port), "--timeout", "60"],
        cwd=ROOT,
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = tmp_path / "demo-worker.log"
    worker_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{worker_log}"
    said = [m["message"] for m in map(LINE.match, result.stdout.splitlines()) if m]

    def first(prefix: str) -> int:
        return next(i for i, message in enumerate(said) if message.startswith(prefix))

    a = f"127.0.0.1:{a_port}"
    assert said[0] == f"starting server A (standby) on {a}"
    assert "no celery worker answered: starting `celery -A project worker` and `celery -A project beat`" in said
    queries = [message for message in said if message.startswith("application query: ")]
    assert queries[0] == 'application query: ProgrammingError: relation "test_app_users" does not exist'
    assert queries[-1] == f"application query: ok, 3 rows from the server on port {a_port}"
    assert not [q for q in queries if q.startswith("application query: ok") and not q.endswith(f"port {a_port}")]
    opened = first("breaker 1-default: closed -> open: ")
    assert re.fullmatch(
        r"breaker 1-default: closed -> open: failure rate \d+% >= 50% \(\d+ of \d+ calls in 10s\)", said[opened]
    )
    assert first('application query: ProgrammingError: relation "test_app_users"') < opened
    failover = first("breaker 1-default: failover: ")
    assert said[failover] == f"breaker 1-default: failover: moved from 127.0.0.1:5432 to {a}"
    half_open = first("breaker 1-default: open -> half_open: ")
    assert said[half_open] == f"breaker 1-default: open -> half_open: failed over to {a}"
    closed = first("breaker 1-default: half_open -> closed: ")
    assert said[closed] == f"breaker 1-default: half_open -> closed: 3 probe(s) succeeded on {a}"
    assert opened < failover < half_open < closed
    assert said[-2] == f"done: 1-default is closed and served by {a} (generation 2, epoch 3)"
    assert said[-1] == "stopped server A, worker and beat"
