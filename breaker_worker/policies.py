"""Each alias's effective policy: the default (settings) overlaid with its BreakerPolicy row.

Every process keeps the overrides of all aliases in memory and reloads them when the policy
version in Redis changes (saving or deleting a BreakerPolicy bumps it): one GET per poll.
"""

from __future__ import annotations

import dataclasses
import threading

from django.conf import settings

from .core.policy import Policy


def effective(overrides: dict[str, float]) -> Policy:
    """The default policy with ``overrides``; raises PolicyError naming a bad field."""
    return dataclasses.replace(settings.BREAKER_POLICY, **overrides)


class PolicyBook:
    def __init__(self) -> None:
        self._version: int | None = None
        self._policies: dict[str, Policy] = {}
        self._lock = threading.Lock()

    def policies(self, aliases, version: int) -> dict[str, Policy]:
        """Effective policies of ``aliases`` at policy ``version`` (read from the store)."""
        if version != self._version:
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
            policies[row.database.alias] = effective(row.overrides())
        with self._lock:
            self._policies, self._version = policies, version
