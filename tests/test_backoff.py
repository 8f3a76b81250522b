"""Backoff strategies: bounds, determinism and the exact formulas, by property."""

from __future__ import annotations

import random
from itertools import islice
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import backoff
from resilience.backoff import Backoff

bases = st.floats(min_value=0.001, max_value=10.0)
factors = st.floats(min_value=1.0, max_value=1000.0)
seeds = st.integers(min_value=0, max_value=2**32)
JITTERED = [backoff.full_jitter, backoff.equal_jitter, backoff.decorrelated_jitter]
ALL = [backoff.exponential, *JITTERED]


def take(strategy: Backoff, seed: int, n: int = 30) -> list[float]:
    return list(islice(strategy.delays(random.Random(seed)), n))


@pytest.mark.parametrize("make", ALL)
@given(base=bases, factor=factors, seed=seeds)
def test_every_delay_is_between_zero_and_cap(make: object, base: float, factor: float,
                                             seed: int) -> None:
    strategy = make(base, base * factor)  # type: ignore[operator]
    for delay in take(strategy, seed):
        assert 0.0 <= delay <= strategy.cap


@pytest.mark.parametrize("make", [*ALL, lambda b, c: backoff.sdk_default()])
@given(base=bases, factor=factors, seed=seeds)
def test_same_seed_same_delays(make: object, base: float, factor: float, seed: int) -> None:
    strategy = make(base, base * factor)  # type: ignore[operator]
    assert take(strategy, seed) == take(strategy, seed)


@pytest.mark.parametrize("make", JITTERED)
def test_different_seeds_give_different_delays(make: object) -> None:
    strategy = make(0.5, 30.0)  # type: ignore[operator]
    assert take(strategy, 1) != take(strategy, 2)


@given(base=bases, factor=factors, seed=seeds)
def test_exponential_doubles_to_the_cap(base: float, factor: float, seed: int) -> None:
    cap = base * factor
    delays = take(backoff.exponential(base, cap), seed, 20)
    assert delays == [min(cap, base * 2.0**n) for n in range(20)]


@given(base=bases, factor=factors, seed=seeds)
def test_full_jitter_stays_under_the_exponential_envelope(base: float, factor: float,
                                                          seed: int) -> None:
    cap = base * factor
    for n, delay in enumerate(take(backoff.full_jitter(base, cap), seed, 20)):
        assert 0.0 <= delay <= min(cap, base * 2.0**n)


@given(base=bases, factor=factors, seed=seeds)
def test_equal_jitter_keeps_at_least_half(base: float, factor: float, seed: int) -> None:
    cap = base * factor
    for n, delay in enumerate(take(backoff.equal_jitter(base, cap), seed, 20)):
        x = min(cap, base * 2.0**n)
        assert x / 2 <= delay <= x


@given(base=bases, factor=factors, seed=seeds)
def test_decorrelated_jitter_grows_at_most_threefold(base: float, factor: float,
                                                     seed: int) -> None:
    cap = base * factor
    previous = base
    for delay in take(backoff.decorrelated_jitter(base, cap), seed, 20):
        assert min(base, cap) <= delay <= min(cap, 3 * previous) + 1e-12
        previous = delay


@given(seed=seeds)
def test_sdk_default_matches_the_sdk_schedule(seed: int) -> None:
    for n, delay in enumerate(take(backoff.sdk_default(), seed, 10)):
        base = min(0.5 * 2.0**n, 8.0)
        assert 0.75 * base <= delay <= base


def test_sdk_default_first_two_retries_from_the_reference() -> None:
    first, second = take(backoff.sdk_default(), 3, 2)
    assert 0.375 <= first <= 0.5
    assert 0.75 <= second <= 1.0


def test_formulas_at_known_draws() -> None:
    """The documented formulas, checked at hand-picked uniform draws."""
    assert backoff.full_jitter(1, 100).next_delay(3, 1, 0.25) == 2.0
    assert backoff.equal_jitter(1, 100).next_delay(3, 1, 0.5) == 6.0
    assert backoff.decorrelated_jitter(1, 100).next_delay(0, 4.0, 0.5) == 6.5
    assert backoff.decorrelated_jitter(1, 5).next_delay(0, 4.0, 0.99) == 5
    assert backoff.exponential(1, 100).next_delay(10, 1, 0.3) == 100
    assert backoff.sdk_default().next_delay(1, 0.5, 1.0) == 0.75


def test_the_formula_takes_numpy_arrays_too() -> None:
    import numpy as np
    strategy = backoff.full_jitter(0.5, 4.0)
    n = np.array([0, 1, 5])
    u = np.array([0.5, 0.5, 0.5])
    got = strategy.next_delay(n, 0.5, u)
    assert got.tolist() == [strategy.next_delay(int(k), 0.5, 0.5) for k in n]


@pytest.mark.parametrize(("base", "cap", "needle"), [
    (0, 1, "base"), (-1, 1, "base"), (float("nan"), 1, "base"), (float("inf"), 1, "base"),
    (2, 1, "cap"), (1, float("inf"), "cap"), (1, float("nan"), "cap"),
])
@pytest.mark.parametrize("make", ALL)
def test_bad_settings_raise_value_error_naming_them(make: object, base: float, cap: float,
                                                    needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        make(base, cap)  # type: ignore[operator]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Backoff("linear", 1, 2)


@pytest.mark.parametrize(("make", "needle"), [
    (lambda: backoff.full_jitter("0.5", 30), "base must be a number of seconds"),
    (lambda: backoff.full_jitter(0.5, None), "cap must be a number of seconds"),
    (lambda: Backoff(3, 0.5, 30), "kind must be a strategy name"),
    (lambda: backoff.by_name(None), "name must be a strategy name"),
])
def test_wrong_types_raise_type_error_naming_the_argument(make: Any, needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        make()


# -- one lookup by name -------------------------------------------------------------------

def test_names_cover_every_strategy_and_none() -> None:
    assert backoff.NAMES == ("none", "exponential", "full_jitter", "equal_jitter",
                             "decorrelated_jitter", "sdk_default")
    for name in backoff.NAMES:
        assert backoff.by_name(name).kind == name
    assert backoff.by_name("sdk_default") == backoff.sdk_default()
    assert backoff.by_name("full_jitter") == backoff.full_jitter()
    assert backoff.by_name("equal_jitter", base=0.005, cap=2.0) == backoff.equal_jitter(0.005,
                                                                                         2.0)
    assert backoff.by_name("exponential", cap=60.0) == backoff.exponential(0.5, 60.0)
    assert backoff.by_name("exponential", 1.0) == backoff.exponential(1.0, 30.0)


def test_none_never_waits_and_keeps_the_shape_of_u() -> None:
    import numpy as np

    strategy = backoff.by_name("none", base=0.005, cap=2.0)
    assert strategy.base == 0.005
    assert take(strategy, 0, 5) == [0.0] * 5
    assert strategy.next_delay(np.arange(3), 0.005, np.full(3, 0.7)).tolist() == [0.0] * 3


@pytest.mark.parametrize(("args", "needle"), [
    (("linear",), "name must be one of none, exponential"),
    (("sdk_default", 1.0), "sdk_default is the SDK's fixed schedule"),
    (("full_jitter", 0.0), "base must be a finite number"),
])
def test_by_name_refuses_unknown_names_and_bad_settings(args: tuple[Any, ...],
                                                        needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        backoff.by_name(*args)


# -- regression (issue 9, bug 4): the exponent overflowed after 1,024 retries ---------------

@pytest.mark.parametrize("make", [*ALL, backoff.sdk_default])
def test_delays_really_are_infinite_without_overflow(make: Any) -> None:
    strategy = make()
    delays = list(islice(strategy.delays(random.Random(0)), 1100, 1103))
    assert all(0.0 <= d <= strategy.cap for d in delays)
    assert strategy.next_delay(5000, strategy.base, 0.5) <= strategy.cap


def test_the_exponent_cap_changes_no_delay() -> None:
    import numpy as np

    for base, cap in [(0.5, 30.0), (0.005, 2.0), (1.0, 1.0), (0.3, 0.61), (1e-300, 1e300)]:
        strategy = backoff.exponential(base, cap)
        for n in range(0, 1000):
            expected = min(cap, base * 2.0**n)
            assert strategy.next_delay(n, base, 0.0) == expected
        as_array = strategy.next_delay(np.arange(1000), base, np.zeros(1000))
        assert as_array.tolist() == [min(cap, base * 2.0**n) for n in range(1000)]
    assert backoff.exponential(0.5, 30.0).next_delay(np.array([1023, 1024, 5000]), 0.5,
                                                     np.zeros(3)).tolist() == [30.0] * 3
