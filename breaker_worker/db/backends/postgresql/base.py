"""Django's postgresql backend, protected by the breaker: a drop-in ENGINE for any alias.

Each connection records its queries and failed connects, rejects queries while its alias's
breaker is open, connects to the active candidate of the newest generation it knows, and drops
a connection of an older generation at the next safe point (outside atomic blocks).
"""

import time

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.postgresql import base

from breaker_worker.core.window import Outcome
from breaker_worker.db.runtime import get_runtime


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.breaker = get_runtime()
        self.breaker_generation = 0  # generation of the target the current connection reached
        if self.breaker.enabled:
            # First in the list and added once per wrapper (not per connect): a caller's own
            # `with connection.execute_wrapper(...)` removes the last entry, never this one.
            self.execute_wrappers.insert(0, self._record_query)

    def get_connection_params(self):
        params = super().get_connection_params()
        params.setdefault("connect_timeout", settings.BREAKER_CONNECT_TIMEOUT)
        target = self.breaker.target(self.alias)
        if target is not None:
            params.update(target.connection_params())
            self.breaker_generation = target.generation
        return params

    def connect(self):
        if not self.breaker.enabled:
            return super().connect()
        self.breaker.reject_if_open(self.alias, trial=False)
        started = time.perf_counter()
        try:
            super().connect()
        except Exception as exc:
            # A failed connect never reaches execute_wrapper: count it here.
            duration = time.perf_counter() - started
            self.breaker.record_error(self.alias, self.breaker_generation, exc, duration, connecting=True)
            raise

    def ensure_connection(self):
        if self.connection is not None and not self.in_atomic_block and self._behind_generation():
            try:
                self.close()
            except DatabaseError:
                self.connection = None  # the old server may be gone; we are leaving it anyway
        super().ensure_connection()

    def _cursor(self, name=None):
        if self.breaker.enabled:
            self.breaker.reject_if_open(self.alias)
        return super()._cursor(name)

    def _behind_generation(self):
        target = self.breaker.targets.get(self.alias)
        return target is not None and target.generation != self.breaker_generation

    def _record_query(self, execute, sql, params, many, context):
        generation = self.breaker_generation
        started = time.perf_counter()
        try:
            result = execute(sql, params, many, context)
        except Exception as exc:
            self.breaker.record_error(self.alias, generation, exc, time.perf_counter() - started)
            raise
        self.breaker.record(self.alias, generation, Outcome.SUCCESS, time.perf_counter() - started)
        return result
