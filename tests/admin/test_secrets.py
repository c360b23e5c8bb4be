"""No candidate password in any admin page's source: list, breaker page, add form, object
history, messages, nor in the error report of a save that failed."""

from __future__ import annotations

import sys

import pytest
from django.core.signals import got_request_exception
from django.urls import reverse
from django.views.debug import ExceptionReporter

from breaker_worker import services
from breaker_worker.admin import BreakerAdmin
from breaker_worker.models import Breaker

from .conftest import CHANGELIST, SECRET, change_url, run_action
from .test_editing import post_form

NEW = "Fresh-Secret-Pw-4242"


def test_no_password_on_any_page_of_a_breaker_after_probes_edits_and_actions(superuser_client, alias, sent_tasks):
    path = change_url(alias)
    services.probe(alias, actor="root")  # a failed probe writes its driver message to the history
    post_form(superuser_client, path, "breaker_form", **{"candidates-1-password": NEW})
    pk = Breaker.objects.get(alias=alias).pk
    pages = [
        superuser_client.get(reverse(CHANGELIST)),
        superuser_client.get(path),
        superuser_client.get(reverse("admin:breaker_worker_breaker_history", args=[pk])),
        superuser_client.get(reverse("admin:breaker_worker_breaker_add")),
        superuser_client.get(reverse("admin:breaker_worker_tenant_changelist")),
        run_action(superuser_client, "test_connection", alias),
        run_action(superuser_client, "probe_now", alias),
    ]
    assert [page.status_code for page in pages] == [200] * len(pages)
    for page in pages:
        source = page.content.decode()
        assert SECRET not in source and NEW not in source


def test_the_error_report_of_a_failed_save_shows_no_posted_password(superuser_client, alias, settings, monkeypatch):
    settings.DEBUG = False  # as in production, where reports are mailed or logged
    failures = []

    def remember(sender, request, **kwargs):
        failures.append((request, *sys.exc_info()))  # the frames of the request, as a server reports them

    def fail(*args, **kwargs):
        raise RuntimeError("the response failed after the save")

    got_request_exception.connect(remember)
    monkeypatch.setattr(BreakerAdmin, "response_change", fail)
    try:
        with pytest.raises(RuntimeError):
            post_form(superuser_client, change_url(alias), "breaker_form", **{"candidates-0-password": NEW})
    finally:
        got_request_exception.disconnect(remember)
    [(request, *exc_info)] = failures
    reporter = ExceptionReporter(request, *exc_info)
    for report in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert "candidates-0-password" in report  # the report lists the POST, values hidden
        assert NEW not in report and SECRET not in report
