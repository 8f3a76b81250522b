"""Backoff strategies: bounds, determinism and the exact formulas, by property."""

from __future__ import annotations

import random
from itertools import islice

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
