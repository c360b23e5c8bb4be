"""Time- and count-based sliding windows of call outcomes.

Algorithm (after Resilience4j's SlidingTimeWindowMetrics): the last ``window_seconds`` seconds
are a ring of one-second buckets plus a running total. Recording adds to the bucket of the
current second and to the total. When time moves on, each bucket that falls out of the window
is subtracted from the total and zeroed before it is reused (subtract-on-evict), so recording
and reading cost O(1) amortised and memory is O(window_seconds), whatever the call rate.

The count-based window (``CountWindow``) holds the last N calls, none older than
``window_seconds`` (as the aggregator's): a queue of (second, counts) with a running total;
recording subtracts the calls it pushes out, reading first drops calls that aged out of the
window; O(1) amortised per call, O(N) memory. A batch of successes counted together is one
entry.

The aggregator keeps the same buckets in Redis (one hash field per second and counter);
``counts_from_buckets`` sums those for the evaluator with the same rule for what is inside
the window: bucket ``b`` counts at time ``now`` when ``now - window_seconds < b <= now``.
Across processes the order of calls within one second is unknown, so the aggregator's
count-based window (``counts_of_last_calls``) takes whole buckets from the newest back and a
proportional share of the oldest one it needs.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    SLOW = "slow"
    IGNORED = "ignored"


class Counts(NamedTuple):
    """Calls, failed calls and slow calls. A named tuple: one is made per recorded call, and
    creating a tuple costs a fraction of a frozen dataclass."""

    calls: int = 0
    failures: int = 0
    slow: int = 0

    def __add__(self, other: Counts) -> Counts:  # type: ignore[override]
        return Counts(self.calls + other.calls, self.failures + other.failures, self.slow + other.slow)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.calls - other.calls, self.failures - other.failures, self.slow - other.slow)

    def failure_rate(self, minimum_calls: int) -> float | None:
        """Failures per call (0..1), or None below ``minimum_calls``: "not enough data" is not 0 %."""
        if self.calls < minimum_calls or self.calls == 0:
            return None
        return self.failures / self.calls

    def slow_rate(self, minimum_calls: int) -> float | None:
        if self.calls < minimum_calls or self.calls == 0:
            return None
        return self.slow / self.calls


def counts_of(outcome: Outcome, slow: bool = False) -> Counts:
    """The counts one call adds: ignored calls add nothing; a slow call may also be a failure."""
    if outcome is Outcome.IGNORED:
        return Counts()
    return Counts(
        calls=1,
        failures=1 if outcome is Outcome.FAILURE else 0,
        slow=1 if slow or outcome is Outcome.SLOW else 0,
    )


def counts_from_buckets(buckets: Iterable[tuple[int, Counts]], now: float, window_seconds: int) -> Counts:
    """Sum the buckets (second, counts) that lie inside the window ending at ``now``."""
    newest = int(now)
    total = Counts()
    for second, counts in buckets:
        if newest - window_seconds < second <= newest:
            total = total + counts
    return total


def counts_of_last_calls(buckets: Iterable[tuple[int, Counts]], now: float, window_seconds: int, calls: int) -> Counts:
    """The last ``calls`` calls among the buckets inside the window, newest bucket first."""
    newest = int(now)
    inside = sorted(((s, c) for s, c in buckets if newest - window_seconds < s <= newest), reverse=True)
    total = Counts()
    for _, counts in inside:
        need = calls - total.calls
        if counts.calls <= need:
            total = total + counts
            continue
        if need > 0:
            share = Counts(need, counts.failures * need // counts.calls, counts.slow * need // counts.calls)
            total = total + share
        break
    return total


def make_window(window_seconds: int, window_calls: int) -> TimeWindow | CountWindow:
    return CountWindow(window_calls, window_seconds) if window_calls else TimeWindow(window_seconds)


class CountWindow:
    """The in-process window of the last N calls, none older than ``window_seconds``; not
    thread-safe (callers hold a lock). An entry may hold a batch of calls (successes counted
    together): the oldest batch loses calls one by one as newer calls push it out."""

    def __init__(self, size: int, window_seconds: int) -> None:
        self.size = size
        self.window_seconds = window_seconds
        self._calls: collections.deque[tuple[int, Counts]] = collections.deque()
        self._total = Counts()

    @property
    def total_calls(self) -> int:
        return self._total.calls

    def record(self, counts: Counts, now: float) -> bool:
        """Add the counts of one call, or of a batch of calls. True when older calls left the
        window by age: the rates may have risen (calls pushed out by count never raise a rate
        that the calls pushing them out do not)."""
        if counts.calls == 0:
            return False
        aged = self._drop_older_than(int(now))
        self._calls.append((int(now), counts))
        self._total = self._total + counts
        excess = self._total.calls - self.size
        while excess > 0:
            second, oldest = self._calls[0]
            if oldest.calls <= excess:
                self._calls.popleft()
                leaving = oldest
            else:  # part of a batch leaves: its share of failures and slow calls goes with it
                leaving = Counts(excess, oldest.failures * excess // oldest.calls, oldest.slow * excess // oldest.calls)
                self._calls[0] = (second, oldest - leaving)
            self._total = self._total - leaving
            excess -= leaving.calls
        return aged

    def counts(self, now: float) -> Counts:
        self._drop_older_than(int(now))
        return self._total

    def reset(self) -> None:
        self._calls.clear()
        self._total = Counts()

    def _drop_older_than(self, newest: int) -> bool:
        # Same rule as the time window: second s is inside when newest - window_seconds < s.
        dropped = False
        while self._calls and self._calls[0][0] <= newest - self.window_seconds:
            self._total = self._total - self._calls.popleft()[1]
            dropped = True
        return dropped


class TimeWindow:
    """The in-process ring of one-second buckets; not thread-safe (callers hold a lock).
    Plain integer lists, not Counts: the sequential breaker records into it on every call."""

    def __init__(self, window_seconds: int) -> None:
        self.window_seconds = window_seconds
        self._calls = [0] * window_seconds
        self._failures = [0] * window_seconds
        self._slow = [0] * window_seconds
        self.total_calls = self._total_failures = self._total_slow = 0
        self._newest = -1

    def record(self, counts: Counts, now: float) -> bool:
        """Add counts at ``now``. True when older calls left the window on the way: the rates
        may have risen, even if this call succeeded."""
        second = int(now)
        evicted = False
        if second != self._newest:
            if second <= self._newest - self.window_seconds:
                return False  # late: its slot already holds a newer second
            evicted = self._advance(second)
        slot = second % self.window_seconds
        calls, failures, slow = counts
        self._calls[slot] += calls
        self.total_calls += calls
        if failures:
            self._failures[slot] += failures
            self._total_failures += failures
        if slow:
            self._slow[slot] += slow
            self._total_slow += slow
        return evicted

    def counts(self, now: float) -> Counts:
        self._advance(int(now))
        return Counts(self.total_calls, self._total_failures, self._total_slow)

    def reset(self) -> None:
        self.__init__(self.window_seconds)  # type: ignore[misc]

    def _advance(self, second: int) -> bool:
        """Move the window's end to ``second``; True if calls left it."""
        if second <= self._newest:
            return False
        # Evict every slot whose second left the window; at most window_seconds slots.
        first_to_clear = max(self._newest + 1, second - self.window_seconds + 1)
        before = self.total_calls
        for s in range(first_to_clear, second + 1):
            slot = s % self.window_seconds
            self.total_calls -= self._calls[slot]
            self._total_failures -= self._failures[slot]
            self._total_slow -= self._slow[slot]
            self._calls[slot] = self._failures[slot] = self._slow[slot] = 0
        self._newest = second
        return self.total_calls != before
