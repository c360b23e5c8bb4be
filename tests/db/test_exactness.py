"""Exact counts across threads and processes, and no outcome counted against the wrong server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import DatabaseError, connections

from breaker_worker import services
from breaker_worker.core.window import Counts
from tests.conftest import url

pytestmark = pytest.mark.usefixtures("control_db")

BURST = Path(__file__).with_name("burst.py")


def test_four_processes_of_eight_threads_are_counted_exactly(breaker, store, seed_databases, settings):
    from django.db import connections as django_connections

    services.register_alias("1-default", [url(seed_databases["b_port"], seed_databases["name"])])
    control_db = django_connections["default"].settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{control_db}",
        "REDIS_URL": settings.REDIS_URL,
        "BREAKER_WINDOW_SECONDS": "600",  # however slowly the processes start, all counts stay in
    }
    processes = [
        subprocess.Popen(
            [sys.executable, str(BURST), "1-default", "8", "60", "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        assert out.strip() == "done"

    counts = store.views(["1-default"], time.time(), 600)["1-default"].counts
    assert counts == Counts(calls=4 * 8 * 60, failures=4 * 8 * 15, slow=0)


def test_a_call_started_before_a_failover_is_not_counted_against_the_new_server(breaker, store, seed_databases):
    alias = "1-default"
    b, a = (url(seed_databases[p], seed_databases["name"]) for p in ("b_port", "a_port"))
    services.register_alias(alias, [b])
    breaker.target(alias)
    started = threading.Event()
    failed = []

    def slow_failure_on_b():
        try:
            with connections[alias].cursor() as cursor:
                started.set()
                # Fails (42P01, a counted failure) a second later, after the failover.
                cursor.execute(
                    "DO $$ BEGIN PERFORM pg_sleep(1); RAISE EXCEPTION 'gone' USING ERRCODE = '42P01'; END $$"
                )
        except DatabaseError as exc:
            failed.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_failure_on_b)
    thread.start()
    started.wait(10)
    time.sleep(0.2)
    services.register_alias(alias, [a])  # generation 2: the alias now lives on A
    breaker.sync()
    thread.join(30)
    breaker.flush()

    assert failed and "gone" in str(failed[0])
    assert breaker.targets[alias].generation == 2
    assert store.views([alias], time.time(), 3600)[alias].counts == Counts()
