"""A breaker's page: live state, candidates in order with write-only passwords, history newest
first, the latest probe, the effective policy and its per-alias overrides (editable)."""

from __future__ import annotations

import time

from breaker_worker import services
from breaker_worker.core.machine import State

from .conftest import SECRET, change_url
from .page import form_data, form_row, inline_rows, table, text


def test_candidates_are_listed_in_order_with_the_active_one_marked(superuser_client, alias, seed_databases):
    response = superuser_client.get(change_url(alias))
    fields = form_data(response, "breaker_form")
    assert [(fields[f"candidates-{i}-position"], fields[f"candidates-{i}-port"]) for i in (0, 1)] == [
        (["0"], [str(seed_databases["b_port"])]),
        (["1"], [str(seed_databases["a_port"])]),
    ]
    assert [row["role"] for row in inline_rows(response, "candidates")] == ["active", "failover"]


def test_no_password_is_in_the_page_source(superuser_client, alias):
    response = superuser_client.get(change_url(alias))
    page = response.content.decode()
    assert SECRET not in page
    fields = form_data(response, "breaker_form")
    assert fields["candidates-0-password"] == fields["candidates-1-password"] == [""]  # rendered empty
    assert 'type="password" name="candidates-0-password"' in page


def test_a_read_only_page_says_whether_a_password_is_set_never_which(login, alias):
    response = login("viewer", "view_breaker").get(change_url(alias))
    assert SECRET not in response.content.decode()
    assert [row["password"] for row in inline_rows(response, "candidates")] == ["set", "set"]


def test_history_is_newest_first_with_who_did_what(superuser_client, alias, sent_tasks):
    services.force_state(alias, State.FORCED_OPEN, "alice")
    services.force_state(alias, State.CLOSED, "bob")
    rows = inline_rows(superuser_client.get(change_url(alias)), "events")
    assert [(row["kind"], row["from → to"], row["reason"], row["actor"]) for row in rows] == [
        ("transition", "forced open → closed", "set by bob", "bob"),
        ("transition", "closed → forced open", "set by alice", "alice"),
    ]
    assert all(row["time (utc)"].startswith(time.strftime("%Y-", time.gmtime())) for row in rows)


def test_the_live_state_is_shown_with_its_reason(superuser_client, alias, store):
    now = time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, now - 5, "failure rate 100% >= 50%", open_until=now + 30)
    page = superuser_client.get(change_url(alias)).content.decode()
    assert '<span class="tb-badge tb-open">open</span>' in page
    assert "failure rate 100% &gt;= 50% (half-open in 30 s at the latest)" in page or (
        "failure rate 100% &gt;= 50% (half-open in 29 s at the latest)" in page
    )


def test_the_latest_probe_result_is_shown_once_it_arrives(superuser_client, alias, sent_tasks):
    assert "No probe yet" in text(superuser_client.get(change_url(alias)).content.decode())
    services.probe(alias, actor="alice")  # what the probe task does when a worker runs it
    page = text(superuser_client.get(change_url(alias)).content.decode())
    assert 'failed probe query on 127.0.0.1:5432 failed: relation "test_app_users" does not exist' in page
    assert "by alice" in page


def test_the_effective_policy_is_shown(superuser_client, alias, settings):
    response = superuser_client.get(change_url(alias))
    html = response.content.decode()
    policy = {row["setting"]: row["value"] for row in table(html[html.index('class="tb-policy-table"') - 7 :])}
    assert policy["failure rate"] == f"{settings.BREAKER_POLICY.failure_rate:g} %"
    assert policy["window seconds"] == f"{settings.BREAKER_POLICY.window_seconds} s"
    assert policy["probes"] == str(settings.BREAKER_POLICY.probes)
    assert "edit them under Policy overrides below" in text(html)


def test_overridden_settings_are_marked_and_a_read_only_user_sees_no_empty_override_form(
    superuser_client, login, alias
):
    response = superuser_client.get(change_url(alias))
    superuser_client.post(change_url(alias), policy_post(response, failure_rate=25))
    page = login("viewer", "view_breaker").get(change_url(alias)).content.decode()
    policy = {row["setting"]: row["from"] for row in table(page[page.index('class="tb-policy-table"') - 7 :])}
    assert (policy["failure rate"], policy["window seconds"]) == ("this alias", "default")
    assert 'id="policy_override-group"' not in page
    assert "edit them under" not in text(page)


def policy_post(response, **values) -> dict:
    fields = {name: value[0] if value else "" for name, value in form_data(response, "breaker_form").items()}
    fields.update({f"policy_override-0-{name}": str(value) for name, value in values.items()})
    fields["policy_override-TOTAL_FORMS"] = "1"
    return fields


def test_a_policy_override_saved_in_the_admin_applies_without_a_restart(superuser_client, alias, settings):
    before = services.policy_for(alias)
    response = superuser_client.get(change_url(alias))
    saved = superuser_client.post(change_url(alias), policy_post(response, failure_rate=25, window_seconds=30))
    assert saved.status_code == 302, text(saved.content.decode())[:2000]

    after = services.policy_for(alias)  # what the running evaluator reads on its next tick
    assert (after.failure_rate, after.window_seconds) == (25.0, 30)
    assert after.minimum_calls == before.minimum_calls == settings.BREAKER_POLICY.minimum_calls  # inherited
    page = superuser_client.get(change_url(alias)).content.decode()
    policy = {row["setting"]: row["value"] for row in table(page[page.index('class="tb-policy-table"') - 7 :])}
    assert (policy["failure rate"], policy["window seconds"]) == ("25 %", "30 s")


def test_an_out_of_range_policy_value_is_refused_with_the_field_and_range(superuser_client, alias):
    response = superuser_client.get(change_url(alias))
    refused = superuser_client.post(change_url(alias), policy_post(response, failure_rate=250))
    assert refused.status_code == 200
    assert "failure_rate must be between 1.0 and 100.0, got 250.0" in text(refused.content.decode())
    assert services.policy_for(alias).failure_rate == 50.0


def test_a_breaker_held_back_by_the_mass_outage_guard_is_tagged_with_the_guards_reason(superuser_client, alias, store):
    reason = "4 of 5 aliases tripped within 10s (> 50%): shared fault suspected, failovers held back"
    now = time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, now, "failure rate 100% >= 50%", open_until=now + 30)
    store.set_guard(reason, ttl=60)
    html = superuser_client.get(change_url(alias)).content.decode()
    assert form_row(html, "state").startswith("State: open guarded In state for:")
    assert f'title="Mass outage guard: {reason}">guarded</span>' in html.replace("&gt;", ">")
    assert form_row(html, "guard") == (
        f"Mass outage guard: {reason} No failover while it lasts (“Fail over now” still moves this alias); "
        "the breaker goes on rejecting queries."
    )

    store.clear_guard()
    html = superuser_client.get(change_url(alias)).content.decode()
    assert "guarded" not in text(html) and "Mass outage guard" not in text(html)


def test_the_guard_does_not_tag_a_closed_breaker(superuser_client, alias, store):
    store.set_guard("shared fault suspected", ttl=60)
    assert "guarded" not in text(superuser_client.get(change_url(alias)).content.decode())
