"""The sequential breaker, driven per call with a fake clock."""

import random

import pytest

from breaker_worker.core.machine import State
from breaker_worker.core.policy import Policy
from breaker_worker.core.sequential import SequentialBreaker
from breaker_worker.core.window import Counts

OK = Counts(1, 0, 0)
FAIL = Counts(1, 1, 0)
IGNORED = Counts()
POLICY = Policy(window_seconds=10, minimum_calls=4, failure_rate=50, open_seconds=5, probes=2)


def breaker():
    return SequentialBreaker("1-default", POLICY, rng=random.Random(7))


def test_opens_inline_on_the_call_that_crosses_the_threshold():
    b = breaker()
    assert [b.on_result(r, 100.0) for r in (OK, FAIL, OK)] == [None, None, None]
    transition = b.on_result(FAIL, 100.5)  # 2 of 4 = 50 %
    assert (transition.from_state, transition.to_state) == (State.CLOSED, State.OPEN)
    assert transition.reason == "failure rate 50% >= 50% (2 of 4 calls in 10s)"
    assert transition.counts == Counts(4, 2, 0)
    assert b.state is State.OPEN
    assert 4.5 <= b.retry_after(100.5) <= 5.5


def test_a_success_opens_when_old_successes_leave_the_window_and_the_rate_rises():
    b = breaker()
    for _ in range(20):
        b.on_result(OK, 100.0)
    for _ in range(12):
        assert b.on_result(FAIL, 105.0) is None  # 12 of 32
    transition = b.on_result(OK, 110.0)  # the 20 successes of second 100 left: 12 of 13
    assert (transition.from_state, transition.to_state) == (State.CLOSED, State.OPEN)
    assert transition.counts == Counts(13, 12, 0)


def test_not_enough_calls_never_opens():
    b = breaker()
    assert [b.on_result(FAIL, 100.0) for _ in range(3)] == [None, None, None]
    assert b.state is State.CLOSED and b.retry_after(100.0) is None


def test_half_open_admits_a_bounded_number_of_trials_and_closes_after_enough_successes():
    b = breaker()
    for _ in range(4):
        b.on_result(FAIL, 100.0)
    now = b.open_until
    assert b.retry_after(now) is None and b.state is State.HALF_OPEN  # trial 1
    assert b.retry_after(now) is None  # trial 2
    assert b.retry_after(now) == 0.0  # a third caller waits for the trials
    assert b.retry_after(now, trial=False) is None  # a connect is not a trial
    assert b.on_result(OK, now) is None
    transition = b.on_result(OK, now)
    assert (transition.from_state, transition.to_state) == (State.HALF_OPEN, State.CLOSED)
    assert transition.reason == "2 trial call(s) succeeded"
    assert b.window.counts(now) == Counts()  # closed starts afresh


def test_a_failed_trial_reopens_with_a_longer_wait():
    b = breaker()
    for _ in range(4):
        b.on_result(FAIL, 100.0)
    first_wait = b.open_until - 100.0
    now = b.open_until
    b.retry_after(now)
    transition = b.on_result(FAIL, now)
    assert (transition.from_state, transition.to_state, transition.reason) == (
        State.HALF_OPEN,
        State.OPEN,
        "trial call failed",
    )
    assert b.reopens == 1 and b.open_until - now > first_wait * 1.5


def test_an_ignored_trial_frees_its_slot():
    b = breaker()
    for _ in range(4):
        b.on_result(FAIL, 100.0)
    now = b.open_until
    assert b.retry_after(now) is None and b.retry_after(now) is None
    b.on_result(IGNORED, now)
    assert b.retry_after(now) is None


@pytest.mark.parametrize("state", [State.CLOSED, State.HALF_OPEN, State.OPEN])
def test_adopting_the_shared_state_starts_afresh(state):
    b = breaker()
    for _ in range(3):
        b.on_result(FAIL, 100.0)
    b.adopt(state, open_until=200.0)
    assert b.state is state and b.window.counts(100.0) == Counts()
    if state is State.OPEN:
        assert b.retry_after(150.0) == 50.0


def test_consecutive_failed_connects_open_at_once_and_a_success_restarts_the_count():
    b = SequentialBreaker("1-default", Policy(minimum_calls=100, connect_failures=3), rng=random.Random(1))
    assert b.on_result(FAIL, 100.0, connecting=True) is None
    assert b.on_result(OK, 100.0) is None  # a success in between
    assert b.on_result(FAIL, 100.0, connecting=True) is None
    assert b.on_result(FAIL, 100.0) is None  # a failed query is not a failed connect
    assert b.on_result(FAIL, 100.0, connecting=True) is None
    transition = b.on_result(FAIL, 100.1, connecting=True)
    assert (transition.to_state, transition.reason) == (State.OPEN, "3 consecutive connection failures")


def test_the_success_that_reaches_minimum_calls_can_open():
    b = breaker()  # minimum_calls 4, failure rate 50 %
    for result in (FAIL, FAIL, FAIL):
        assert b.on_result(result, 100.0) is None
    transition = b.on_result(OK, 100.0)  # 3 of 4 failed: judged for the first time now
    assert (transition.to_state, transition.reason) == (State.OPEN, "failure rate 75% >= 50% (3 of 4 calls in 10s)")


def test_a_batch_of_successes_that_crosses_minimum_calls_is_judged_at_the_call_that_reaches_it():
    b = SequentialBreaker("1-default", Policy(window_seconds=10, minimum_calls=10, failure_rate=50))
    for _ in range(5):
        assert b.on_result(FAIL, 100.0) is None  # below minimum_calls: not judged yet
    transition = b.on_result(Counts(100, 0, 0), 100.0)  # as one by one: 5 of 10 at the 10th call
    assert (transition.to_state, transition.reason) == (State.OPEN, "failure rate 50% >= 50% (5 of 10 calls in 10s)")


def test_a_batch_of_successes_that_crosses_minimum_calls_below_the_threshold_is_all_counted():
    b = SequentialBreaker("1-default", Policy(window_seconds=10, minimum_calls=10, failure_rate=50))
    for _ in range(4):
        assert b.on_result(FAIL, 100.0) is None
    assert b.on_result(Counts(100, 0, 0), 100.0) is None  # 4 of 10 at the 10th call: stays closed
    assert b.window.counts(100.0) == Counts(104, 4, 0)


def test_a_batch_of_successes_past_minimum_calls_is_not_judged_again():
    b = SequentialBreaker("1-default", Policy(window_seconds=10, minimum_calls=4, failure_rate=50))
    for result in (OK, OK, OK, FAIL, Counts(100, 0, 0)):
        assert b.on_result(result, 100.0) is None
    assert b.window.counts(100.0) == Counts(104, 1, 0)
