"""Each alias's effective policy: the default (settings) overlaid with its BreakerPolicy row.

Every process keeps the overrides of all aliases in memory and reloads them when the policy
version in Redis changes (a committed save or delete of a BreakerPolicy bumps it: one GET per
poll), and at least every RELOAD_SECONDS in case that bump was lost (Redis was away).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from django.conf import settings

from .core.policy import Policy, PolicyError

logger = logging.getLogger(__name__)

RELOAD_SECONDS = 60.0
_reported: set[tuple[str, str]] = set()  # (alias, error) already logged


def effective(overrides: dict[str, float]) -> Policy:
    """The default policy with ``overrides``; raises PolicyError naming a bad field."""
    return dataclasses.replace(settings.BREAKER_POLICY, **overrides)


def effective_or_default(alias: str, overrides: dict[str, float]) -> Policy:
    """As ``effective``, but a stored override that no longer fits (the defaults changed since it
    was saved, say) falls back to the default policy, with one ERROR line: a bad row must not
    stop the evaluator or fail the alias's queries."""
    try:
        return effective(overrides)
    except PolicyError as exc:
        if (alias, str(exc)) not in _reported:
            _reported.add((alias, str(exc)))
            logger.error("alias %s: its policy override is invalid (%s): using the default policy", alias, exc)
        return settings.BREAKER_POLICY


class PolicyBook:
    def __init__(self) -> None:
        self._version: int | None = None
        self._loaded_at = 0.0
        self._policies: dict[str, Policy] = {}
        self._lock = threading.Lock()

    def policies(self, aliases, version: int) -> dict[str, Policy]:
        """Effective policies of ``aliases`` at policy ``version`` (read from the store)."""
        if version != self._version or time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            self._reload(version)
        default = settings.BREAKER_POLICY
        return {alias: self._policies.get(alias, default) for alias in aliases}

    def known(self) -> list[Policy]:
        """The overriding policies loaded so far."""
        return list(self._policies.values())

    def _reload(self, version: int) -> None:
        from .models import BreakerPolicy

        policies = {}
        for row in BreakerPolicy.objects.select_related("database"):
            policies[row.database.alias] = effective_or_default(row.database.alias, row.overrides())
        with self._lock:
            self._policies, self._version, self._loaded_at = policies, version, time.monotonic()
