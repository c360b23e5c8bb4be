"""The only code that changes breaker state: registration, evaluation, failover, probes."""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils.module_loading import import_string

from . import metrics
from .core.machine import BreakerView, State, check_transition, decide, next_reopens, open_wait
from .core.policy import Policy
from .core.window import Counts
from .db.probe import STATEMENT_TIMEOUT_SECONDS, run_probe
from .db.registry import ENGINE
from .db.target import Target
from .models import ALIAS_PATTERN, BreakerEvent, Candidate, Tenant, TenantDatabase
from .policies import PolicyBook
from .store import RedisBreakerStore, StoreUnavailableError

logger = logging.getLogger(__name__)


PROBE_RETRY_SECONDS = 15  # a breaker half-open this long without a verdict gets a new probe
FAILOVER_RETRY_SECONDS = 10  # an open breaker whose failover has not run after this long gets it again
RECONCILE_SECONDS = 30  # how often the evaluator checks that Redis knows every alias's generation
FAILBACK_CHECK_SECONDS = 5  # how often an alias away from its preferred server checks it


class InvalidConfigError(ValueError):
    """User input that cannot be stored; the message says which part and why."""


@functools.cache
def get_store() -> RedisBreakerStore:
    # Tasks and commands may wait a little for Redis; the query path never uses this client.
    return RedisBreakerStore.from_url(settings.REDIS_URL, timeout=3.0, retries=1)


# --- policies ---------------------------------------------------------------------------

_policy_book = PolicyBook()


def policies_for(aliases) -> dict[str, Policy]:
    return _policy_book.policies(aliases, get_store().policy_version())


def policy_for(alias: str) -> Policy:
    return policies_for([alias])[alias]


def views_with_policies(aliases, now: float) -> tuple[dict[str, BreakerView], dict[str, Policy]]:
    """The views of ``aliases``, each read with its own policy's window, and those policies."""
    policies = policies_for(aliases)
    by_window: dict[tuple[int, int], list[str]] = {}
    for alias, policy in policies.items():
        by_window.setdefault((policy.window_seconds, policy.window_calls), []).append(alias)
    views: dict[str, BreakerView] = {}
    for (window_seconds, window_calls), names in by_window.items():
        views.update(get_store().views(names, now, window_seconds, window_calls))
    return views, policies


# --- registration -------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateSpec:
    host: str
    port: int
    name: str
    user: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.name}"


URL_FORM = "postgres://USER:PASSWORD@HOST:PORT/DBNAME"


def parse_database_url(url: str) -> CandidateSpec:
    """postgres://USER:PASSWORD@HOST:PORT/DBNAME -> CandidateSpec; errors never echo a password.

    Parsed by hand, not with urlsplit: a password holding '/', '?' or '#' (common in generated
    ones) makes urlsplit cut the URL inside the password, and its pieces would land in "host"
    or "port" and then in error messages. The user part ends at the last '@'."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("postgres", "postgresql"):
        raise InvalidConfigError(f"database URL must start with postgres:// ({_redact(url)})")
    userinfo, at, location = rest.rpartition("@")
    if not at or not userinfo.partition(":")[0]:
        raise InvalidConfigError(f"database URL has no user: expected {URL_FORM} ({_redact(url)})")
    user, _, password = userinfo.partition(":")
    address, slash, name = location.partition("/")
    if "?" in name or "#" in name:
        raise InvalidConfigError(f"database URL must not have ?options or a #fragment ({_redact(url)})")
    if address.startswith("["):  # [IPv6]:port
        host, _, port_text = address[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = address.partition(":")
    if not host:
        raise InvalidConfigError(f"database URL has no host ({_redact(url)})")
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        raise InvalidConfigError(f"malformed database URL: the port is not a number ({_redact(url)})")
    port = int(port_text) if port_text else 5432
    if not 1 <= port <= 65535:
        raise InvalidConfigError(f"port must be between 1 and 65535, got {port} ({_redact(url)})")
    name = unquote(name)
    if not slash or not name or "/" in name:
        raise InvalidConfigError(f"database URL needs one database name after the port ({_redact(url)})")
    return CandidateSpec(host, port, name, unquote(user), unquote(password))


def _redact(url: str) -> str:
    """The URL with its password replaced by ***; without a user part, only its scheme (what
    follows might be a password that lost its '@')."""
    scheme, separator, rest = url.partition("://")
    userinfo, at, location = rest.rpartition("@")
    if not at:
        return f"{scheme}{separator}..." if separator else "..."
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{separator}{user}{':***' if colon else ''}@{location}"


def tenant_id_of(alias: str) -> int:
    match = re.match(ALIAS_PATTERN, alias)
    if match is None:
        raise InvalidConfigError(
            f"alias {alias!r} must be <tenant id>-<name>, a number, a dash and letters/digits/_, e.g. 1-default"
        )
    return int(match["tenant"])


def register_alias(alias: str, urls: list[str], probe_sql: str | None = None) -> TenantDatabase:
    """Create or replace an alias: the first URL is its active candidate, the rest fail-over ones.
    Everything is validated before anything is written."""
    tenant_id, specs = _validated_registration(alias, urls, probe_sql)
    with transaction.atomic():
        tenant, _ = Tenant.objects.get_or_create(id=tenant_id)
        database, created = TenantDatabase.objects.select_for_update().get_or_create(
            alias=alias, defaults={"tenant": tenant}
        )
        database.active_candidate = None
        database.save(update_fields=["active_candidate"])
        database.candidates.all().delete()
        candidates = [
            Candidate.objects.create(database=database, position=index, **spec.__dict__)
            for index, spec in enumerate(specs)
        ]
        database.active_candidate = candidates[0]
        if not created:
            database.generation += 1  # processes connected to the old config must reconnect
        if probe_sql is not None:
            database.probe_sql = probe_sql
        database.save()
    if created:
        # Redis may hold keys of an earlier alias of that name (a control DB reset in
        # development, say), whose newer generation would make every outcome look stale.
        get_store().forget(alias)
    announce_generation(database.alias, database.generation)
    return database


def register_alias_if_absent(alias: str, urls: list[str], probe_sql: str | None = None) -> tuple[TenantDatabase, bool]:
    """As register_alias, but an alias that exists is left as it is (its active server,
    candidates and generation): for start-up scripts, which must not undo a failover. The
    input is validated either way. Returns the alias and whether it was created."""
    existing = TenantDatabase.objects.filter(alias=alias).first()
    if existing is None:
        return register_alias(alias, urls, probe_sql), True
    _validated_registration(alias, urls, probe_sql)  # a typo must not wait for a fresh start to show
    return existing, False


def _validated_registration(alias: str, urls: list[str], probe_sql: str | None) -> tuple[int, list[CandidateSpec]]:
    tenant_id = tenant_id_of(alias)
    if not urls:
        raise InvalidConfigError("give at least one database URL")
    specs = [parse_database_url(url) for url in urls]
    if probe_sql is not None and not probe_sql.strip():
        raise InvalidConfigError("the probe query must not be empty")
    return tenant_id, specs


def announce_generation(alias: str, generation: int) -> None:
    """Mirror the generation to Redis and hint every process to reconnect."""
    store = get_store()
    store.advance_generation(alias, generation)
    store.publish_pool_reset(alias, generation)


def candidates_edited(alias: str, created: bool, active_changed: bool) -> bool:
    """After the admin saved an alias and its candidates, in the same transaction: keep an active
    candidate (the first one when there is none), and when the active server's settings changed,
    bump the generation so that every process reconnects. Returns whether the edit must be
    announced (``announce_edit``, once committed; if that is lost, the evaluator's reconcile
    announces it within RECONCILE_SECONDS)."""
    with transaction.atomic():
        database = TenantDatabase.objects.select_for_update().get(alias=alias)
        if database.active_candidate_id is None:
            database.active_candidate = database.candidates.order_by("position").first()
            active_changed = True
        if active_changed and not created:
            database.generation += 1
        database.save(update_fields=["active_candidate", "generation"])
    return created or active_changed


def announce_edit(alias: str, created: bool) -> None:
    """Tell Redis and every process of a committed edit (see candidates_edited)."""
    if created:
        get_store().forget(alias)  # as in register_alias: keys of an older alias of that name
    announce_generation(alias, TenantDatabase.objects.get(alias=alias).generation)


# --- transitions --------------------------------------------------------------------------


def transition(
    alias: str,
    from_state: State,
    epoch: int,
    to_state: State,
    reason: str,
    *,
    now: float | None = None,
    actor: str = "evaluator",
    counts: Counts | None = None,
    reopens: int = 0,
    since: float = 0.0,
    policy: Policy | None = None,
) -> int | None:
    """Compare-and-set one transition, then write its history row and start what follows it.
    ``reopens`` and ``since`` are the breaker's current ones (they set the next open wait).
    Returns the new epoch, or None when the breaker had already moved on."""
    check_transition(alias, from_state, to_state)
    now = time.time() if now is None else now
    policy = policy or policy_for(alias)
    open_until, new_reopens = 0.0, None  # None: the store keeps its count of reopens
    if to_state is State.OPEN:
        new_reopens = next_reopens(from_state, reopens, since, now, policy)
        open_until = now + open_wait(policy, new_reopens)
    database = TenantDatabase.objects.filter(alias=alias).first()
    new_epoch = get_store().transition(
        alias, from_state, epoch, to_state, now, reason, open_until, new_reopens, epoch_floor=_epoch_floor(database)
    )
    if new_epoch is None:
        return None
    metrics.TRANSITIONS.labels(from_state.value, to_state.value).inc()
    logger.warning("breaker %s: %s -> %s (%s) [epoch %s]", alias, from_state.value, to_state.value, reason, new_epoch)
    get_store().publish_state_change(alias, new_epoch)  # processes poll at once instead of within 0.2 s
    if database is not None:
        BreakerEvent.objects.create(
            database=database,
            at=datetime.fromtimestamp(now, UTC),
            from_state=from_state.value,
            to_state=to_state.value,
            reason=reason,
            epoch=new_epoch,
            generation=database.generation,
            failure_rate=counts.failure_rate(policy.minimum_calls) if counts else None,
            calls=counts.calls if counts else None,
            actor=actor,
        )
    if to_state is State.OPEN and database is not None:
        guard = get_store().guard()
        if guard is None:
            current_app.send_task("breaker_worker.failover", args=[alias, new_epoch])
        else:
            logger.error("breaker %s opened during a suspected shared fault: no failover (%s)", alias, guard)
    elif to_state is State.HALF_OPEN:
        current_app.send_task("breaker_worker.probe", args=[alias])
    return new_epoch


def _epoch_floor(database: TenantDatabase | None) -> int:
    """The highest epoch the control DB knows for the alias: epochs must never repeat, even
    after Redis lost its data (failover is idempotent on the epoch)."""
    if database is None:
        return 0
    latest = database.events.aggregate(latest=Max("epoch"))["latest"] or 0
    return max(latest, database.failover_epoch)


def evaluate_breakers(now: float | None = None) -> dict[str, int]:
    """One evaluation tick over every alias with recent outcomes or not closed.
    Safe to run twice at once: each transition is compare-and-set on the epoch."""
    now = time.time() if now is None else now
    store = get_store()
    longest = max(p.window_seconds for p in [settings.BREAKER_POLICY, *_policy_book.known()])
    views, policies = views_with_policies(store.recent_aliases(now - longest), now)
    # Registered tripped aliases and the epoch whose failover ran: one query for both uses below.
    tripped = [alias for alias, view in views.items() if view.state is not State.CLOSED]
    failover_epochs = (
        dict(TenantDatabase.objects.filter(alias__in=tripped).values_list("alias", "failover_epoch")) if tripped else {}
    )
    _forget_unknown_tripped(views, tripped, failover_epochs)
    decisions = {alias: decide(view, policies[alias], now) for alias, view in views.items()}
    if settings.BREAKER_FAILBACK_AFTER:
        _schedule_failback_checks(now)
    if store.claim("*", "reconcile", RECONCILE_SECONDS):
        reconcile_generations()
    guarded = _guard_against_mass_outage(views, decisions)
    if not guarded:
        _resend_lost_failovers(views, decisions, failover_epochs, now)
    transitions = 0
    for view in views.values():
        decision = decisions[view.alias]
        if decision is None:
            if view.state is State.HALF_OPEN and now - view.since > PROBE_RETRY_SECONDS:
                # The probe task was lost (a worker died, a queue was purged): send another. A
                # running prober holds the lease, so a duplicate returns at once.
                current_app.send_task("breaker_worker.probe", args=[view.alias], expires=PROBE_RETRY_SECONDS)
            continue
        epoch = transition(
            view.alias,
            view.state,
            view.epoch,
            decision.to_state,
            decision.reason,
            now=now,
            counts=view.counts,
            reopens=view.reopens,
            since=view.since,
            policy=policies[view.alias],
        )
        transitions += epoch is not None
    return {"evaluated": len(views), "transitions": transitions}


def _forget_unknown_tripped(views: dict[str, BreakerView], tripped: list[str], registered: dict[str, int]) -> None:
    """A tripped breaker of an alias neither registered nor configured with this ENGINE (its
    control DB was reset, the alias was removed) would be probed for ever: its Redis keys go."""
    for alias in tripped:
        if alias not in registered and _configured(alias) is None:
            logger.warning(
                "breaker %s: no such alias is registered or configured: its state in Redis is removed", alias
            )
            get_store().forget(alias)
            del views[alias]


def reconcile_generations() -> list[str]:
    """Tell Redis every generation the control DB has and Redis lacks: an announce lost when
    Redis was away during a save, or a Redis that lost its data. Returns the aliases told."""
    generations = dict(TenantDatabase.objects.values_list("alias", "generation"))
    known = get_store().states(generations) if generations else {}
    behind = [alias for alias, generation in generations.items() if known[alias].generation < generation]
    for alias in behind:
        logger.warning("alias %s: Redis did not know generation %s: announcing it", alias, generations[alias])
        announce_generation(alias, generations[alias])
    return behind


def _schedule_failback_checks(now: float) -> None:
    """A check per alias away from its preferred server, every FAILBACK_CHECK_SECONDS at most."""
    away = TenantDatabase.objects.filter(active_candidate__position__gt=0).values_list("alias", flat=True)
    for alias in away:
        if get_store().claim(alias, "failback-check", FAILBACK_CHECK_SECONDS):
            current_app.send_task("breaker_worker.failback", args=[alias], expires=FAILBACK_CHECK_SECONDS)


def _guard_against_mass_outage(views: dict, decisions: dict) -> bool:
    """When more than BREAKER_GUARD_SHARE percent of the evaluated aliases are tripped (open or
    half-open, or opening now), the fault is likely shared (network, DNS, credentials): moving
    every tenant would not help and could make it worse. Hold failovers back while it lasts,
    and say so loudly. Returns whether the guard is on."""
    store = get_store()
    tripped = sum(
        1
        for alias, view in views.items()
        if view.state in (State.OPEN, State.HALF_OPEN)
        or (decisions[alias] is not None and decisions[alias].to_state is State.OPEN)
    )
    total = len(views)
    if total >= settings.BREAKER_GUARD_MIN_ALIASES and tripped * 100 > settings.BREAKER_GUARD_SHARE * total:
        reason = (
            f"{tripped} of {total} aliases tripped (> {settings.BREAKER_GUARD_SHARE:g}%): "
            "shared fault suspected, failovers held back"
        )
        if store.guard() is None:
            logger.error("mass outage guard on: %s", reason)
        # Renewed every tick; expires by itself if the evaluator stops.
        store.set_guard(reason, ttl=max(10.0, 5 * settings.BREAKER_POLICY.evaluate_every))
        return True
    if store.guard() is not None:
        logger.warning("mass outage guard off: %s of %s aliases tripped; failovers resume", tripped, total)
        store.clear_guard()
    return False


def _resend_lost_failovers(views: dict, decisions: dict, done: dict[str, int], now: float) -> None:
    """An open breaker whose failover never ran (its task was lost, or the guard held it back)
    gets it again: the task is idempotent on the epoch (``done``: the epoch whose failover ran,
    per registered alias), and a claim sends it once per retry."""
    waiting = {
        alias: view.epoch
        for alias, view in views.items()
        if view.state is State.OPEN and decisions[alias] is None and now - view.since > FAILOVER_RETRY_SECONDS
    }
    for alias, epoch in waiting.items():
        if alias not in done or done[alias] >= epoch:
            continue  # not registered (nothing to fail over to), or carried out
        if get_store().claim(alias, "failover-retry", FAILOVER_RETRY_SECONDS):
            logger.warning("breaker %s: open without a failover for epoch %s: sending it again", alias, epoch)
            current_app.send_task("breaker_worker.failover", args=[alias, epoch])


# --- failover -----------------------------------------------------------------------------


def fail_over(alias: str, epoch: int) -> dict[str, object]:
    """Move a tripped alias to a healthy candidate, once per open epoch (retries change nothing)."""
    store = get_store()
    record = store.states([alias])[alias]
    database = TenantDatabase.objects.select_related("active_candidate").get(alias=alias)
    if database.failover_epoch < epoch:
        if record.state is not State.OPEN or record.epoch != epoch:
            return {"alias": alias, "status": "stale", "state": record.state.value, "epoch": record.epoch}
        started = time.monotonic()
        event = _save_failover(alias, _choose_candidate(database), epoch=epoch)
        if event is not None:  # None: a duplicate task carried it out
            metrics.record_failover(bool(event.moved_to), time.monotonic() - started)
        database.refresh_from_db()
    last = database.events.filter(kind=BreakerEvent.Kind.FAILOVER, epoch=database.failover_epoch).last()
    if last is None or not last.moved_to:
        # Said where operators look first (breaker_status, the admin's list): why it stays open.
        if record.epoch == epoch and "no healthy candidate" not in record.reason:
            store.annotate(alias, epoch, f"{record.reason}; no healthy candidate to fail over to")
        return {"alias": alias, "status": "no healthy candidate", "generation": database.generation}
    # Idempotent from here on: a retry after a crash repeats only what may be missing.
    announce_generation(database.alias, database.generation)
    transition(alias, State.OPEN, epoch, State.HALF_OPEN, f"failed over to {last.moved_to}", actor="failover")
    return {"alias": alias, "status": "moved", "to": last.moved_to, "generation": database.generation}


def fail_over_now(alias: str, actor: str) -> dict[str, object]:
    """An operator's failover, whatever the breaker's state; an open breaker goes half-open to
    probe the new server. Not bound to an epoch: each call moves on once more."""
    database = _registered(alias)
    started = time.monotonic()
    event = _save_failover(alias, _choose_candidate(database), actor=actor)
    metrics.record_failover(bool(event.moved_to), time.monotonic() - started)
    if not event.moved_to:
        return {"alias": alias, "status": "no healthy candidate", "generation": event.generation}
    database.refresh_from_db()
    announce_generation(database.alias, database.generation)
    record = get_store().states([alias])[alias]
    if record.state is State.OPEN:
        transition(alias, State.OPEN, record.epoch, State.HALF_OPEN, f"failed over to {event.moved_to}", actor=actor)
    return {"alias": alias, "status": "moved", "to": event.moved_to, "generation": database.generation}


def check_failback(alias: str, now: float | None = None) -> dict[str, object]:
    """Optional failback (BREAKER_FAILBACK_AFTER seconds; 0, the default, turns it off): move a
    closed alias back to its preferred (first) candidate once that one has answered every probe
    for that long and the breaker has stayed closed as long. At most one failback per ten such
    periods, so two servers can never make an alias flap between them."""
    after = settings.BREAKER_FAILBACK_AFTER
    now = time.time() if now is None else now
    database = _registered(alias)
    preferred = database.candidates.order_by("position").first()
    if not after or preferred is None or preferred.pk == database.active_candidate_id:
        return {"alias": alias, "status": "not needed"}
    store = get_store()
    record = store.states([alias])[alias]
    ok, detail = run_probe(preferred, database.probe_sql)
    healthy_since = store.note_preferred_health(alias, ok, now)
    if not ok:
        return {"alias": alias, "status": "preferred unhealthy", "detail": detail}
    if record.state is not State.CLOSED or now - record.since < after or now - healthy_since < after:
        return {"alias": alias, "status": "waiting", "healthy_for": now - healthy_since}
    if not store.claim(alias, "failback", 10 * after):
        return {"alias": alias, "status": "cooling down"}
    event = _save_failover(alias, preferred, actor="failback")
    database.refresh_from_db()
    announce_generation(database.alias, database.generation)
    return {"alias": alias, "status": "failed back", "to": event.moved_to, "generation": database.generation}


def _choose_candidate(database: TenantDatabase) -> Candidate | None:
    update = import_string(settings.BREAKER_UPDATE_DB_CONFIG)
    return update(database.tenant_id, database.alias)  # may probe servers: outside any transaction


def _save_failover(
    alias: str, chosen: Candidate | None, epoch: int | None = None, actor: str = "failover"
) -> BreakerEvent | None:
    """Make ``chosen`` active (bumping the generation) and write the failover's history row, in
    one transaction. With an epoch, only once per epoch: None when that one already ran."""
    with transaction.atomic():
        database = TenantDatabase.objects.select_for_update().select_related("active_candidate").get(alias=alias)
        if epoch is not None and database.failover_epoch >= epoch:  # a duplicate task won the race
            return None
        old = database.active_candidate
        moved_to = ""
        if chosen is not None and chosen.pk != database.active_candidate_id:
            database.active_candidate = chosen
            database.generation += 1
            moved_to = f"{chosen.host}:{chosen.port}"
            reason = f"moved from {old.host}:{old.port} to {moved_to}"
        else:
            reason = "no healthy candidate: staying on the active server until the open wait ends"
        if epoch is not None:
            database.failover_epoch = epoch
        database.save(update_fields=["active_candidate", "generation", "failover_epoch"])
        event = _note(database, BreakerEvent.Kind.FAILOVER, reason, actor, epoch=epoch, moved_to=moved_to)
    logger.warning("alias %s: failover by %s: %s", alias, actor, reason)
    return event


def force_state(alias: str, to_state: State, actor: str) -> dict[str, object]:
    """An operator's override: forced_open, disabled (recording goes on, nothing trips) or
    closed (reset). Goes through the same compare-and-set as the evaluator."""
    if to_state not in (State.FORCED_OPEN, State.DISABLED, State.CLOSED):
        raise InvalidConfigError(f"cannot force {alias} to {to_state.value}: use forced_open, disabled or closed")
    _registered(alias)
    store = get_store()
    for _ in range(5):  # lost a race with the evaluator: read again and retry
        record = store.states([alias])[alias]
        if record.state is to_state:
            return {"alias": alias, "state": to_state.value, "epoch": record.epoch, "changed": False}
        epoch = transition(alias, record.state, record.epoch, to_state, f"set by {actor}", actor=actor)
        if epoch is not None:
            return {"alias": alias, "state": to_state.value, "epoch": epoch, "changed": True}
    raise StoreUnavailableError(f"breaker {alias} kept changing; try again")


def _note(
    database: TenantDatabase, kind: str, reason: str, actor: str, epoch: int | None = None, moved_to: str = ""
) -> BreakerEvent:
    """A history row that is not a transition: the breaker's state stays as it is."""
    record = get_store().states([database.alias])[database.alias]
    return BreakerEvent.objects.create(
        database=database,
        at=datetime.now(UTC),
        kind=kind,
        from_state=record.state.value,
        to_state=record.state.value,
        reason=reason,
        epoch=record.epoch if epoch is None else epoch,
        generation=database.generation,
        actor=actor,
        moved_to=moved_to,
    )


def _registered(alias: str) -> TenantDatabase:
    database = TenantDatabase.objects.select_related("active_candidate").filter(alias=alias).first()
    if database is None or database.active_candidate is None:
        raise InvalidConfigError(f"unknown alias {alias!r}: register it with `manage.py tenant_db set`")
    return database


# --- probes -------------------------------------------------------------------------------


def probe(alias: str, actor: str = "evaluator") -> dict[str, object]:
    """Probe the active candidate; in half-open, success closes the breaker and failure reopens it."""
    database = TenantDatabase.objects.select_related("active_candidate").filter(alias=alias).first()
    if database is not None and database.active_candidate is not None:
        server, probe_sql = database.active_candidate, database.probe_sql
    else:
        server, probe_sql, database = _configured_server(alias), "SELECT 1", None
    store = get_store()
    owner = uuid.uuid4().hex
    policy = policy_for(alias)
    lease_seconds = settings.BREAKER_CONNECT_TIMEOUT * 2 + policy.probes * STATEMENT_TIMEOUT_SECONDS
    result: dict[str, object] = {"alias": alias, "host": server.host, "port": server.port}
    if not store.acquire_lease(alias, owner, lease_seconds):
        return _report_probe(
            database, {**result, "ok": None, "detail": "another probe of this alias is running"}, actor
        )
    try:
        ok, detail = run_probe(server, probe_sql, policy.probes)
        record = store.states([alias])[alias]
        if record.state is State.HALF_OPEN:
            if ok:
                reason = f"{policy.probes} probe(s) succeeded on {server.host}:{server.port}"
                transition(alias, State.HALF_OPEN, record.epoch, State.CLOSED, reason, actor=actor)
            else:
                transition(
                    alias,
                    State.HALF_OPEN,
                    record.epoch,
                    State.OPEN,
                    detail,
                    actor=actor,
                    reopens=record.reopens,
                    since=record.since,
                )
        state = store.states([alias])[alias].state.value
    finally:
        try:
            store.release_lease(alias, owner)
        except StoreUnavailableError:
            pass  # the lease expires by itself
    return _report_probe(database, {**result, "ok": ok, "detail": detail or "probe succeeded", "state": state}, actor)


def _configured(alias: str) -> dict | None:
    """The alias's entry in the project's own DATABASES if it is protected by its ENGINE there
    (plain lookup: no registry query)."""
    entry = dict.get(settings.DATABASES, alias)
    return entry if entry is not None and entry.get("ENGINE") == ENGINE else None


def _configured_server(alias: str) -> Target:
    """The server of an alias protected by its ENGINE in the project's own DATABASES, not
    registered with ``tenant_db set``: it has no candidates and no history, only a breaker."""
    entry = _configured(alias)
    if entry is None:
        raise InvalidConfigError(f"unknown alias {alias!r}: register it with `manage.py tenant_db set`")
    return Target(
        alias=alias,
        generation=0,
        host=entry.get("HOST") or "localhost",
        port=int(entry.get("PORT") or 5432),
        name=entry.get("NAME") or "",
        user=entry.get("USER") or "",
        password=entry.get("PASSWORD") or "",
    )


def _report_probe(database: TenantDatabase | None, outcome: dict[str, object], actor: str) -> dict[str, object]:
    """Leave an operator's probe result in the history, where the admin shows it. The evaluator's
    own probes are not recorded: the transitions they cause are."""
    if actor != "evaluator" and database is not None:
        reason = {
            True: f"probe succeeded on {outcome['host']}:{outcome['port']}",
            False: f"probe failed: {outcome['detail']}",
            None: f"probe skipped: {outcome['detail']}",
        }[outcome["ok"]]  # type: ignore[index]
        _note(database, BreakerEvent.Kind.PROBE, reason, actor)
    return outcome
