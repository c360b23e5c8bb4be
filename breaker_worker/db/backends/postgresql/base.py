"""Django's postgresql backend, protected by the breaker: a drop-in ENGINE for any alias.

Each connection records its queries and failed connects, rejects queries while its alias's
breaker is open, connects to the active candidate of the newest generation it knows, and drops
a connection of an older generation at the next safe point (outside atomic blocks).

Queries are timed by the cursor wrapper's ``_execute`` rather than by an entry in
``execute_wrappers``: a wrapper entry makes Django build a partial per query (about 2 µs, 2 %
of a local SELECT 1), and a caller's own ``with connection.execute_wrapper(...)`` can neither
remove it nor be timed as if it were the database.
"""

import time
from time import perf_counter

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from breaker_worker.core.window import Outcome
from breaker_worker.db.runtime import get_runtime

SUCCESS = Outcome.SUCCESS


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.breaker = get_runtime()
        self.breaker.watch(self.alias)
        self.breaker_generation = 0  # generation of the target the current connection reached

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
        self._drop_if_stale()
        super().ensure_connection()

    def close_if_unusable_or_obsolete(self):
        # At a request or task boundary: drop a stale connection without connecting again
        # (Django's own check would, through get_autocommit()); the next query connects.
        if not self._drop_if_stale():
            super().close_if_unusable_or_obsolete()

    def _drop_if_stale(self) -> bool:
        """Close a connection of an older generation, or one the server dropped (a restart: a
        loop outside the request cycle would otherwise fail with "connection already closed"
        for ever, in cursor creation, where nothing records it). Never under an open
        transaction (atomic, or autocommit turned off by hand): that would roll it back."""
        if self.connection is None or self.in_atomic_block or not self.autocommit:
            return False
        target = self.breaker.targets.get(self.alias)
        if not self.connection.closed and (target is None or target.generation == self.breaker_generation):
            return False
        try:
            self.close()
        except DatabaseError:
            self.connection = None  # the old server may be gone; we are leaving it anyway
        return True

    def _cursor(self, name=None):
        if self.breaker.enabled:
            self.breaker.reject_if_open(self.alias)
        return super()._cursor(name)

    def make_cursor(self, cursor):
        return RecordingCursorWrapper(cursor, self) if self.breaker.enabled else super().make_cursor(cursor)

    def make_debug_cursor(self, cursor):
        if self.breaker.enabled:
            return RecordingCursorDebugWrapper(cursor, self)
        return super().make_debug_cursor(cursor)


class RecordingCursor:
    """Times each execute on the database and records its outcome, tagged with the generation
    of the server the connection reached."""

    def _execute(self, sql, params, *ignored_wrapper_args):
        return self._recorded(CursorWrapper._execute, sql, params)

    def _executemany(self, sql, param_list, *ignored_wrapper_args):
        return self._recorded(CursorWrapper._executemany, sql, param_list)

    def _recorded(self, execute, sql, params):
        db = self.db
        generation = db.breaker_generation
        started = perf_counter()
        try:
            result = execute(self, sql, params)
        except Exception as exc:
            db.breaker.record_error(db.alias, generation, exc, perf_counter() - started)
            raise
        db.breaker.record(db.alias, generation, SUCCESS, perf_counter() - started)
        return result


class RecordingCursorWrapper(RecordingCursor, CursorWrapper):
    pass


class RecordingCursorDebugWrapper(RecordingCursor, CursorDebugWrapper):
    pass
