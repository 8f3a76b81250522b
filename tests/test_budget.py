"""RetryBudget and AdaptiveThrottle: the arithmetic the sources give."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import AdaptiveThrottle, RetryBudget, VirtualClock


def retries_under_total_outage(budget: RetryBudget, requests: int, attempts: int) -> int:
    granted = 0
    for _ in range(requests):
        budget.deposit()
        for _ in range(attempts - 1):
            if not budget.try_spend():
                break
            granted += 1
    return granted


def test_aws_style_quota_allows_exactly_500_over_5_retries() -> None:
    assert retries_under_total_outage(RetryBudget(capacity=500, ratio=0, cost=5), 1000, 3) == 100


@given(st.integers(min_value=100, max_value=5000))
def test_brooker_bucket_levels_off_near_one_point_one(requests: int) -> None:
    budget = RetryBudget(capacity=5, ratio=0.1, cost=1)
    granted = retries_under_total_outage(budget, requests, 4)
    assert granted <= 5 + 0.1 * requests + 1e-9
    assert granted >= 0.1 * requests - 1
    assert budget.granted == granted


def test_deposits_never_overflow_capacity() -> None:
    budget = RetryBudget(capacity=2, ratio=0.5, cost=1)
    for _ in range(100):
        budget.deposit()
    assert budget.tokens == 2


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"capacity": 0}, "capacity must be a finite number > 0"),
    ({"ratio": -0.1}, "ratio must be a finite number >= 0"),
    ({"ratio": 20}, r"ratio must be between 0 and capacity \(10\)"),
    ({"ratio": 20}, "ratio"), ({"cost": 0}, "cost must be a finite number > 0"),
    ({"capacity": float("inf")}, "capacity"), ({"ratio": float("nan")}, "ratio"),
])
def test_bad_budgets_are_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RetryBudget(**kwargs)


def test_adaptive_throttle_formula_and_window() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(k=2.0, window=120.0, clock=clock)
    rng = random.Random(0)
    for _ in range(100):
        throttle.allow(rng)
    for _ in range(10):
        throttle.record_accept()
    assert throttle.counts() == (100, 10)
    assert throttle.reject_probability() == pytest.approx((100 - 2 * 10) / 101)
    clock.advance(121.0)
    assert throttle.counts() == (0, 0)
    assert throttle.reject_probability() == 0.0


def test_adaptive_throttle_lets_about_k_times_capacity_through() -> None:
    """A backend that accepts C requests/s sees about 2 C when k = 2 (SRE book)."""
    clock = VirtualClock()
    throttle = AdaptiveThrottle(k=2.0, window=120.0, clock=clock)
    rng = random.Random(7)
    capacity, offered, sent = 10, 100, 0
    for _second in range(600):
        accepted_this_second = 0
        for _ in range(offered):
            if throttle.allow(rng):
                sent += 1 if _second >= 300 else 0
                if accepted_this_second < capacity:
                    accepted_this_second += 1
                    throttle.record_accept()
        clock.advance(1.0)
    assert 1.8 * capacity <= sent / 300 <= 2.3 * capacity


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"k": 0.5}, "k must be"), ({"window": 0}, "window must be"), ({"bucket": 500}, "bucket"),
])
def test_bad_throttles_are_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        AdaptiveThrottle(**kwargs)


@pytest.mark.parametrize(("make", "needle"), [
    (lambda: RetryBudget(capacity="10"), "capacity must be a number"),
    (lambda: RetryBudget(cost=None), "cost must be a number"),
    (lambda: AdaptiveThrottle(k="2"), "k must be a number"),
    (lambda: AdaptiveThrottle(clock=5), "clock must be a clock"),
])
def test_wrong_types_raise_type_error_naming_the_argument(make: Any, needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        make()
