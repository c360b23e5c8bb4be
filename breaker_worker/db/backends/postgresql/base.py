"""Django's postgresql backend, protected by the breaker: a drop-in ENGINE for any alias.

Each connection records its queries and failed connects, rejects queries while its alias's
breaker is open, connects to the active candidate of the newest generation it knows, and drops
a connection of an older generation at the next safe point (outside atomic blocks). A quick
success only adds one to the connection's own counter (see runtime.SuccessCounter).

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
        self.breaker_gate = self.breaker.watch(self.alias)
        # The generation of the target the current connection reached, and its quick successes.
        self.breaker_counter = self.breaker.counter(self.alias, 0, self)

    def get_connection_params(self):
        params = super().get_connection_params()
        params.setdefault("connect_timeout", settings.BREAKER_CONNECT_TIMEOUT)
        target = self.breaker.target(self.alias)
        if target is not None:
            params.update(target.connection_params())
        generation = target.generation if target is not None else 0
        if generation != self.breaker_counter.generation:
            self.breaker_counter.retired = True
            self.breaker_counter = self.breaker.counter(self.alias, generation, self)
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
            self.breaker.record_error(self.alias, self.breaker_counter.generation, exc, duration, connecting=True)
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
        if not self.connection.closed and (target is None or target.generation == self.breaker_counter.generation):
            return False
        try:
            self.close()
        except DatabaseError:
            self.connection = None  # the old server may be gone; we are leaving it anyway
        return True

    def _cursor(self, name=None):
        if self.breaker.enabled and self.breaker_gate.check:
            self.breaker.reject_if_open(self.alias)
        return super()._cursor(name)

    def make_cursor(self, cursor):
        return RecordingCursorWrapper(cursor, self) if self.breaker.enabled else super().make_cursor(cursor)

    def make_debug_cursor(self, cursor):
        if self.breaker.enabled:
            return RecordingCursorDebugWrapper(cursor, self)
        return super().make_debug_cursor(cursor)


def _recorded(execute):
    """``execute``, timed on the database, its outcome recorded with the generation of the
    server the connection reached. Made once per method: one frame per query, not two."""

    def recorded(self, sql, params, *ignored_wrapper_args):
        db = self.db
        counter = db.breaker_counter
        started = perf_counter()
        try:
            result = execute(self, sql, params)
        except Exception as exc:
            db.breaker.record_error(db.alias, counter.generation, exc, perf_counter() - started)
            raise
        duration = perf_counter() - started
        if duration < counter.gate.quick_below:
            counter.successes += 1  # the common call: this connection's thread is the only writer
        else:
            db.breaker.record(db.alias, counter.generation, SUCCESS, duration)
        return result

    return recorded


class RecordingCursor:
    """Times each execute on the database and records its outcome."""

    _execute = _recorded(CursorWrapper._execute)
    _executemany = _recorded(CursorWrapper._executemany)


class RecordingCursorWrapper(RecordingCursor, CursorWrapper):
    pass


class RecordingCursorDebugWrapper(RecordingCursor, CursorDebugWrapper):
    pass
