"""settings.DATABASES that also knows the tenant aliases registered in the control DB.

Django's ConnectionHandler keeps ``settings.DATABASES`` itself as its settings mapping and asks
``alias in settings`` before creating a connection. This mapping answers that question for a
registered tenant alias by adding its entry on first use, complete with Django's defaults
(aliases added at runtime get none otherwise: Django ticket #34410), so that every process
reaches aliases registered after it started, without a restart or a settings change.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

TENANT_ALIAS = re.compile(r"^[0-9]+-[A-Za-z0-9_]+$")
ENGINE = "breaker_worker.db.backends.postgresql"


class TenantDatabases(dict):
    def __contains__(self, alias: object) -> bool:
        if dict.__contains__(self, alias):
            return True
        return isinstance(alias, str) and self._add(alias)

    def __missing__(self, alias: str) -> dict:
        if self._add(alias):
            return dict.__getitem__(self, alias)
        raise KeyError(alias)

    def _add(self, alias: str) -> bool:
        if not TENANT_ALIAS.match(alias):
            return False
        from django.apps import apps

        if not apps.ready:
            return False
        from django.db import DatabaseError, connections

        from .runtime import get_runtime

        try:
            target = get_runtime().target(alias)
        except DatabaseError as exc:  # e.g. the control DB is not migrated yet
            logger.warning("cannot look up tenant alias %r in the control DB: %s", alias, exc)
            return False
        if target is None:
            return False
        entry = {
            "ENGINE": ENGINE,
            "NAME": target.name,
            "USER": target.user,
            "HOST": target.host,
            "PORT": target.port,
            "OPTIONS": {},
        }
        # Reuse Django's own code that fills in every default key of a DATABASES entry.
        entry = connections.configure_settings({"default": entry})["default"]
        self.setdefault(alias, entry)
        return True
