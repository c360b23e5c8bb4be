"""Management commands: output, --json, and bad input that writes nothing."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from breaker_worker.models import Candidate, TenantDatabase
from tests.conftest import url

pytestmark = pytest.mark.usefixtures("control_db", "breaker")

SECRET = "Very-Secret-Pw-42"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def registered(seed_databases):
    name = seed_databases["name"]
    run("tenant_db", "set", "1-default", url(5432, name, SECRET), url(seed_databases["a_port"], name, SECRET))
    return seed_databases


def test_tenant_db_set_registers_the_first_url_as_active(registered):
    database = TenantDatabase.objects.select_related("active_candidate").get(alias="1-default")
    assert database.tenant_id == 1 and database.generation == 1
    assert [(c.port, c.position) for c in database.candidates.all()] == [(5432, 0), (registered["a_port"], 1)]
    assert database.active_candidate.port == 5432
    assert database.active_candidate.password == SECRET


def test_tenant_db_set_output_never_shows_the_password(seed_databases):
    out = run("tenant_db", "set", "1-default", url(5432, seed_databases["name"], SECRET))
    assert "1-default: generation 1" in out and f"postgres@127.0.0.1:5432/{seed_databases['name']}" in out
    assert SECRET not in out
    out = run("tenant_db", "set", "1-default", url(5432, seed_databases["name"], SECRET), "--json")
    assert SECRET not in out and json.loads(out)["generation"] == 2  # replacing bumps the generation


@pytest.mark.parametrize(
    "alias, urls, message",
    [
        ("default", ["postgres://u:p@h:5432/d"], "alias 'default' must be <tenant id>-<name>"),
        ("x-default", ["postgres://u:p@h:5432/d"], "alias 'x-default' must be <tenant id>-<name>"),
        ("1-default", ["mysql://u:p@h:3306/d"], "database URL must start with postgres://"),
        ("1-default", ["postgres://u:p@h:70000/d"], "port must be between 1 and 65535"),
        ("1-default", ["postgres://u:p@h:0/d"], "port must be between 1 and 65535"),
        ("1-default", ["postgres://u:p@h:port/d"], "malformed database URL"),
        ("1-default", ["postgres://u:p@h:²/d"], "malformed database URL"),
        ("1-default", ["postgres://u:p@h:5432/"], "needs one database name"),
        ("1-default", ["postgres://u:p@h:5432"], "needs one database name"),
        ("1-default", ["postgres://u:p@:5432/d"], "has no host"),
        ("1-default", ["postgres://h:5432/d"], "has no user"),
        ("1-default", ["postgres://u:p@h:5432/d?sslmode=require"], "must not have [?]options"),
        ("1-default", ["postgres://u:p@h:5432/d", "postgres://u:p@h:99999/d"], "port must be between 1 and 65535"),
    ],
)
def test_tenant_db_set_rejects_bad_input_and_writes_nothing(registered, alias, urls, message):
    before = list(Candidate.objects.values_list("id", "host", "port", "name", "user", "password"))
    with pytest.raises(CommandError, match=message) as caught:
        run("tenant_db", "set", alias, *urls)
    assert "p@" not in str(caught.value)  # the password of a bad URL is not echoed either
    assert list(Candidate.objects.values_list("id", "host", "port", "name", "user", "password")) == before
    assert TenantDatabase.objects.get(alias="1-default").generation == 1


@pytest.mark.parametrize(
    "bad_url",
    [
        "postgres://app:Tr0ub4dor#x@db:5432/t?x=1",  # '#' in the password: urlsplit cuts there
        "postgres://app:Tr0ub4dor/x@db:port/t",  # '/' in the password
        "postgres://app:Tr0ub4dor@x@db:99999/t",  # '@' in the password
        "postgres://app:Tr0ub4dor/t",  # the '@host' is missing: the rest may be a password
    ],
)
def test_a_bad_url_never_echoes_any_part_of_its_password(registered, bad_url):
    with pytest.raises(CommandError) as caught:
        run("tenant_db", "set", "2-default", bad_url)
    assert "Tr0ub4dor" not in str(caught.value)
    assert not TenantDatabase.objects.filter(alias="2-default").exists()


def test_passwords_may_hold_url_characters(seed_databases):
    password = "a/b?c#d@e:f%40"
    name = seed_databases["name"]
    run("tenant_db", "set", "2-default", f"postgres://postgres:{password}@127.0.0.1:5432/{name}")
    candidate = TenantDatabase.objects.get(alias="2-default").active_candidate
    assert (candidate.host, candidate.port, candidate.name) == ("127.0.0.1", 5432, name)
    assert candidate.password == "a/b?c#d@e:f@"  # percent-decoded, as in any URL


def test_a_bad_url_for_a_new_alias_creates_no_tenant_row_and_no_redis_key(seed_databases, store):
    from breaker_worker.models import Tenant

    with pytest.raises(CommandError):
        run("tenant_db", "set", "9-new", f"postgres://u:p@h:5432/{seed_databases['name']}", "postgres://u:p@h:0/d")
    assert not Tenant.objects.filter(id=9).exists() and not TenantDatabase.objects.filter(alias="9-new").exists()
    assert store.client.keys("cb:{9-new}*") == []


def test_breaker_status_json_has_the_documented_fields(registered):
    [status] = json.loads(run("breaker_status", "--json"))
    assert {k: status[k] for k in ("alias", "tenant_id", "state", "failure_rate", "calls", "failures")} == {
        "alias": "1-default",
        "tenant_id": 1,
        "state": "closed",
        "failure_rate": None,  # not enough data is not 0 %
        "calls": 0,
        "failures": 0,
    }
    assert (status["host"], status["port"], status["generation"], status["epoch"]) == ("127.0.0.1", 5432, 1, 0)
    assert SECRET not in run("breaker_status", "--json") + run("breaker_status")


def test_breaker_status_table_and_unknown_alias(registered):
    out = run("breaker_status")
    assert out.splitlines()[0].split() == ["ALIAS", "STATE", "RATE", "CALLS", "FAILS", "SERVER", "GEN", "EPOCH"]
    assert out.splitlines()[1].split() == ["1-default", "closed", "-", "0", "0", "127.0.0.1:5432", "1", "0"]
    with pytest.raises(CommandError, match="unknown alias"):
        run("breaker_status", "7-nope")


def test_breaker_probe_unknown_alias(registered):
    with pytest.raises(CommandError, match="unknown alias '7-nope'"):
        run("breaker_probe", "7-nope")


def test_a_new_alias_starts_clean_even_if_redis_remembers_an_older_one(seed_databases, store):
    from breaker_worker.core.machine import State

    # Keys left by an alias of the same name whose control DB was since reset.
    store.advance_generation("1-default", 5)
    store.transition("1-default", State.CLOSED, 0, State.OPEN, 0.0, "old life")
    run("tenant_db", "set", "1-default", url(5432, seed_databases["name"]))
    record = store.states(["1-default"])["1-default"]
    assert (record.state, record.epoch, record.generation) == (State.CLOSED, 0, 1)
