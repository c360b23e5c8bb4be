"""Services against the real Redis and PostgreSQL: evaluation, failover and probes, exactly once."""

from __future__ import annotations

import json
import threading
import time

import pytest

from breaker_worker import services
from breaker_worker.core.machine import State
from breaker_worker.core.window import Counts
from breaker_worker.models import BreakerEvent, TenantDatabase
from breaker_worker.store.base import OutcomeBatch
from tests.conftest import url

pytestmark = pytest.mark.usefixtures("control_db", "breaker")

PROBE_SQL = "SELECT 1 FROM test_app_users LIMIT 1"


@pytest.fixture
def alias(seed_databases):
    services.register_alias(
        "1-default",
        [url(seed_databases["b_port"], seed_databases["name"]), url(seed_databases["a_port"], seed_databases["name"])],
        PROBE_SQL,
    )
    return "1-default"


def trip(store, alias, now, calls=20, failures=20):
    store.record([OutcomeBatch(alias, 1, {int(now): Counts(calls, failures, 0)})], now)


def events(alias, kind=None):
    rows = BreakerEvent.objects.filter(database__alias=alias)
    if kind:
        rows = rows.filter(kind=kind)
    return list(rows)


def run_together(count, function):
    barrier = threading.Barrier(count)
    results = [None] * count

    def target(index):
        from django.db import connections

        barrier.wait()
        try:
            results[index] = function()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_evaluators_at_once_open_exactly_once_and_fail_over_once(alias, store, sent_tasks):
    now = time.time()
    trip(store, alias, now)
    results = run_together(2, lambda: services.evaluate_breakers(now))

    assert sorted(r["transitions"] for r in results) == [0, 1]
    assert [(e.from_state, e.to_state) for e in events(alias)] == [("closed", "open")]
    assert events(alias)[0].reason == "failure rate 100% >= 50% (20 of 20 calls in 10s)"
    assert events(alias)[0].calls == 20 and events(alias)[0].failure_rate == 1.0
    assert sent_tasks == [("breaker_worker.failover", [alias, 1])]
    record = store.states([alias])[alias]
    assert (record.state, record.epoch) == (State.OPEN, 1)
    assert now + 4.5 <= record.open_until <= now + 5.5  # open_seconds 5 with +-10 % jitter


def test_not_enough_calls_never_trips(alias, store, sent_tasks):
    now = time.time()
    trip(store, alias, now, calls=9, failures=9)  # minimum_calls is 10
    assert services.evaluate_breakers(now)["transitions"] == 0
    assert store.states([alias])[alias].state is State.CLOSED


def test_failover_is_idempotent_on_the_epoch(alias, store, sent_tasks, seed_databases):
    now = time.time()
    trip(store, alias, now)
    services.evaluate_breakers(now)
    sent_tasks.clear()

    results = run_together(2, lambda: services.fail_over(alias, 1))
    again = services.fail_over(alias, 1)  # a redelivered task, later

    assert {r["status"] for r in results} == {"moved"} and again["status"] in ("moved", "stale")
    database = TenantDatabase.objects.select_related("active_candidate").get(alias=alias)
    assert database.generation == 2
    assert database.active_candidate.port == seed_databases["a_port"]
    assert len(events(alias, BreakerEvent.Kind.FAILOVER)) == 1
    assert [(e.from_state, e.to_state) for e in events(alias, BreakerEvent.Kind.TRANSITION)] == [
        ("closed", "open"),
        ("open", "half_open"),
    ]
    assert sent_tasks == [("breaker_worker.probe", [alias])]
    record = store.states([alias])[alias]
    assert (record.state, record.epoch, record.generation) == (State.HALF_OPEN, 2, 2)


def test_after_redis_lost_its_data_the_next_incident_fails_over_again(alias, store, sent_tasks, seed_databases):
    """Epochs restart at 0 in an empty Redis; the control DB remembers epoch 1's failover, so a
    new incident must get a new epoch, not look like the one already carried out."""
    now = time.time()
    trip(store, alias, now)
    services.evaluate_breakers(now)
    assert services.fail_over(alias, 1)["status"] == "moved"  # to A, generation 2
    store.client.flushall()  # Redis restarted without persistence
    sent_tasks.clear()

    trip(store, alias, now + 1)
    services.evaluate_breakers(now + 1)
    [(name, [_, epoch])] = sent_tasks
    assert name == "breaker_worker.failover" and epoch > 2  # above every epoch in the history
    # Carried out, not skipped: B, the only other candidate, lacks the table, so it stays on A.
    assert services.fail_over(alias, epoch)["status"] == "no healthy candidate"
    first, second = events(alias, BreakerEvent.Kind.FAILOVER)
    assert (first.epoch, first.moved_to) == (1, f"127.0.0.1:{seed_databases['a_port']}")
    assert (second.epoch, second.moved_to) == (epoch, "")
    assert store.states([alias])[alias].state is State.OPEN  # no false "failed over" half-open


def test_a_stale_failover_changes_nothing(alias, store, sent_tasks):
    assert services.fail_over(alias, 7)["status"] == "stale"
    assert TenantDatabase.objects.get(alias=alias).generation == 1
    assert events(alias) == [] and sent_tasks == []


def test_without_a_healthy_candidate_the_alias_stays_and_the_breaker_stays_open(
    store, sent_tasks, seed_databases, tenant_dbname
):
    # Both candidates lack the table: neither can serve the tenant.
    b = url(seed_databases["b_port"], seed_databases["name"])
    services.register_alias("2-default", [b, b.replace(seed_databases["name"], "postgres")], PROBE_SQL)
    now = time.time()
    trip(store, "2-default", now)
    services.evaluate_breakers(now)

    result = services.fail_over("2-default", 1)

    assert result["status"] == "no healthy candidate"
    record = store.states(["2-default"])["2-default"]
    assert record.state is State.OPEN
    assert record.reason == "failure rate 100% >= 50% (20 of 20 calls in 10s); no healthy candidate to fail over to"
    assert services.fail_over("2-default", 1)["status"] == "no healthy candidate"  # a redelivery: said once
    assert store.states(["2-default"])["2-default"].reason == record.reason
    assert TenantDatabase.objects.get(alias="2-default").generation == 1
    [failover] = events("2-default", BreakerEvent.Kind.FAILOVER)
    assert failover.reason.startswith("no healthy candidate")
    assert store.states(["2-default"])["2-default"].state is State.OPEN


def test_probe_in_half_open_closes_on_success(alias, store, sent_tasks, seed_databases):
    services.register_alias(alias, [url(seed_databases["a_port"], seed_databases["name"])], PROBE_SQL)
    store.transition(alias, State.CLOSED, 0, State.OPEN, time.time(), "test")
    store.transition(alias, State.OPEN, 1, State.HALF_OPEN, time.time(), "test")

    result = services.probe(alias)

    assert (result["ok"], result["state"], result["port"]) == (True, "closed", seed_databases["a_port"])
    assert events(alias)[-1].reason == f"3 probe(s) succeeded on 127.0.0.1:{seed_databases['a_port']}"


def test_probe_in_half_open_reopens_on_failure_with_a_longer_wait(alias, store, sent_tasks):
    now = time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, now, "test")
    store.transition(alias, State.OPEN, 1, State.HALF_OPEN, now, "test")

    result = services.probe(alias)

    assert (result["ok"], result["state"]) == (False, "open")
    assert 'relation "test_app_users" does not exist' in result["detail"]
    record = store.states([alias])[alias]
    assert record.reopens == 1
    assert record.open_until - now >= 9.0  # 5 s doubled, minus jitter
    assert sent_tasks == [("breaker_worker.failover", [alias, 3])]


def test_probe_of_a_closed_breaker_reports_and_changes_nothing(alias, store, sent_tasks):
    result = services.probe(alias, actor="command")
    assert (result["ok"], result["state"]) == (False, "closed")
    assert events(alias, BreakerEvent.Kind.TRANSITION) == []
    [probe] = events(alias, BreakerEvent.Kind.PROBE)  # an operator's probe is left in the history
    assert (probe.actor, probe.to_state) == ("command", "closed")
    assert probe.reason.startswith("probe failed: probe query on 127.0.0.1:5432 failed: relation")


def test_one_prober_at_a_time(alias, store):
    store.acquire_lease(alias, "someone-else", 30)
    result = services.probe(alias)
    assert result["ok"] is None and result["detail"] == "another probe of this alias is running"


def test_operator_overrides_go_through_compare_and_set_and_the_history(alias, store, sent_tasks):
    assert services.force_state(alias, State.FORCED_OPEN, "alice")["changed"] is True
    assert services.force_state(alias, State.FORCED_OPEN, "alice")["changed"] is False
    assert services.force_state(alias, State.DISABLED, "bob")["state"] == "disabled"
    assert services.force_state(alias, State.CLOSED, "carol")["epoch"] == 3
    assert [(e.from_state, e.to_state, e.actor, e.reason) for e in events(alias)] == [
        ("closed", "forced_open", "alice", "set by alice"),
        ("forced_open", "disabled", "bob", "set by bob"),
        ("disabled", "closed", "carol", "set by carol"),
    ]
    assert sent_tasks == []  # forcing open is the operator's call: no failover
    with pytest.raises(services.InvalidConfigError, match="use forced_open, disabled or closed"):
        services.force_state(alias, State.HALF_OPEN, "alice")


def test_a_disabled_breaker_never_trips(alias, store, sent_tasks):
    services.force_state(alias, State.DISABLED, "alice")
    now = time.time()
    trip(store, alias, now)
    assert services.evaluate_breakers(now)["transitions"] == 0
    assert store.states([alias])[alias].state is State.DISABLED


def test_fail_over_now_moves_a_closed_alias_and_records_who(alias, store, sent_tasks, seed_databases):
    result = services.fail_over_now(alias, "alice")
    assert result == {"alias": alias, "status": "moved", "to": f"127.0.0.1:{seed_databases['a_port']}", "generation": 2}
    [event] = events(alias, BreakerEvent.Kind.FAILOVER)
    assert (event.actor, event.moved_to, event.from_state) == (
        "alice",
        f"127.0.0.1:{seed_databases['a_port']}",
        "closed",
    )
    assert store.states([alias])[alias].generation == 2
    assert store.states([alias])[alias].state is State.CLOSED


def test_consecutive_connect_failures_trip_below_minimum_calls(alias, store, sent_tasks):
    now = time.time()
    batch = OutcomeBatch(alias, 1, {int(now): Counts(5, 5, 0)}, succeeded=False, connect_failures=5)
    store.record([batch], now)
    services.evaluate_breakers(now)
    [event] = events(alias)
    assert (event.to_state, event.reason) == ("open", "5 consecutive connection failures")


def test_a_success_restarts_the_connect_failure_streak(alias, store, sent_tasks):
    now = time.time()
    store.record([OutcomeBatch(alias, 1, {int(now): Counts(4, 4, 0)}, connect_failures=4)], now)
    store.record([OutcomeBatch(alias, 1, {int(now): Counts(2, 1, 0)}, succeeded=True, connect_failures=1)], now)
    assert store.views([alias], now, 10)[alias].connect_failures == 1
    assert services.evaluate_breakers(now)["transitions"] == 0


def test_a_half_open_breaker_without_a_verdict_gets_another_probe(alias, store, sent_tasks):
    now = time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, now - 60, "test")
    store.transition(alias, State.OPEN, 1, State.HALF_OPEN, now - services.PROBE_RETRY_SECONDS - 1, "test")
    services.evaluate_breakers(now)
    assert sent_tasks == [("breaker_worker.probe", [alias])]
    sent_tasks.clear()
    store.transition(alias, State.HALF_OPEN, 2, State.OPEN, now, "test")
    store.transition(alias, State.OPEN, 3, State.HALF_OPEN, now, "just now")
    services.evaluate_breakers(now)
    assert sent_tasks == []


def test_a_breaker_that_reopens_soon_after_closing_waits_longer(alias, store, sent_tasks):
    now = time.time()
    trip(store, alias, now)
    services.evaluate_breakers(now)  # reopens 0: waits ~5 s
    store.transition(alias, State.OPEN, 1, State.HALF_OPEN, now + 6, "test")
    store.transition(alias, State.HALF_OPEN, 2, State.OPEN, now + 7, "test", open_until=now + 17, reopens=1)
    store.transition(alias, State.OPEN, 3, State.HALF_OPEN, now + 17, "test")
    store.transition(alias, State.HALF_OPEN, 4, State.CLOSED, now + 18, "test")
    trip(store, alias, now + 20)
    services.evaluate_breakers(now + 20)  # flapping: closed only 2 s
    record = store.states([alias])[alias]
    assert record.reopens == 2 and record.open_until - (now + 20) >= 18  # 5 * 2**2 minus jitter


def test_mass_outage_guard_holds_failovers_back_while_most_aliases_trip(store, sent_tasks, seed_databases):
    b = url(seed_databases["b_port"], seed_databases["name"])
    aliases = [f"{n}-default" for n in range(1, 6)]
    for name in aliases:
        services.register_alias(name, [b])
    now = time.time()
    for name in aliases[:3]:  # 3 of 5 trip at once: 60 % > 50 %
        trip(store, name, now)
    for name in aliases[3:]:
        store.record([OutcomeBatch(name, 1, {int(now): Counts(20, 0, 0)})], now)

    services.evaluate_breakers(now)

    assert [store.states([n])[n].state for n in aliases] == [State.OPEN] * 3 + [State.CLOSED] * 2
    assert sent_tasks == []  # no failover while guarded
    assert store.guard() == "3 of 5 aliases tripped (> 50%): shared fault suspected, failovers held back"
    from breaker_worker.selectors import breaker_statuses

    statuses = {s["alias"]: s for s in breaker_statuses()}
    assert [statuses[n]["guarded"] for n in aliases] == [True, True, True, False, False]

    def traffic(names, at):
        for name in names:
            store.record([OutcomeBatch(name, 1, {int(at): Counts(20, 0, 0)})], at)

    # While they stay tripped the guard stays, however long it takes: healthy tenants keep their
    # traffic, the tripped ones fail fast and are evaluated from the tripped index.
    later = now + 60
    traffic(aliases[3:], later)
    services.evaluate_breakers(later)  # open waits over: half-open, probes sent
    assert store.guard() is not None
    assert [t for t in sent_tasks if t[0] == "breaker_worker.failover"] == []

    # Two recover (their probes close them), the third's probe fails: 1 of 5 tripped is no
    # shared fault. The guard lifts and the one still open gets the failover it was held back
    # from, once; a new trip fails over at once.
    for name in aliases[:3]:
        epoch = store.states([name])[name].epoch
        if name == aliases[2]:
            store.transition(name, State.HALF_OPEN, epoch, State.OPEN, later, "probe failed", open_until=later + 300)
        else:
            store.transition(name, State.HALF_OPEN, epoch, State.CLOSED, later, "probes succeeded")
    sent_tasks.clear()
    later += 11
    traffic(aliases[:2] + aliases[3:], later)
    services.evaluate_breakers(later)
    assert store.guard() is None
    assert sent_tasks == [("breaker_worker.failover", [aliases[2], store.states([aliases[2]])[aliases[2]].epoch])]
    services.evaluate_breakers(later + 1)
    assert len(sent_tasks) == 1  # once per retry period, not every tick
    trip(store, aliases[3], later + 2)
    services.evaluate_breakers(later + 2)
    assert ("breaker_worker.failover", [aliases[3], 1]) in sent_tasks


def test_one_tripped_alias_among_few_is_no_mass_outage(alias, store, sent_tasks):
    now = time.time()
    trip(store, alias, now)  # 1 of 1: below BREAKER_GUARD_MIN_ALIASES
    services.evaluate_breakers(now)
    assert store.guard() is None and sent_tasks == [("breaker_worker.failover", [alias, 1])]


def test_with_every_candidate_down_one_failover_attempt_per_open_wait_and_no_ping_pong(
    store, sent_tasks, seed_databases
):
    # Neither server holds the table: no candidate can serve the tenant.
    b = url(seed_databases["b_port"], seed_databases["name"])
    services.register_alias("1-default", [b, b.replace(seed_databases["name"], "postgres")], PROBE_SQL)
    now = time.time()
    trip(store, "1-default", now)
    services.evaluate_breakers(now)
    waits = []
    for _ in range(3):
        record = store.states(["1-default"])["1-default"]
        assert record.state is State.OPEN
        waits.append(record.open_until - record.since)
        [(name, [alias, epoch])] = [t for t in sent_tasks if t[0] == "breaker_worker.failover"]
        assert services.fail_over(alias, epoch)["status"] == "no healthy candidate"
        sent_tasks.clear()
        assert services.evaluate_breakers(now)["transitions"] == 0  # still waiting: no new attempt
        services.evaluate_breakers(record.open_until)  # the wait ends: half-open, probe
        assert sent_tasks == [("breaker_worker.probe", ["1-default"])]
        sent_tasks.clear()
        services.probe("1-default")  # fails on the same server: open again, longer
    assert waits[1] > waits[0] * 1.5 and waits[2] > waits[1] * 1.5
    database = TenantDatabase.objects.select_related("active_candidate").get(alias="1-default")
    assert (database.generation, database.active_candidate.position) == (1, 0)  # never moved
    failovers = events("1-default", BreakerEvent.Kind.FAILOVER)
    assert len(failovers) == 3 and all(e.reason.startswith("no healthy candidate") for e in failovers)
    assert store.states(["1-default"])["1-default"].reason.startswith("probe query on 127.0.0.1")


def test_the_evaluator_judges_each_alias_by_its_own_policy(store, sent_tasks, seed_databases):
    from breaker_worker.models import BreakerPolicy

    b = url(seed_databases["b_port"], seed_databases["name"])
    services.register_alias("1-default", [b])
    services.register_alias("2-default", [b])
    BreakerPolicy.objects.create(database=TenantDatabase.objects.get(alias="2-default"), failure_rate=90)
    now = time.time()
    for name in ("1-default", "2-default"):
        trip(store, name, now, calls=20, failures=12)  # 60 %
    services.evaluate_breakers(now)
    assert store.states(["1-default"])["1-default"].state is State.OPEN
    assert store.states(["2-default"])["2-default"].state is State.CLOSED  # 60 % < its 90 %


@pytest.fixture
def away_from_preferred(store, seed_databases, sent_tasks):
    """1-default moved by an operator from its preferred server (position 0) to the next one."""
    a, b = (url(seed_databases[p], seed_databases["name"]) for p in ("a_port", "b_port"))
    services.register_alias("1-default", [a, b], probe_sql="SELECT 1")  # both answer
    assert services.fail_over_now("1-default", "alice")["status"] == "moved"
    return "1-default"


def test_failback_is_off_by_default(away_from_preferred):
    assert services.check_failback(away_from_preferred)["status"] == "not needed"


def test_failback_waits_for_a_healthy_preferred_server_and_a_quiet_breaker_then_moves_once(
    away_from_preferred, store, settings, seed_databases
):
    settings.BREAKER_FAILBACK_AFTER = 30
    alias, start = away_from_preferred, time.time()
    assert services.check_failback(alias, now=start)["status"] == "waiting"
    assert services.check_failback(alias, now=start + 10)["status"] == "waiting"
    result = services.check_failback(alias, now=start + 31)
    assert (result["status"], result["to"], result["generation"]) == (
        "failed back",
        f"127.0.0.1:{seed_databases['a_port']}",
        3,
    )
    [event] = [e for e in events(alias, BreakerEvent.Kind.FAILOVER) if e.actor == "failback"]
    assert event.moved_to == f"127.0.0.1:{seed_databases['a_port']}"
    assert store.states([alias])[alias].generation == 3

    # Moved away again soon after: no second failback within ten periods (no flapping).
    services.fail_over_now(alias, "alice")
    assert services.check_failback(alias, now=start + 100)["status"] == "cooling down"


def test_no_failback_while_the_breaker_has_not_stayed_closed(away_from_preferred, store, settings):
    settings.BREAKER_FAILBACK_AFTER = 30
    alias, start = away_from_preferred, time.time()
    store.transition(alias, State.CLOSED, 0, State.OPEN, start, "test")
    store.transition(alias, State.OPEN, 1, State.HALF_OPEN, start + 1, "test")
    store.transition(alias, State.HALF_OPEN, 2, State.CLOSED, start + 40, "test")
    assert services.check_failback(alias, now=start)["status"] == "waiting"
    assert services.check_failback(alias, now=start + 50)["status"] == "waiting"  # closed only 10 s
    assert services.check_failback(alias, now=start + 71)["status"] == "failed back"


def test_the_evaluator_schedules_failback_checks_only_when_enabled_and_not_every_tick(
    away_from_preferred, sent_tasks, settings
):
    sent_tasks.clear()
    services.evaluate_breakers()
    assert sent_tasks == []  # off by default
    settings.BREAKER_FAILBACK_AFTER = 30
    services.evaluate_breakers()
    services.evaluate_breakers()
    assert sent_tasks == [("breaker_worker.failback", [away_from_preferred])]


def test_a_policy_change_is_announced_after_its_commit_and_not_at_all_when_rolled_back(alias, store):
    from django.db import transaction

    from breaker_worker.models import BreakerPolicy

    database = TenantDatabase.objects.get(alias=alias)
    before = store.policy_version()
    with transaction.atomic():
        BreakerPolicy.objects.create(database=database, failure_rate=80)
        assert store.policy_version() == before  # a process reloading now would read the old row
    assert store.policy_version() == before + 1
    with pytest.raises(RuntimeError), transaction.atomic():
        BreakerPolicy.objects.filter(database=database).get().delete()
        raise RuntimeError("the admin's save failed")
    assert store.policy_version() == before + 1
    assert services.policy_for(alias).failure_rate == 80


def test_a_stored_override_that_no_longer_fits_falls_back_to_the_default_and_stops_nothing(
    alias, store, sent_tasks, caplog
):
    from django.conf import settings

    from breaker_worker.models import BreakerPolicy

    # Saved when open_seconds defaulted to 0.5; the default is now 5 s: max below min.
    BreakerPolicy.objects.bulk_create(
        [BreakerPolicy(database=TenantDatabase.objects.get(alias=alias), max_open_seconds=1)]
    )
    store.bump_policy_version()
    now = time.time()
    trip(store, alias, now)
    assert services.evaluate_breakers(now)["transitions"] == 1  # the tick is not stopped by the row
    assert services.policy_for(alias) == settings.BREAKER_POLICY
    errors = [r.getMessage() for r in caplog.records if "policy override is invalid" in r.getMessage()]
    assert errors == [
        f"alias {alias}: its policy override is invalid (max_open_seconds (1.0) must be at least "
        "open_seconds (5.0)): using the default policy"
    ]


def test_the_evaluator_tells_redis_a_generation_it_missed(alias, store, sent_tasks):
    """An admin save while Redis was away: the control DB moved on, Redis never heard of it."""
    TenantDatabase.objects.filter(alias=alias).update(generation=3)
    assert store.states([alias])[alias].generation == 1
    hints = store.hints()
    services.evaluate_breakers()
    assert store.states([alias])[alias].generation == 3
    deadline, seen = time.monotonic() + 5, []
    while time.monotonic() < deadline and ("cb:pool-reset", {"alias": alias, "generation": 3}) not in seen:
        message = hints.next(timeout=0.5)  # None also for the subscription's own confirmations
        if message is not None:
            seen.append((message[0], json.loads(message[1])))
    hints.close()
    assert ("cb:pool-reset", {"alias": alias, "generation": 3}) in seen


def test_a_count_based_policy_makes_the_evaluator_judge_the_last_calls_only(store, sent_tasks, seed_databases):
    from breaker_worker.models import BreakerPolicy

    b = url(seed_databases["b_port"], seed_databases["name"])
    for name in ("1-default", "2-default", "3-default"):
        services.register_alias(name, [b])
    for name in ("1-default", "2-default"):  # 3-default keeps the time-based default
        BreakerPolicy.objects.create(database=TenantDatabase.objects.get(alias=name), window_calls=10)
    now = time.time()
    recovered = {int(now) - 3: Counts(20, 20, 0), int(now): Counts(10, 0, 0)}  # 67 % in 10 s, 0 % of the last 10
    failing_now = {int(now) - 3: Counts(20, 0, 0), int(now): Counts(10, 10, 0)}  # 33 % in 10 s, 100 % of the last 10
    store.record(
        [
            OutcomeBatch("1-default", 1, recovered),
            OutcomeBatch("2-default", 1, failing_now),
            OutcomeBatch("3-default", 1, recovered),
        ],
        now,
    )

    services.evaluate_breakers(now)

    states = {name: record.state for name, record in store.states(["1-default", "2-default", "3-default"]).items()}
    assert states == {"1-default": State.CLOSED, "2-default": State.OPEN, "3-default": State.OPEN}
    [opened] = events("2-default")
    assert (opened.calls, opened.failure_rate) == (10, 1.0)
    assert events("3-default")[0].calls == 30
    assert sorted(sent_tasks) == [
        ("breaker_worker.failover", ["2-default", 1]),
        ("breaker_worker.failover", ["3-default", 1]),
    ]


def test_a_count_window_shorter_than_minimum_calls_still_trips(alias, store, sent_tasks):
    from breaker_worker.models import BreakerPolicy

    row = BreakerPolicy(database=TenantDatabase.objects.get(alias=alias), window_calls=5)  # minimum_calls 10
    row.full_clean()
    row.save()
    now = time.time()
    trip(store, alias, now)  # 20 of 20 calls failed

    services.evaluate_breakers(now)

    assert store.states([alias])[alias].state is State.OPEN


def test_a_tripped_breaker_of_an_alias_nobody_knows_is_forgotten_not_probed_for_ever(alias, store, sent_tasks, caplog):
    """Redis remembers a breaker whose alias the control DB no longer has (a reset in development)."""
    now = time.time()
    store.transition("8-ghost", State.CLOSED, 0, State.OPEN, now - 60, "long ago", open_until=now - 30)
    store.transition("8-ghost", State.OPEN, 1, State.HALF_OPEN, now - 30, "open wait elapsed")
    result = services.evaluate_breakers(now)
    assert result["transitions"] == 0 and sent_tasks == []
    assert store.client.keys("cb:{8-ghost}*") == [] and "8-ghost" not in store.recent_aliases(now - 60)
    assert any("8-ghost: no such alias" in r.getMessage() for r in caplog.records)
