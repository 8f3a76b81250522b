"""A circuit breaker that stops calling a service that is down, and tries it again later.

States::

    closed --(failure_threshold failures in a row, or failure rate over the window)--> open
    open --(recovery_timeout seconds later)--> half_open
    half_open --(a trial call succeeds)--> closed
    half_open --(a trial call fails)--> open (for another recovery_timeout)

What it counts: only failures that say the *service* is unhealthy (by default
:func:`service_failure`: 5xx but 501, 529, an overload inside a stream, timeouts and
connection errors). A 4xx is about the caller, never the service's health: a 400 or a 401
is the caller's fault, and a 429 is the caller's own quota running out (the service is
answering, quickly). None of them trips the breaker, and none counts as a success.
A success in the closed state resets the run of failures, so old failures are forgotten.

Concurrency: a lock guards the state, never the protected call, so calls run in parallel;
half-open admits at most ``half_open_max_calls`` trial calls at once and rejects the rest
at once with :class:`CircuitOpenError`. Time comes from an injectable monotonic clock.

Listeners and ``is_failure`` are your code, run by the breaker; their errors never
corrupt its state. A listener that raises is logged (logger ``resilience.breaker``) and
the rest still run, so a call's result or error always reaches its caller. When
``is_failure`` raises, the call's outcome counts as neutral (a half-open trial slot is
given back) and its error propagates, chained to the call's own error.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from . import _check
from .classification import classify
from .clock import Clock, SystemClock
from .errors import CLOSED, HALF_OPEN, OPEN, CircuitOpenError

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "CircuitOpenError", "Listener",
           "service_failure"]

P = ParamSpec("P")
T = TypeVar("T")

Listener = Callable[["CircuitBreaker", str, str], object]
"""``listener(breaker, old_state, new_state)``, called after each change of state."""

_log = logging.getLogger(__name__)

_TICKETS: contextvars.ContextVar[tuple[tuple[CircuitBreaker, bool], ...]] = \
    contextvars.ContextVar("resilience.breaker.tickets", default=())
"""The ``with breaker:`` blocks open in this context: ``(breaker, is a trial)``, innermost
last. One variable for every breaker (a ContextVar is never freed)."""


def service_failure(exc: BaseException) -> bool:
    """The breaker's default rule: does this failure say the *service* is unhealthy?

    True for what :func:`resilience.classify` calls retryable *and* is not a 4xx: 5xx but
    501, 529, an overload inside a 200 stream, timeouts and connection errors. False for
    every 4xx, including 429 (your quota, not the service's health) and 408/409.
    """
    verdict = classify(exc)
    if not verdict.retryable or verdict.category == "rate_limit":
        return False
    return verdict.status is None or not 400 <= verdict.status <= 499


class CircuitBreaker:
    """Count failures of a service; stop calling it while it is down.

    Use it as ``breaker.call(fn, *args)``, as a decorator (``@breaker``), or as a context
    manager (``with breaker:`` / ``async with breaker:``); each works for sync and async.

    Args:
        failure_threshold: consecutive counted failures that open the circuit (>= 1), or
            None to trip on the failure rate alone.
        recovery_timeout: seconds the circuit stays open before a trial call (> 0).
        half_open_max_calls: trial calls admitted at once when half-open (>= 1).
        clock: where time comes from; :class:`SystemClock` (monotonic) by default.
        failure_rate_threshold: also open when the share of counted failures among the
            last ``window_size`` calls reaches this (0 < rate <= 1), or None.
        window_size: how many recent calls the failure rate looks at (>= 1).
        minimum_calls: no rate trip before this many calls are in the window
            (1 <= minimum_calls <= window_size).
        is_failure: which exceptions count against the service; by default
            :func:`service_failure` (5xx, 529, timeouts, connection errors; no 4xx, not
            even 429). Exceptions it rejects are neutral.
        name: shown in errors and logs.
        listeners: called as ``listener(breaker, old, new)`` after each change of state.

    Raises:
        TypeError: a setting of the wrong type, named (``listeners[0] must be callable``).
        ValueError: a setting out of range, named with its range.

    Attributes:
        history: ``(time, state)`` for the start and every change, for plots.
    """

    __slots__ = ("_consecutive", "_lock", "_opened_at", "_pending", "_state",
                 "_trials", "_window", "clock", "failure_rate_threshold", "failure_threshold",
                 "half_open_max_calls", "history", "is_failure", "listeners", "minimum_calls",
                 "name", "recovery_timeout")

    def __init__(
        self,
        failure_threshold: int | None = 5,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        clock: Clock | None = None,
        failure_rate_threshold: float | None = None,
        window_size: int = 100,
        minimum_calls: int = 20,
        is_failure: Callable[[BaseException], bool] | None = None,
        name: str = "claude",
        listeners: tuple[Listener, ...] | list[Listener] = (),
    ) -> None:
        if failure_threshold is not None:
            failure_threshold = _check.whole_number("failure_threshold", failure_threshold,
                                                    minimum=1)
        recovery_timeout = _check.positive_number("recovery_timeout", recovery_timeout,
                                                  unit="seconds")
        half_open_max_calls = _check.whole_number("half_open_max_calls", half_open_max_calls,
                                                  minimum=1)
        if failure_rate_threshold is not None:
            failure_rate_threshold = _check.number("failure_rate_threshold",
                                                   failure_rate_threshold, minimum=0.0,
                                                   maximum=1.0, above=True)
        window_size = _check.whole_number("window_size", window_size, minimum=1)
        minimum_calls = _check.whole_number("minimum_calls", minimum_calls, minimum=1,
                                            maximum=window_size)
        if failure_threshold is None and failure_rate_threshold is None:
            raise ValueError("failure_threshold and failure_rate_threshold cannot both be None: "
                             "the circuit could never open")
        if is_failure is not None:
            _check.function("is_failure", is_failure)
        _check.instance("name", name, str, "a str")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = float(recovery_timeout)
        self.half_open_max_calls = half_open_max_calls
        self.clock: Clock = SystemClock() if clock is None else _check.clock_like("clock", clock)
        self.failure_rate_threshold = failure_rate_threshold
        self.minimum_calls = minimum_calls
        self.is_failure = is_failure if is_failure is not None else service_failure
        self.name = name
        self.listeners: list[Listener] = _check.functions("listeners", listeners)
        self._lock = threading.Lock()
        self._state = CLOSED
        self._opened_at = 0.0
        self._consecutive = 0
        self._trials = 0
        self._window: deque[bool] = deque(maxlen=window_size)
        self._pending: list[tuple[str, str]] = []
        self.history: list[tuple[float, str]] = [(self.clock.now(), CLOSED)]

    # -- state, under the lock ---------------------------------------------------------

    def _move(self, new: str, now: float) -> None:
        old = self._state
        self._state = new
        self.history.append((now, new))
        self._pending.append((old, new))
        if new == OPEN:
            self._opened_at = now
        elif new == CLOSED:
            self._consecutive = 0
            self._window.clear()

    def _refresh(self, now: float) -> None:
        if self._state == OPEN and now - self._opened_at >= self.recovery_timeout:
            self._move(HALF_OPEN, now)

    def _notify(self) -> None:
        """Call listeners for changes made under the lock, after releasing it.

        A listener that raises is logged and skipped: the state is already settled, and the
        caller's result or error must not be replaced by a listener's.
        """
        if not self._pending:
            return
        with self._lock:
            changes, self._pending = self._pending, []
        for old, new in changes:
            for listener in self.listeners:
                try:
                    listener(self, old, new)
                except Exception:
                    _log.exception("circuit %r: listener %r raised on %s -> %s; ignored",
                                   self.name, listener, old, new)

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``, as of now on the clock."""
        with self._lock:
            self._refresh(self.clock.now())
            state = self._state
        self._notify()
        return state

    @property
    def consecutive_failures(self) -> int:
        """Counted failures since the last success (in the closed state)."""
        return self._consecutive

    def _acquire(self) -> bool:
        """Admit a call or raise CircuitOpenError; True when the call is a half-open trial."""
        if self._state == CLOSED:  # read without the lock: a stale read admits one call more
            return False
        trial = False
        error: CircuitOpenError | None = None
        with self._lock:
            now = self.clock.now()
            self._refresh(now)
            state = self._state
            if state == HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                trial = True
            elif state != CLOSED:
                retry_in = self._opened_at + self.recovery_timeout - now if state == OPEN else 0.0
                error = CircuitOpenError(self.name, state, max(0.0, retry_in))
        self._notify()
        if error is not None:
            raise error
        return trial

    def _release(self, trial: bool, failure: bool | None) -> None:
        """Record the outcome of an admitted call: True failure, False success, None neutral."""
        if failure is False and not trial and self._consecutive == 0 \
                and self.failure_rate_threshold is None:
            return  # a success that changes nothing needs no lock
        with self._lock:
            now = self.clock.now()
            if trial:
                self._trials -= 1
                if self._state == HALF_OPEN and failure is not None:
                    self._move(OPEN if failure else CLOSED, now)
            elif self._state == CLOSED and failure is not None:
                self._window.append(failure)
                if failure:
                    self._consecutive += 1
                    if self._should_trip():
                        self._move(OPEN, now)
                else:
                    self._consecutive = 0
        self._notify()

    def _should_trip(self) -> bool:
        if self.failure_threshold is not None and self._consecutive >= self.failure_threshold:
            return True
        rate = self.failure_rate_threshold
        window = self._window
        return (rate is not None and len(window) >= self.minimum_calls
                and sum(window) >= rate * len(window))

    def _outcome(self, exc: BaseException | None) -> bool | None:
        if exc is None:
            return False
        if not isinstance(exc, Exception):  # cancelled or interrupted: says nothing
            return None
        return True if self.is_failure(exc) else None

    def _release_failed(self, trial: bool, exc: BaseException | None) -> None:
        """Record the outcome of a call that raised ``exc``. If ``is_failure`` itself raises,
        the call counts as neutral (its trial slot is given back) and that error propagates
        (chained to ``exc``)."""
        try:
            outcome = self._outcome(exc)
        except BaseException:
            self._release(trial, None)
            raise
        self._release(trial, outcome)

    # -- ways to use it -----------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` through the breaker (await the result for async fn)."""
        trial = self._acquire()
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            self._release_failed(trial, e)
            raise
        if inspect.iscoroutine(result):  # an async fn: the outcome is known once awaited
            return cast(T, self._finish(trial, result))
        self._release(trial, False)
        return result

    async def _finish(self, trial: bool, coroutine: Awaitable[T]) -> T:
        try:
            result = await coroutine
        except BaseException as e:
            self._release_failed(trial, e)
            raise
        self._release(trial, False)
        return result

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``fn`` (sync or async) so that every call goes through the breaker."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call(fn, *args, **kwargs)
            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)
        return wrapper

    def __enter__(self) -> CircuitBreaker:
        trial = self._acquire()
        _TICKETS.set((*_TICKETS.get(), (self, trial)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        tickets = _TICKETS.get()
        for i in range(len(tickets) - 1, -1, -1):  # this breaker's innermost block
            if tickets[i][0] is self:
                trial = tickets[i][1]
                _TICKETS.set(tickets[:i] + tickets[i + 1:])
                break
        else:
            raise RuntimeError(f"circuit {self.name!r}: __exit__ without a matching __enter__")
        if exc is None:
            self._release(trial, False)
        else:
            self._release_failed(trial, exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return (f"CircuitBreaker(name={self.name!r}, state={self._state!r}, "
                f"failure_threshold={self.failure_threshold}, "
                f"recovery_timeout={self.recovery_timeout})")
