"""TokenBucket: refill, bursts, exact waits, and whole tokens despite float rounding."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import TokenBucket


def test_a_full_bucket_serves_a_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 0.5          # one token takes 1 / rate seconds
    assert bucket.take(0.25) == 0.25        # half a token earned meanwhile
    assert bucket.take(0.5) == 0.0


def test_refill_is_capped_at_capacity() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2, start=0.0)
    bucket.take(0.0)
    bucket.refill(100.0)
    assert bucket.tokens == 2.0
    assert bucket.full_in() == 0.0


def test_ten_refills_of_a_tenth_make_a_whole_token() -> None:
    """0.1 * 10 sums to 0.9999999999999998 in floating point: still one token."""
    bucket = TokenBucket(rate=10.0, capacity=10, start=0.0)
    for _ in range(10):
        bucket.take(0.0)
    now = 0.0
    for _ in range(10):
        now += 0.01
        bucket.refill(now)
    assert bucket.tokens < 1.0
    assert bucket.take(now) == 0.0


@given(st.floats(min_value=0.1, max_value=100.0), st.integers(min_value=1, max_value=20),
       st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=50))
def test_never_serves_more_than_capacity_plus_what_was_earned(
        rate: float, capacity: int, gaps: list[float]) -> None:
    bucket = TokenBucket(rate=rate, capacity=capacity, start=0.0)
    now, served = 0.0, 0
    for gap in gaps:
        now += gap
        wait = bucket.take(now)
        if wait == 0.0:
            served += 1
        else:
            assert wait > 0
            assert bucket.take(now + wait) == 0.0  # the wait it gave was long enough
            served += 1
            now += wait
    assert served <= capacity + now * rate + 1e-6


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"rate": 0, "capacity": 1}, "rate must be"),
    ({"rate": float("inf"), "capacity": 1}, "rate must be"),
    ({"rate": 1, "capacity": 0.5}, "capacity must be"),
    # Regression (issue 9, bug 8): start=inf was accepted, and every refill was then NaN.
    ({"rate": 1, "capacity": 1, "start": float("inf")}, "start must be a finite number"),
    ({"rate": 1, "capacity": 1, "start": float("nan")}, "start must be a finite number"),
])
def test_bad_settings_raise_value_error(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        TokenBucket(**kwargs)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"rate": "1", "capacity": 1}, "rate must be a number"),
    ({"rate": 1, "capacity": 1, "start": "0"}, "start must be a number of seconds"),
])
def test_wrong_types_raise_type_error(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        TokenBucket(**kwargs)


def test_a_request_may_take_many_tokens_and_waits_exactly_for_them() -> None:
    bucket = TokenBucket(rate=10.0, capacity=100.0, start=0.0)
    assert bucket.take(0.0, 60.0) == 0.0
    assert bucket.tokens == 40.0
    assert bucket.take(0.0, 50.0) == pytest.approx(1.0)  # 10 more tokens at 10 a second
    assert bucket.tokens == 40.0  # a refused request takes nothing
    assert bucket.take(1.0, 50.0) == 0.0
    with pytest.raises(ValueError, match="at most the capacity"):
        bucket.take(1.0, 101.0)
    with pytest.raises(ValueError, match="amount"):
        bucket.take(1.0, 0.0)
