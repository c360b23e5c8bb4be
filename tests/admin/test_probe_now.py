"""“Probe now” reports its result on the page that asked: the breaker's page shows the probe as
pending and reloads itself (a script file, CSP-friendly) until the worker's history row arrives."""

from __future__ import annotations

import pytest

from breaker_worker import actions, services

from .conftest import change_url, messages_of, run_action
from .page import form_data, form_row

RELOADING = 'data-tb-reload="2"'


@pytest.fixture
def operator(login):
    return login("pat", "view_breaker", "change_breaker", "probe_breaker")


def latest(client, alias) -> tuple[str, str]:
    """(the page's html, the text of its latest probe field)"""
    html = client.get(change_url(alias)).content.decode()
    return html, form_row(html, "latest_probe")


def test_the_message_links_to_the_breaker_page_which_shows_the_probe_pending_then_its_result(
    operator, alias, sent_tasks
):
    response = run_action(operator, "probe_now", alias)
    [message] = messages_of(response)
    assert f'<a href="{change_url(alias)}">1-default</a>' in message
    assert sent_tasks == [("breaker_worker.probe", [alias, "pat"])]

    html, shown = latest(operator, alias)
    assert shown.startswith("Result: pending enqueued at ")
    assert "This page reloads itself until the result arrives." in shown
    assert RELOADING in html
    assert '<script src="/static/breaker_worker/reload.js" defer></script>' in html
    assert "<script>" not in html.split("<body", 1)[1]  # nothing inline: a strict CSP allows the page

    services.probe(alias, actor="pat")  # what the worker does with the task
    html, shown = latest(operator, alias)
    assert shown.startswith('Result: failed probe query on 127.0.0.1:5432 failed: relation "test_app_users"')
    assert RELOADING not in html and "pending" not in shown
    assert RELOADING not in latest(operator, alias)[0]  # answered: the session forgot it


def test_an_earlier_probe_result_does_not_end_the_wait(operator, alias, sent_tasks):
    services.probe(alias, actor="someone")
    run_action(operator, "probe_now", alias)
    html, shown = latest(operator, alias)
    assert RELOADING in html
    assert shown.startswith("Result: pending enqueued at ")
    assert "previous: failed probe query on 127.0.0.1:5432" in shown and "by someone" in shown


def test_after_30_seconds_without_a_result_the_page_stops_reloading_and_says_why(operator, alias, sent_tasks):
    run_action(operator, "probe_now", alias)
    session = operator.session
    session[actions.PENDING_PROBES][alias][0] -= actions.PROBE_WAIT_SECONDS + 1
    session.save()
    html, shown = latest(operator, alias)
    assert RELOADING not in html
    assert "no result yet enqueued at " in shown and "UTC, 31 s ago: is a celery worker running?" in shown


def test_only_the_session_that_asked_waits(operator, login, alias, sent_tasks):
    run_action(operator, "probe_now", alias)
    html, shown = latest(login("other", "view_breaker"), alias)
    assert RELOADING not in html
    assert shown == "Result: No probe yet: use the “Probe now” action on the breaker list."


def test_a_page_answering_a_post_never_reloads_itself(operator, alias, sent_tasks):
    run_action(operator, "probe_now", alias)
    data = form_data(operator.get(change_url(alias)), "breaker_form")
    data["candidates-0-port"] = ["0"]  # refused: the answer is the form again, with the error
    refused = operator.post(change_url(alias), data)
    assert refused.status_code == 200
    assert RELOADING not in refused.content.decode()
    assert RELOADING in latest(operator, alias)[0]  # still waiting on the next GET
