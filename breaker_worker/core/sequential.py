"""The sequential breaker: the state machine driven in-process, per call, with no Redis or Celery.

One instance per alias per process; callers serialise access (the runtime holds its lock).
It opens on the same rules as the evaluator (``trip_reason``), goes half-open when the open
wait ends, admits at most ``policy.probes`` trial calls at a time there, and closes after
``policy.probes`` successful trials or reopens on the first failed one, with a growing wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .machine import State, check_transition, next_reopens, open_wait, trip_reason
from .policy import Policy
from .window import Counts, make_window


@dataclass(frozen=True)
class LocalTransition:
    alias: str
    from_state: State
    to_state: State
    reason: str
    counts: Counts


# Enum members looked up once: on Python 3.11 each State.X costs ~90 ns, and on_result runs
# on every call.
CLOSED, OPEN, HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN


class SequentialBreaker:
    def __init__(self, alias: str, policy: Policy, rng: random.Random | None = None) -> None:
        self.alias = alias
        self.policy = policy
        self.rng = rng
        self.window = make_window(policy.window_seconds, policy.window_calls)
        self.state = State.CLOSED
        self.open_until = 0.0
        self.reopens = 0
        self.trials_started = 0
        self.trial_successes = 0
        self.connect_failures = 0  # consecutive failed connects
        self.since = 0.0

    def retry_after(self, now: float, trial: bool = True) -> float | None:
        """None when a call may go ahead (in half-open, counted as a trial when ``trial``);
        otherwise the seconds until calls are admitted again (0 while trials are in flight)."""
        if self.state is OPEN:
            if now < self.open_until:
                return self.open_until - now
            self._move(HALF_OPEN, "open wait elapsed", now)
        if self.state is HALF_OPEN and trial:
            if self.trials_started >= self.policy.probes:
                return 0.0
            self.trials_started += 1
        return None

    def on_result(self, counts: Counts, now: float, connecting: bool = False) -> LocalTransition | None:
        """Account one call's outcome (``connecting``: a connection attempt), or a batch of
        successes of a closed breaker; returns the transition it caused, if any."""
        if counts.calls and not counts.failures:
            self.connect_failures = 0
        elif connecting:
            self.connect_failures += 1
        if counts.calls == 0:
            if self.state is HALF_OPEN and self.trials_started:
                self.trials_started -= 1  # an ignored outcome proves nothing: free its trial slot
            return None
        if self.state is CLOSED:
            before = self.window.total_calls
            minimum = self.policy.minimum_calls
            if before < minimum < before + counts.calls and not (counts.failures or counts.slow):
                # Successes counted together that cross minimum_calls: judged at the call that
                # reaches it, as one by one; the calls after it can only lower the rates.
                reaching = Counts(minimum - before, 0, 0)
                transition = self.on_result(reaching, now)
                if transition is not None:
                    return transition
                counts, before = counts - reaching, self.window.total_calls
            evicted = self.window.record(counts, now)
            reached_minimum = before < minimum <= self.window.total_calls
            if not (counts.failures or counts.slow or evicted or reached_minimum):
                return None  # successes only lower rates already judged: the common case, fast
            reason = trip_reason(self.window.counts(now), self.policy, self.connect_failures)
            if reason is not None:
                return self._move(OPEN, reason, now)
        elif self.state is HALF_OPEN:
            if counts.failures:
                return self._move(OPEN, "trial call failed", now)
            self.trial_successes += 1
            if self.trial_successes >= self.policy.probes:
                return self._move(CLOSED, f"{self.trial_successes} trial call(s) succeeded", now)
        return None

    def adopt(self, state: State, open_until: float) -> None:
        """Follow a newer shared state (another process, the evaluator or a failover moved the
        breaker on): start afresh in it, as the shared window did."""
        self.state = state
        self.open_until = open_until
        self.trials_started = self.trial_successes = 0
        self.window.reset()

    def _move(self, to_state: State, reason: str, now: float) -> LocalTransition:
        check_transition(self.alias, self.state, to_state)
        counts = self.window.counts(now)
        transition = LocalTransition(self.alias, self.state, to_state, reason, counts)
        if to_state is State.OPEN:
            self.reopens = next_reopens(self.state, self.reopens, self.since, now, self.policy)
            self.open_until = now + open_wait(self.policy, self.reopens, self.rng)
            self.connect_failures = 0
        self.state = to_state
        self.since = now
        self.trials_started = self.trial_successes = 0
        if to_state is not State.OPEN:
            self.window.reset()
        return transition
