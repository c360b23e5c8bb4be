"""Operations endpoints: /metrics for Prometheus and /healthz for load balancers and orchestrators."""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .metrics import BreakerCollector
from .selectors import breaker_statuses
from .store import RedisBreakerStore


def _statuses() -> list[dict[str, object]]:
    return breaker_statuses()


@functools.cache
def _default_registry() -> CollectorRegistry:
    REGISTRY.register(BreakerCollector(_statuses))  # once per process
    return REGISTRY


@require_GET
def metrics(request):
    if settings.PROMETHEUS_MULTIPROC_DIR:
        # Counters of every process (web, workers) are files in that directory: add them up.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
        registry.register(BreakerCollector(_statuses))
    else:
        registry = _default_registry()
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@functools.cache
def _health_store(url: str) -> RedisBreakerStore:
    # Short timeout, no retries: a health check must answer quickly, also when Redis does not.
    return RedisBreakerStore.from_url(url, timeout=1.0, retries=0)


@require_GET
def healthz(request):
    checks, reasons = {}, []
    try:
        _health_store(settings.REDIS_URL).client.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means "not healthy"; the reason says which
        checks["redis"] = "unavailable"
        reasons.append(f"redis: {type(exc).__name__}: {exc}")
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["control_db"] = "ok"
    except Exception as exc:
        checks["control_db"] = "unavailable"
        reasons.append(f"control_db: {type(exc).__name__}: {exc}")
    if reasons:
        return JsonResponse({"status": "unavailable", **checks, "reason": "; ".join(reasons)}, status=503)
    return JsonResponse({"status": "ok", **checks})
