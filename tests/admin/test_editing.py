"""Tenants, aliases and candidates edited in the admin: validated before anything is saved, and
an edit of the active server moves every process on (a new generation)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from breaker_worker import services
from breaker_worker.models import Candidate, Tenant, TenantDatabase
from breaker_worker.store import RedisBreakerStore, StoreUnavailableError

from .conftest import SECRET, change_url, messages_of
from .page import form_data, text

ADD = "admin:breaker_worker_breaker_add"


def post_form(client, path, form_id, **changes):
    """Load the form at ``path``, change some fields as a user would, submit it."""
    data = form_data(client.get(path), form_id)
    data.update({name: [str(value)] for name, value in changes.items()})
    return client.post(path, data)


def errors(response) -> str:
    assert response.status_code == 200, "the form was accepted"
    return text(response.content.decode())


def generation(alias):
    return (
        TenantDatabase.objects.get(alias=alias).generation,
        services.get_store().states([alias])[alias].generation,
    )


@pytest.fixture
def tenant_3(control_db):
    return Tenant.objects.create(id=3, name="Sales")


def new_breaker(**overrides):
    data = {
        "alias": "3-sales",
        "tenant": "3",
        "probe_sql": "SELECT 1",
        "candidates-TOTAL_FORMS": "2",
        "candidates-INITIAL_FORMS": "0",
        "candidates-MIN_NUM_FORMS": "1",
        "candidates-MAX_NUM_FORMS": "1000",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "1000",
        "policy_override-TOTAL_FORMS": "0",
        "policy_override-INITIAL_FORMS": "0",
        "policy_override-MIN_NUM_FORMS": "0",
        "policy_override-MAX_NUM_FORMS": "1",
    }
    for index, port in enumerate((5432, 5433)):
        data.update(
            {
                f"candidates-{index}-position": str(index),
                f"candidates-{index}-host": "127.0.0.1",
                f"candidates-{index}-port": str(port),
                f"candidates-{index}-name": "sales",
                f"candidates-{index}-user": "postgres",
                f"candidates-{index}-password": SECRET,
            }
        )
    data.update(overrides)
    return data


def test_a_breaker_added_in_the_admin_is_registered_with_its_first_candidate_active(
    superuser_client, tenant_3, breaker
):
    response = superuser_client.post(reverse(ADD), new_breaker())
    assert response.status_code == 302
    database = TenantDatabase.objects.select_related("active_candidate").get(alias="3-sales")
    assert (database.tenant_id, database.active_candidate.port, database.active_candidate.password) == (3, 5432, SECRET)
    assert generation("3-sales") == (1, 1)  # Redis knows it: processes find it on first use


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("candidates-0-port", "0", "Ensure this value is greater than or equal to 1."),
        ("candidates-0-port", "70000", "Ensure this value is less than or equal to 65535."),
        ("candidates-0-port", "port", "Enter a whole number."),
        ("candidates-0-host", "", "This field is required."),
        ("candidates-0-host", "db host", "Enter a host name or address, without spaces."),
        ("candidates-1-name", "", "This field is required."),
        ("candidates-1-user", "", "This field is required."),
        ("candidates-1-position", "0", "Please correct the duplicate data for position"),
        ("alias", "sales", "An alias is <tenant id>-<name>, e.g. 1-default."),
        ("alias", "4-sales", "The alias 4-sales belongs to tenant 4, not 3."),
        ("probe_sql", "  ", "This field is required."),
        ("candidates-TOTAL_FORMS", "0", "Please submit at least 1 form."),
    ],
)
def test_invalid_input_is_refused_and_nothing_is_saved(superuser_client, tenant_3, breaker, field, value, message):
    page = errors(superuser_client.post(reverse(ADD), new_breaker(**{field: value})))
    assert message in page
    assert SECRET not in page
    assert not TenantDatabase.objects.filter(tenant_id__in=[3, 4]).exists() and not Candidate.objects.exists()


def test_editing_the_active_server_moves_every_process_to_a_new_generation(superuser_client, alias, seed_databases):
    path = change_url(alias)
    response = post_form(superuser_client, path, "breaker_form", **{"candidates-0-port": seed_databases["a_port"]})
    assert response.status_code == 302
    assert generation(alias) == (2, 2)
    active = TenantDatabase.objects.select_related("active_candidate").get(alias=alias).active_candidate
    assert (active.port, active.password) == (seed_databases["a_port"], SECRET)  # empty password field: kept


def test_editing_a_failover_candidate_keeps_the_generation(superuser_client, alias):
    path = change_url(alias)
    assert post_form(superuser_client, path, "breaker_form", **{"candidates-1-user": "reader"}).status_code == 302
    assert generation(alias) == (1, 1)
    assert Candidate.objects.get(database__alias=alias, position=1).user == "reader"


def test_a_new_password_is_stored_and_never_shown(superuser_client, alias):
    path = change_url(alias)
    post_form(superuser_client, path, "breaker_form", **{"candidates-1-password": "Brand-New-Pw-99"})
    assert Candidate.objects.get(database__alias=alias, position=1).password == "Brand-New-Pw-99"
    assert "Brand-New-Pw-99" not in superuser_client.get(path).content.decode()


def test_deleting_the_active_candidate_makes_the_next_one_active(superuser_client, alias, seed_databases):
    path = change_url(alias)
    assert post_form(superuser_client, path, "breaker_form", **{"candidates-0-DELETE": "on"}).status_code == 302
    database = TenantDatabase.objects.select_related("active_candidate").get(alias=alias)
    assert database.active_candidate.port == seed_databases["a_port"]
    assert generation(alias) == (2, 2)


def test_tenants_are_added_and_listed_with_their_aliases(superuser_client, alias):
    response = superuser_client.post(reverse("admin:breaker_worker_tenant_add"), {"id": "7", "name": "Globex"})
    assert response.status_code == 302
    listed = text(superuser_client.get(reverse("admin:breaker_worker_tenant_changelist")).content.decode())
    assert "Globex" in listed and "1-default" in listed
    assert "Enter a whole number." in errors(
        superuser_client.post(reverse("admin:breaker_worker_tenant_add"), {"id": "x", "name": "Bad"})
    )


def test_an_alias_keeps_at_least_one_candidate(superuser_client, alias):
    path = change_url(alias)
    changes = {"candidates-0-DELETE": "on", "candidates-1-DELETE": "on"}
    assert "Please submit at least 1 form." in errors(post_form(superuser_client, path, "breaker_form", **changes))
    assert Candidate.objects.filter(database__alias=alias).count() == 2


def test_redis_hears_of_a_new_generation_only_once_the_control_db_committed_it(
    superuser_client, alias, seed_databases, monkeypatch
):
    """A process told earlier would reload the old row and stay on the old server."""
    from django.db import connection

    told = []
    original = RedisBreakerStore.advance_generation

    def advance(store, name, number):
        committed = TenantDatabase.objects.get(alias=name).generation  # outside any transaction: committed
        told.append((connection.in_atomic_block, committed, number))
        return original(store, name, number)

    monkeypatch.setattr(RedisBreakerStore, "advance_generation", advance)
    response = post_form(
        superuser_client, change_url(alias), "breaker_form", **{"candidates-0-port": seed_databases["a_port"]}
    )
    assert response.status_code == 302
    assert told == [(False, 2, 2)]
    assert generation(alias) == (2, 2)


def test_a_save_rolled_back_leaves_redis_and_the_control_db_as_they_were(
    superuser_client, alias, seed_databases, monkeypatch
):
    from breaker_worker.admin import BreakerAdmin

    hints = []
    monkeypatch.setattr(RedisBreakerStore, "publish_pool_reset", lambda store, *args: hints.append(args))

    def fail(*args, **kwargs):
        raise RuntimeError("the response failed after the save")

    monkeypatch.setattr(BreakerAdmin, "response_change", fail)
    with pytest.raises(RuntimeError, match="the response failed"):
        post_form(
            superuser_client, change_url(alias), "breaker_form", **{"candidates-0-port": seed_databases["a_port"]}
        )
    assert generation(alias) == (1, 1)
    assert hints == []
    active = TenantDatabase.objects.select_related("active_candidate").get(alias=alias).active_candidate
    assert active.port == seed_databases["b_port"]


def test_when_redis_cannot_be_told_the_save_stands_and_the_user_is_told(
    superuser_client, alias, seed_databases, monkeypatch
):
    def down(*args):
        raise StoreUnavailableError("Redis at 127.0.0.1:6399 refused the connection")

    monkeypatch.setattr(RedisBreakerStore, "advance_generation", down)
    path = change_url(alias)
    data = form_data(superuser_client.get(path), "breaker_form")
    data["candidates-0-port"] = [str(seed_databases["a_port"])]
    response = superuser_client.post(path, data, follow=True)
    assert (
        "Saved, but Redis could not be told (Redis at 127.0.0.1:6399 refused the connection): processes keep "
        "the old server." in messages_of(response)
    )
    assert TenantDatabase.objects.get(alias=alias).generation == 2


def test_the_admin_history_says_a_password_changed_only_when_it_did(superuser_client, alias):
    from django.contrib.admin.models import LogEntry

    path = change_url(alias)
    post_form(superuser_client, path, "breaker_form", **{"candidates-1-user": "reader"})
    post_form(superuser_client, path, "breaker_form", **{"candidates-1-password": "Brand-New-Pw-99"})
    first, second = (entry.get_change_message() for entry in LogEntry.objects.order_by("action_time", "id"))
    assert first.startswith("Changed User for candidate") and "password" not in first
    assert second.startswith("Changed password for candidate") and "Brand-New-Pw-99" not in second
