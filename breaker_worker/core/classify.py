"""Exception -> outcome, by SQLSTATE (table-driven); works on any DB-API driver's errors."""

from __future__ import annotations

from collections.abc import Mapping

from .window import Outcome

# SQLSTATE code or class prefix -> outcome; the longest matching prefix wins.
DEFAULT_SQLSTATE_OUTCOMES: Mapping[str, Outcome] = {
    # Connection and availability: this server cannot serve right now.
    "08": Outcome.FAILURE,  # connection exception
    "53": Outcome.FAILURE,  # insufficient resources
    "57P01": Outcome.FAILURE,  # admin shutdown
    "57P02": Outcome.FAILURE,  # crash shutdown
    "57P03": Outcome.FAILURE,  # cannot connect now
    "57P04": Outcome.FAILURE,  # database dropped
    "57P05": Outcome.FAILURE,  # idle session timeout
    "58": Outcome.FAILURE,  # system error
    "XX": Outcome.FAILURE,  # internal error
    # Wrong target: this server does not hold this tenant's data.
    "42P01": Outcome.FAILURE,  # undefined table
    "3D000": Outcome.FAILURE,  # invalid catalog name (no such database)
    "3F000": Outcome.FAILURE,  # invalid schema name
    "28": Outcome.FAILURE,  # invalid authorization
    # Statement timeout: the server answers, too slowly.
    "57014": Outcome.SLOW,
    # The caller's own mistakes say nothing about the server.
    "22": Outcome.IGNORED,
    "23": Outcome.IGNORED,
    "40001": Outcome.IGNORED,
    "40P01": Outcome.IGNORED,
    "42601": Outcome.IGNORED,
    # "current transaction is aborted" follows an earlier error already counted.
    "25P02": Outcome.IGNORED,
}

# Errors without a SQLSTATE, by class name: the driver lost or never had a connection.
CONNECTION_ERROR_NAMES = frozenset({"OperationalError", "InterfaceError"})


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, looking through wrappers (Django sets ``__cause__``).
    Not through ``__context__``: an error raised while handling another one is a new fault (a
    connection lost during the rollback after a unique violation is not the caller's mistake)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "pgcode", None) or getattr(current, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
        current = current.__cause__
    return None


def classify(exc: BaseException, table: Mapping[str, Outcome] = DEFAULT_SQLSTATE_OUTCOMES) -> Outcome:
    code = sqlstate_of(exc)
    if code is None:
        return Outcome.FAILURE if type(exc).__name__ in CONNECTION_ERROR_NAMES else Outcome.IGNORED
    for length in range(len(code), 1, -1):
        outcome = table.get(code[:length])
        if outcome is not None:
            return outcome
    return Outcome.IGNORED
