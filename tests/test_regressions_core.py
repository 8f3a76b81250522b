"""Regression tests for the core bugs found by probing (issue 9). Each failed before its fix.

Bug 8 (arguments not checked) has its tests beside each class: test_retry.py,
test_breaker.py, test_core.py (VirtualClock), test_ratelimit.py, test_budget.py,
test_backoff.py, test_fallback.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sdk_responses import error_body, sdk_error

from resilience import AdaptiveThrottle, CircuitBreaker, CircuitOpenError, VirtualClock, retry
from resilience import backoff as strategies
from resilience.retrying import MAX_WAIT, RetryPolicy


def down() -> None:
    raise TimeoutError("down")


class Boom(Exception):
    """What a broken listener or predicate raises."""


# -- bug 2: a raising listener or is_failure wedged the half-open trial slot ---------------

def tripped(**kwargs: Any) -> tuple[CircuitBreaker, VirtualClock]:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock, **kwargs)
    with pytest.raises(TimeoutError):  # the call's own error, never the listener's
        breaker.call(down)
    assert breaker._state == "open"
    clock.advance(10.0)
    return breaker, clock


def test_a_listener_that_always_raises_never_wedges_the_breaker(
        caplog: pytest.LogCaptureFixture) -> None:
    def listener(breaker: CircuitBreaker, old: str, new: str) -> None:
        raise Boom(f"{old} -> {new}")

    breaker, _ = tripped(listeners=[listener])
    # open -> half_open happens as this call is admitted; the listener raises there.
    assert breaker.call(lambda: "ok") == "ok"       # ... and half_open -> closed after it
    assert breaker.state == "closed"
    assert breaker.call(lambda: "again") == "again"
    assert [r.getMessage().split(": listener")[0] for r in caplog.records] == [
        "circuit 'claude'"] * 3                      # closed->open, ->half_open, ->closed
    assert all(r.name == "resilience.breaker" and r.exc_info for r in caplog.records)


def test_a_listener_raising_once_in_half_open_does_not_leak_the_trial_slot() -> None:
    raised = []

    def listener(breaker: CircuitBreaker, old: str, new: str) -> None:
        if new == "half_open" and not raised:
            raised.append(new)
            raise Boom("once")

    breaker, clock = tripped(listeners=[listener])
    with pytest.raises(TimeoutError):
        breaker.call(down)                       # the trial fails: open again
    clock.advance(10.0)
    assert breaker.call(lambda: "ok") == "ok"    # a year later it must still admit a trial
    assert breaker.state == "closed" and raised == ["half_open"]


def test_a_listener_raising_after_a_successful_call_does_not_lose_the_result() -> None:
    def listener(breaker: CircuitBreaker, old: str, new: str) -> None:
        if new == "closed":
            raise Boom("after the call")

    breaker, _ = tripped(listeners=[listener])
    assert breaker.call(lambda: 42) == 42
    with breaker:
        pass
    assert breaker.state == "closed"


def test_every_listener_still_runs_when_one_raises() -> None:
    seen: list[str] = []

    def bad(breaker: CircuitBreaker, old: str, new: str) -> None:
        raise Boom

    def good(breaker: CircuitBreaker, old: str, new: str) -> None:
        seen.append(new)

    tripped(listeners=[bad, good])
    assert seen == ["open"]


@pytest.mark.parametrize("way", ["call", "with", "async"])
def test_is_failure_raising_in_a_trial_gives_the_slot_back(way: str) -> None:
    broken = [True]

    def is_failure(exc: BaseException) -> bool:
        if broken:
            broken.clear()
            raise Boom("predicate bug")
        return True

    breaker, _ = tripped(is_failure=lambda e: True)
    breaker.is_failure = is_failure
    with pytest.raises(Boom) as info:       # the predicate's bug surfaces ...
        if way == "call":
            breaker.call(down)
        elif way == "with":
            with breaker:
                down()
        else:
            async def failing() -> None:
                down()
            asyncio.run(breaker.call(failing))
    assert isinstance(info.value.__context__, TimeoutError)  # ... chained to the call's error
    assert breaker.state == "half_open"
    assert breaker.call(lambda: "ok") == "ok"  # the slot is free: not "trial calls in flight"
    assert breaker.state == "closed"


def test_with_blocks_on_many_breakers_release_the_right_tickets() -> None:
    clock = VirtualClock()
    a = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock, name="a")
    b = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock, name="b")
    with pytest.raises(TimeoutError), a:
        down()
    clock.advance(1.0)
    with a, b:                  # a is a half-open trial, b an ordinary closed call
        pass
    assert (a.state, b.state) == ("closed", "closed")
    outer_a, outer_b = a.__enter__(), b.__enter__()
    outer_a.__exit__(None, None, None)   # exited out of order: each finds its own ticket
    outer_b.__exit__(None, None, None)
    with pytest.raises(RuntimeError, match="without a matching __enter__"):
        a.__exit__(None, None, None)


# -- bug 9: one ContextVar per breaker ------------------------------------------------------

def test_breakers_share_one_context_variable() -> None:
    def run() -> int:
        breakers = [CircuitBreaker(name=f"b{i}") for i in range(200)]
        for breaker in breakers:
            with breaker:
                pass
        return sum(1 for var in contextvars.copy_context() if "breaker" in var.name)

    # Before: each breaker made its own ContextVar ("breaker-<name>") and set it here.
    assert contextvars.copy_context().run(run) <= 1


# -- bug 3: retry-after unbounded with deadline=None ---------------------------------------

class FakeSystemClock:
    """Reads real monotonic time but never sleeps; refuses what ``time.sleep`` would."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if not 0 <= seconds <= MAX_WAIT:  # the largest sleep every platform takes
            raise OverflowError(f"sleep length is too large: {seconds!r}")
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def test_a_huge_retry_after_is_capped_like_the_sdk_caps_it() -> None:
    overloaded = sdk_error(529, error_body("overloaded_error"), headers={"retry-after": "1e308"})
    calls = []

    def ask() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise overloaded
        return "ok"

    clock = VirtualClock()
    assert retry(deadline=None, clock=clock, rng=random.Random(0))(ask)() == "ok"
    assert clock.sleeps == [4_294_967.0]


def test_the_core_caps_every_wait_so_a_system_clock_never_overflows() -> None:
    assert MAX_WAIT == 4_294_967.0
    policy = RetryPolicy(deadline=None)
    assert policy.decide(1, 0.0, 1e308, delay=0.1).wait == MAX_WAIT
    assert policy.decide(1, 0.0, float("inf"), delay=0.1).wait == MAX_WAIT
    assert policy.decide(1, 0.0, float("nan"), delay=0.1).wait == 0.1  # NaN is no floor
    # A strategy with an enormous cap: every wait is capped, the original error comes back.
    clock = FakeSystemClock()
    huge = strategies.exponential(1e300, 1e300)
    with pytest.raises(TimeoutError, match="down"):
        retry(attempts=3, deadline=None, backoff=huge, clock=clock)(down)()
    assert clock.sleeps == [MAX_WAIT, MAX_WAIT]


def test_the_wait_cap_is_the_classifiers_retry_after_cap() -> None:
    from resilience import classification

    assert MAX_WAIT == classification.MAX_RETRY_AFTER


# -- bug 4: backoff overflowed after 1,024 retries ----------------------------------------

def test_1100_attempts_without_a_deadline_end_with_the_original_error() -> None:
    clock = VirtualClock()
    calls = []

    def failing() -> None:
        calls.append(1)
        raise TimeoutError("still down")

    with pytest.raises(TimeoutError, match="still down") as info:
        retry(attempts=1100, deadline=None, clock=clock, rng=random.Random(0))(failing)()
    assert len(calls) == 1100 and len(clock.sleeps) == 1099
    assert max(clock.sleeps) <= 30.0
    assert "gave up: no attempts left (1100)" in info.value.__notes__[-1]


# -- bug 6: retry() silently skipped generators and async __call__ ------------------------

def test_generator_functions_are_refused() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    async def async_numbers() -> AsyncIterator[int]:
        yield 1

    class Streams:
        def __call__(self) -> Iterator[int]:
            yield 1

    for fn in (numbers, async_numbers, Streams()):
        with pytest.raises(TypeError, match="cannot retry a generator function"):
            retry()(fn)


def test_an_object_with_an_async_call_is_retried_and_awaited() -> None:
    class Ask:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, prompt: str) -> str:
            self.calls += 1
            if self.calls < 3:
                raise TimeoutError("slow")
            return prompt.upper()

    ask = Ask()
    clock = VirtualClock()
    wrapped = retry(attempts=5, clock=clock, rng=random.Random(0))(ask)
    assert asyncio.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped("hi")) == "HI"
    assert ask.calls == 3 and len(clock.sleeps) == 2


def test_a_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="fn must be callable"):
        retry()(42)  # type: ignore[arg-type]


# -- bug 10: AdaptiveThrottle's work grew without bound ------------------------------------

class TickingClock(VirtualClock):
    """Moves 1 microsecond forward at every reading, like a busy real clock."""

    def now(self) -> float:
        self.advance(1e-6)
        return super().now()


def test_a_tiny_bucket_keeps_work_and_memory_bounded() -> None:
    clock = TickingClock()
    throttle = AdaptiveThrottle(bucket=1e-6, clock=clock)
    rng = random.Random(0)
    start = time.perf_counter()
    for _ in range(20_000):
        throttle.allow(rng)
    elapsed = time.perf_counter() - start
    assert len(throttle._buckets) <= AdaptiveThrottle.MAX_BUCKETS
    assert throttle.bucket == 120.0 / AdaptiveThrottle.MAX_BUCKETS
    assert throttle.counts() == (20_000, 0)   # all inside the 120 s window
    assert elapsed < 5.0                        # was 32 s; about 0.1 s now


def test_running_totals_match_the_buckets_as_they_expire() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(window=10.0, bucket=1.0, clock=clock)
    rng = random.Random(0)
    for second in range(30):
        for _ in range(second % 4 + 1):
            throttle.allow(rng)
        throttle.record_accept()
        clock.advance(1.0)
        counts = throttle.counts()   # expires old buckets first
        assert counts == (sum(b[1] for b in throttle._buckets),
                          sum(b[2] for b in throttle._buckets))
    assert throttle.counts()[1] == 9   # one accept per second, over the last 9 whole buckets


def test_listener_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def listener(breaker: CircuitBreaker, old: str, new: str) -> None:
        raise Boom("listener bug")

    with caplog.at_level(logging.ERROR, logger="resilience.breaker"):
        breaker = CircuitBreaker(failure_threshold=1, clock=VirtualClock(),
                                 listeners=[listener])
        with pytest.raises(TimeoutError):
            breaker.call(down)
    assert "listener" in caplog.text and "closed -> open" in caplog.text
    assert "Boom: listener bug" in caplog.text
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
