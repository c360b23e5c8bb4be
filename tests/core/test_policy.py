"""Policy validation at construction: every field, its range, and the text settings hand over."""

from __future__ import annotations

import dataclasses
import math

import pytest

from breaker_worker.core.policy import Policy, PolicyError

DEFAULTS = {
    "window_seconds": 10,
    "minimum_calls": 10,
    "failure_rate": 50.0,
    "slow_call_seconds": 5.0,
    "slow_call_rate": 100.0,
    "open_seconds": 5.0,
    "max_open_seconds": 300.0,
    "probes": 3,
    "evaluate_every": 1.0,
    "connect_failures": 5,
    "window_calls": 0,
}

# field -> (lowest allowed, highest allowed, just below, just above)
LIMITS = {
    "window_seconds": (1, 3600, 0, 3601),
    "minimum_calls": (1, 1_000_000, 0, 1_000_001),
    "failure_rate": (1.0, 100.0, 0.99, 100.01),
    "slow_call_seconds": (0.001, 3600.0, 0.0, 3600.5),
    "slow_call_rate": (1.0, 100.0, 0.5, 101.0),
    "open_seconds": (0.1, 86400.0, 0.09, 86400.1),
    "max_open_seconds": (0.1, 86400.0, 0.0, 86401.0),
    "probes": (1, 100, 0, 101),
    "evaluate_every": (0.1, 3600.0, 0.0, 3600.1),
    "connect_failures": (0, 1000, -1, 1001),
    "window_calls": (0, 100_000, -1, 100_001),
}


def with_value(name: str, value: object) -> dict[str, object]:
    """Keyword arguments setting one field, keeping open_seconds <= max_open_seconds where possible."""
    kwargs: dict[str, object] = {name: value}
    if name == "open_seconds":
        kwargs["max_open_seconds"] = 86400.0
    if name == "max_open_seconds":
        kwargs["open_seconds"] = 0.1
    return kwargs


def test_defaults():
    assert dataclasses.asdict(Policy()) == DEFAULTS


def test_every_field_has_a_range_under_test():
    assert {f.name for f in dataclasses.fields(Policy)} == set(LIMITS) == set(DEFAULTS)


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_both_ends_of_each_range_are_accepted(name):
    low, high, _, _ = LIMITS[name]
    assert getattr(Policy(**with_value(name, low)), name) == low
    assert getattr(Policy(**with_value(name, high)), name) == high


@pytest.mark.parametrize("name", sorted(LIMITS))
@pytest.mark.parametrize("end", ["below", "above"])
def test_a_value_outside_the_range_names_the_field_and_the_range(name, end):
    low, high, below, above = LIMITS[name]
    value = below if end == "below" else above
    with pytest.raises(PolicyError) as caught:
        Policy(**with_value(name, value))
    assert str(caught.value) == f"{name} must be between {low} and {high}, got {value!r}"


@pytest.mark.parametrize("value", ["10", None, True, [10]])
def test_a_value_that_is_not_a_number_is_rejected(value):
    with pytest.raises(PolicyError) as caught:
        Policy(minimum_calls=value)
    assert str(caught.value) == f"minimum_calls must be a number between 1 and 1000000, got {value!r}"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_rejected(value):
    with pytest.raises(PolicyError) as caught:
        Policy(failure_rate=value)
    assert str(caught.value) == f"failure_rate must be between 1.0 and 100.0, got {value!r}"


@pytest.mark.parametrize("name", ["window_seconds", "minimum_calls", "probes"])
def test_whole_number_fields_reject_fractions(name):
    low, high, _, _ = LIMITS[name]
    with pytest.raises(PolicyError) as caught:
        Policy(**{name: 2.5})
    assert str(caught.value) == f"{name} must be a whole number between {low} and {high}, got 2.5"


def test_fractional_fields_accept_whole_numbers():
    policy = Policy(failure_rate=40, open_seconds=2, max_open_seconds=60)
    assert (policy.failure_rate, policy.open_seconds, policy.max_open_seconds) == (40, 2, 60)


def test_max_open_seconds_below_open_seconds_names_both_fields():
    with pytest.raises(PolicyError) as caught:
        Policy(open_seconds=60, max_open_seconds=30)
    assert str(caught.value) == "max_open_seconds (30) must be at least open_seconds (60)"


def test_max_open_seconds_equal_to_open_seconds_is_allowed():
    policy = Policy(open_seconds=30, max_open_seconds=30)
    assert (policy.open_seconds, policy.max_open_seconds) == (30, 30)


def test_a_policy_error_is_a_value_error():
    with pytest.raises(ValueError):
        Policy(probes=0)


def test_policy_is_frozen():
    policy = Policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.failure_rate = 10.0  # type: ignore[misc]
    assert policy.failure_rate == 50.0


def test_replace_validates_again():
    with pytest.raises(PolicyError, match=r"^probes must be between 1 and 100, got 0$"):
        dataclasses.replace(Policy(), probes=0)


# --- from_strings --------------------------------------------------------------------------------


def test_from_strings_with_nothing_set_gives_the_defaults():
    assert Policy.from_strings({}) == Policy()
    assert Policy.from_strings({name: None for name in DEFAULTS}) == Policy()
    assert Policy.from_strings({name: "" for name in DEFAULTS}) == Policy()


def test_from_strings_parses_each_field_to_its_type():
    policy = Policy.from_strings(
        {
            "window_seconds": "30",
            "minimum_calls": "20",
            "failure_rate": "37.5",
            "slow_call_seconds": "0.25",
            "slow_call_rate": "80",
            "open_seconds": "2",
            "max_open_seconds": "120",
            "probes": " 4 ",
            "evaluate_every": "0.5",
            "connect_failures": "3",
            "window_calls": "50",
        }
    )
    assert dataclasses.asdict(policy) == {
        "window_seconds": 30,
        "minimum_calls": 20,
        "failure_rate": 37.5,
        "slow_call_seconds": 0.25,
        "slow_call_rate": 80.0,
        "open_seconds": 2.0,
        "max_open_seconds": 120.0,
        "probes": 4,
        "evaluate_every": 0.5,
        "connect_failures": 3,
        "window_calls": 50,
    }
    assert type(policy.window_seconds) is int
    assert type(policy.slow_call_rate) is float


def test_from_strings_keeps_defaults_for_unset_fields():
    assert Policy.from_strings({"probes": "7", "failure_rate": None}) == Policy(probes=7)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("window_seconds", "ten", "window_seconds must be a whole number between 1 and 3600, got 'ten'"),
        ("failure_rate", "50%", "failure_rate must be a number between 1.0 and 100.0, got '50%'"),
        ("probes", " ", "probes must be a whole number between 1 and 100, got ' '"),
    ],
)
def test_from_strings_unparsable_text_names_the_field_and_the_range(name, text, message):
    with pytest.raises(PolicyError) as caught:
        Policy.from_strings({name: text})
    assert str(caught.value) == message


def test_from_strings_a_fraction_for_a_whole_number_field_names_the_field():
    with pytest.raises(PolicyError, match=r"^window_seconds .* between 1 and 3600, got '2\.5'$"):
        Policy.from_strings({"window_seconds": "2.5"})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("window_seconds", "0", "window_seconds must be between 1 and 3600, got 0"),
        ("failure_rate", "150", "failure_rate must be between 1.0 and 100.0, got 150.0"),
        ("open_seconds", "-1", "open_seconds must be between 0.1 and 86400.0, got -1.0"),
    ],
)
def test_from_strings_out_of_range_names_the_field_and_the_range(name, text, message):
    with pytest.raises(PolicyError) as caught:
        Policy.from_strings({name: text})
    assert str(caught.value) == message


def test_from_strings_checks_open_seconds_against_the_default_cap():
    with pytest.raises(PolicyError) as caught:
        Policy.from_strings({"open_seconds": "600"})
    assert str(caught.value) == "max_open_seconds (300.0) must be at least open_seconds (600.0)"


def test_a_count_window_smaller_than_minimum_calls_caps_the_minimum():
    # 5 calls can never reach a minimum of 10: no rate would ever be judged.
    assert Policy(window_calls=5, minimum_calls=10).minimum_calls == 5
    assert Policy(window_calls=50, minimum_calls=10).minimum_calls == 10
    assert Policy(window_calls=0, minimum_calls=10).minimum_calls == 10  # time-based: no cap
