"""Prometheus metrics: counters the services increment, and breaker gauges read at scrape time.

Counters and the histogram live in prometheus-client's registry of each process; with
PROMETHEUS_MULTIPROC_DIR set (gunicorn, Celery prefork) each process writes them to files
there and /metrics adds them up. Breaker states are not counted anywhere: BreakerCollector
reads them from Redis when /metrics is scraped, so every process reports the same truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .core.machine import State

logger = logging.getLogger(__name__)

TRANSITIONS = Counter(
    "tenantbreaker_transitions", "Breaker transitions applied, by from and to state", ["from_state", "to_state"]
)
FAILOVERS = Counter("tenantbreaker_failovers", "Failovers carried out, by outcome (moved or no_candidate)", ["outcome"])
FAILOVER_SECONDS = Histogram(
    "tenantbreaker_failover_duration_seconds",
    "Time to choose a candidate and save a failover",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FLUSH_ERRORS = Counter("tenantbreaker_flush_errors", "Flushes of recorded outcomes to Redis that failed")


def record_failover(moved: bool, seconds: float) -> None:
    FAILOVERS.labels("moved" if moved else "no_candidate").inc()
    FAILOVER_SECONDS.observe(seconds)


class BreakerCollector(Collector):
    """Per-alias gauges computed from ``read_statuses()`` (breaker_statuses) at each scrape."""

    def __init__(self, read_statuses: Callable[[], list[dict[str, object]]]) -> None:
        self.read_statuses = read_statuses

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "tenantbreaker_breaker_states_up", "1 when this scrape could read breaker states (control DB and Redis)"
        )
        try:
            statuses = self.read_statuses()
        except Exception as exc:  # a scrape must still answer, and say that it could not read them
            logger.warning("metrics: breaker states unreadable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        state = GaugeMetricFamily(
            "tenantbreaker_breaker_state",
            "1 for the breaker's current state, 0 for the others",
            labels=["alias", "state"],
        )
        rate = GaugeMetricFamily(
            "tenantbreaker_failure_rate",
            "Failed calls / calls in the window (0..1); absent without enough calls",
            labels=["alias"],
        )
        calls = GaugeMetricFamily("tenantbreaker_window_calls", "Calls in the current window", labels=["alias"])
        failures = GaugeMetricFamily("tenantbreaker_window_failures", "Failed calls in the window", labels=["alias"])
        generation = GaugeMetricFamily("tenantbreaker_generation", "Active candidate generation", labels=["alias"])
        for status in statuses:
            alias = str(status["alias"])
            for value in State:
                state.add_metric([alias, value.value], 1 if status["state"] == value.value else 0)
            if status["failure_rate"] is not None:
                rate.add_metric([alias], float(status["failure_rate"]))
            calls.add_metric([alias], float(status["calls"]))
            failures.add_metric([alias], float(status["failures"]))
            generation.add_metric([alias], float(status["generation"]))
        yield from (state, rate, calls, failures, generation)
