"""Operator actions of the breaker admin: each calls a service (or enqueues its task) per row,
needs its own permission, and is recorded in the history with the user's name."""

from __future__ import annotations

import time
from dataclasses import dataclass

from celery import current_app
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .core.machine import State
from .db.probe import run_probe
from .models import BreakerEvent
from .selectors import latest_probe
from .services import InvalidConfigError, force_state
from .store import StoreUnavailableError

# The session remembers the probes its user asked for: alias -> [enqueued at, id of the alias's
# latest probe row then]. A breaker's page shows such a probe as pending, reloading itself, until
# a newer probe row arrives (ids, not times: the worker's clock may differ from the web's).
PENDING_PROBES = "breaker_worker.pending_probes"
PROBE_WAIT_SECONDS = 30  # a page reloads itself this long after the request, no longer
PROBE_RELOAD_SECONDS = 2
PROBE_FORGET_SECONDS = 600  # a request still unanswered by then is dropped from the session


def counted(count: int, noun: str = "breaker") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class PendingProbe:
    """A probe this session asked for whose result has not arrived yet."""

    enqueued_at: float
    waited: float  # seconds since the request

    @property
    def reloading(self) -> bool:
        return self.waited < PROBE_WAIT_SECONDS


def pending_probe(request, alias: str, latest: BreakerEvent | None, now: float | None = None) -> PendingProbe | None:
    """The probe of ``alias`` this session is waiting for, if any; forgets it once answered."""
    now = time.time() if now is None else now
    asked = request.session.get(PENDING_PROBES, {})
    if alias not in asked:
        return None
    enqueued_at, previous_id = asked[alias]
    if (latest is not None and latest.pk > previous_id) or now - enqueued_at > PROBE_FORGET_SECONDS:
        del asked[alias]
        request.session[PENDING_PROBES] = asked
        return None
    return PendingProbe(enqueued_at, max(0.0, now - enqueued_at))


class BreakerActions:
    """Mixed into BreakerAdmin. ``has_<name>_permission`` answers ``permissions=[<name>]``."""

    actions = ["probe_now", "force_open", "reset_closed", "disable", "fail_over_now", "test_connection"]

    def _allowed(self, request, codename: str) -> bool:
        return request.user.has_perm(f"breaker_worker.{codename}_breaker")

    def has_probe_permission(self, request) -> bool:
        return self._allowed(request, "probe")

    def has_force_open_permission(self, request) -> bool:
        return self._allowed(request, "force_open")

    def has_reset_permission(self, request) -> bool:
        return self._allowed(request, "reset")

    def has_disable_permission(self, request) -> bool:
        return self._allowed(request, "disable")

    def has_fail_over_permission(self, request) -> bool:
        return self._allowed(request, "fail_over")

    def has_test_connection_permission(self, request) -> bool:
        return self._allowed(request, "test_connection")

    @admin.action(description="Probe now", permissions=["probe"])
    def probe_now(self, request, queryset):
        breakers = list(queryset)
        asked = request.session.get(PENDING_PROBES, {})
        for breaker in breakers:
            latest = latest_probe(breaker)  # read before sending: a fast worker's row is newer
            asked[breaker.alias] = [time.time(), latest.pk if latest else 0]
            current_app.send_task("breaker_worker.probe", args=[breaker.alias, request.user.username])
        request.session[PENDING_PROBES] = asked
        pages = format_html_join(", ", '<a href="{}">{}</a>', ((self._page(b), b.alias) for b in breakers))
        self.message_user(
            request,
            format_html(
                "Probe enqueued for {}: {}. The result appears on the breaker's page as soon as it arrives.",
                counted(len(breakers)),
                pages,
            ),
        )

    def _page(self, breaker) -> str:
        return reverse("admin:breaker_worker_breaker_change", args=[breaker.pk], current_app=self.admin_site.name)

    @admin.action(description="Force open (reject every query)", permissions=["force_open"])
    def force_open(self, request, queryset):
        self._force(request, queryset, State.FORCED_OPEN, "Forced open")

    @admin.action(description="Reset to closed", permissions=["reset"])
    def reset_closed(self, request, queryset):
        self._force(request, queryset, State.CLOSED, "Reset to closed")

    @admin.action(description="Disable (record, never trip)", permissions=["disable"])
    def disable(self, request, queryset):
        self._force(request, queryset, State.DISABLED, "Disabled")

    def _force(self, request, queryset, state: State, done: str) -> None:
        changed = unchanged = 0
        for breaker in queryset:
            try:
                result = force_state(breaker.alias, state, request.user.username)
            except (InvalidConfigError, StoreUnavailableError) as exc:
                self.message_user(request, f"{breaker.alias}: {exc}", messages.ERROR)
                continue
            changed += bool(result["changed"])
            unchanged += not result["changed"]
        if changed or unchanged:
            already = f" ({counted(unchanged)} already {state.value.replace('_', ' ')})" if unchanged else ""
            self.message_user(request, f"{done}: {counted(changed)}{already}.")

    @admin.action(description="Fail over now", permissions=["fail_over"])
    def fail_over_now(self, request, queryset):
        aliases = [breaker.alias for breaker in queryset]
        for alias in aliases:
            # It probes candidates (seconds each when they are down): a worker does it.
            current_app.send_task("breaker_worker.fail_over_now", args=[alias, request.user.username])
        self.message_user(
            request, f"Failover enqueued for {counted(len(aliases))}: the move appears in each breaker's history."
        )

    @admin.action(description="Test connection to every candidate", permissions=["test_connection"])
    def test_connection(self, request, queryset):
        for breaker in queryset.prefetch_related("candidates"):
            for candidate in breaker.candidates.all():
                ok, detail = run_probe(candidate, breaker.probe_sql)
                role = "active" if candidate.pk == breaker.active_candidate_id else "failover"
                where = f"{breaker.alias} #{candidate.position} ({role}) {candidate}"
                if ok:
                    self.message_user(request, f"{where}: connection and probe query ok.", messages.SUCCESS)
                else:
                    if candidate.password:  # defence in depth: no driver message may echo it
                        detail = detail.replace(candidate.password, "********")
                    self.message_user(request, f"{where}: {detail}", messages.ERROR)
