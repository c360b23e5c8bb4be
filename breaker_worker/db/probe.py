"""Probe queries on a fresh connection to one candidate, outside Django's connection handling."""

from __future__ import annotations

import psycopg2
from django.conf import settings

# A server that accepts connections but hangs must fail the probe, not hold the prober (and its
# lease, and a worker slot) for ever.
STATEMENT_TIMEOUT_SECONDS = 5


def run_probe(candidate, probe_sql: str, count: int = 1) -> tuple[bool, str]:
    """Run ``probe_sql`` ``count`` times on a new connection; (True, "") or (False, why)."""
    try:
        connection = psycopg2.connect(
            host=candidate.host,
            port=candidate.port,
            dbname=candidate.name,
            user=candidate.user,
            password=candidate.password or None,
            connect_timeout=settings.BREAKER_CONNECT_TIMEOUT,
            application_name="tenantbreaker-probe",
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}",
        )
    except psycopg2.Error as exc:
        return False, f"connect to {candidate.host}:{candidate.port} failed: {first_line(exc)}"
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for _ in range(count):
                cursor.execute(probe_sql)
                cursor.fetchall()
        return True, ""
    except psycopg2.Error as exc:
        return False, f"probe query on {candidate.host}:{candidate.port} failed: {first_line(exc)}"
    finally:
        connection.close()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
