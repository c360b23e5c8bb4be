"""/metrics: breaker gauges read from Redis at scrape time, counters the services increment, and
counters of several processes added up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from breaker_worker import services
from breaker_worker.core.machine import State
from breaker_worker.core.window import Counts, Outcome
from breaker_worker.db.runtime import BreakerRuntime
from breaker_worker.sandbox import free_port
from breaker_worker.store import StoreUnavailableError
from breaker_worker.store.base import OutcomeBatch
from tests.conftest import url

ROOT = Path(__file__).resolve().parents[1]


def scrape(text: str | None = None) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape of /metrics."""
    if text is None:
        response = Client().get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def alias(control_db, breaker, seed_databases):
    name = seed_databases["name"]
    services.register_alias("1-default", [url(seed_databases["b_port"], name), url(seed_databases["a_port"], name)])
    return "1-default"


def test_state_failure_rate_and_calls_per_alias_come_from_redis(alias, store):
    now = time.time()
    store.record([OutcomeBatch(alias, 1, {int(now): Counts(20, 5, 0)})], now)
    samples = scrape()
    assert samples[("tenantbreaker_breaker_states_up", ())] == 1
    labels = (("alias", alias),)
    assert samples[("tenantbreaker_breaker_state", (("alias", alias), ("state", "closed")))] == 1
    assert samples[("tenantbreaker_breaker_state", (("alias", alias), ("state", "open")))] == 0
    assert samples[("tenantbreaker_failure_rate", labels)] == 0.25
    assert (samples[("tenantbreaker_window_calls", labels)], samples[("tenantbreaker_window_failures", labels)]) == (
        20,
        5,
    )
    store.transition(alias, State.CLOSED, 0, State.OPEN, now, "test", open_until=now + 60)
    assert scrape()[("tenantbreaker_breaker_state", (("alias", alias), ("state", "open")))] == 1


def test_transitions_and_failovers_are_counted(alias, sent_tasks):
    opened = ("tenantbreaker_transitions_total", (("from_state", "closed"), ("to_state", "open")))
    moved = ("tenantbreaker_failovers_total", (("outcome", "moved"),))
    durations = ("tenantbreaker_failover_duration_seconds_count", ())
    before = scrape()
    services.transition(alias, State.CLOSED, 0, State.OPEN, "test")
    services.fail_over_now(alias, "alice")
    after = scrape()
    assert after[opened] - before.get(opened, 0) == 1
    assert after[moved] - before.get(moved, 0) == 1
    assert after[durations] - before[durations] == 1
    assert (
        after[("tenantbreaker_failover_duration_seconds_sum", ())]
        > before[("tenantbreaker_failover_duration_seconds_sum", ())]
    )


def test_a_failed_flush_is_counted(settings, control_db):
    key = ("tenantbreaker_flush_errors_total", ())
    before = scrape().get(key, 0)
    runtime = BreakerRuntime(f"redis://127.0.0.1:{free_port()}/0", settings.BREAKER_POLICY, sync_seconds=60)
    runtime.record("1-default", 1, Outcome.FAILURE, 0.01)
    try:
        with pytest.raises(StoreUnavailableError):
            runtime.flush()
    finally:
        runtime.stop()
    assert scrape()[key] - before == 1


def test_without_redis_metrics_still_answer_and_say_so(alias, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    services.get_store.cache_clear()
    samples = scrape()
    assert samples[("tenantbreaker_breaker_states_up", ())] == 0
    assert not [name for name, _ in samples if name == "tenantbreaker_breaker_state"]


def test_multiprocess_mode_adds_up_the_counters_of_every_process(tmp_path, redis_url):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "TENANTBREAKER_VAR_DIR": str(tmp_path),  # an empty control DB: this test is about counters
        "REDIS_URL": redis_url,
    }
    os.mkdir(env["PROMETHEUS_MULTIPROC_DIR"])
    setup = "import django; django.setup(); from breaker_worker import metrics, views; "
    count = "metrics.FLUSH_ERRORS.inc(); metrics.TRANSITIONS.labels('closed', 'open').inc()"
    for _ in range(2):  # two worker processes, each counting once
        subprocess.run([sys.executable, "-c", setup + count], cwd=ROOT, env=env, check=True, timeout=60)
    scraper = "from django.test import RequestFactory; print(views.metrics(RequestFactory().get('/')).content.decode())"
    out = subprocess.run(
        [sys.executable, "-c", setup + scraper],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = scrape(out)
    assert samples[("tenantbreaker_flush_errors_total", ())] == 2
    assert samples[("tenantbreaker_transitions_total", (("from_state", "closed"), ("to_state", "open")))] == 2
