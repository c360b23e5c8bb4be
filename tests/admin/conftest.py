"""Admin fixtures: a registered seed alias, staff users with chosen permissions, a logged-in client."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from breaker_worker import services
from breaker_worker.models import Breaker
from tests.conftest import url

SECRET = "Admin-Secret-Pw-7731"
PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"
CHANGELIST = "admin:breaker_worker_breaker_changelist"


@pytest.fixture
def alias(control_db, breaker, seed_databases):
    """1-default on server B (no test_app_users) with server A as its failover candidate."""
    name = seed_databases["name"]
    services.register_alias(
        "1-default",
        [url(seed_databases["b_port"], name, SECRET), url(seed_databases["a_port"], name, SECRET)],
        PROBE_SQL,
    )
    return "1-default"


@pytest.fixture
def make_user(control_db):
    """make_user(name, *codenames): a staff user with those breaker_worker permissions."""
    from django.contrib.auth.models import Permission, User

    names = []

    def make(username: str, *codenames: str, superuser: bool = False) -> User:
        user = User.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
        names.append(username)
        return user

    yield make
    User.objects.filter(username__in=names).delete()


@pytest.fixture
def login(make_user):
    """login(name, *codenames) -> a test client logged in as a new staff user."""

    def as_user(username: str, *codenames: str, superuser: bool = False) -> Client:
        client = Client()
        client.force_login(make_user(username, *codenames, superuser=superuser))
        return client

    return as_user


@pytest.fixture
def superuser_client(login):
    return login("root", superuser=True)


def change_url(alias: str) -> str:
    return reverse("admin:breaker_worker_breaker_change", args=[Breaker.objects.get(alias=alias).pk])


def run_action(client: Client, action: str, *aliases: str):
    """Select the rows of ``aliases`` on the breaker list, run ``action``, follow the redirect."""
    pks = [Breaker.objects.get(alias=alias).pk for alias in aliases]
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": pks, "index": 0}, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]
