"""The transition table and the pure decisions of the breaker, on a fake clock."""

from __future__ import annotations

import itertools
import random

import pytest

from breaker_worker.core.machine import (
    LEGAL_TRANSITIONS,
    REJECTING_STATES,
    BreakerView,
    Decision,
    IllegalTransitionError,
    State,
    check_transition,
    decide,
    next_reopens,
    open_wait,
    trip_reason,
)
from breaker_worker.core.policy import Policy
from breaker_worker.core.window import Counts

NOW = 1_700_000_000.0
NO_CALLS = Counts()

EXPECTED_LEGAL = {
    (State.CLOSED, State.OPEN),
    (State.OPEN, State.HALF_OPEN),
    (State.HALF_OPEN, State.CLOSED),
    (State.HALF_OPEN, State.OPEN),
    (State.CLOSED, State.FORCED_OPEN),
    (State.OPEN, State.FORCED_OPEN),
    (State.HALF_OPEN, State.FORCED_OPEN),
    (State.DISABLED, State.FORCED_OPEN),
    (State.CLOSED, State.DISABLED),
    (State.OPEN, State.DISABLED),
    (State.HALF_OPEN, State.DISABLED),
    (State.FORCED_OPEN, State.DISABLED),
    (State.OPEN, State.CLOSED),
    (State.FORCED_OPEN, State.CLOSED),
    (State.DISABLED, State.CLOSED),
}
ILLEGAL = sorted(set(itertools.product(State, State)) - EXPECTED_LEGAL)


def view(state: State, counts: Counts = NO_CALLS, open_until: float = 0.0, reopens: int = 0) -> BreakerView:
    return BreakerView(alias="tenant_7", state=state, epoch=3, open_until=open_until, counts=counts, reopens=reopens)


class FixedRng:
    """Stands in for random.Random: always draws the same jitter factor and records the bounds asked."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return self.value


# --- the transition table ------------------------------------------------------------------------


def test_the_table_holds_exactly_the_documented_transitions():
    assert LEGAL_TRANSITIONS == EXPECTED_LEGAL


@pytest.mark.parametrize(("from_state", "to_state"), sorted(EXPECTED_LEGAL))
def test_legal_transitions_pass(from_state, to_state):
    assert check_transition("tenant_7", from_state, to_state) is None


@pytest.mark.parametrize(("from_state", "to_state"), ILLEGAL)
def test_every_other_transition_raises_naming_alias_and_both_states(from_state, to_state):
    with pytest.raises(IllegalTransitionError) as caught:
        check_transition("tenant_7", from_state, to_state)
    assert str(caught.value) == f"breaker 'tenant_7': illegal transition {from_state.value} -> {to_state.value}"
    assert (caught.value.alias, caught.value.from_state, caught.value.to_state) == ("tenant_7", from_state, to_state)


def test_illegal_pairs_include_self_transitions_and_skipping_half_open():
    # 25 pairs in all, 15 legal: the rest must really be checked above.
    assert len(ILLEGAL) == 10
    assert (State.CLOSED, State.HALF_OPEN) in ILLEGAL
    assert (State.FORCED_OPEN, State.HALF_OPEN) in ILLEGAL
    assert all((s, s) in ILLEGAL for s in State)


def test_open_and_forced_open_reject_queries():
    assert REJECTING_STATES == {State.OPEN, State.FORCED_OPEN}


def test_stored_state_values_are_lower_case():
    assert [s.value for s in State] == ["closed", "open", "half_open", "forced_open", "disabled"]


# --- decide: closed ------------------------------------------------------------------------------


def test_closed_with_too_few_calls_stays_closed_even_at_full_failure():
    policy = Policy(minimum_calls=10, failure_rate=50)
    assert decide(view(State.CLOSED, Counts(9, 9, 9)), policy, NOW) is None


def test_closed_at_exactly_the_failure_threshold_opens():
    policy = Policy(window_seconds=10, minimum_calls=10, failure_rate=50)
    decision = decide(view(State.CLOSED, Counts(10, 5, 0)), policy, NOW)
    assert decision == Decision(State.OPEN, "failure rate 50% >= 50% (5 of 10 calls in 10s)")


def test_closed_just_below_the_failure_threshold_stays_closed():
    policy = Policy(minimum_calls=10, failure_rate=50)
    assert decide(view(State.CLOSED, Counts(10, 4, 0)), policy, NOW) is None


def test_closed_at_minimum_calls_counts_the_window_and_says_so():
    policy = Policy(window_seconds=30, minimum_calls=4, failure_rate=75)
    decision = decide(view(State.CLOSED, Counts(4, 3, 0)), policy, NOW)
    assert decision == Decision(State.OPEN, "failure rate 75% >= 75% (3 of 4 calls in 30s)")


def test_closed_at_exactly_29_percent_opens_a_29_percent_breaker():
    policy = Policy(minimum_calls=10, failure_rate=29)
    decision = decide(view(State.CLOSED, Counts(100, 29, 0)), policy, NOW)
    assert decision is not None
    assert decision.to_state is State.OPEN


def test_closed_at_exactly_57_percent_slow_opens_a_57_percent_breaker():
    policy = Policy(minimum_calls=10, slow_call_rate=57)
    assert trip_reason(Counts(100, 0, 57), policy) is not None


def test_closed_at_the_slow_call_threshold_opens_with_a_slow_reason():
    policy = Policy(minimum_calls=10, failure_rate=50, slow_call_rate=60, slow_call_seconds=2.5)
    decision = decide(view(State.CLOSED, Counts(10, 1, 6)), policy, NOW)
    assert decision == Decision(State.OPEN, "slow-call rate 60% >= 60% (6 of 10 calls slower than 2.5s)")


def test_closed_below_both_thresholds_stays_closed():
    policy = Policy(minimum_calls=10, failure_rate=50, slow_call_rate=60)
    assert decide(view(State.CLOSED, Counts(10, 4, 5)), policy, NOW) is None


def test_failure_rate_is_reported_before_slow_rate_when_both_trip():
    policy = Policy(minimum_calls=2, failure_rate=50, slow_call_rate=50)
    assert trip_reason(Counts(2, 2, 2), policy) == "failure rate 100% >= 50% (2 of 2 calls in 10s)"


def test_closed_ignores_open_until():
    policy = Policy(minimum_calls=10)
    assert decide(view(State.CLOSED, Counts(20, 0, 0), open_until=NOW - 100), policy, NOW) is None


# --- decide: half-open ---------------------------------------------------------------------------


def test_half_open_with_failing_trial_calls_reopens():
    policy = Policy(minimum_calls=3, failure_rate=50)
    decision = decide(view(State.HALF_OPEN, Counts(3, 3, 0)), policy, NOW)
    assert decision == Decision(State.OPEN, "trial calls failed: failure rate 100% >= 50% (3 of 3 calls in 10s)")


def test_half_open_with_healthy_trial_calls_is_left_alone():
    policy = Policy(minimum_calls=3, failure_rate=50)
    assert decide(view(State.HALF_OPEN, Counts(3, 1, 0)), policy, NOW) is None


# --- decide: open and the operator states --------------------------------------------------------


def test_open_before_open_until_stays_open_whatever_the_counts():
    policy = Policy(minimum_calls=1)
    assert decide(view(State.OPEN, Counts(50, 50, 0), open_until=NOW + 0.001), policy, NOW) is None


def test_open_at_open_until_goes_half_open():
    policy = Policy()
    assert decide(view(State.OPEN, open_until=NOW), policy, NOW) == Decision(State.HALF_OPEN, "open wait elapsed")


def test_open_after_open_until_goes_half_open():
    policy = Policy()
    assert decide(view(State.OPEN, open_until=NOW - 60), policy, NOW) == Decision(State.HALF_OPEN, "open wait elapsed")


@pytest.mark.parametrize("state", [State.FORCED_OPEN, State.DISABLED])
def test_operator_states_are_never_changed_by_the_evaluator(state):
    policy = Policy(minimum_calls=1)
    assert decide(view(state, Counts(100, 100, 100), open_until=NOW - 60), policy, NOW) is None


# --- open_wait -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("reopens", "expected"), [(0, 5.0), (1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0)])
def test_open_wait_doubles_with_each_reopen(reopens, expected):
    rng = FixedRng(0.0)
    assert open_wait(Policy(open_seconds=5, max_open_seconds=300), reopens, rng) == expected
    assert rng.calls == [(-0.1, 0.1)]


@pytest.mark.parametrize("reopens", [3, 4, 10, 64, 10_000])
def test_open_wait_is_capped_at_max_open_seconds(reopens):
    policy = Policy(open_seconds=5, max_open_seconds=30)
    assert open_wait(policy, reopens, FixedRng(0.0)) == 30.0


@pytest.mark.parametrize(("factor", "expected"), [(-0.1, 4.5), (0.1, 5.5), (0.05, 5.25)])
def test_open_wait_applies_the_drawn_jitter(factor, expected):
    assert open_wait(Policy(open_seconds=5), 0, FixedRng(factor)) == pytest.approx(expected)


def test_jitter_never_pushes_the_wait_above_the_cap():
    policy = Policy(open_seconds=5, max_open_seconds=30)
    assert open_wait(policy, 10, FixedRng(0.1)) == 30.0
    assert open_wait(policy, 10, FixedRng(-0.1)) == pytest.approx(27.0)


def test_open_wait_uses_the_given_rng():
    policy = Policy(open_seconds=5, max_open_seconds=300)
    expected = 20.0 + random.Random(7).uniform(-0.1, 0.1) * 20.0
    assert open_wait(policy, 2, random.Random(7)) == expected
    assert open_wait(policy, 2, random.Random(7)) == open_wait(policy, 2, random.Random(7))


@pytest.mark.parametrize(("reopens", "base"), [(0, 5.0), (1, 10.0), (2, 20.0), (5, 160.0)])
def test_jitter_stays_within_ten_percent_and_actually_spreads(reopens, base):
    policy = Policy(open_seconds=5, max_open_seconds=300)
    rng = random.Random(1234)
    waits = [open_wait(policy, reopens, rng) for _ in range(500)]
    assert all(base * 0.9 <= w <= base * 1.1 for w in waits)
    # Breakers tripped together must not probe in lockstep: the draws cover most of the band.
    assert min(waits) < base * 0.95
    assert max(waits) > base * 1.05


def test_jitter_at_the_cap_stays_within_ten_percent_below_it():
    policy = Policy(open_seconds=5, max_open_seconds=30)
    rng = random.Random(99)
    waits = [open_wait(policy, 8, rng) for _ in range(500)]
    assert all(27.0 <= w <= 30.0 for w in waits)
    assert min(waits) < 28.5


def test_next_reopens_grows_after_half_open_and_flapping_and_decays_after_a_long_close():
    policy = Policy(max_open_seconds=300)
    assert next_reopens(State.HALF_OPEN, 2, since=0.0, now=1000.0, policy=policy) == 3
    assert next_reopens(State.CLOSED, 2, since=900.0, now=1000.0, policy=policy) == 3  # closed 100 s
    assert next_reopens(State.CLOSED, 2, since=600.0, now=1000.0, policy=policy) == 0  # closed 400 s
    assert next_reopens(State.CLOSED, 0, since=999.0, now=1000.0, policy=policy) == 0
    assert next_reopens(State.FORCED_OPEN, 4, since=999.0, now=1000.0, policy=policy) == 0


def test_consecutive_connect_failures_trip_below_minimum_calls():
    policy = Policy(minimum_calls=100, connect_failures=5)
    assert trip_reason(Counts(5, 5, 0), policy, connect_failures=4) is None
    assert trip_reason(Counts(5, 5, 0), policy, connect_failures=5) == "5 consecutive connection failures"
    assert trip_reason(Counts(5, 5, 0), Policy(minimum_calls=100, connect_failures=0), connect_failures=50) is None


def test_the_connect_failure_streak_does_not_judge_a_busy_alias():
    policy = Policy(minimum_calls=10, failure_rate=50, connect_failures=5)
    # A short restart under traffic: 6 failed connects among 40 calls is 15 %, below the rate.
    assert trip_reason(Counts(40, 6, 0), policy, connect_failures=6) is None
