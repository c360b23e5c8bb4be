"""Operator actions: each goes through the services, names the user in the history, reports a
pluralised count, and needs its own permission."""

from __future__ import annotations

import pytest
from django.urls import reverse

from breaker_worker import services, tasks
from breaker_worker.models import Breaker, BreakerEvent, Tenant
from tests.conftest import url

from .conftest import CHANGELIST, SECRET, change_url, run_action
from .page import text

ALL = ["view_breaker", "probe_breaker", "force_open_breaker", "reset_breaker", "disable_breaker", "fail_over_breaker"]
ACTIONS = {
    "probe_now": "probe_breaker",
    "force_open": "force_open_breaker",
    "reset_closed": "reset_breaker",
    "disable": "disable_breaker",
    "fail_over_now": "fail_over_breaker",
    "test_connection": "test_connection_breaker",
}


@pytest.fixture
def second(alias, seed_databases):
    services.register_alias("2-reports", [url(seed_databases["a_port"], seed_databases["name"], SECRET)])
    return "2-reports"


def state(alias):
    return services.get_store().states([alias])[alias].state.value


def history(alias):
    return [(e.kind, e.from_state, e.to_state, e.actor) for e in BreakerEvent.objects.filter(database__alias=alias)]


def page_text(response) -> str:
    assert response.status_code == 200
    return text(response.content.decode())


def test_probe_now_enqueues_one_probe_per_breaker_as_the_user(login, alias, second, sent_tasks):
    response = run_action(login("pat", "view_breaker", "probe_breaker"), "probe_now", alias, second)
    assert "Probe enqueued for 2 breakers" in page_text(response)
    assert sorted(sent_tasks) == [("breaker_worker.probe", [alias, "pat"]), ("breaker_worker.probe", [second, "pat"])]


def test_force_open_reset_and_disable_change_the_live_state_and_the_history(login, alias, second, sent_tasks):
    client = login("pat", *ALL)
    assert "Forced open: 2 breakers." in page_text(run_action(client, "force_open", alias, second))
    assert (state(alias), state(second)) == ("forced_open", "forced_open")
    assert "Forced open: 0 breakers (1 breaker already forced open)." in page_text(
        run_action(client, "force_open", alias)
    )
    assert "Disabled: 1 breaker." in page_text(run_action(client, "disable", alias))
    assert "Reset to closed: 2 breakers." in page_text(run_action(client, "reset_closed", alias, second))
    assert (state(alias), state(second)) == ("closed", "closed")
    assert history(alias) == [
        ("transition", "closed", "forced_open", "pat"),
        ("transition", "forced_open", "disabled", "pat"),
        ("transition", "disabled", "closed", "pat"),
    ]
    assert sent_tasks == []  # forcing open is the operator's call: no failover


def test_fail_over_now_enqueues_the_task_and_the_move_lands_in_the_history(
    login, alias, seed_databases, sent_tasks, superuser_client
):
    response = run_action(login("pat", "view_breaker", "fail_over_breaker"), "fail_over_now", alias)
    assert "Failover enqueued for 1 breaker" in page_text(response)
    assert sent_tasks == [("breaker_worker.fail_over_now", [alias, "pat"])]
    tasks.fail_over_now(*sent_tasks[0][1])  # what the worker runs
    [event] = BreakerEvent.objects.filter(database__alias=alias, kind="failover")
    assert (event.actor, event.moved_to) == ("pat", f"127.0.0.1:{seed_databases['a_port']}")


def test_test_connection_reports_each_candidate_without_the_password(login, alias, seed_databases):
    client = login("pat", "view_breaker", "test_connection_breaker")
    page = page_text(run_action(client, "test_connection", alias))
    name, a_port = seed_databases["name"], seed_databases["a_port"]
    assert (
        f'1-default #0 (active) 127.0.0.1:5432/{name}: probe query on 127.0.0.1:5432 failed: relation "test_app_users" '
        "does not exist" in page
    )
    assert f"1-default #1 (failover) 127.0.0.1:{a_port}/{name}: connection and probe query ok." in page
    assert SECRET not in page


def test_test_connection_reports_a_server_that_does_not_answer(login, seed_databases, control_db, breaker):
    from breaker_worker.sandbox import free_port

    port = free_port()
    services.register_alias("3-down", [url(port, "nowhere", SECRET)])
    page = page_text(run_action(login("pat", "view_breaker", "test_connection_breaker"), "test_connection", "3-down"))
    assert f"3-down #0 (active) 127.0.0.1:{port}/nowhere: connect to 127.0.0.1:{port} failed:" in page
    assert SECRET not in page


@pytest.mark.parametrize("action, permission", ACTIONS.items())
def test_each_action_needs_its_own_permission(login, alias, sent_tasks, action, permission):
    others = [codename for codename in ACTIONS.values() if codename != permission]
    client = login("pat", "view_breaker", *others)
    listed = client.get("/admin/breaker_worker/breaker/").content.decode()
    assert f'<option value="{action}">' not in listed
    assert all(f'<option value="{other}">' in listed for other in ACTIONS if other != action)
    response = run_action(client, action, alias)  # posted anyway, as a crafted request would
    assert "No action selected." in page_text(response)
    assert (state(alias), history(alias), sent_tasks) == ("closed", [], [])


def test_breakers_cannot_be_deleted_in_bulk_or_one_by_one(superuser_client, alias):
    """A delete here would bypass the services: Redis keys left behind, the history cascaded away."""
    listed = superuser_client.get(reverse(CHANGELIST)).content.decode()
    assert 'value="delete_selected"' not in listed
    response = run_action(superuser_client, "delete_selected", alias)  # posted anyway
    assert "No action selected." in page_text(response)
    pk = Breaker.objects.get(alias=alias).pk
    assert superuser_client.get(reverse("admin:breaker_worker_breaker_delete", args=[pk])).status_code == 403
    assert (
        superuser_client.post(reverse("admin:breaker_worker_breaker_delete", args=[pk]), {"post": "yes"}).status_code
        == 403
    )
    assert "deletelink" not in superuser_client.get(change_url(alias)).content.decode()
    assert Breaker.objects.filter(alias=alias).exists()
    assert BreakerEvent.objects.filter(database__alias=alias).count() == 0  # nothing else touched it


def test_a_tenant_with_aliases_cannot_be_deleted_and_there_is_no_bulk_delete(superuser_client, alias):
    tenants = reverse("admin:breaker_worker_tenant_changelist")
    assert 'value="delete_selected"' not in superuser_client.get(tenants).content.decode()
    assert superuser_client.get(reverse("admin:breaker_worker_tenant_delete", args=[1])).status_code == 403
    Tenant.objects.create(id=9, name="Empty")
    deleted = superuser_client.post(reverse("admin:breaker_worker_tenant_delete", args=[9]), {"post": "yes"})
    assert deleted.status_code == 302
    assert list(Tenant.objects.values_list("id", flat=True)) == [1]
