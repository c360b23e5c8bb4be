"""The breaker list: live state from Redis in one read per page, filters, search, permissions."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from breaker_worker import services
from breaker_worker.core.machine import State
from breaker_worker.core.window import Counts
from breaker_worker.models import Tenant
from breaker_worker.store import RedisBreakerStore
from breaker_worker.store.base import OutcomeBatch
from tests.conftest import url

from .conftest import CHANGELIST
from .page import changelist_rows, text


@pytest.fixture
def two_aliases(alias, seed_databases, store):
    """1-default tripped open; 2-reports closed with 5 failures in 20 calls."""
    services.register_alias("2-reports", [url(seed_databases["b_port"], seed_databases["name"])])
    Tenant.objects.filter(id=1).update(name="Acme Corp")
    now = time.time()
    store.transition("1-default", State.CLOSED, 0, State.OPEN, now - 75, "test trip", open_until=now + 60)
    store.record([OutcomeBatch("2-reports", 1, {int(now): Counts(20, 5, 0)})], now)
    return seed_databases


def by_alias(response) -> dict[str, dict[str, str]]:
    assert response.status_code == 200
    return {row["alias"]: row for row in changelist_rows(response)}


def test_the_list_shows_each_breakers_live_state_window_server_and_time_in_state(superuser_client, two_aliases):
    rows = by_alias(superuser_client.get(reverse(CHANGELIST)))
    assert set(rows) == {"1-default", "2-reports"}
    assert {k: rows["1-default"][k] for k in ("tenant", "state", "failure rate", "calls / fails", "epoch")} == {
        "tenant": "Acme Corp",
        "state": "open",
        "failure rate": "–",
        "calls / fails": "0 / 0",
        "epoch": "1",
    }
    assert rows["1-default"]["active server"] == f"127.0.0.1:{two_aliases['b_port']}"
    assert rows["1-default"]["in state for"] in ("1 min 15 s", "1 min 16 s")
    assert {k: rows["2-reports"][k] for k in ("tenant", "state", "failure rate", "calls / fails", "gen.")} == {
        "tenant": "tenant 2",
        "state": "closed",
        "failure rate": "25%",
        "calls / fails": "20 / 5",
        "gen.": "1",
    }


def test_the_state_badge_is_coloured_by_state(superuser_client, two_aliases):
    page = superuser_client.get(reverse(CHANGELIST)).content.decode()
    assert '<span class="tb-badge tb-open">open</span>' in page
    assert '<span class="tb-badge tb-closed">closed</span>' in page
    assert "breaker_worker/admin.css" in page


def test_the_list_is_live_not_a_mirror(superuser_client, two_aliases, store):
    store.transition("2-reports", State.CLOSED, 0, State.FORCED_OPEN, time.time(), "elsewhere")
    assert by_alias(superuser_client.get(reverse(CHANGELIST)))["2-reports"]["state"] == "forced open"


def test_one_page_reads_redis_once_whatever_the_number_of_rows(superuser_client, two_aliases, monkeypatch):
    calls = {"states": 0, "views": 0}
    for name in calls:
        original = getattr(RedisBreakerStore, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(RedisBreakerStore, name, counting)
    assert len(by_alias(superuser_client.get(reverse(CHANGELIST)))) == 2
    assert calls == {"states": 1, "views": 1}


@pytest.mark.parametrize("state, expected", [("open", {"1-default"}), ("closed", {"2-reports"}), ("half_open", set())])
def test_the_state_filter_uses_the_live_state(superuser_client, two_aliases, state, expected):
    response = superuser_client.get(reverse(CHANGELIST), {"state": state})
    assert set(by_alias(response)) == expected


@pytest.mark.parametrize(
    "query, expected",
    [("reports", {"2-reports"}), ("acme", {"1-default"}), ("2", {"2-reports"}), ("nothing", set())],
)
def test_search_by_alias_tenant_name_or_id(superuser_client, two_aliases, query, expected):
    assert set(by_alias(superuser_client.get(reverse(CHANGELIST), {"q": query}))) == expected


def test_without_redis_the_list_still_answers_and_says_so(superuser_client, two_aliases, settings):
    from breaker_worker.sandbox import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    services.get_store.cache_clear()
    response = superuser_client.get(reverse(CHANGELIST))
    rows = by_alias(response)
    assert {row["state"] for row in rows.values()} == {"unknown"}
    assert "Live breaker states are unavailable" in response.content.decode()


def test_staff_without_a_breaker_permission_cannot_see_the_list(login, two_aliases):
    assert login("visitor").get(reverse(CHANGELIST)).status_code == 403
    assert login("viewer", "view_breaker").get(reverse(CHANGELIST)).status_code == 200


def test_breakers_held_back_by_the_mass_outage_guard_are_tagged_and_the_list_says_why(
    superuser_client, two_aliases, store
):
    reason = "3 of 4 aliases tripped within 10s (> 50%): shared fault suspected, failovers held back"
    store.set_guard(reason, ttl=60)
    response = superuser_client.get(reverse(CHANGELIST))
    rows = by_alias(response)
    assert (rows["1-default"]["state"], rows["2-reports"]["state"]) == ("open guarded", "closed")
    page = response.content.decode()
    assert page.count('<span class="tb-tag tb-guarded"') == 1
    assert f"Mass outage guard: {reason}. Breakers tagged “guarded” still reject queries" in text(page)

    store.clear_guard()
    rows = by_alias(superuser_client.get(reverse(CHANGELIST)))
    assert rows["1-default"]["state"] == "open"
