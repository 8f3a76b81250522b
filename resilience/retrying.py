"""The retry decorator: bounded attempts, a total deadline, jittered backoff, honest errors.

>>> @retry(attempts=4, deadline=30.0)
... def ask(prompt: str) -> str: ...

What it promises:

* **Bounded.** At most ``attempts`` calls, and it never sleeps past ``deadline`` seconds
  from the first call: when the next wait would cross it, it gives up at once.
* **Classified.** By default it retries exactly what :func:`resilience.classify` calls
  retryable (429, 5xx, 529, connection errors, timeouts, an overload inside a stream), and
  never a 400, a 401 or a ``CancelledError``.
* **Polite.** It waits ``max(backoff delay, retry-after)``: the server's word is a floor
  (capped at :data:`MAX_WAIT`, as the SDK caps it).
* **Honest.** It re-raises the last *original* exception, with the attempt history added
  as exception notes (shown under the traceback), never a wrapper.
* **Cheap when nothing fails.** The retry state is created only after a failure; a call
  that succeeds first time costs one clock read and a ``try``.

The decision after a failure lives in one public place, :meth:`RetryPolicy.decide` (the
lab's herd, amplification and budget simulations call it too). After attempt ``f`` fails
(``f = 1`` for the first), ``t`` seconds after the first call::

    d    = backoff.next_delay(f - 1, previous, u)            u = rng.random()
    wait = min(max(d, retry_after), MAX_WAIT)                MAX_WAIT = 4,294,967 s

and it gives up, in this order, when the failure is not retryable; when ``f >= attempts``;
when ``t + wait > deadline``; when the budget refuses the retry. ``retry-after`` is a
floor, capped like the SDK caps it, so no server can make it sleep for ever (and
``time.sleep`` never overflows).

Do not stack it on the SDK's own retries: build the client with ``max_retries=0`` (or
``client.with_options(max_retries=0)``), or 3 SDK attempts x 5 of yours become 15.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

from . import _check
from .backoff import Strategy, full_jitter
from .budget import RetryBudget
from .classification import MAX_RETRY_AFTER, Verdict, classify
from .clock import Clock, SystemClock

__all__ = ["MAX_WAIT", "Attempts", "Decision", "RetryHook", "RetryPolicy", "retry"]

P = ParamSpec("P")
T = TypeVar("T")

MAX_WAIT = MAX_RETRY_AFTER
"""The longest single wait, in seconds (4,294,967 s, about 49.7 days): the anthropic SDK's
own cap on ``retry-after`` (:data:`resilience.classification.MAX_RETRY_AFTER`, its one home),
below every platform's ``time.sleep`` limit."""

RetryHook = Callable[[int, float, Verdict], object]
"""``on_retry(attempt, delay, verdict)``: called before each wait; ``attempt`` is the number
of the attempt that just failed (1 for the first). An async hook is awaited."""

RetryOn = Callable[[BaseException], bool] | type[BaseException] | tuple[type[BaseException], ...]


class Decision(NamedTuple):
    """What :meth:`RetryPolicy.decide` decided.

    Attributes:
        wait: seconds to wait before the next attempt (0.0 when giving up).
        reason: None to retry; else why it gives up (``"not retryable"``, ...).
        delay: the backoff delay before the ``retry-after`` floor (the next ``previous``);
            0.0 when no delay was needed.
    """

    wait: float
    reason: str | None
    delay: float


_decision = functools.partial(tuple.__new__, Decision)
"""``Decision`` built from one tuple without the generated ``__new__`` (the lab's
simulations make one per simulated failure)."""


class RetryPolicy:
    """The settings of one :func:`retry`, checked once, and its decision rule.

    Args: as for :func:`retry` (all keyword-only, same defaults).

    Raises:
        TypeError: a setting of the wrong type (named).
        ValueError: a setting out of range (named, with the range).
    """

    __slots__ = ("attempts", "backoff", "budget", "clock", "deadline", "on_retry", "retry_on",
                 "rng")

    def __init__(self, *, attempts: int = 5, deadline: float | None = 60.0,
                 backoff: Strategy | None = None, retry_on: RetryOn | None = None,
                 clock: Clock | None = None, rng: random.Random | None = None,
                 budget: RetryBudget | None = None, on_retry: RetryHook | None = None) -> None:
        self.attempts = _check.whole_number("attempts", attempts, minimum=1)
        self.deadline = None if deadline is None else _check.positive_number(
            "deadline", deadline, unit="seconds")
        if backoff is None:
            backoff = full_jitter()
        elif not callable(getattr(backoff, "next_delay", None)) \
                or not isinstance(getattr(backoff, "base", None), int | float):
            raise TypeError(f"backoff must be a strategy from resilience.backoff "
                            f"(backoff.full_jitter(), backoff.by_name(...)), got {backoff!r}")
        self.backoff = backoff
        self.retry_on = _predicate(retry_on)
        self.clock: Clock = SystemClock() if clock is None else _check.clock_like("clock", clock)
        self.rng = random.Random() if rng is None else _check.rng_like("rng", rng)
        self.budget = None if budget is None else _check.instance(
            "budget", budget, RetryBudget, "a RetryBudget or None")
        self.on_retry = _check.callable_or_none("on_retry", on_retry)

    def decide(self, failed: int, elapsed: float, retry_after: float | None = None, *,
               delay: float | None = None, previous: float | None = None,
               retryable: bool = True, gate: Callable[[], bool] | None = None) -> Decision:
        """Retry or give up after attempt ``failed`` failed, ``elapsed`` s after the first call.

        ``wait = min(max(delay, retry_after), MAX_WAIT)``, where ``delay`` is
        ``backoff.next_delay(failed - 1, previous, rng.random())`` unless given (the lab
        passes delays it drew in bulk). Gives up, checking in this order, when:

        1. ``retryable`` is false;
        2. ``failed >= attempts``;
        3. ``elapsed + wait > deadline`` (with a deadline);
        4. ``gate()`` says no; the gate is the budget's ``try_spend`` by default, so a
           token is spent only for a retry that will happen.

        The backoff draw (one ``rng.random()``) happens only after checks 1 and 2 pass, so
        a call that gives up early leaves a shared ``rng`` untouched.

        Args:
            failed: attempts made so far, all failed (>= 1).
            elapsed: seconds since the first attempt started.
            retry_after: the server's ``retry-after`` in seconds, or None.
            delay: the backoff delay to use instead of drawing one.
            previous: the previous backoff delay (decorrelated jitter reads it); ``base``
                when None.
            retryable: whether this failure may be retried at all.
            gate: asked last; False gives up (``"the retry budget is empty"``).
        """
        if not retryable:
            return _decision((0.0, "not retryable", 0.0))
        if failed >= self.attempts:
            return _decision((0.0, f"no attempts left ({self.attempts})", 0.0))
        if delay is None:
            backoff = self.backoff
            delay = float(backoff.next_delay(failed - 1, backoff.base if previous is None
                                             else previous, self.rng.random()))
        wait = delay if retry_after is None or not retry_after > delay else retry_after
        if not wait <= MAX_WAIT:
            wait = MAX_WAIT
        deadline = self.deadline
        if deadline is not None and elapsed + wait > deadline:
            return _decision((0.0, f"waiting {wait:.3f} s would cross the {deadline:g} s "
                                   "deadline", delay))
        if gate is None and self.budget is not None:
            gate = self.budget.try_spend
        if gate is not None and not gate():
            return _decision((0.0, "the retry budget is empty", delay))
        return _decision((wait, None, delay))


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
        raise TypeError(
            f"retry_on must be an exception type, a tuple of them, or a predicate, "
            f"got {retry_on!r}")
    return lambda e: isinstance(e, kinds)


class Attempts:
    """One call that has failed at least once: its count, last delay, verdict and notes.

    Created only after a first failure, so a call that succeeds costs nothing here.
    :meth:`after` classifies the failure, asks :meth:`RetryPolicy.decide`, and keeps the
    attempt history that ends up as notes on the exception when it gives up.
    """

    __slots__ = ("failed", "notes", "policy", "previous", "start", "verdict")

    def __init__(self, policy: RetryPolicy, start: float) -> None:
        self.policy = policy
        self.start = start
        self.failed = 0
        self.previous = policy.backoff.base
        self.notes: list[str] = []
        self.verdict: Verdict | None = None

    def after(self, exc: Exception) -> float | None:
        """The wait before the next attempt, or None to give up (notes attached to exc)."""
        policy = self.policy
        self.failed += 1
        self.verdict = verdict = classify(exc)
        at = policy.clock.now() - self.start
        retryable = verdict.retryable if policy.retry_on is None else policy.retry_on(exc)
        decision = policy.decide(self.failed, at, verdict.retry_after, previous=self.previous,
                                 retryable=retryable)
        head = (f"resilience.retry: attempt {self.failed} of {policy.attempts} failed "
                f"at {at:.3f} s: {verdict}")
        if decision.reason is None:
            self.previous = decision.delay
            self.notes.append(f"{head}; retrying in {decision.wait:.3f} s")
            return decision.wait
        if self.failed > 1 or retryable:
            for note in self.notes:
                exc.add_note(note)
            exc.add_note(f"{head}; gave up: {decision.reason}")
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
        A decorator that keeps the function's signature. It takes a function, an async
        function, or an object whose ``__call__`` is either.

    Raises:
        TypeError: at decoration time, for a setting of the wrong type, or for a
            generator function (sync or async): its failures happen while you iterate,
            after the call has returned, so there is nothing to retry.
        ValueError: at decoration time, for a setting out of range.
    """
    policy = RetryPolicy(attempts=attempts, deadline=deadline, backoff=backoff,
                         retry_on=retry_on, clock=clock, rng=rng, budget=budget,
                         on_retry=on_retry)

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        flavour = _flavour(_check.function("fn", fn))
        if flavour == "async":
            return cast(Callable[P, T], _async_shell(policy, cast(Any, fn)))
        return _sync_shell(policy, fn)

    return decorate


def _flavour(fn: Callable[..., Any]) -> str:
    """``async`` for a coroutine function (or an object with an async ``__call__``),
    ``sync`` otherwise; TypeError for a generator function of either kind."""
    for target in (fn, type(fn).__call__):
        if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
            raise TypeError(
                f"retry() cannot retry a generator function ({fn!r}): it fails while you "
                "iterate, after the call has returned. Retry a function that consumes it.")
        if inspect.iscoroutinefunction(target):
            return "async"
    return "sync"


def _sync_shell(policy: RetryPolicy, fn: Callable[P, T]) -> Callable[P, T]:
    now, sleep, budget = policy.clock.now, policy.clock.sleep, policy.budget

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = now()
        if budget is not None:
            budget.deposit()
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            exc = e
        state = Attempts(policy, start)
        while (wait := state.after(exc)) is not None:
            if policy.on_retry is not None:
                policy.on_retry(state.failed, wait, cast(Verdict, state.verdict))
            sleep(wait)
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                exc = e
        raise exc

    return wrapper


def _async_shell(policy: RetryPolicy,
                 fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    now, budget = policy.clock.now, policy.budget

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = now()
        if budget is not None:
            budget.deposit()
        try:
            return await fn(*args, **kwargs)
        except Exception as e:
            exc = e
        state = Attempts(policy, start)
        while (wait := state.after(exc)) is not None:
            if policy.on_retry is not None and inspect.isawaitable(
                    hook := policy.on_retry(state.failed, wait, cast(Verdict, state.verdict))):
                await hook
            await policy.clock.asleep(wait)
            try:
                return await fn(*args, **kwargs)
            except Exception as e:
                exc = e
        raise exc

    return wrapper
