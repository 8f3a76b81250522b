"""retry(): bounded, classified, polite, honest, and cheap when nothing fails."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from sdk_responses import error_body, sdk_error

from resilience import RetryBudget, Verdict, VirtualClock, backoff, retry


class Flaky:
    """Fails with the given exceptions in turn, then returns 'ok'; counts calls."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def overloaded() -> BaseException:
    return sdk_error(529, error_body("overloaded_error"))


def make(clock: VirtualClock, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    kwargs.setdefault("rng", random.Random(0))
    return retry(clock=clock, **kwargs)


def test_success_first_time_calls_once_and_never_sleeps() -> None:
    clock = VirtualClock()
    fn = Flaky()
    assert make(clock)(fn)() == "ok"
    assert (fn.calls, clock.sleeps) == (1, [])


def test_retries_retryable_errors_until_success() -> None:
    clock = VirtualClock()
    fn = Flaky(overloaded(), overloaded())
    assert make(clock, attempts=3)(fn)() == "ok"
    assert fn.calls == 3
    assert len(clock.sleeps) == 2


def test_waits_follow_the_given_strategy_exactly() -> None:
    clock = VirtualClock()
    strategy = backoff.full_jitter(1.0, 60.0)
    fn = Flaky(*(overloaded() for _ in range(4)))
    make(clock, attempts=5, backoff=strategy, rng=random.Random(42))(fn)()
    rng = random.Random(42)
    expected, previous = [], strategy.base
    for n in range(4):
        previous = strategy.next_delay(n, previous, rng.random())
        expected.append(previous)
    assert clock.sleeps == expected


def test_does_not_retry_a_bad_request_and_raises_it_untouched() -> None:
    clock = VirtualClock()
    bad = sdk_error(400, error_body("invalid_request_error"))
    fn = Flaky(bad)
    with pytest.raises(anthropic.BadRequestError) as info:
        make(clock)(fn)()
    assert info.value is bad
    assert fn.calls == 1
    assert getattr(info.value, "__notes__", []) == []


def test_gives_up_after_attempts_with_the_original_error_and_its_history() -> None:
    clock = VirtualClock()
    errors = [overloaded() for _ in range(3)]
    fn = Flaky(*errors)
    with pytest.raises(anthropic.OverloadedError) as info:
        make(clock, attempts=3)(fn)()
    assert info.value is errors[-1]
    notes = info.value.__notes__
    assert len(notes) == 3
    assert notes[0].startswith("resilience.retry: attempt 1 of 3 failed at 0.000 s: overloaded 529")
    assert "retrying in" in notes[0]
    assert notes[-1].endswith("gave up: no attempts left (3)")


def test_honors_retry_after_as_a_floor() -> None:
    clock = VirtualClock()
    limited = sdk_error(429, error_body("rate_limit_error"), {"retry-after": "7"})
    fn = Flaky(limited)
    make(clock, backoff=backoff.full_jitter(0.1, 1.0))(fn)()
    assert clock.sleeps == [7.0]


def test_a_shorter_retry_after_does_not_shorten_the_backoff() -> None:
    clock = VirtualClock()
    limited = sdk_error(429, error_body("rate_limit_error"), {"retry-after-ms": "1"})
    make(clock, backoff=backoff.exponential(2.0, 8.0))(Flaky(limited))()
    assert clock.sleeps == [2.0]


def test_never_sleeps_past_the_deadline() -> None:
    clock = VirtualClock()
    fn = Flaky(*(overloaded() for _ in range(50)))
    with pytest.raises(anthropic.OverloadedError) as info:
        make(clock, attempts=50, deadline=10.0, backoff=backoff.exponential(1.0, 100.0))(fn)()
    assert clock.now() <= 10.0
    assert clock.sleeps == [1.0, 2.0, 4.0]  # the next 8 s would end at 15 s
    assert "would cross the 10 s deadline" in info.value.__notes__[-1]


def test_gives_up_at_once_when_retry_after_is_beyond_the_deadline() -> None:
    clock = VirtualClock()
    limited = sdk_error(429, error_body("rate_limit_error"), {"retry-after": "120"})
    with pytest.raises(anthropic.RateLimitError):
        make(clock, deadline=60.0)(Flaky(limited))()
    assert clock.sleeps == []


def test_retry_on_accepts_types_tuples_and_predicates() -> None:
    clock = VirtualClock()
    assert make(clock, retry_on=KeyError)(Flaky(KeyError("k")))() == "ok"
    assert make(clock, retry_on=(KeyError, OSError))(Flaky(OSError()))() == "ok"
    assert make(clock, retry_on=lambda e: "again" in str(e))(Flaky(RuntimeError("again")))() == "ok"
    with pytest.raises(RuntimeError):
        make(clock, retry_on=KeyError)(Flaky(RuntimeError("no")))()


def test_on_retry_hook_sees_attempt_delay_and_verdict() -> None:
    clock = VirtualClock()
    seen: list[tuple[int, float, Verdict]] = []
    fn = Flaky(overloaded(), overloaded())
    make(clock, on_retry=lambda a, d, v: seen.append((a, d, v)))(fn)()
    assert [a for a, _, _ in seen] == [1, 2]
    assert [d for _, d, _ in seen] == clock.sleeps
    assert all(v.category == "overloaded" for _, _, v in seen)


def test_cancellation_and_interrupts_pass_straight_through() -> None:
    clock = VirtualClock()
    for exc in (KeyboardInterrupt(), asyncio.CancelledError(), SystemExit(2)):
        fn = Flaky(exc)
        with pytest.raises(type(exc)):
            make(clock, retry_on=lambda e: True)(fn)()
        assert fn.calls == 1
    assert clock.sleeps == []


def test_budget_refuses_retries_once_empty() -> None:
    clock = VirtualClock()
    budget = RetryBudget(capacity=2, ratio=0.0, cost=1)
    fn = Flaky(*(overloaded() for _ in range(10)))
    with pytest.raises(anthropic.OverloadedError) as info:
        make(clock, attempts=10, budget=budget)(fn)()
    assert fn.calls == 3
    assert info.value.__notes__[-1].endswith("gave up: the retry budget is empty")


def test_budget_shared_between_threads_loses_no_tokens() -> None:
    budget = RetryBudget(capacity=50, ratio=0.0, cost=1)
    calls = []
    lock = threading.Lock()

    def always_down() -> None:
        with lock:
            calls.append(1)
        raise TimeoutError("down")

    wrapped = retry(attempts=100, deadline=None, clock=VirtualClock(), rng=random.Random(1),
                    budget=budget)(always_down)

    def worker() -> None:
        for _ in range(10):
            with pytest.raises(TimeoutError):
                wrapped()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.granted == 50
    assert len(calls) == 80 + 50


def test_keeps_the_signature_and_metadata() -> None:
    @retry(attempts=2, clock=VirtualClock(), rng=random.Random(0))
    def ask(prompt: str, *, tokens: int = 5) -> str:
        """Ask Claude."""
        return prompt * tokens

    assert ask.__name__ == "ask"
    assert ask.__doc__ == "Ask Claude."
    assert ask("a", tokens=2) == "aa"


def test_async_functions_are_retried_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    fn = Flaky(overloaded(), TimeoutError())
    hook_calls: list[int] = []

    async def hook(attempt: int, delay: float, verdict: Verdict) -> None:
        hook_calls.append(attempt)

    @retry(attempts=3, clock=clock, rng=random.Random(0), on_retry=hook)
    async def ask() -> str:
        await asyncio.sleep(0)
        return fn()

    assert asyncio.run(ask()) == "ok"
    assert (fn.calls, hook_calls, len(clock.sleeps)) == (3, [1, 2], 2)


def test_async_gives_up_with_notes_and_passes_cancellation() -> None:
    clock = VirtualClock()

    @retry(attempts=2, clock=clock, rng=random.Random(0))
    async def down() -> None:
        raise overloaded()

    with pytest.raises(anthropic.OverloadedError) as info:
        asyncio.run(down())
    assert len(info.value.__notes__) == 2

    @retry(attempts=5, clock=clock, rng=random.Random(0), retry_on=lambda e: True)
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())


def test_the_traceback_does_not_chain_earlier_attempts() -> None:
    clock = VirtualClock()
    with pytest.raises(TimeoutError) as info:
        make(clock, attempts=3)(Flaky(TimeoutError("1"), TimeoutError("2"), TimeoutError("3")))()
    assert str(info.value) == "3"
    assert info.value.__context__ is None


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"attempts": 0}, "attempts must be an int >= 1"),
    ({"deadline": 0}, "deadline must be a finite number of seconds > 0"),
    ({"deadline": -1.0}, "deadline"),
    ({"deadline": float("inf")}, "deadline"),
    ({"deadline": float("nan")}, "deadline"),
])
def test_bad_values_raise_value_error_at_construction(kwargs: dict[str, Any],
                                                      needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        retry(**kwargs)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"attempts": 2.5}, "attempts must be an int"),
    ({"attempts": True}, "attempts must be an int"),
    ({"deadline": "5"}, "deadline must be a number of seconds, got '5' \\(str\\)"),
    ({"backoff": "fast"}, "backoff must be a strategy"),
    ({"retry_on": 42}, "retry_on"),
    ({"on_retry": 3}, "on_retry must be callable"),
    ({"budget": 10}, "budget must be a RetryBudget"),
    ({"rng": 5}, "rng must be a random source"),
    ({"clock": 5}, "clock must be a clock"),
])
def test_bad_types_raise_type_error_naming_the_argument(kwargs: dict[str, Any],
                                                        needle: str) -> None:
    # Regression (issue 9, bug 8): retry(deadline="5") raised "'<' not supported between
    # instances of 'int' and 'str'"; rng=5 and clock=5 were accepted.
    with pytest.raises(TypeError, match=needle):
        retry(**kwargs)


def test_defaults_are_bounded_and_jittered() -> None:
    clock = VirtualClock()
    fn = Flaky(*(TimeoutError() for _ in range(100)))
    with pytest.raises(TimeoutError):
        retry(clock=clock, rng=random.Random(3))(fn)()
    assert 1 < fn.calls <= 10
    assert clock.now() <= 60.0
    again = VirtualClock()
    with pytest.raises(TimeoutError):
        retry(clock=again, rng=random.Random(4))(Flaky(*(TimeoutError() for _ in range(100))))()
    assert again.sleeps != clock.sleeps  # jitter is on by default
