"""Counts, the bucket rule for Redis windows, and the in-process TimeWindow ring, on a fake clock."""

from __future__ import annotations

import random

import pytest

from breaker_worker.core.window import (
    Counts,
    CountWindow,
    Outcome,
    TimeWindow,
    counts_from_buckets,
    counts_of,
    counts_of_last_calls,
    make_window,
)

FAIL = Counts(calls=1, failures=1, slow=0)
OK = Counts(calls=1, failures=0, slow=0)


# --- Counts and counts_of ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "slow", "expected"),
    [
        (Outcome.SUCCESS, False, Counts(1, 0, 0)),
        (Outcome.SUCCESS, True, Counts(1, 0, 1)),
        (Outcome.FAILURE, False, Counts(1, 1, 0)),
        (Outcome.FAILURE, True, Counts(1, 1, 1)),
        (Outcome.SLOW, False, Counts(1, 0, 1)),
        (Outcome.IGNORED, False, Counts(0, 0, 0)),
        # An ignored call adds nothing, not even a slow mark.
        (Outcome.IGNORED, True, Counts(0, 0, 0)),
    ],
)
def test_counts_of_one_call(outcome, slow, expected):
    assert counts_of(outcome, slow=slow) == expected


def test_counts_add_and_subtract_field_by_field():
    assert Counts(5, 2, 1) + Counts(3, 1, 2) == Counts(8, 3, 3)
    assert Counts(5, 2, 1) - Counts(3, 1, 1) == Counts(2, 1, 0)


def test_failure_rate_is_none_below_minimum_calls_and_exact_at_it():
    assert Counts(9, 9, 0).failure_rate(minimum_calls=10) is None
    assert Counts(10, 3, 0).failure_rate(minimum_calls=10) == 0.3
    assert Counts(0, 0, 0).failure_rate(minimum_calls=0) is None


def test_slow_rate_is_none_below_minimum_calls_and_exact_at_it():
    assert Counts(4, 0, 4).slow_rate(minimum_calls=5) is None
    assert Counts(5, 0, 2).slow_rate(minimum_calls=5) == 0.4
    assert Counts(0, 0, 0).slow_rate(minimum_calls=0) is None


# --- counts_from_buckets: now - window_seconds < b <= now ----------------------------------------


def test_counts_from_buckets_keeps_exactly_the_seconds_inside_the_window():
    buckets = [
        (89, Counts(1000, 1000, 0)),  # long gone
        (90, Counts(100, 100, 0)),  # now - window: just outside
        (91, Counts(1, 1, 0)),  # oldest second inside
        (95, Counts(2, 0, 1)),
        (100, Counts(4, 2, 0)),  # the current second
        (101, Counts(10000, 0, 0)),  # from a clock ahead of ours: not yet
    ]
    assert counts_from_buckets(buckets, now=100.0, window_seconds=10) == Counts(7, 3, 1)


def test_counts_from_buckets_uses_the_whole_second_of_a_fractional_now():
    buckets = [(90, Counts(1, 1, 0)), (91, Counts(1, 0, 0)), (100, Counts(1, 0, 0))]
    assert counts_from_buckets(buckets, now=100.999, window_seconds=10) == Counts(2, 0, 0)
    assert counts_from_buckets(buckets, now=101.0, window_seconds=10) == Counts(1, 0, 0)


def test_counts_from_buckets_sums_repeated_seconds():
    buckets = [(50, Counts(1, 1, 0)), (50, Counts(2, 0, 1)), (49, Counts(3, 3, 3))]
    assert counts_from_buckets(buckets, now=50, window_seconds=1) == Counts(3, 1, 1)


def test_counts_from_buckets_of_nothing_is_zero():
    assert counts_from_buckets([], now=100, window_seconds=10) == Counts()


# --- TimeWindow ----------------------------------------------------------------------------------


def test_many_records_in_one_second_add_up_exactly():
    window = TimeWindow(10)
    for i in range(1000):
        window.record(FAIL if i % 4 == 0 else OK, now=500 + i / 1000)  # 500.000 .. 500.999
    assert window.counts(500.999) == Counts(1000, 250, 0)
    assert window.counts(509.999) == Counts(1000, 250, 0)
    assert window.counts(510.0) == Counts()


def test_totals_stay_exact_as_buckets_are_evicted_one_by_one():
    window = TimeWindow(10)
    window.record(FAIL, now=100)
    window.record(OK, now=103)
    window.record(OK, now=103.5)
    window.record(Counts(1, 1, 1), now=109)

    assert window.counts(109) == Counts(4, 2, 1)
    assert window.counts(110) == Counts(3, 1, 1)  # second 100 left the window
    assert window.counts(112.9) == Counts(3, 1, 1)
    assert window.counts(113) == Counts(1, 1, 1)  # second 103 left too
    assert window.counts(118.5) == Counts(1, 1, 1)
    assert window.counts(119) == Counts()


def test_recording_at_the_boundary_second_reuses_a_cleared_bucket():
    window = TimeWindow(10)
    window.record(Counts(5, 5, 0), now=100)
    # Second 110 maps to the same slot as second 100: the old counts must be evicted first.
    window.record(OK, now=110)
    assert window.counts(110) == OK
    assert window.counts(119.999) == OK
    assert window.counts(120) == Counts()


def test_the_oldest_second_of_the_window_still_counts():
    window = TimeWindow(10)
    window.record(FAIL, now=100.0)
    assert window.counts(109.999) == FAIL
    assert window.counts(110.0) == Counts()


def test_a_jump_longer_than_the_window_clears_everything():
    window = TimeWindow(10)
    for second in range(200, 210):
        window.record(Counts(3, 2, 1), now=second)
    assert window.counts(209) == Counts(30, 20, 10)

    assert window.counts(209 + 1000) == Counts()
    # Nothing stale is left in any slot, whatever second it maps to.
    for second in range(1209, 1219):
        window.record(OK, now=second)
    assert window.counts(1218) == Counts(10, 0, 0)
    assert window.counts(1228) == Counts()


def test_a_jump_of_exactly_the_window_clears_everything():
    window = TimeWindow(5)
    for second in range(10, 15):
        window.record(FAIL, now=second)
    assert window.counts(14) == Counts(5, 5, 0)
    assert window.counts(19) == Counts()


def test_a_one_second_window_holds_only_the_current_second():
    window = TimeWindow(1)
    window.record(FAIL, now=7.0)
    window.record(OK, now=7.9)
    assert window.counts(7.99) == Counts(2, 1, 0)
    window.record(OK, now=8.0)
    assert window.counts(8.0) == OK


def test_reset_empties_the_window_and_forgets_the_newest_second():
    window = TimeWindow(10)
    window.record(Counts(4, 4, 4), now=1000)
    window.reset()
    assert window.counts(1000) == Counts()
    window.record(FAIL, now=1000)
    assert window.counts(1000) == FAIL


@pytest.mark.parametrize("seed", range(5))
def test_ring_agrees_with_the_bucket_rule_on_a_random_trace(seed):
    """The ring and ``counts_from_buckets`` implement the same window: same totals at every read."""
    rng = random.Random(seed)
    window_seconds = rng.choice([1, 3, 10])
    window = TimeWindow(window_seconds)
    recorded: list[tuple[int, Counts]] = []
    now = 1000.0
    for _ in range(400):
        now += rng.choice([0.0, 0.0, 0.3, 1.0, 2.0, rng.uniform(0, 3 * window_seconds)])
        if rng.random() < 0.7:
            counts = Counts(rng.randint(1, 5), rng.randint(0, 1), rng.randint(0, 1))
            window.record(counts, now=now)
            recorded.append((int(now), counts))
        else:
            assert window.counts(now) == counts_from_buckets(recorded, now, window_seconds)


def test_a_record_older_than_the_window_is_not_counted():
    window = TimeWindow(10)
    window.record(OK, now=20)
    # A caller that read the clock before a long stall (or a clock stepped back) records late.
    window.record(FAIL, now=5)
    # Window at 20 is seconds 11..20, as counts_from_buckets has it.
    assert window.counts(20) == counts_from_buckets([(20, OK), (5, FAIL)], now=20, window_seconds=10)


def test_count_window_keeps_exactly_the_last_n_calls():
    window = CountWindow(3, window_seconds=60)
    for counts in (FAIL, FAIL, Counts(1, 0, 1), Counts(), Counts(1, 0, 0)):
        window.record(counts, now=0)  # ignored calls are not calls
    assert window.counts(59) == Counts(3, 1, 1)  # FAIL, slow, OK
    window.reset()
    assert window.counts(0) == Counts()


def test_count_window_takes_a_batch_of_successes_and_pushes_it_out_call_by_call():
    window = CountWindow(10, window_seconds=60)
    window.record(FAIL, now=0)
    window.record(Counts(6, 0, 0), now=1)  # six quick successes counted together
    assert window.counts(1) == Counts(7, 1, 0)
    window.record(Counts(1, 1, 1), now=2)
    window.record(Counts(4, 0, 0), now=3)  # 12 calls: the FAIL and one of the six leave
    assert window.counts(3) == Counts(10, 1, 1)
    window.record(Counts(25, 0, 0), now=4)  # more than the window holds: only its last 10 stay
    assert window.counts(4) == Counts(10, 0, 0)
    assert window.total_calls == 10


def test_count_window_holds_no_call_older_than_window_seconds():
    window = CountWindow(10, window_seconds=5)
    for _ in range(9):
        assert window.record(FAIL, now=100.5) is False
    assert window.record(OK, now=104.9) is False
    assert window.counts(104.9) == Counts(10, 9, 0)
    assert window.record(OK, now=105.0) is True  # second 100 aged out: rates may have risen
    assert window.counts(105.0) == Counts(2, 0, 0)
    assert window.counts(200) == Counts()


def test_counts_of_last_calls_takes_newest_buckets_and_a_share_of_the_oldest():
    buckets = [(10, Counts(4, 4, 0)), (9, Counts(10, 0, 0)), (8, Counts(4, 2, 2)), (0, Counts(50, 50, 0))]
    assert counts_of_last_calls(buckets, now=10.5, window_seconds=10, calls=4) == Counts(4, 4, 0)
    assert counts_of_last_calls(buckets, now=10.5, window_seconds=10, calls=14) == Counts(14, 4, 0)
    assert counts_of_last_calls(buckets, now=10.5, window_seconds=10, calls=16) == Counts(16, 5, 1)
    # The bucket of second 0 is outside the 10 s window, whatever the count.
    assert counts_of_last_calls(buckets, now=10.5, window_seconds=10, calls=1000) == Counts(18, 6, 2)


def test_make_window_follows_the_policy():
    assert isinstance(make_window(10, 0), TimeWindow)
    count_window = make_window(10, 50)
    assert isinstance(count_window, CountWindow) and (count_window.size, count_window.window_seconds) == (50, 10)


def test_record_says_when_older_calls_left_the_time_window():
    window = TimeWindow(10)
    assert window.record(OK, now=100) is False
    assert window.record(OK, now=105) is False  # a new second, but nothing left the window
    assert window.record(OK, now=110.5) is True  # second 100 left
    assert window.record(OK, now=110.9) is False
    assert window.counts(110.9) == Counts(3, 0, 0)
