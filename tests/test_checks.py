"""Misconfiguration is reported by system checks with stable ids, and stops every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parents[1]


def ids(messages) -> set[str]:
    return {m.id for m in messages if m.is_serious()}


def test_a_valid_configuration_has_no_breaker_errors():
    assert not {i for i in ids(checks.run_checks()) if i.startswith("breaker_worker")}


@pytest.mark.parametrize(
    "setting, value, check_id",
    [
        ("BREAKER_MODE", "eventual", "breaker_worker.E001"),
        ("BREAKER_SYNC_SECONDS", 0, "breaker_worker.E002"),
        ("BREAKER_POLICY_ERROR", "failure_rate must be between 1.0 and 100.0, got 250.0", "breaker_worker.E003"),
        ("BREAKER_GUARD_SHARE", 500, "breaker_worker.E004"),
        ("BREAKER_GUARD_MIN_ALIASES", 0, "breaker_worker.E004"),
        ("BREAKER_FAILBACK_AFTER", -5, "breaker_worker.E004"),
        ("BREAKER_CONNECT_TIMEOUT", 0, "breaker_worker.E004"),
        ("SETTING_ERRORS", ["BREAKER_GUARD_SHARE must be a number, got 'abc'"], "breaker_worker.E004"),
        ("BREAKER_UPDATE_DB_CONFIG", "no.such.module.update", "breaker_worker.E005"),
        ("BREAKER_UPDATE_DB_CONFIG", "breaker_worker.failover.logger", "breaker_worker.E005"),
    ],
)
def test_each_misconfiguration_has_its_id(settings, setting, value, check_id):
    setattr(settings, setting, value)
    assert check_id in ids(checks.run_checks())


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("BREAKER_GUARD_SHARE", "abc", "BREAKER_GUARD_SHARE must be a number, got 'abc'"),
        ("BREAKER_CONNECT_TIMEOUT", "0", "BREAKER_CONNECT_TIMEOUT must be between 1 and 600, got 0"),
        ("BREAKER_SYNC_SECONDS", "soon", "BREAKER_SYNC_SECONDS must be a number, got 'soon'"),
        ("CELERY_VISIBILITY_TIMEOUT", "1.5", "CELERY_VISIBILITY_TIMEOUT must be a whole number, got '1.5'"),
    ],
)
def test_a_bad_number_in_the_environment_is_a_check_error_not_a_traceback(variable, value, message, tmp_path):
    env = {**os.environ, "TENANTBREAKER_VAR_DIR": str(tmp_path), variable: value}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "breaker_worker.E004" in result.stderr and message in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "check"],
        [sys.executable, "-m", "celery", "-A", "project", "worker"],
        [sys.executable, "-m", "celery", "-A", "project", "beat"],
        [sys.executable, "-c", "import project.wsgi"],
    ],
    ids=["manage.py", "worker", "beat", "wsgi"],
)
def test_an_invalid_policy_in_the_environment_stops_every_process_with_the_reason(command, tmp_path):
    env = {**os.environ, "TENANTBREAKER_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    migrate = [sys.executable, "manage.py", "migrate", "-v0"]  # beat reads its schedule before it checks
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    env["BREAKER_FAILURE_RATE"] = "250"
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "breaker_worker.E003" in result.stderr + result.stdout
    assert "failure_rate must be between 1.0 and 100.0, got 250.0" in result.stderr + result.stdout
