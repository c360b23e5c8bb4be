"""/healthz: 200 when Redis and the control DB answer, 503 with a JSON reason otherwise."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from breaker_worker.sandbox import free_port

pytestmark = pytest.mark.usefixtures("control_db", "breaker")


def test_healthy_when_redis_and_the_control_db_answer():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": "ok", "control_db": "ok"}


def test_unhealthy_without_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["redis"], body["control_db"]) == ("unavailable", "unavailable", "ok")
    assert body["reason"].startswith("redis: ConnectionError")


def test_unhealthy_without_the_control_db(monkeypatch, tmp_path):
    connection.close()
    with monkeypatch.context() as patch:  # undone before control_db empties the real one
        patch.setitem(connection.settings_dict, "NAME", str(tmp_path / "missing" / "control.sqlite3"))
        response = Client().get("/healthz")
        connection.close()
    assert response.status_code == 503
    body = response.json()
    assert (body["redis"], body["control_db"]) == ("ok", "unavailable")
    assert body["reason"].startswith("control_db: OperationalError")


def test_only_get():
    assert Client().post("/healthz").status_code == 405
