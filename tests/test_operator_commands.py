"""`breaker_force` and `breaker_failover`: the operator's actions from the command line."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from breaker_worker import services
from breaker_worker.models import BreakerEvent
from tests.conftest import url

pytestmark = pytest.mark.usefixtures("control_db", "breaker")

SECRET = "Cli-Secret-Pw-5150"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def alias(seed_databases):
    name = seed_databases["name"]
    services.register_alias(
        "1-default", [url(seed_databases["b_port"], name, SECRET), url(seed_databases["a_port"], name, SECRET)]
    )
    return "1-default"


def live_state(alias):
    return services.get_store().states([alias])[alias].state.value


def test_breaker_force_moves_the_breaker_and_records_the_command(alias, sent_tasks):
    assert run("breaker_force", alias, "open") == f"{alias}: now forced_open (epoch 1)\n"
    assert live_state(alias) == "forced_open"
    assert run("breaker_force", alias, "open") == f"{alias}: already forced_open (epoch 1)\n"
    assert json.loads(run("breaker_force", alias, "disabled", "--json")) == {
        "alias": alias,
        "state": "disabled",
        "epoch": 2,
        "changed": True,
    }
    assert json.loads(run("breaker_force", alias, "closed", "--json"))["state"] == "closed"
    events = BreakerEvent.objects.filter(database__alias=alias)
    assert [(e.to_state, e.actor.startswith("command")) for e in events] == [
        ("forced_open", True),
        ("disabled", True),
        ("closed", True),
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["9-nothing", "open"], "unknown alias '9-nothing'"),
        (["1-default", "half_open"], "argument state: invalid choice: 'half_open'"),
        (["1-default", "forced_open"], "invalid choice"),
    ],
)
def test_breaker_force_refuses_unknown_aliases_and_states(alias, args, message):
    with pytest.raises(CommandError, match=message):
        run("breaker_force", *args)
    assert live_state(alias) == "closed"


def test_breaker_failover_moves_the_alias_to_the_next_healthy_candidate(alias, seed_databases, sent_tasks):
    a_port = seed_databases["a_port"]
    assert run("breaker_failover", alias) == f"{alias}: moved to 127.0.0.1:{a_port} (generation 2)\n"
    out = run("breaker_failover", alias, "--json")  # and back: B answers SELECT 1 too
    assert json.loads(out) == {"alias": alias, "status": "moved", "to": "127.0.0.1:5432", "generation": 3}
    assert SECRET not in out
    [first, second] = BreakerEvent.objects.filter(database__alias=alias, kind="failover")
    assert (first.moved_to, second.moved_to) == (f"127.0.0.1:{a_port}", "127.0.0.1:5432")


def test_breaker_failover_without_a_healthy_candidate_fails_and_stays(control_db, breaker):
    from breaker_worker.sandbox import free_port

    services.register_alias("2-down", [url(5432, "postgres"), url(free_port(), "nowhere")])
    with pytest.raises(CommandError, match="no healthy candidate answered"):
        run("breaker_failover", "2-down")
    assert services.get_store().states(["2-down"])["2-down"].generation == 1


def test_breaker_failover_refuses_an_unknown_alias(control_db, breaker):
    with pytest.raises(CommandError, match="unknown alias '9-nothing'"):
        run("breaker_failover", "9-nothing")
