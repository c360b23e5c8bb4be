"""An operator in a real browser: headless Chromium against a live web server, with real celery
worker and beat. Logs in, sees a tripped breaker's badge and the mass outage guard's tag, runs
"probe now", follows the message to the breaker's page, sees the probe pending and the page
reload itself until the worker's result is there, and saves screenshots under test-artifacts/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from breaker_worker.core.machine import State
from breaker_worker.sandbox import free_port
from breaker_worker.store import RedisBreakerStore

from .browser import chromium_page
from .conftest import ROOT, wait_until

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "Browser-Pa55word-q8"
PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"
OPERATOR = "casey"
CREATE_OPERATOR = f"""
from django.contrib.auth.models import Permission, User
user = User.objects.create_user({OPERATOR!r}, password="operator-pw", is_staff=True)
user.user_permissions.add(*Permission.objects.filter(codename__in=["view_breaker", "probe_breaker"]))
"""


def start_web(system) -> str:
    """`manage.py runserver` on a free port, stopped with the system's worker and beat."""
    port = free_port()
    system.processes["web"] = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        cwd=ROOT,
        env=system.env,
        stdout=open(system.directory / "web.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(f"{base}/healthz", timeout=2).status == 200
        except OSError:
            return False

    wait_until(healthy, 60, "the web server to answer /healthz")
    return base


def test_an_operator_sees_a_tripped_breaker_probes_it_and_sees_the_result(make_system, seed_databases):
    # One tripped alias among the recently used ones (2-reports is idle) is enough for the guard.
    system = make_system(BREAKER_GUARD_MIN_ALIASES="1", BREAKER_GUARD_SHARE="10")
    urls = [
        f"postgres://postgres:{PASSWORD}@127.0.0.1:{port}/{seed_databases['name']}"
        for port in (5432, seed_databases["a_port"])
    ]
    system.manage("tenant_db", "set", "1-default", *urls, "--probe-sql", PROBE_SQL)
    system.manage("tenant_db", "set", "2-reports", urls[1])  # a healthy neighbour, closed
    system.manage("shell", "-c", CREATE_OPERATOR)
    base = start_web(system)
    store = RedisBreakerStore.from_url(system.redis.url)
    ARTIFACTS.mkdir(exist_ok=True)
    worker = system.processes["worker"]

    with chromium_page() as page:
        page.goto(f"{base}/admin/login/?next=/admin/breaker_worker/breaker/")
        page.fill("#id_username", OPERATOR)
        page.fill("#id_password", "operator-pw")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/breaker_worker/breaker/")

        # Tripped now: the evaluator's guard judges the trips of the last window (10 s).
        now = time.time()
        reason = "failure rate 100% >= 50% (20 of 20 calls in 10s)"
        assert store.transition("1-default", State.CLOSED, 0, State.OPEN, now, reason, open_until=now + 60) == 1
        guard = wait_until(store.guard, 10, "the evaluator to raise the mass outage guard")
        page.reload()
        row = page.locator("#result_list tbody tr", has_text="1-default")
        assert row.locator(".tb-guarded").text_content() == "guarded"
        assert row.locator(".tb-guarded").get_attribute("title") == f"Mass outage guard: {guard}"
        assert guard in page.locator(".messagelist").text_content()
        assert row.locator(".tb-badge").text_content() == "open"
        assert row.locator(".tb-badge").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(198, 40, 40)"
        assert row.locator("td.field-server").text_content() == "127.0.0.1:5432"
        neighbour = page.locator("#result_list tbody tr", has_text="2-reports").locator(".tb-badge")
        assert neighbour.text_content() == "closed"
        assert neighbour.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(46, 125, 50)"
        page.screenshot(path=str(ARTIFACTS / "breaker-list.png"), full_page=True)

        # A busy worker: the probe waits in the queue, so the page must show it pending first.
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            row.locator("input.action-select").check()
            page.select_option("select[name=action]", "probe_now")
            page.click("button[name=index]")
            message = page.locator(".messagelist li", has_text="Probe enqueued for 1 breaker")
            message.locator("a:text-is('1-default')").click()
            page.wait_for_load_state("load")
            latest = page.locator(".field-latest_probe .readonly")
            assert latest.locator(".tb-probe-pending").text_content() == "pending"
            assert "This page reloads itself until the result arrives." in latest.text_content()
            page.screenshot(path=str(ARTIFACTS / "breaker-page-pending.png"), full_page=True)
            page.wait_for_event("load", timeout=10_000)  # reloaded by itself, still pending
            assert latest.locator(".tb-probe-pending").text_content() == "pending"
        finally:
            os.killpg(worker.pid, signal.SIGCONT)

        # No reload by hand from here: the page reloads itself until the worker's row is there.
        latest.locator(".tb-probe-failed").wait_for(timeout=25_000)
        assert latest.locator(".tb-probe-pending").count() == 0
        assert 'relation "test_app_users" does not exist' in latest.text_content()
        assert f"by {OPERATOR}" in latest.text_content()
        history = page.locator("#events-group tbody tr").first
        assert history.locator("td.field-kind_tag").text_content().strip() == "probe"
        assert history.locator("td.field-actor").text_content().strip() == OPERATOR
        assert PASSWORD not in page.content()
        page.screenshot(path=str(ARTIFACTS / "breaker-page.png"), full_page=True)

    for name in ("breaker-list.png", "breaker-page-pending.png", "breaker-page.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
    assert Path(system.directory / "worker.log").read_text().count("breaker_worker.probe") >= 1
