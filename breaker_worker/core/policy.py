"""A validated, frozen breaker policy: thresholds, window and waits."""

from __future__ import annotations

from dataclasses import dataclass, fields


class PolicyError(ValueError):
    """A policy value is out of range; the message names the field and the allowed range."""


@dataclass(frozen=True)
class Policy:
    window_seconds: int = 10
    minimum_calls: int = 10
    failure_rate: float = 50.0  # percent
    slow_call_seconds: float = 5.0
    slow_call_rate: float = 100.0  # percent
    open_seconds: float = 5.0
    max_open_seconds: float = 300.0
    probes: int = 3
    evaluate_every: float = 1.0
    # Consecutive failed connection attempts that trip an alias with fewer than minimum_calls
    # in its window: a quiet tenant whose server died must not wait for volume. 0: off.
    connect_failures: int = 5
    # 0: the window is the last window_seconds. N > 0: it is the last N calls (no older than
    # window_seconds), as in Resilience4j's count-based window.
    window_calls: int = 0

    # field -> (low, high), both inclusive
    RANGES = {
        "window_seconds": (1, 3600),
        "minimum_calls": (1, 1_000_000),
        "failure_rate": (1.0, 100.0),
        "slow_call_seconds": (0.001, 3600.0),
        "slow_call_rate": (1.0, 100.0),
        "open_seconds": (0.1, 86400.0),
        "max_open_seconds": (0.1, 86400.0),
        "probes": (1, 100),
        "evaluate_every": (0.1, 3600.0),
        "connect_failures": (0, 1000),
        "window_calls": (0, 100_000),
    }

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            low, high = self.RANGES[field.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PolicyError(f"{field.name} must be a number between {low} and {high}, got {value!r}")
            if field.type == "int" and not float(value).is_integer():
                raise PolicyError(f"{field.name} must be a whole number between {low} and {high}, got {value!r}")
            if not low <= value <= high:
                raise PolicyError(f"{field.name} must be between {low} and {high}, got {value!r}")
            if field.type == "int":
                object.__setattr__(self, field.name, int(value))  # 10.0 -> 10, still frozen to callers
        if self.window_calls and self.minimum_calls > self.window_calls:
            # A window of N calls never holds more than N: as in Resilience4j, the minimum is
            # capped at the window's size, or no rate could ever be judged.
            object.__setattr__(self, "minimum_calls", self.window_calls)
        if self.max_open_seconds < self.open_seconds:
            raise PolicyError(
                f"max_open_seconds ({self.max_open_seconds}) must be at least open_seconds ({self.open_seconds})"
            )

    @classmethod
    def from_strings(cls, values: dict[str, str | None]) -> Policy:
        """Build from text (environment variables); unset values keep their defaults."""
        kwargs: dict[str, float | int] = {}
        for field in fields(cls):
            text = values.get(field.name)
            if text is None or text == "":
                continue
            low, high = cls.RANGES[field.name]
            try:
                kwargs[field.name] = int(text) if field.type == "int" else float(text)
            except ValueError:
                kind = "a whole number" if field.type == "int" else "a number"
                raise PolicyError(f"{field.name} must be {kind} between {low} and {high}, got {text!r}") from None
        return cls(**kwargs)  # type: ignore[arg-type]
