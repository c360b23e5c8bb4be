"""Exception -> outcome: SQLSTATE codes, the chain Django builds around driver errors, and code-less errors."""

from __future__ import annotations

import pytest

from breaker_worker.core.classify import DEFAULT_SQLSTATE_OUTCOMES, classify, sqlstate_of
from breaker_worker.core.window import Outcome


# Stand-ins for driver errors: psycopg2's carry ``pgcode`` (None when the server sent none).
class DriverError(Exception):
    def __init__(self, message: str = "", pgcode: str | None = None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


class OperationalError(DriverError):
    pass


class InterfaceError(DriverError):
    pass


class ProgrammingError(DriverError):
    pass


class IntegrityError(DriverError):
    pass


class Psycopg3Error(Exception):
    """psycopg 3 names the attribute ``sqlstate``."""

    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("psycopg 3 error")
        self.sqlstate = sqlstate


# Django's wrappers share the driver's class names but carry no code of their own.
DjangoOperationalError = type("OperationalError", (Exception,), {})
DjangoProgrammingError = type("ProgrammingError", (Exception,), {})
DjangoIntegrityError = type("IntegrityError", (Exception,), {})


def wrapped(wrapper: type[Exception], original: BaseException) -> BaseException:
    """What Django's DatabaseErrorWrapper raises: ``raise dj_exc from exc``."""
    try:
        raise wrapper(*original.args) from original
    except Exception as exc:
        return exc


def raised_while_handling(outer: BaseException, inner: BaseException) -> BaseException:
    """Implicit chaining: ``outer`` raised inside ``except`` for ``inner`` sets only ``__context__``."""
    try:
        try:
            raise inner
        except type(inner):
            raise outer  # noqa: B904 - the missing ``from`` is the point
    except type(outer) as exc:
        return exc


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("42P01", Outcome.FAILURE),  # undefined table: wrong server for this tenant
        ("08006", Outcome.FAILURE),  # connection failure, via the class prefix 08
        ("08001", Outcome.FAILURE),
        ("3D000", Outcome.FAILURE),  # no such database
        ("53300", Outcome.FAILURE),  # too many connections, via class 53
        ("57P01", Outcome.FAILURE),  # admin shutdown
        ("57014", Outcome.SLOW),  # statement timeout
        ("23505", Outcome.IGNORED),  # unique violation, via class 23
        ("25P02", Outcome.IGNORED),  # transaction already aborted by an earlier error
        ("40001", Outcome.IGNORED),  # serialization failure
        ("42601", Outcome.IGNORED),  # syntax error
        ("P0001", Outcome.IGNORED),  # unknown code: raise_exception from PL/pgSQL
        ("ZZ999", Outcome.IGNORED),  # not a code at all
        ("57P99", Outcome.IGNORED),  # unknown member of a class with only listed members
    ],
)
def test_classify_by_sqlstate(code, expected):
    assert classify(DriverError("boom", pgcode=code)) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("42P01", Outcome.FAILURE), ("08006", Outcome.FAILURE), ("57014", Outcome.SLOW), ("23505", Outcome.IGNORED)],
)
def test_classify_reads_the_code_through_djangos_wrapper(code, expected):
    exc = wrapped(DjangoProgrammingError, ProgrammingError("driver said no", pgcode=code))
    assert not hasattr(exc, "pgcode")
    assert classify(exc) is expected


def test_the_code_wins_over_the_wrapper_class_name():
    # A unique violation arriving as Django's OperationalError is still the caller's mistake.
    exc = wrapped(DjangoOperationalError, IntegrityError("duplicate key", pgcode="23505"))
    assert classify(exc) is Outcome.IGNORED


def test_an_error_raised_while_handling_another_is_judged_by_itself():
    # The connection died during the rollback after a unique violation: a server fault.
    lost = OperationalError("server closed the connection unexpectedly")
    exc = raised_while_handling(lost, IntegrityError("duplicate key", pgcode="23505"))
    assert exc.__context__ is not None
    assert classify(exc) is Outcome.FAILURE


def test_classify_reads_psycopg3_sqlstate():
    assert classify(Psycopg3Error("42P01")) is Outcome.FAILURE
    assert classify(Psycopg3Error("57014")) is Outcome.SLOW


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OperationalError("server closed the connection unexpectedly"), Outcome.FAILURE),
        (InterfaceError("connection already closed"), Outcome.FAILURE),
        (ProgrammingError("can't adapt type"), Outcome.IGNORED),
        (IntegrityError("no code"), Outcome.IGNORED),
        (ValueError("not a database error"), Outcome.IGNORED),
    ],
)
def test_classify_without_a_code_goes_by_class_name(exc, expected):
    assert classify(exc) is expected


def test_a_code_less_connection_error_wrapped_by_django_is_a_failure():
    exc = wrapped(DjangoOperationalError, OperationalError("could not connect to server"))
    assert classify(exc) is Outcome.FAILURE


def test_a_code_less_programming_error_wrapped_by_django_is_ignored():
    exc = wrapped(DjangoProgrammingError, ProgrammingError("can't adapt type 'dict'"))
    assert classify(exc) is Outcome.IGNORED


def test_the_longest_matching_prefix_wins():
    table = {"08": Outcome.IGNORED, "080": Outcome.SLOW, "08006": Outcome.FAILURE}
    assert classify(DriverError(pgcode="08006"), table) is Outcome.FAILURE
    assert classify(DriverError(pgcode="08001"), table) is Outcome.SLOW
    assert classify(DriverError(pgcode="08P01"), table) is Outcome.IGNORED


def test_a_custom_table_replaces_the_default():
    assert classify(DriverError(pgcode="23505"), {"23": Outcome.FAILURE}) is Outcome.FAILURE
    assert classify(DriverError(pgcode="08006"), {"23": Outcome.FAILURE}) is Outcome.IGNORED


def test_default_table_keys_are_sqlstate_classes_or_codes():
    assert all(len(key) in (2, 5) and key == key.upper() for key in DEFAULT_SQLSTATE_OUTCOMES)


# --- sqlstate_of ---------------------------------------------------------------------------------


def test_sqlstate_of_the_error_itself():
    assert sqlstate_of(DriverError(pgcode="40P01")) == "40P01"


def test_sqlstate_of_an_error_without_a_code_is_none():
    assert sqlstate_of(OperationalError("no code")) is None
    assert sqlstate_of(ValueError("plain")) is None


def test_sqlstate_of_skips_an_empty_code_and_keeps_looking():
    exc = wrapped(DriverError, DriverError(pgcode="57014"))
    exc.pgcode = ""
    assert sqlstate_of(exc) == "57014"


def test_sqlstate_of_the_outermost_code_in_a_chain():
    exc = wrapped(DjangoOperationalError, wrapped(OperationalError, DriverError(pgcode="08006")))
    exc.__cause__.pgcode = "57P01"
    assert sqlstate_of(exc) == "57P01"


def test_sqlstate_of_a_deep_chain():
    exc: BaseException = DriverError(pgcode="3D000")
    for _ in range(5):
        exc = wrapped(RuntimeError, exc)
    assert sqlstate_of(exc) == "3D000"


def test_sqlstate_of_a_cyclic_chain_terminates():
    first = RuntimeError("first")
    second = RuntimeError("second")
    first.__cause__ = second
    second.__context__ = first
    assert sqlstate_of(first) is None
    assert classify(first) is Outcome.IGNORED
