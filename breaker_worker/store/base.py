"""The contract every breaker store fulfils, and its value types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..core.machine import BreakerView, State
from ..core.window import Counts


class StoreUnavailableError(Exception):
    """The store could not be reached or answered with an error; the driver error is the cause."""


@dataclass(frozen=True)
class StateRecord:
    state: State = State.CLOSED
    epoch: int = 0
    since: float = 0.0
    open_until: float = 0.0
    reopens: int = 0
    reason: str = ""
    generation: int = 0


@dataclass(frozen=True)
class OutcomeBatch:
    """Counts of one alias and generation, per one-second bucket, gathered in one process,
    and how the batch changes the alias's streak of consecutive failed connects."""

    alias: str
    generation: int
    buckets: Mapping[int, Counts]
    succeeded: bool = False  # a call succeeded: the streak restarts from connect_failures
    connect_failures: int = 0  # failed connects after the batch's last success
    window_seconds: int = 10  # the alias's window: what the newest bucket pushes out of it

    def streak_argument(self) -> str:
        if self.succeeded:
            return f"={self.connect_failures}"
        return f"+{self.connect_failures}" if self.connect_failures else ""


class Subscription(Protocol):
    def next(self, timeout: float) -> tuple[str, str] | None: ...

    def close(self) -> None: ...


class BreakerStore(Protocol):
    def hints(self) -> Subscription: ...

    def record(self, batches: Iterable[OutcomeBatch], now: float, ttl: int = 3600) -> None: ...

    def recent_aliases(self, since: float) -> list[str]: ...

    def views(
        self, aliases: Iterable[str], now: float, window_seconds: int, window_calls: int = 0
    ) -> dict[str, BreakerView]: ...

    def states(self, aliases: Iterable[str]) -> dict[str, StateRecord]: ...

    def transition(
        self,
        alias: str,
        expected: State,
        expected_epoch: int,
        to_state: State,
        now: float,
        reason: str,
        open_until: float = 0.0,
        reopens: int | None = None,
        epoch_floor: int = 0,
    ) -> int | None: ...

    def annotate(self, alias: str, epoch: int, reason: str) -> bool: ...

    def advance_generation(self, alias: str, generation: int) -> bool: ...

    def publish_pool_reset(self, alias: str, generation: int) -> None: ...

    def publish_state_change(self, alias: str, epoch: int) -> None: ...

    def note_preferred_health(self, alias: str, healthy: bool, now: float) -> float: ...

    def claim(self, alias: str, purpose: str, seconds: float) -> bool: ...

    def policy_version(self) -> int: ...

    def bump_policy_version(self) -> None: ...

    def set_guard(self, reason: str, ttl: float) -> None: ...

    def clear_guard(self) -> None: ...

    def guard(self) -> str | None: ...

    def acquire_lease(self, alias: str, owner: str, seconds: float) -> bool: ...

    def release_lease(self, alias: str, owner: str) -> None: ...
