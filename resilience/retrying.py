"""The retry decorator: bounded attempts, a total deadline, jittered backoff, honest errors.

>>> @retry(attempts=4, deadline=30.0)
... def ask(prompt: str) -> str: ...

What it promises:

* **Bounded.** At most ``attempts`` calls, and it never sleeps past ``deadline`` seconds
  from the first call: when the next wait would cross it, it gives up at once.
* **Classified.** By default it retries exactly what :func:`resilience.classify` calls
  retryable (429, 5xx, 529, connection errors, timeouts, an overload inside a stream), and
  never a 400, a 401 or a ``CancelledError``.
* **Polite.** It waits ``max(backoff delay, retry-after)``: the server's word is a floor.
* **Honest.** It re-raises the last *original* exception, with the attempt history added
  as exception notes (shown under the traceback), never a wrapper.
* **Cheap when nothing fails.** The retry state is created only after a failure; a call
  that succeeds first time costs one clock read and a ``try``.

Delay before retry ``n`` (``n = 0`` first): ``max(backoff.next_delay(n, previous, u),
retry_after)``, with ``u = rng.random()``.

Do not stack it on the SDK's own retries: build the client with ``max_retries=0`` (or
``client.with_options(max_retries=0)``), or 3 SDK attempts x 5 of yours become 15.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from .backoff import Strategy, full_jitter
from .budget import RetryBudget
from .classification import Verdict, classify
from .clock import Clock, SystemClock

__all__ = ["RetryHook", "retry"]

P = ParamSpec("P")
T = TypeVar("T")

RetryHook = Callable[[int, float, Verdict], object]
"""``on_retry(attempt, delay, verdict)``: called before each wait; ``attempt`` is the number
of the attempt that just failed (1 for the first). An async hook is awaited."""

RetryOn = Callable[[BaseException], bool] | type[BaseException] | tuple[type[BaseException], ...]


class _Policy:
    """The settings of one decorator, checked once."""

    __slots__ = ("attempts", "backoff", "budget", "clock", "deadline", "on_retry", "retry_on",
                 "rng")

    def __init__(self, attempts: int, deadline: float | None, backoff: Strategy,
                 retry_on: RetryOn | None, clock: Clock, rng: random.Random,
                 budget: RetryBudget | None, on_retry: RetryHook | None) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, got {attempts!r}")
        if deadline is not None and not 0 < deadline < float("inf"):
            raise ValueError(
                f"deadline must be a finite number of seconds > 0 (or None), got {deadline!r}")
        if not callable(getattr(backoff, "next_delay", None)):
            raise ValueError(f"backoff must be a strategy from resilience.backoff, got {backoff!r}")
        if on_retry is not None and not callable(on_retry):
            raise ValueError(f"on_retry must be callable or None, got {on_retry!r}")
        if budget is not None and not isinstance(budget, RetryBudget):
            raise ValueError(f"budget must be a RetryBudget or None, got {budget!r}")
        self.attempts = attempts
        self.deadline = deadline
        self.backoff = backoff
        self.retry_on = _predicate(retry_on)
        self.clock = clock
        self.rng = rng
        self.budget = budget
        self.on_retry = on_retry


def _predicate(retry_on: RetryOn | None) -> Callable[[BaseException], bool] | None:
    if retry_on is None:
        return None
    if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
        kinds: tuple[type[BaseException], ...] = (retry_on,)
    elif isinstance(retry_on, tuple) and all(
            isinstance(k, type) and issubclass(k, BaseException) for k in retry_on):
        kinds = retry_on
    elif callable(retry_on):
        return cast(Callable[[BaseException], bool], retry_on)
    else:
        raise ValueError(
            f"retry_on must be an exception type, a tuple of them, or a predicate, "
            f"got {retry_on!r}")
    return lambda e: isinstance(e, kinds)


class _Attempts:
    """The state of one call that has failed at least once: the pure decision core shared
    by the sync and async shells."""

    __slots__ = ("failed", "notes", "policy", "previous", "start")

    def __init__(self, policy: _Policy, start: float) -> None:
        self.policy = policy
        self.start = start
        self.failed = 0
        self.previous = policy.backoff.base
        self.notes: list[str] = []

    def next_delay(self, exc: Exception) -> tuple[float, Verdict] | None:
        """The wait before the next attempt, or None to give up (notes attached to exc)."""
        policy = self.policy
        self.failed += 1
        verdict = classify(exc)
        at = policy.clock.now() - self.start
        head = (f"resilience.retry: attempt {self.failed} of {policy.attempts} failed "
                f"at {at:.3f} s: {verdict}")
        retryable = verdict.retryable if policy.retry_on is None else policy.retry_on(exc)
        reason = None
        delay = 0.0
        if not retryable:
            reason = "not retryable"
        elif self.failed >= policy.attempts:
            reason = f"no attempts left ({policy.attempts})"
        else:
            delay = float(policy.backoff.next_delay(self.failed - 1, self.previous,
                                                    policy.rng.random()))
            self.previous = delay
            if verdict.retry_after is not None and verdict.retry_after > delay:
                delay = verdict.retry_after
            if policy.deadline is not None and at + delay > policy.deadline:
                reason = (f"waiting {delay:.3f} s would cross the {policy.deadline:g} s "
                          "deadline")
            elif policy.budget is not None and not policy.budget.try_spend():
                reason = "the retry budget is empty"
        if reason is None:
            self.notes.append(f"{head}; retrying in {delay:.3f} s")
            return delay, verdict
        if self.failed > 1 or retryable:
            for note in self.notes:
                exc.add_note(note)
            exc.add_note(f"{head}; gave up: {reason}")
        return None


def retry(
    *,
    attempts: int = 5,
    deadline: float | None = 60.0,
    backoff: Strategy | None = None,
    retry_on: RetryOn | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    budget: RetryBudget | None = None,
    on_retry: RetryHook | None = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry a sync or async callable on retryable failures.

    Args:
        attempts: the most calls in all, first included (>= 1).
        deadline: seconds from the first call after which no wait may end (> 0), or None.
        backoff: a strategy from :mod:`resilience.backoff`; ``full_jitter(0.5, 30)`` by
            default.
        retry_on: what to retry: an exception type, a tuple of them, or a predicate on the
            exception. By default ``classify(e).retryable``.
        clock: where time comes from and how to wait; :class:`SystemClock` by default.
        rng: the random source for jitter (pass a seeded ``random.Random`` to repeat runs).
        budget: a :class:`RetryBudget` shared with other calls; a retry it refuses ends
            the call.
        on_retry: ``hook(attempt, delay, verdict)`` before each wait (async hooks awaited).

    Returns:
        A decorator that keeps the function's signature.

    Raises:
        ValueError: at decoration time, for a setting out of range.
    """
    policy = _Policy(attempts, deadline, backoff if backoff is not None else full_jitter(),
                     retry_on, clock if clock is not None else SystemClock(),
                     rng if rng is not None else random.Random(), budget, on_retry)

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if inspect.iscoroutinefunction(fn):
            return cast(Callable[P, T], _async_shell(policy, fn))
        return _sync_shell(policy, fn)

    return decorate


def _sync_shell(policy: _Policy, fn: Callable[P, T]) -> Callable[P, T]:
    now = policy.clock.now
    budget = policy.budget

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = now()
        if budget is not None:
            budget.deposit()
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            exc = e
        return _retry_sync(policy, fn, args, kwargs, start, exc)

    return wrapper


def _retry_sync(policy: _Policy, fn: Callable[..., T], args: Any, kwargs: Any, start: float,
                exc: Exception) -> T:
    state = _Attempts(policy, start)
    while True:
        decision = state.next_delay(exc)
        if decision is None:
            raise exc
        delay, verdict = decision
        if policy.on_retry is not None:
            policy.on_retry(state.failed, delay, verdict)
        policy.clock.sleep(delay)
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            exc = e


def _async_shell(policy: _Policy,
                 fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    now = policy.clock.now
    budget = policy.budget

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = now()
        if budget is not None:
            budget.deposit()
        try:
            return await fn(*args, **kwargs)
        except Exception as e:
            exc = e
        state = _Attempts(policy, start)
        while True:
            decision = state.next_delay(exc)
            if decision is None:
                raise exc
            delay, verdict = decision
            if policy.on_retry is not None:
                result = policy.on_retry(state.failed, delay, verdict)
                if inspect.isawaitable(result):
                    await result
            await policy.clock.asleep(delay)
            try:
                return await fn(*args, **kwargs)
            except Exception as e:
                exc = e

    return wrapper
