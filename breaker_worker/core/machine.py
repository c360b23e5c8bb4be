"""Breaker states, the table of legal transitions, and the pure decisions between them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from .policy import Policy
from .window import Counts


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


# Every legal (from, to) pair; anything else is a bug or a stale caller and raises.
LEGAL_TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
        (State.HALF_OPEN, State.OPEN),
        # Operator states: reachable from and leaving to any automatic state.
        *((s, State.FORCED_OPEN) for s in (State.CLOSED, State.OPEN, State.HALF_OPEN, State.DISABLED)),
        *((s, State.DISABLED) for s in (State.CLOSED, State.OPEN, State.HALF_OPEN, State.FORCED_OPEN)),
        *((s, State.CLOSED) for s in (State.OPEN, State.FORCED_OPEN, State.DISABLED)),
    }
)

# States in which a query is rejected without touching the database.
REJECTING_STATES = frozenset({State.OPEN, State.FORCED_OPEN})


class IllegalTransitionError(Exception):
    def __init__(self, alias: str, from_state: State, to_state: State) -> None:
        super().__init__(f"breaker {alias!r}: illegal transition {from_state.value} -> {to_state.value}")
        self.alias = alias
        self.from_state = from_state
        self.to_state = to_state


def check_transition(alias: str, from_state: State, to_state: State) -> None:
    if (from_state, to_state) not in LEGAL_TRANSITIONS:
        raise IllegalTransitionError(alias, from_state, to_state)


@dataclass(frozen=True)
class BreakerView:
    """What the evaluator knows of one breaker at one moment."""

    alias: str
    state: State
    epoch: int
    open_until: float  # when an open breaker may go half-open (epoch seconds)
    counts: Counts  # the window of the active generation
    reopens: int = 0  # consecutive reopens without closing: the open wait grows with them
    since: float = 0.0  # when the current state began
    connect_failures: int = 0  # consecutive failed connection attempts, all processes


@dataclass(frozen=True)
class Decision:
    to_state: State
    reason: str


def decide(view: BreakerView, policy: Policy, now: float) -> Decision | None:
    """The transition the evaluator should attempt now, or None to leave the breaker as it is."""
    if view.state in (State.CLOSED, State.HALF_OPEN):
        reason = trip_reason(view.counts, policy, view.connect_failures)
        if reason is None:
            return None
        if view.state is State.HALF_OPEN:
            reason = f"trial calls failed: {reason}"
        return Decision(State.OPEN, reason)
    if view.state is State.OPEN and now >= view.open_until:
        return Decision(State.HALF_OPEN, "open wait elapsed")
    return None


def trip_reason(counts: Counts, policy: Policy, connect_failures: int = 0) -> str | None:
    # The streak rule is for quiet aliases only: with enough calls the rates judge, so that a
    # busy alias rides out a short restart of its server instead of failing over.
    quiet = counts.calls < policy.minimum_calls
    if quiet and policy.connect_failures and connect_failures >= policy.connect_failures:
        return f"{connect_failures} consecutive connection failures"
    # Compared in integers times percent: 29/100*100 is 28.999... in floating point.
    failure_rate = counts.failure_rate(policy.minimum_calls)
    if failure_rate is not None and counts.failures * 100 >= policy.failure_rate * counts.calls:
        return (
            f"failure rate {failure_rate:.0%} >= {policy.failure_rate:g}% "
            f"({counts.failures} of {counts.calls} calls in {policy.window_seconds}s)"
        )
    slow_rate = counts.slow_rate(policy.minimum_calls)
    if slow_rate is not None and counts.slow * 100 >= policy.slow_call_rate * counts.calls:
        return (
            f"slow-call rate {slow_rate:.0%} >= {policy.slow_call_rate:g}% "
            f"({counts.slow} of {counts.calls} calls slower than {policy.slow_call_seconds:g}s)"
        )
    return None


def next_reopens(from_state: State, reopens: int, since: float, now: float, policy: Policy) -> int:
    """How many reopens in a row a new open counts: one more after a failed half-open, or after
    a close that did not last (flapping); back to 0 once the breaker stayed closed for longer
    than the longest open wait."""
    if from_state is State.HALF_OPEN:
        return reopens + 1
    if from_state is State.CLOSED and reopens and now - since < policy.max_open_seconds:
        return reopens + 1
    return 0


def open_wait(policy: Policy, reopens: int, rng: random.Random | None = None) -> float:
    """Seconds to stay open: doubles with each consecutive reopen, capped, with +-10 % jitter
    so that many breakers tripped together do not probe in lockstep."""
    base = min(policy.open_seconds * (2 ** min(reopens, 30)), policy.max_open_seconds)
    jitter = (rng or random).uniform(-0.1, 0.1) * base
    return max(0.0, min(base + jitter, policy.max_open_seconds))
