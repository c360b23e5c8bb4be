"""Errors the protected backend raises to application code."""

from django.db.utils import DatabaseError


class BreakerOpenError(DatabaseError):
    """The breaker of this alias is open: the query was rejected without touching the database."""

    def __init__(self, alias: str, retry_after: float | None, reason: str = "") -> None:
        self.alias = alias
        self.retry_after = retry_after
        self.reason = reason
        when = f"retry after {retry_after:.1f}s" if retry_after else "retry once the breaker closes"
        because = f" ({reason})" if reason else ""
        super().__init__(f"circuit breaker for database {alias!r} is open{because}; {when}")
