"""A whole system for end-to-end tests: private Redis, a fresh control DB, real worker and beat."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from breaker_worker.sandbox import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("client.py")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class System:
    def __init__(self, directory: Path, redis: RedisServer, extra_env: dict[str, str]) -> None:
        self.directory = directory
        self.redis = redis
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "TENANTBREAKER_VAR_DIR": str(directory),
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": redis.url,
            "BREAKER_EVALUATE_EVERY": "1",
            "BREAKER_WINDOW_SECONDS": "10",
            "BREAKER_MINIMUM_CALLS": "10",
            "BREAKER_FAILURE_RATE": "50",
            "BREAKER_OPEN_SECONDS": "3",
            "BREAKER_PROBES": "2",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        self.env.pop("DATABASE_URL", None)  # the control DB is this system's own SQLite file
        self.processes: dict[str, subprocess.Popen] = {}

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start_celery(self, name: str, *args: str) -> None:
        log = open(self.directory / f"{name}.log", "w")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", *args, "--loglevel", "INFO"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> System:
        self.manage("migrate", "-v0")
        self.start_celery("worker", "worker", "--concurrency", "2", "--without-mingle", "--without-gossip")
        self.start_celery("beat", "beat", "--schedule", str(self.directory / "beat-schedule"))
        wait_until(lambda: "ready." in self.log("worker"), 60, "the celery worker to be ready")
        return self

    def client(self, mode: str, alias: str) -> subprocess.Popen:
        """A querying process (see client.py; ``alias`` may name several, comma-separated). A
        looping client writes its results to a file, not a pipe: a pipe nobody reads fills up
        and would stall the client after a few seconds."""
        name = f"client-{mode}-{time.monotonic_ns()}"
        process = subprocess.Popen(
            [sys.executable, str(CLIENT), mode, alias],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=open(self.directory / f"{name}.jsonl", "w") if mode != "idle" else subprocess.PIPE,
            stderr=open(self.directory / f"{name}.log", "w"),
            text=True,
        )
        process.results_path = self.directory / f"{name}.jsonl"
        process.log_path = self.directory / f"{name}.log"
        return process

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def status(self, alias: str) -> dict:
        return json.loads(self.manage("breaker_status", "--json", alias).stdout)[0]

    def history(self, alias: str) -> list[dict]:
        with sqlite3.connect(self.directory / "control.sqlite3", timeout=20) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT e.* FROM breaker_worker_breakerevent e "
                "JOIN breaker_worker_tenantdatabase d ON d.id = e.database_id "
                "WHERE d.alias = ? ORDER BY e.at, e.id",
                (alias,),
            ).fetchall()
        return [dict(row) for row in rows]

    def transitions(self, alias: str) -> list[tuple[str, str]]:
        return [(r["from_state"], r["to_state"]) for r in self.history(alias) if r["kind"] == "transition"]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def results_so_far(client: subprocess.Popen) -> list[dict]:
    """The results a looping client wrote until now (a last, half-written line is left out)."""
    lines = client.results_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]


def finish(client: subprocess.Popen, timeout: float = 30) -> list[dict]:
    """Tell a looping client to stop and return the results it wrote."""
    client.communicate("stop\n", timeout=timeout)
    return results_so_far(client)


@pytest.fixture
def make_system():
    systems: list[System] = []
    servers: list[RedisServer] = []

    def make(**extra_env: str) -> System:
        redis = RedisServer(free_port()).start()
        servers.append(redis)
        system = System(Path(tempfile.mkdtemp(prefix="tb-e2e-")), redis, extra_env).start()
        systems.append(system)
        return system

    yield make
    for system in systems:
        system.stop()
        for name in ("worker", "beat"):
            print(f"----- {name} log (last 60 lines) -----")
            print("\n".join(system.log(name).splitlines()[-60:]))
    for redis in servers:
        redis.stop()
