"""Django admin: breakers live from Redis with operator actions, their candidates (passwords
write-only) and history, and tenants."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.forms import Script
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters

from . import services
from .actions import PROBE_RELOAD_SECONDS, BreakerActions, pending_probe
from .core.machine import State
from .forms import BreakerForm, CandidateForm
from .models import Breaker, BreakerEvent, BreakerPolicy, Candidate, Tenant, TenantDatabase
from .selectors import breaker_states, breaker_statuses, latest_probe
from .store import StoreUnavailableError

UNKNOWN = "unknown"  # the state shown when Redis did not answer


def badge(state: str) -> str:
    return format_html('<span class="tb-badge tb-{}">{}</span>', state, state.replace("_", " "))


def guarded_tag(reason: str) -> str:
    return format_html('<span class="tb-tag tb-guarded" title="Mass outage guard: {}">guarded</span>', reason)


def utc_time(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def with_unit(name: str, value: float) -> str:
    if name.endswith("_seconds") or name == "evaluate_every":
        return f"{value:g} s"
    if name.endswith("_rate"):
        return f"{value:g} %"
    return f"{value:g}"


def live_statuses(request, aliases: list[str]) -> dict[str, dict]:
    """One pipelined read of Redis for all the aliases of a page; {} (and a message) if it fails."""
    if not aliases:
        return {}
    try:
        return {status["alias"]: status for status in breaker_statuses(aliases)}
    except StoreUnavailableError as exc:
        messages.error(request, f"Live breaker states are unavailable: {exc}")
        return {}


class BreakerChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        live = live_statuses(request, [breaker.alias for breaker in self.result_list])
        for breaker in self.result_list:
            breaker.live = live.get(breaker.alias)
        guard = next((status["guard_reason"] for status in live.values() if status["guarded"]), None)
        if guard is not None:
            messages.warning(
                request,
                f"Mass outage guard: {guard}. Breakers tagged “guarded” still reject queries but do not "
                "fail over while it lasts.",
            )


class StateFilter(admin.SimpleListFilter):
    """Filters by the live state in Redis, not by anything stored in the control DB."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(state.value, state.value.replace("_", " ")) for state in State]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            states = breaker_states(list(queryset.values_list("alias", flat=True)))
        except StoreUnavailableError as exc:
            messages.error(request, f"Cannot filter by state: {exc}")
            return queryset.none()
        return queryset.filter(alias__in=[alias for alias, state in states.items() if state == self.value()])


class BreakerPermissionInline:
    """Inlines of a breaker follow the breaker's permissions, not those of their own models."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("breaker_worker.view_breaker") or self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("breaker_worker.change_breaker")

    def has_add_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)


class CandidateInline(BreakerPermissionInline, admin.TabularInline):
    model = Candidate
    form = CandidateForm
    fields = ["position", "role", "host", "port", "name", "user", "password"]
    readonly_fields = ["role"]
    ordering = ["position"]
    extra = 0
    min_num = 1
    classes = ["tb-candidates"]

    def get_formset(self, request, obj=None, **kwargs):
        return super().get_formset(request, obj, validate_min=True, **kwargs)  # an alias needs a server

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return self.fields
        # Read-only rows would print every field's value: show whether a password is set instead.
        return [("password_set" if name == "password" else name) for name in self.fields]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "password_set"]

    @admin.display(description="password")
    def password_set(self, candidate):
        return "set" if candidate.password else "none"

    @admin.display(description="role")
    def role(self, candidate):
        if candidate.pk and candidate.pk == candidate.database.active_candidate_id:
            return mark_safe('<span class="tb-tag tb-active">active</span>')
        return "failover" if candidate.pk else ""


class BreakerPolicyInline(BreakerPermissionInline, admin.StackedInline):
    """This alias's overrides of the default policy; the running evaluator and every process
    take a saved change within a poll, without a restart."""

    model = BreakerPolicy
    verbose_name = "policy override"
    verbose_name_plural = "policy overrides (empty fields inherit the BREAKER_* defaults)"
    fields = list(BreakerPolicy.OVERRIDABLE)
    max_num = 1
    extra = 0
    can_delete = True
    classes = ["tb-policy"]


class BreakerEventInline(BreakerPermissionInline, admin.TabularInline):
    model = BreakerEvent
    verbose_name_plural = "history (newest first)"
    fields = ["time", "kind_tag", "change", "reason", "rate", "calls", "epoch", "generation", "actor"]
    readonly_fields = fields
    ordering = ["-at", "-id"]
    extra = 0
    can_delete = False
    classes = ["tb-history"]
    empty_value_display = "–"

    def has_view_permission(self, request, obj=None):
        perms = ("breaker_worker.view_breaker", "breaker_worker.change_breaker")
        return any(request.user.has_perm(perm) for perm in perms)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # history is written by the services only

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="time (UTC)")
    def time(self, event):
        return utc_time(event.at)

    @admin.display(description="kind")
    def kind_tag(self, event):
        return format_html('<span class="tb-tag tb-kind-{}">{}</span>', event.kind, event.kind)

    @admin.display(description="from → to")
    def change(self, event):
        if event.from_state == event.to_state:
            return badge(event.to_state)
        return format_html("{} → {}", badge(event.from_state), badge(event.to_state))

    @admin.display(description="failure rate")
    def rate(self, event):
        return percent(event.failure_rate)


@admin.register(Breaker)
class BreakerAdmin(BreakerActions, admin.ModelAdmin):
    form = BreakerForm
    list_display = [
        "alias",
        "tenant",
        "state",
        "failure_rate",
        "calls",
        "server",
        "generation_shown",
        "epoch",
        "in_state_for",
    ]
    list_filter = [StateFilter]
    empty_value_display = "–"
    search_fields = ["alias", "tenant__name", "=tenant__id"]
    list_select_related = ["tenant", "active_candidate"]
    inlines = [BreakerPolicyInline, CandidateInline, BreakerEventInline]

    class Media:
        css = {"all": ["breaker_worker/admin.css"]}
        js = [Script("breaker_worker/reload.js", defer=True)]  # a file, not inline: CSP allows 'self'

    def get_changelist(self, request, **kwargs):
        return BreakerChangeList

    def get_object(self, request, object_id, from_field=None):
        breaker = super().get_object(request, object_id, from_field)
        if breaker is not None:
            breaker.live = live_statuses(request, [breaker.alias]).get(breaker.alias)
            breaker.latest_probe_event = latest_probe(breaker)
            # Only a page fetched with GET may reload itself: reloading a POST's answer resubmits.
            asked = pending_probe(request, breaker.alias, breaker.latest_probe_event)
            breaker.pending_probe = asked if request.method == "GET" else None
            breaker.editable = self.has_change_permission(request, breaker)
        return breaker

    def get_readonly_fields(self, request, obj=None):
        live = ["state", "guard", "reason", "failure_rate", "calls", "server", "generation", "epoch", "in_state_for"]
        frozen = ["alias", "tenant"] if obj is not None else []  # Redis keys and history hang on the alias
        return [*frozen, *live, "latest_probe", "policy"]

    def get_fieldsets(self, request, obj=None):
        alias = (None, {"fields": ["alias", "tenant", "probe_sql"]})
        if obj is None:
            return [alias]
        guarded = ["guard"] if self._live(obj, "guarded", False) else []
        return [
            alias,
            (
                "Live state (from Redis)",
                {
                    "fields": [
                        ("state", "in_state_for"),
                        *guarded,
                        "reason",
                        ("failure_rate", "calls"),
                        "server",
                        ("generation", "epoch"),
                    ]
                },
            ),
            ("Latest probe", {"fields": ["latest_probe"]}),
            ("Policy", {"fields": ["policy"], "classes": ["tb-policy"]}),
        ]

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        if self.has_change_permission(request, obj):
            return inlines
        # The effective policy above already shows a read-only user every override.
        return [inline for inline in inlines if not isinstance(inline, BreakerPolicyInline)]

    # Deleting an alias here would bypass the services: its Redis keys would stay behind and the
    # cascade would take its history along. There is no bulk "Delete selected" either.
    def has_delete_permission(self, request, obj=None):
        return False

    @method_decorator(sensitive_post_parameters())  # error reports never show a posted password
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        obj.active_before = self._active_settings(obj.pk) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        breaker = form.instance
        changed = change and self._active_settings(breaker.pk) != breaker.active_before
        if services.candidates_edited(breaker.alias, created=not change, active_changed=changed):
            # The admin saves in transaction.atomic: Redis must hear of the edit only once it is
            # committed, or a process told early reloads the old row, and a rollback leaves Redis
            # ahead of the control DB for ever.
            transaction.on_commit(lambda: self._announce(request, breaker.alias, created=not change))

    @staticmethod
    def _announce(request, alias: str, created: bool) -> None:
        try:
            services.announce_edit(alias, created)
        except StoreUnavailableError as exc:
            # After the commit, still within the request: the messages middleware stores it on the way out.
            messages.error(request, f"Saved, but Redis could not be told ({exc}): processes keep the old server.")

    @staticmethod
    def _active_settings(pk) -> tuple | None:
        """What processes connect with: compared before and after a save to decide on a reconnect."""
        fields = ["host", "port", "name", "user", "password"]
        columns = [f"active_candidate__{field}" for field in fields]
        return TenantDatabase.objects.filter(pk=pk).values_list("active_candidate_id", *columns, "probe_sql").first()

    # --- live columns (BreakerChangeList and get_object attach ``live``) ----------------------

    @staticmethod
    def _live(breaker, key, default=None):
        live = getattr(breaker, "live", None)
        return default if live is None else live[key]

    @admin.display(description="state")
    def state(self, breaker):
        shown = badge(self._live(breaker, "state", UNKNOWN))
        if self._live(breaker, "guarded", False):
            return format_html("{} {}", shown, guarded_tag(breaker.live["guard_reason"]))
        return shown

    @admin.display(description="mass outage guard")
    def guard(self, breaker):
        return format_html(
            '<span class="tb-guard-reason">{}</span><div class="tb-muted">No failover while it lasts '
            "(“Fail over now” still moves this alias); the breaker goes on rejecting queries.</div>",
            breaker.live["guard_reason"],
        )

    @admin.display(description="reason")
    def reason(self, breaker):
        reason = self._live(breaker, "reason") or "–"
        retry_after = self._live(breaker, "retry_after")
        return reason if retry_after is None else f"{reason} (half-open in {retry_after:.0f} s at the latest)"

    @admin.display(description="failure rate")
    def failure_rate(self, breaker):
        return percent(self._live(breaker, "failure_rate"))

    @admin.display(description="calls / fails")
    def calls(self, breaker):
        if getattr(breaker, "live", None) is None:
            return "–"
        return f"{breaker.live['calls']} / {breaker.live['failures']}"

    @admin.display(description="active server")
    def server(self, breaker):
        candidate = breaker.active_candidate
        return "–" if candidate is None else f"{candidate.host}:{candidate.port}"

    @admin.display(description="gen.")
    def generation_shown(self, breaker):
        return breaker.generation

    @admin.display(description="epoch")
    def epoch(self, breaker):
        return self._live(breaker, "epoch", "–")

    @admin.display(description="in state for")
    def in_state_for(self, breaker):
        since = self._live(breaker, "since")
        return "–" if not since else duration(time.time() - since)

    @admin.display(description="result")
    def latest_probe(self, breaker):
        event = getattr(breaker, "latest_probe_event", None)
        asked = getattr(breaker, "pending_probe", None)
        result = self._probe_result(event)
        if asked is None:
            return result
        enqueued = utc_time(datetime.fromtimestamp(asked.enqueued_at, UTC))
        if asked.reloading:
            # reload.js reloads the page after data-tb-reload seconds, unless the form was edited.
            status = format_html(
                '<span class="tb-tag tb-probe-pending" data-tb-reload="{}">pending</span> enqueued at {} UTC, '
                '{} ago. <span class="tb-muted tb-reload-note">This page reloads itself until the result '
                "arrives.</span>",
                PROBE_RELOAD_SECONDS,
                enqueued,
                duration(asked.waited),
            )
        else:
            status = format_html(
                '<span class="tb-tag tb-probe-late">no result yet</span> enqueued at {} UTC, {} ago: is a '
                'celery worker running? <span class="tb-muted">Reload to check again.</span>',
                enqueued,
                duration(asked.waited),
            )
        if event is None:
            return status
        return format_html(
            '{}<div class="tb-previous"><span class="tb-muted">previous:</span> {}</div>', status, result
        )

    @staticmethod
    def _probe_result(event: BreakerEvent | None) -> str:
        if event is None:
            return "No probe yet: use the “Probe now” action on the breaker list."
        verdicts = ("succeeded", "failed", "skipped")
        verdict = next((v for v in verdicts if event.reason.startswith(f"probe {v}")), "done")
        detail = event.reason.removeprefix(f"probe {verdict}").lstrip(": ")  # the tag says it
        return format_html(
            '<span class="tb-tag tb-probe-{}">{}</span> {} <span class="tb-muted">by {}, {} ago ({} UTC)</span>',
            verdict,
            verdict,
            detail,
            event.actor,
            duration((timezone.now() - event.at).total_seconds()),
            utc_time(event.at),
        )

    @admin.display(description="effective policy")
    def policy(self, breaker):
        try:
            policy = services.policy_for(breaker.alias)
        except StoreUnavailableError:
            policy = settings.BREAKER_POLICY  # the overrides' version lives in Redis
        override = BreakerPolicy.objects.filter(database_id=breaker.pk).first()
        overridden = override.overrides() if override else {}
        rows = format_html_join(
            "",
            '<tr class="{}"><th>{}</th><td>{}</td><td>{}</td></tr>',
            (
                (
                    "tb-overridden" if f.name in overridden else "",
                    f.name.replace("_", " "),
                    with_unit(f.name, getattr(policy, f.name)),
                    "this alias" if f.name in overridden else "default",
                )
                for f in dataclasses.fields(policy)
            ),
        )
        return format_html(
            '<table class="tb-policy-table"><thead><tr><th>setting</th><th>value</th><th>from</th></tr></thead>'
            '{}</table><p class="tb-muted">The BREAKER_* defaults with this alias\'s overrides{}.</p>',
            rows,
            " (edit them under Policy overrides below)" if getattr(breaker, "editable", False) else "",
        )


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "aliases"]
    search_fields = ["=id", "name"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would cascade to aliases, as a breaker's delete would
        return actions

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.databases.exists():
            return False  # deleting it would delete its aliases and their history behind the services' back
        return super().has_delete_permission(request, obj)

    @admin.display(description="aliases")
    def aliases(self, tenant):
        return ", ".join(database.alias for database in tenant.databases.all()) or "–"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("databases")
