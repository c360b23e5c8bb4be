"""Read-only views of breakers for commands and the admin."""

from __future__ import annotations

import time

from .models import BreakerEvent, TenantDatabase
from .services import get_store, views_with_policies


def breaker_statuses(aliases: list[str] | None = None, now: float | None = None) -> list[dict[str, object]]:
    """Live status of registered aliases (all, or those named), one dict per alias."""
    now = time.time() if now is None else now
    databases = TenantDatabase.objects.select_related("active_candidate").order_by("alias")
    if aliases:
        databases = databases.filter(alias__in=aliases)
    databases = list(databases)
    store = get_store()
    names = [d.alias for d in databases]
    records = store.states(names)
    views, policies = views_with_policies(names, now)
    guard = store.guard()
    statuses = []
    for database in databases:
        record, counts = records[database.alias], views[database.alias].counts
        guarded = guard is not None and record.state.value in ("open", "half_open")
        candidate = database.active_candidate
        statuses.append(
            {
                "alias": database.alias,
                "tenant_id": database.tenant_id,
                "state": record.state.value,
                "failure_rate": counts.failure_rate(policies[database.alias].minimum_calls),
                "calls": counts.calls,
                "failures": counts.failures,
                "slow_calls": counts.slow,
                "host": candidate.host if candidate else None,
                "port": candidate.port if candidate else None,
                "generation": database.generation,
                "epoch": record.epoch,
                "reason": record.reason,
                "since": record.since or None,
                "retry_after": max(0.0, record.open_until - now) if record.state.value == "open" else None,
                # A mass outage guard holds failovers back; it marks the breakers it concerns.
                "guarded": guarded,
                "guard_reason": guard if guarded else None,
            }
        )
    return statuses


def breaker_states(aliases: list[str]) -> dict[str, str]:
    """Live state of each alias named, in one pipelined read (the admin's state filter)."""
    return {alias: record.state.value for alias, record in get_store().states(aliases).items()}


def latest_probe(database: TenantDatabase) -> BreakerEvent | None:
    """The most recent operator probe of an alias, with its result in ``reason``."""
    return database.events.filter(kind=BreakerEvent.Kind.PROBE).order_by("-at", "-id").first()
