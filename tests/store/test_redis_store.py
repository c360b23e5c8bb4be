"""Integration tests of RedisBreakerStore against a real, private redis-server."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.crc import key_slot

from breaker_worker.core.machine import State
from breaker_worker.core.window import Counts
from breaker_worker.store import RedisBreakerStore, StateRecord, StoreUnavailableError
from breaker_worker.store.base import OutcomeBatch
from breaker_worker.store.redis_store import (
    ADVANCE_GENERATION_SCRIPT,
    POOL_RESET_CHANNEL,
    RECENT_KEY,
    RECORD_SCRIPT,
    RELEASE_LEASE_SCRIPT,
    TRANSITION_SCRIPT,
    TRIPPED_KEY,
)

ALIAS = "1-default"
OTHER = "2-default"
NOW = 1_700_000_000.5  # a fractional "now": the window is judged on int(now)
T = int(NOW)
WINDOW = 10


def batch(alias: str, buckets: dict[int, Counts], generation: int = 0) -> OutcomeBatch:
    return OutcomeBatch(alias=alias, generation=generation, buckets=buckets, window_seconds=WINDOW)


def window_counts(store: RedisBreakerStore, alias: str, now: float = NOW, window_seconds: int = WINDOW) -> Counts:
    return store.views([alias], now, window_seconds)[alias].counts


def sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(0..count-1) on count threads released at the same instant; re-raise their errors."""
    barrier = threading.Barrier(count)

    def start(index: int) -> object:
        barrier.wait(timeout=10)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(start, i) for i in range(count)]
        return [future.result(timeout=60) for future in futures]


# --- record() and views() ----------------------------------------------------------------------


def test_views_sum_exactly_the_buckets_inside_the_window_per_alias(store):
    store.record(
        [
            batch(ALIAS, {T: Counts(5, 2, 1), T - 3: Counts(4, 0, 0), T - WINDOW: Counts(100, 100, 100)}),
            batch(OTHER, {T - WINDOW + 1: Counts(7, 1, 3), T + 1: Counts(50, 50, 50)}),
            batch(ALIAS, {T: Counts(1, 1, 0), T - WINDOW - 5: Counts(30, 30, 30)}),
        ],
        now=NOW,
    )
    store.record([batch(ALIAS, {T - 3: Counts(2, 2, 2)})], now=NOW)

    views = store.views([ALIAS, OTHER, "3-never-recorded"], NOW, WINDOW)

    # In the window: second > now - window_seconds. T - WINDOW and older seconds are out; a bucket
    # stamped after now (clocks of processes differ a little) is recent by any measure: in.
    assert views[ALIAS].counts == Counts(5 + 4 + 1 + 2, 2 + 0 + 1 + 2, 1 + 0 + 0 + 2)
    assert views[OTHER].counts == Counts(7 + 50, 1 + 50, 3 + 50)
    assert views["3-never-recorded"].counts == Counts()
    assert [(v.alias, v.state, v.epoch, v.open_until, v.reopens) for v in views.values()] == [
        (ALIAS, State.CLOSED, 0, 0.0, 0),
        (OTHER, State.CLOSED, 0, 0.0, 0),
        ("3-never-recorded", State.CLOSED, 0, 0.0, 0),
    ]


def test_the_window_moves_with_now(store):
    store.record([batch(ALIAS, {T - 2: Counts(3, 1, 0), T: Counts(4, 0, 1)})], now=NOW)

    assert window_counts(store, ALIAS, now=NOW - 2) == Counts(7, 1, 1)  # T, still in the future, counts
    assert window_counts(store, ALIAS, now=NOW) == Counts(7, 1, 1)
    assert window_counts(store, ALIAS, now=NOW + WINDOW - 2) == Counts(4, 0, 1)  # T - 2 has just left
    assert window_counts(store, ALIAS, now=NOW + WINDOW) == Counts()


def test_views_prune_hash_fields_older_than_the_window(store, raw):
    store.record(
        [
            batch(
                ALIAS,
                {
                    T - WINDOW - 1: Counts(1, 1, 1),
                    T - WINDOW: Counts(1, 0, 1),
                    T - WINDOW + 1: Counts(1, 1, 0),
                    T: Counts(2, 0, 0),
                    T + 1: Counts(3, 0, 0),
                },
            )
        ],
        now=NOW,
    )
    window_key = f"cb:{{{ALIAS}}}:window"
    before = {
        f"c:{T - WINDOW - 1}",
        f"f:{T - WINDOW - 1}",
        f"s:{T - WINDOW - 1}",
        f"c:{T - WINDOW}",
        f"s:{T - WINDOW}",
        f"c:{T - WINDOW + 1}",
        f"f:{T - WINDOW + 1}",
        f"c:{T}",
        f"c:{T + 1}",
    }
    totals = {"tc", "tf", "ts"}  # running totals of the window
    assert set(raw.hkeys(window_key)) == before | totals  # zero failures and slow calls create no field

    assert window_counts(store, ALIAS) == Counts(6, 1, 0)

    assert set(raw.hkeys(window_key)) == {
        f"c:{T - WINDOW + 1}",
        f"f:{T - WINDOW + 1}",
        f"c:{T}",
        f"c:{T + 1}",
        *totals,
        "lo",  # the oldest second the totals include
    }
    assert 0 < raw.ttl(window_key) <= 3600


def test_record_drops_batches_of_another_generation(store, raw):
    assert store.advance_generation(ALIAS, 3) is True
    store.record(
        [
            batch(ALIAS, {T: Counts(100, 100, 0)}, generation=2),  # measured against the old server
            batch(ALIAS, {T: Counts(5, 1, 0)}, generation=3),
            batch(ALIAS, {T: Counts(200, 0, 200)}, generation=4),  # not this store's generation either
            batch(OTHER, {T: Counts(6, 2, 1)}, generation=9),  # no generation key for OTHER: counts
        ],
        now=NOW,
    )

    assert window_counts(store, ALIAS) == Counts(5, 1, 0)
    assert window_counts(store, OTHER) == Counts(6, 2, 1)
    assert raw.get(f"cb:{{{ALIAS}}}:generation") == "3"


def test_record_counts_every_generation_while_no_generation_is_stored(store):
    store.record([batch(ALIAS, {T: Counts(1, 0, 0)}, generation=0)], now=NOW)
    store.record([batch(ALIAS, {T: Counts(2, 1, 0)}, generation=5)], now=NOW)

    assert window_counts(store, ALIAS) == Counts(3, 1, 0)
    assert store.states([ALIAS])[ALIAS].generation == 0


def test_advance_generation_empties_the_window_and_drops_older_batches(store, raw):
    store.record([batch(ALIAS, {T: Counts(9, 9, 0)}), batch(OTHER, {T: Counts(4, 0, 0)})], now=NOW)
    assert window_counts(store, ALIAS) == Counts(9, 9, 0)

    assert store.advance_generation(ALIAS, 1) is True

    assert window_counts(store, ALIAS) == Counts()
    assert raw.exists(f"cb:{{{ALIAS}}}:window") == 0
    assert window_counts(store, OTHER) == Counts(4, 0, 0)  # another alias keeps its window
    assert store.states([ALIAS])[ALIAS].generation == 1

    # A process still gathering under generation 0 flushes late: dropped.
    store.record([batch(ALIAS, {T: Counts(8, 8, 8)}, generation=0)], now=NOW)
    assert window_counts(store, ALIAS) == Counts()

    store.record([batch(ALIAS, {T: Counts(2, 0, 0)}, generation=1)], now=NOW)
    assert window_counts(store, ALIAS) == Counts(2, 0, 0)


def test_advance_generation_only_moves_forward(store, raw):
    assert store.advance_generation(ALIAS, 5) is True
    store.record([batch(ALIAS, {T: Counts(3, 1, 0)}, generation=5)], now=NOW)

    assert store.advance_generation(ALIAS, 5) is False  # a retried failover: no second bump
    assert store.advance_generation(ALIAS, 4) is False
    assert store.advance_generation(ALIAS, 0) is False

    assert raw.get(f"cb:{{{ALIAS}}}:generation") == "5"
    assert store.states([ALIAS])[ALIAS].generation == 5
    assert window_counts(store, ALIAS) == Counts(3, 1, 0)  # a refused advance keeps the window

    assert store.advance_generation(ALIAS, 6) is True
    assert store.states([ALIAS])[ALIAS].generation == 6
    assert window_counts(store, ALIAS) == Counts()


def test_advance_generation_from_nothing_to_zero_is_not_a_move(store, raw):
    assert store.advance_generation(ALIAS, 0) is False
    assert raw.exists(f"cb:{{{ALIAS}}}:generation") == 0


def test_record_is_exact_under_concurrent_writers(store):
    threads, calls_per_thread = 8, 200

    def counts_for(index: int, call: int) -> tuple[Counts, Counts]:
        mine = Counts(calls=1 + (index + call) % 3, failures=(index + call) % 2, slow=1 if call % 4 == 0 else 0)
        other = Counts(calls=index + 1, failures=0, slow=call % 2)
        return mine, other

    def work(index: int) -> None:
        for call in range(calls_per_thread):
            mine, other = counts_for(index, call)
            store.record(
                [batch(ALIAS, {T - call % WINDOW: mine}), batch(OTHER, {T - (index + call) % WINDOW: other})],
                now=NOW,
            )

    run_together(threads, work)

    expected_alias, expected_other = Counts(), Counts()
    for index in range(threads):
        for call in range(calls_per_thread):
            mine, other = counts_for(index, call)
            expected_alias, expected_other = expected_alias + mine, expected_other + other
    views = store.views([ALIAS, OTHER], NOW, WINDOW)
    assert views[ALIAS].counts == expected_alias
    assert views[OTHER].counts == expected_other
    assert expected_alias.calls > threads * calls_per_thread  # the sums are not trivially 1 per call


# --- transition() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "expected_epoch"),
    [(State.OPEN, 0), (State.HALF_OPEN, 0), (State.CLOSED, 1), (State.CLOSED, -1)],
    ids=["wrong state", "wrong state again", "wrong epoch", "epoch behind"],
)
def test_transition_with_a_stale_expectation_changes_nothing(store, raw, expected, expected_epoch):
    store.record([batch(ALIAS, {T: Counts(4, 4, 0)})], now=NOW)

    assert store.transition(ALIAS, expected, expected_epoch, State.CLOSED, NOW, "stale") is None

    assert store.states([ALIAS])[ALIAS] == StateRecord()
    assert raw.exists(f"cb:{{{ALIAS}}}:state") == 0
    assert tripped(raw) == set()
    assert window_counts(store, ALIAS) == Counts(4, 4, 0)  # a refused move to closed clears nothing


def test_transition_applies_when_state_and_epoch_match(store):
    epoch = store.transition(
        ALIAS, State.CLOSED, 0, State.OPEN, NOW, "failure rate 60% >= 50%", open_until=NOW + 30, reopens=2
    )

    assert epoch == 1
    assert store.states([ALIAS, OTHER]) == {
        ALIAS: StateRecord(
            state=State.OPEN,
            epoch=1,
            since=NOW,
            open_until=NOW + 30,
            reopens=2,
            reason="failure rate 60% >= 50%",
            generation=0,
        ),
        OTHER: StateRecord(),
    }
    view = store.views([ALIAS], NOW, WINDOW)[ALIAS]
    assert (view.state, view.epoch, view.open_until, view.reopens) == (State.OPEN, 1, NOW + 30, 2)

    # The same CAS a second time (a retried task) is stale now.
    assert store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "again") is None
    assert store.states([ALIAS])[ALIAS].reason == "failure rate 60% >= 50%"

    assert store.transition(ALIAS, State.OPEN, 1, State.HALF_OPEN, NOW + 31, "open wait elapsed") == 2
    assert store.transition(ALIAS, State.HALF_OPEN, 2, State.CLOSED, NOW + 40, "trial calls passed") == 3
    # Reopens are kept through a close (they decay only once it stays closed: services' job).
    assert store.states([ALIAS])[ALIAS] == StateRecord(
        state=State.CLOSED, epoch=3, since=NOW + 40, open_until=0.0, reopens=2, reason="trial calls passed"
    )


def test_a_transition_starts_above_the_epoch_floor(store):
    # An empty Redis after the control DB saw epoch 7: the new epoch must not repeat an old one.
    assert store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "tripped", epoch_floor=7) == 8
    assert store.transition(ALIAS, State.OPEN, 8, State.HALF_OPEN, NOW, "wait over", epoch_floor=7) == 9


def test_annotate_rewrites_the_reason_of_the_current_epoch_only(store):
    store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "tripped")
    assert store.annotate(ALIAS, 1, "tripped; no healthy candidate") is True
    assert store.annotate(ALIAS, 0, "stale") is False
    record = store.states([ALIAS])[ALIAS]
    assert (record.state, record.epoch, record.reason) == (State.OPEN, 1, "tripped; no healthy candidate")


def test_states_report_the_generation(store):
    store.advance_generation(ALIAS, 7)
    store.transition(ALIAS, State.CLOSED, 0, State.FORCED_OPEN, NOW, "operator")

    assert store.states([ALIAS])[ALIAS] == StateRecord(
        state=State.FORCED_OPEN, epoch=1, since=NOW, reason="operator", generation=7
    )


# (setup: from closed, the transitions to reach the starting state) -> (start, to, window cleared?)
CLEARING_CASES = [
    ([], State.CLOSED, State.OPEN, False),
    ([State.OPEN], State.OPEN, State.HALF_OPEN, True),
    ([State.OPEN, State.HALF_OPEN], State.HALF_OPEN, State.CLOSED, True),
    ([State.OPEN, State.HALF_OPEN], State.HALF_OPEN, State.OPEN, False),
    ([], State.CLOSED, State.FORCED_OPEN, False),
    ([], State.CLOSED, State.DISABLED, False),
    ([State.FORCED_OPEN], State.FORCED_OPEN, State.CLOSED, True),
]


@pytest.mark.parametrize(
    ("setup", "start", "to_state", "clears"),
    CLEARING_CASES,
    ids=[f"{start.value}->{to.value}" for _, start, to, _ in CLEARING_CASES],
)
def test_transition_clears_the_window_only_when_leaving_for_half_open_or_closed(
    store, raw, setup, start, to_state, clears
):
    state, epoch = State.CLOSED, 0
    for step in setup:
        epoch = store.transition(ALIAS, state, epoch, step, NOW, "setup")
        state = step
    store.record([batch(ALIAS, {T: Counts(6, 3, 1)}), batch(OTHER, {T: Counts(2, 1, 0)})], now=NOW)

    assert store.transition(ALIAS, start, epoch, to_state, NOW, "under test") == epoch + 1

    assert window_counts(store, ALIAS) == (Counts() if clears else Counts(6, 3, 1))
    assert raw.exists(f"cb:{{{ALIAS}}}:window") == (0 if clears else 1)
    assert window_counts(store, OTHER) == Counts(2, 1, 0)


@pytest.mark.parametrize("to_state", [State.OPEN, State.HALF_OPEN, State.FORCED_OPEN, State.DISABLED])
def test_tripped_set_holds_aliases_that_are_not_closed(store, raw, to_state):
    assert store.transition(ALIAS, State.CLOSED, 0, to_state, NOW, "trip") == 1
    assert tripped(raw) == {ALIAS}

    assert store.transition(ALIAS, to_state, 1, State.CLOSED, NOW, "back") == 2
    assert tripped(raw) == set()


def test_tripped_set_follows_a_full_cycle(store, raw):
    steps = [
        (State.CLOSED, State.OPEN, {ALIAS}),
        (State.OPEN, State.HALF_OPEN, {ALIAS}),
        (State.HALF_OPEN, State.OPEN, {ALIAS}),
        (State.OPEN, State.HALF_OPEN, {ALIAS}),
        (State.HALF_OPEN, State.CLOSED, set()),
    ]
    store.transition(OTHER, State.CLOSED, 0, State.OPEN, NOW, "other")
    for epoch, (start, to_state, expected) in enumerate(steps):
        assert store.transition(ALIAS, start, epoch, to_state, NOW, "step") == epoch + 1
        assert tripped(raw) == expected | {OTHER}


def test_a_refused_transition_leaves_the_tripped_set_alone(store, raw):
    store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip")

    assert store.transition(ALIAS, State.HALF_OPEN, 1, State.CLOSED, NOW, "stale evaluator") is None

    assert tripped(raw) == {ALIAS}
    assert store.states([ALIAS])[ALIAS].state is State.OPEN


def test_concurrent_identical_transitions_have_exactly_one_winner(make_store):
    threads = 8
    stores = [make_store() for _ in range(threads)]  # eight evaluators
    aliases = [f"{n}-default" for n in range(1, 11)]

    for alias in aliases:
        results = run_together(
            threads,
            lambda i, alias=alias: stores[i].transition(alias, State.CLOSED, 0, State.OPEN, NOW, f"evaluator {i}"),
        )
        winners = [i for i, epoch in enumerate(results) if epoch is not None]
        assert len(winners) == 1, results
        assert results[winners[0]] == 1
        assert results.count(None) == threads - 1
        record = stores[0].states([alias])[alias]
        assert (record.state, record.epoch, record.reason) == (State.OPEN, 1, f"evaluator {winners[0]}")


def test_tripped_set_is_not_undone_by_an_earlier_transition_finishing_late(make_store, monkeypatch):
    slow, fast = make_store(), make_store()
    slow.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip")
    slow.transition(ALIAS, State.OPEN, 1, State.HALF_OPEN, NOW + 30, "open wait elapsed")
    real_mark = slow._mark_tripped

    def mark_after_another_evaluator(*args, **kwargs):
        # Evaluator "slow" has closed the breaker (epoch 3) but not yet removed it from cb:tripped when
        # evaluator "fast" sees new failures and opens it again (epoch 4), adding it to cb:tripped.
        assert fast.transition(ALIAS, State.CLOSED, 3, State.OPEN, NOW + 41, "failures again") == 4
        return real_mark(*args, **kwargs)

    monkeypatch.setattr(slow, "_mark_tripped", mark_after_another_evaluator)
    assert slow.transition(ALIAS, State.HALF_OPEN, 2, State.CLOSED, NOW + 40, "trial calls passed") == 3

    assert fast.states([ALIAS])[ALIAS].state is State.OPEN
    # An open breaker without traffic must still be evaluated, or it never goes half-open again.
    assert fast.recent_aliases(since=NOW + 1000) == [ALIAS]


def test_a_retried_transition_after_a_failed_tripped_update_leaves_the_breaker_tripped(store, monkeypatch):
    real_mark = store._mark_tripped
    failures = iter([redis.ConnectionError("connection reset by peer")])

    def mark_failing_once(*args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_mark(*args, **kwargs)

    monkeypatch.setattr(store, "_mark_tripped", mark_failing_once)
    with pytest.raises(StoreUnavailableError):
        store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip", open_until=NOW + 30)
    # The evaluator retries the same decision, as it must after StoreUnavailableError.
    retried = store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip", open_until=NOW + 30)

    assert (retried, store.states([ALIAS])[ALIAS].state) == (None, State.OPEN)
    assert store.recent_aliases(since=NOW + 1000) == [ALIAS]


def tripped(raw) -> set[str]:
    """Aliases the tripped index holds as not closed."""
    return {alias for alias, mark in raw.hgetall(TRIPPED_KEY).items() if not mark.endswith(" closed")}


# --- recent_aliases() --------------------------------------------------------------------------


def test_recent_aliases_are_recorded_since_or_tripped(store, raw):
    store.record([batch("1-old", {100: Counts(1, 0, 0)})], now=100.0)
    store.record([batch("2-edge", {150: Counts(1, 0, 0)})], now=150.0)
    store.record([batch("3-new", {200: Counts(1, 0, 0)}), batch("4-new", {200: Counts(1, 1, 0)})], now=200.0)
    store.transition("5-tripped", State.CLOSED, 0, State.OPEN, 20.0, "trip")  # never recorded anything
    store.transition("1-old", State.CLOSED, 0, State.OPEN, 100.0, "trip")
    store.transition("1-old", State.OPEN, 1, State.CLOSED, 110.0, "recovered")

    assert store.recent_aliases(since=150.0) == ["2-edge", "3-new", "4-new", "5-tripped"]

    # Older entries were dropped from cb:recent, not merely filtered: an earlier `since` does not revive them.
    assert raw.zrange(RECENT_KEY, 0, -1, withscores=True) == [("2-edge", 150.0), ("3-new", 200.0), ("4-new", 200.0)]
    assert store.recent_aliases(since=0.0) == ["2-edge", "3-new", "4-new", "5-tripped"]
    assert store.recent_aliases(since=1000.0) == ["5-tripped"]


def test_recent_aliases_keep_the_latest_time_an_alias_recorded(store):
    store.record([batch(ALIAS, {100: Counts(1, 0, 0)})], now=100.0)
    store.record([batch(ALIAS, {300: Counts(1, 0, 0)})], now=300.5)

    assert store.recent_aliases(since=300.5) == [ALIAS]
    assert store.recent_aliases(since=300.6) == []


def test_record_of_nothing_marks_no_alias_recent(store, raw):
    store.record([], now=NOW)

    assert store.recent_aliases(since=0.0) == []
    assert raw.dbsize() == 0


# --- leases ------------------------------------------------------------------------------------


def test_a_held_lease_cannot_be_acquired_again(store):
    assert store.acquire_lease(ALIAS, "evaluator-a", 30) is True

    assert store.acquire_lease(ALIAS, "evaluator-b", 30) is False
    assert store.acquire_lease(ALIAS, "evaluator-a", 30) is False  # not re-entrant either
    assert store.acquire_lease(OTHER, "evaluator-b", 30) is True  # one lease per alias


def test_only_the_owner_releases_a_lease(store, raw):
    assert store.acquire_lease(ALIAS, "evaluator-a", 30) is True

    store.release_lease(ALIAS, "evaluator-b")
    assert raw.get(f"cb:{{{ALIAS}}}:lease") == "evaluator-a"
    assert store.acquire_lease(ALIAS, "evaluator-b", 30) is False

    store.release_lease(ALIAS, "evaluator-a")
    assert raw.exists(f"cb:{{{ALIAS}}}:lease") == 0
    assert store.acquire_lease(ALIAS, "evaluator-b", 30) is True

    store.release_lease(ALIAS, "evaluator-a")  # a late release by the former owner: no effect
    assert raw.get(f"cb:{{{ALIAS}}}:lease") == "evaluator-b"


def test_release_of_a_lease_nobody_holds_is_harmless(store, raw):
    store.release_lease(ALIAS, "evaluator-a")

    assert raw.dbsize() == 0


def test_a_lease_expires(store, raw):
    start = time.monotonic()
    assert store.acquire_lease(ALIAS, "evaluator-a", 0.2) is True
    assert 0 < raw.pttl(f"cb:{{{ALIAS}}}:lease") <= 200

    deadline = start + 5.0
    while not store.acquire_lease(ALIAS, "evaluator-b", 30):
        assert time.monotonic() < deadline, "the 0.2 s lease was still held after 5 s"
        time.sleep(0.02)

    assert time.monotonic() - start >= 0.15  # it did not vanish at once
    assert raw.get(f"cb:{{{ALIAS}}}:lease") == "evaluator-b"


# --- keys, scripts, pub/sub --------------------------------------------------------------------


def test_every_key_of_an_alias_shares_its_hash_tag(store, raw):
    store.advance_generation(ALIAS, 2)
    store.record([batch(ALIAS, {T: Counts(3, 1, 1)}, generation=2)], now=NOW)
    store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip", open_until=NOW + 30)
    store.acquire_lease(ALIAS, "evaluator-a", 30)
    store.views([ALIAS], NOW, WINDOW)
    store.states([ALIAS])
    store.recent_aliases(since=0.0)
    store.publish_pool_reset(ALIAS, 2)

    keys = set(raw.scan_iter(match="*", count=1000))

    assert keys == {
        RECENT_KEY,
        TRIPPED_KEY,
        "cb:{1-default}:state",
        "cb:{1-default}:window",
        "cb:{1-default}:generation",
        "cb:{1-default}:lease",
    }
    alias_keys = keys - {RECENT_KEY, TRIPPED_KEY}
    assert all(k.startswith("cb:{1-default}:") for k in alias_keys)
    assert {key_slot(k.encode()) for k in alias_keys} == {key_slot(b"1-default")}  # one Cluster slot


def test_forget_removes_every_key_of_one_alias(store, raw):
    for alias in (ALIAS, OTHER):
        store.advance_generation(alias, 1)
        store.record([batch(alias, {T: Counts(1, 0, 0)}, generation=1)], now=NOW)
        store.transition(alias, State.CLOSED, 0, State.OPEN, NOW, "trip")
        store.acquire_lease(alias, "evaluator-a", 30)

    store.forget(ALIAS)

    assert sorted(raw.scan_iter(match="*{1-default}*")) == []
    assert store.recent_aliases(since=0.0) == [OTHER]
    assert store.states([ALIAS])[ALIAS] == StateRecord()


def test_scripts_survive_script_flush(store, raw):
    scripts = [RECORD_SCRIPT, TRANSITION_SCRIPT, ADVANCE_GENERATION_SCRIPT, RELEASE_LEASE_SCRIPT]
    store.record([batch(ALIAS, {T: Counts(1, 0, 0)})], now=NOW)
    store.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip")
    assert raw.script_exists(sha(RECORD_SCRIPT), sha(TRANSITION_SCRIPT)) == [True, True]

    raw.script_flush()
    assert raw.script_exists(*(sha(s) for s in scripts)) == [False] * 4
    # record() runs its script inside a pipeline: two batches, so the script is queued twice.
    store.record([batch(ALIAS, {T: Counts(2, 1, 0)}), batch(OTHER, {T: Counts(5, 0, 0)})], now=NOW)

    raw.script_flush()
    assert store.transition(ALIAS, State.OPEN, 1, State.HALF_OPEN, NOW, "open wait elapsed") == 2

    raw.script_flush()
    store.record([batch(ALIAS, {T: Counts(4, 4, 0)})], now=NOW)

    raw.script_flush()
    assert store.advance_generation(OTHER, 1) is True

    raw.script_flush()
    store.acquire_lease(ALIAS, "evaluator-a", 30)
    store.release_lease(ALIAS, "evaluator-a")

    assert window_counts(store, ALIAS) == Counts(4, 4, 0)  # the half-open transition cleared 1 + 2
    assert window_counts(store, OTHER) == Counts()  # the generation advance cleared it
    assert store.states([ALIAS, OTHER])[ALIAS].state is State.HALF_OPEN
    assert store.states([OTHER])[OTHER].generation == 1
    assert raw.exists(f"cb:{{{ALIAS}}}:lease") == 0


def test_publish_pool_reset_sends_alias_and_generation(store, redis_url):
    listener = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = listener.pubsub()
    pubsub.subscribe(POOL_RESET_CHANNEL)
    confirmation = pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe"

    store.publish_pool_reset(ALIAS, 4)

    message = pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    pubsub.close()
    listener.close()
    assert message is not None
    assert (message["type"], message["channel"]) == ("message", POOL_RESET_CHANNEL)
    assert json.loads(message["data"]) == {"alias": ALIAS, "generation": 4}


# --- Redis down --------------------------------------------------------------------------------

STORE_CALLS: dict[str, Callable[[RedisBreakerStore], object]] = {
    "record": lambda s: s.record([batch(ALIAS, {T: Counts(1, 1, 0)})], now=NOW),
    "recent_aliases": lambda s: s.recent_aliases(since=0.0),
    "views": lambda s: s.views([ALIAS], NOW, WINDOW),
    "states": lambda s: s.states([ALIAS]),
    "transition": lambda s: s.transition(ALIAS, State.CLOSED, 0, State.OPEN, NOW, "trip"),
    "advance_generation": lambda s: s.advance_generation(ALIAS, 1),
    "publish_pool_reset": lambda s: s.publish_pool_reset(ALIAS, 1),
    "acquire_lease": lambda s: s.acquire_lease(ALIAS, "evaluator-a", 30),
    "release_lease": lambda s: s.release_lease(ALIAS, "evaluator-a"),
    "forget": lambda s: s.forget(ALIAS),
}


@pytest.mark.parametrize("method", list(STORE_CALLS))
def test_every_method_raises_store_unavailable_quickly_when_redis_is_down(down_store, method):
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        STORE_CALLS[method](down_store)
    elapsed = time.monotonic() - start

    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert elapsed < 3.0  # 1 s timeouts and no retries, not redis-py's default of several seconds


@pytest.mark.parametrize("method", ["views", "transition", "record"])
def test_a_redis_that_does_not_answer_times_out_after_one_second(paused_store, method):
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        STORE_CALLS[method](paused_store)
    elapsed = time.monotonic() - start

    assert isinstance(caught.value.__cause__, redis.TimeoutError)
    assert 0.9 <= elapsed < 3.0  # one socket timeout of 1 s, no retry


def test_a_late_batch_for_a_second_that_left_the_window_is_not_counted(store):
    store.record([batch(ALIAS, {T: Counts(2, 0, 0)})], now=NOW)
    assert window_counts(store, ALIAS, now=NOW + WINDOW - 1) == Counts(2, 0, 0)
    # A slow process flushes outcomes of a second that the window already left.
    store.record([batch(ALIAS, {T - 1: Counts(9, 9, 9)}), batch(ALIAS, {T + 5: Counts(1, 1, 0)})], now=NOW + 6)
    assert window_counts(store, ALIAS, now=NOW + WINDOW - 1) == Counts(3, 1, 0)
    assert window_counts(store, ALIAS, now=NOW + WINDOW) == Counts(1, 1, 0)


def test_recording_evicts_what_its_newest_second_pushed_out_of_the_window(store, raw):
    store.record([batch(ALIAS, {T: Counts(4, 2, 1)})], now=NOW)
    assert window_counts(store, ALIAS) == Counts(4, 2, 1)  # the first read sets up the totals
    store.record([batch(ALIAS, {T + WINDOW: Counts(1, 0, 0)})], now=NOW + WINDOW)
    fields = raw.hgetall(f"cb:{{{ALIAS}}}:window")
    assert (fields["tc"], fields["tf"], fields["ts"], fields["lo"]) == ("1", "0", "0", str(T + 1))
    assert f"c:{T}" not in fields
    assert window_counts(store, ALIAS, now=NOW + WINDOW) == Counts(1, 0, 0)


# --- count-based window ------------------------------------------------------------------------


def test_a_count_based_view_judges_only_the_last_calls_inside_the_window(store):
    store.record(
        [
            batch(
                ALIAS,
                {
                    T - WINDOW: Counts(50, 50, 50),  # outside the window, however few calls are inside
                    T - 5: Counts(10, 10, 4),
                    T - 1: Counts(6, 0, 0),
                    T: Counts(4, 1, 0),
                },
            )
        ],
        now=NOW,
    )

    def last(calls: int) -> Counts:
        return store.views([ALIAS], NOW, WINDOW, window_calls=calls)[ALIAS].counts

    assert last(4) == Counts(4, 1, 0)  # the newest second alone
    assert last(10) == Counts(10, 1, 0)  # the two newest seconds: the failures at T - 5 are older
    # Across processes the order within one second is unknown: a proportional share of T - 5.
    assert last(15) == Counts(15, 6, 2)
    assert last(1000) == Counts(20, 11, 4)  # fewer calls than N: all of the window's, no more
    assert last(0) == Counts(20, 11, 4)  # 0: the time-based window
    assert window_counts(store, ALIAS) == Counts(20, 11, 4)
