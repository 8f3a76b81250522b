"""Breaker, retry budget and attempt log as anthropic SDK middleware (anthropic >= 2.14).

::

    import anthropic
    from resilience import CircuitBreaker, RetryBudget
    from resilience.middleware import BreakerMiddleware, BudgetMiddleware

    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0)
    budget = RetryBudget(capacity=10, ratio=0.1)
    client = anthropic.Anthropic(middleware=[BreakerMiddleware(breaker),
                                             BudgetMiddleware(budget)])

The SDK runs its middleware chain **once per HTTP attempt, inside its own retry loop**
(``request.retries_taken`` is 0 for a first attempt, 1 for the first retry, ...). So these
classes add a breaker and a budget to the SDK's retries instead of stacking a second retry
layer on top of them. Put the breaker first (outermost): a call it rejects then costs
nothing, not even a deposit in the budget. Every class works with ``anthropic.Anthropic``
(``handle``) and ``anthropic.AsyncAnthropic`` (``handle_async``).

When to choose which route:

* **Middleware** (this module): keep the SDK's own retries (its schedule, its exact
  ``retry-after``, its ``x-should-retry`` and status rules, ``max_retries`` per client) and
  add what it lacks. One retry layer; the breaker and the budget see *every attempt*;
  nothing to decorate: every call through the client is covered, streams included (judged
  by their status line).
* **Decorator** (``anthropic.Anthropic(max_retries=0)`` plus :func:`resilience.retry`):
  you own the retry policy: your backoff and jitter, a total ``deadline``, ``retry-after``
  as a floor with your own cap, async hooks, retrying a whole function (several calls, a
  stream read to the end) rather than one HTTP attempt. Never both: ``max_retries=2``
  under ``retry(attempts=5)`` is 15 attempts.

What the classes do:

* :class:`BreakerMiddleware`: an open breaker fails the call at once with
  :class:`~resilience.CircuitOpenError` (no HTTP attempt; the SDK does not retry it, as it
  retries only its own error types and ``anthropic.RetryableError``). Each attempt's
  outcome is recorded by the breaker's own rule (``breaker.is_failure``; by default
  :func:`resilience.breaker.service_failure`: 5xx, 529, connection errors and timeouts
  count; 4xx, including 429, is neutral), fed the exception the SDK itself raises for that
  response. If the breaker opens during a call, the SDK's next retry is refused the same
  way and the caller gets ``CircuitOpenError``. An attempt is judged when its status line
  arrives: a stream that fails *after* a 200 (an ``event: error``, a dropped connection)
  is not seen here; wrap the reading of the stream in ``with breaker:`` for that.
* :class:`BudgetMiddleware`: each first attempt deposits (``budget.deposit()``) and each
  SDK retry spends (``budget.try_spend()``) before it is sent. When an attempt fails in a
  way the SDK would retry and the budget cannot pay for the retry, the response gets
  ``x-should-retry: false``: the SDK stops at once and raises its usual exception for that
  response (``OverloadedError``, ``RateLimitError``, ...), never a new type. A connection
  error or timeout carries no response, and the SDK retries every ``APIConnectionError``
  whatever a middleware says; so with an empty budget the SDK's remaining retries are
  answered locally with the same exception, without any HTTP attempt (the caller waits the
  SDK's backoff sleeps, up to 1.5 s with the defaults, then gets that same
  ``APIConnectionError`` / ``APITimeoutError``). The stop sign (:data:`BUDGET_HEADER`
  beside ``x-should-retry: false``) stays on the exception's response;
  :func:`resilience.classify` reads past it and judges the response by what the server said,
  so a stopped 529 is still a retryable overload: a :class:`~resilience.Fallback` falls back
  on it and a breaker counts it.
* :class:`AttemptLog`: records one :class:`Attempt` per HTTP attempt (retry count, status,
  ``request-id``, the SDK's wait before it, the error it raised) and can call you back.

``import resilience`` does not import this module; it imports ``anthropic`` when you do.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
from anthropic import APIRequest, APIResponse, AsyncAPIResponse, AsyncCallNext, CallNext

from .breaker import CircuitBreaker
from .budget import RetryBudget
from .classification import RETRY_BUDGET_HEADER
from .clock import Clock, SystemClock
from .errors import CircuitOpenError

_make_status_error: Callable[..., anthropic.APIStatusError] | None
try:  # the SDK's own table of error classes (anthropic 2.14.0 and later)
    from anthropic._error_classes import make_status_error as _make_status_error
except ImportError:  # pragma: no cover - older or reorganised SDKs
    _make_status_error = None

__all__ = ["BUDGET_HEADER", "Attempt", "AttemptLog", "BreakerMiddleware", "BudgetMiddleware",
           "sdk_would_retry", "status_error"]

BUDGET_HEADER = RETRY_BUDGET_HEADER
"""Set to ``empty`` on a response whose retry :class:`BudgetMiddleware` refused (``empty;
x-should-retry was true`` when the server had sent that header); it also sets
``x-should-retry: false`` there, which is what stops the SDK. The caller sees both on
``error.response.headers``; :func:`resilience.classify` reads past this stop sign and judges
the response by what the server said, so a stopped 529 is still a retryable overload (a
``Fallback`` falls back on it)."""

_log = logging.getLogger(__name__)

_RECENT_CALLS = 4096
"""How many calls :class:`AttemptLog` remembers the last attempt of (to measure waits)."""

_LOCAL_ANSWER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "resilience-middleware-local-answer", default=False)
"""True while an attempt was answered by :class:`BudgetMiddleware` without an HTTP request;
middleware further out reads it so as not to count that attempt as one the service saw."""


def _answered_locally() -> bool:
    """Whether the attempt just returned by ``call_next`` was answered without HTTP.

    Each middleware that reads it sets it to False before its ``call_next``."""
    return _LOCAL_ANSWER.get()


def status_error(response: httpx2.Response) -> anthropic.APIStatusError:
    """The exception the SDK raises for this error response (``OverloadedError`` for a 529).

    The body must have been read. Uses the SDK's own table of error classes (by status and
    ``error.details.error_code``); the message has the SDK's form
    ``"Error code: 529 - {...}"``.
    """
    text = response.text.strip()
    body: object = text
    try:
        body = response.json()
        message = f"Error code: {response.status_code} - {body}"
    except ValueError:
        message = text or f"Error code: {response.status_code}"
    if _make_status_error is not None:
        error: anthropic.APIStatusError = _make_status_error(message, body=body,
                                                             response=response)
        return error
    cls = anthropic.InternalServerError if response.status_code >= 500 else \
        anthropic.APIStatusError
    return cls(message, response=response, body=body)


def sdk_would_retry(response: httpx2.Response) -> bool:
    """Whether the SDK's retry policy retries this response, if it has retries left.

    The SDK's rule (``_should_retry`` in ``anthropic/_base_client.py``): the header
    ``x-should-retry: true`` or ``false`` decides; else 408, 409, 429 and every status
    >= 500 are retried, and nothing else.
    """
    if response.is_success:
        return False
    header = response.headers.get("x-should-retry")
    if header == "true":
        return True
    if header == "false":
        return False
    status = response.status_code
    return status in (408, 409, 429) or status >= 500


def _call_key(request: APIRequest) -> str | None:
    """What ties the attempts of one call together: the SDK keeps one idempotency key."""
    key = request.options.idempotency_key
    return key if isinstance(key, str) else None


# -- the breaker ----------------------------------------------------------------------


class BreakerMiddleware(anthropic.Middleware):
    """A circuit breaker around every HTTP attempt the SDK makes (sync and async clients).

    While the breaker is open (or half-open with its trial calls in flight) a call fails at
    once with :class:`~resilience.CircuitOpenError`: no HTTP attempt and no SDK retry.
    Each admitted attempt is recorded by ``breaker.is_failure`` (by default
    :func:`~resilience.breaker.service_failure`), fed the SDK's own exception for an error
    response (``OverloadedError``, ``RateLimitError``, ...) or the connection error raised.
    A half-open trial slot is always given back: on a response, on any exception, and on
    cancellation (which counts as neither success nor failure).

    Args:
        breaker: the :class:`~resilience.CircuitBreaker` to consult and feed; share it
            between clients that call the same service.
    """

    def __init__(self, breaker: CircuitBreaker) -> None:
        if not isinstance(breaker, CircuitBreaker):
            raise TypeError(f"breaker must be a resilience.CircuitBreaker, "
                            f"got {type(breaker).__name__}")
        self.breaker = breaker

    def _judge(self, response: httpx2.Response) -> bool | None:
        """True failure, False success, None neutral; an error body must have been read."""
        if _answered_locally():  # no HTTP attempt happened: it says nothing of the service
            return None
        if response.is_success:
            return False
        return self.breaker._outcome(status_error(response))

    def _judge_error(self, error: BaseException) -> bool | None:
        return None if _answered_locally() else self.breaker._outcome(error)

    def _record(self, trial: bool, judge: Callable[[Any], bool | None], what: Any) -> None:
        """Release the attempt's slot with ``judge(what)``'s verdict; if the breaker's own
        ``is_failure`` raises, release it as neutral and let that error through (a faulty
        predicate must never leak a half-open trial slot)."""
        try:
            outcome = judge(what)
        except BaseException:
            self.breaker._release(trial, None)
            raise
        self.breaker._release(trial, outcome)

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        """Admit the attempt (or raise CircuitOpenError), send it, record its outcome."""
        breaker = self.breaker
        # _acquire raises CircuitOpenError: not an SDK error, so the SDK does not retry it.
        # (Never chain an SDK error to it as __cause__: the SDK follows causes to decide.)
        trial = breaker._acquire()
        _LOCAL_ANSWER.set(False)
        try:
            response = call_next(request)
            http = response.http_response
            if not http.is_success:
                http.read()  # a small error body; the SDK reads it too before raising
        except BaseException as e:
            self._record(trial, self._judge_error, e)
            raise
        self._record(trial, self._judge, http)
        return response

    async def handle_async(self, request: APIRequest,
                           call_next: AsyncCallNext) -> AsyncAPIResponse[Any]:
        """The async twin of :meth:`handle`."""
        breaker = self.breaker
        trial = breaker._acquire()
        _LOCAL_ANSWER.set(False)
        try:
            response = await call_next(request)
            http = response.http_response
            if not http.is_success:
                await http.aread()
        except BaseException as e:  # CancelledError included: the slot is given back
            self._record(trial, self._judge_error, e)
            raise
        self._record(trial, self._judge, http)
        return response

    def __repr__(self) -> str:
        return f"BreakerMiddleware({self.breaker!r})"


# -- the retry budget ----------------------------------------------------------------


def _stop(response: httpx2.Response) -> None:
    """Make the SDK raise for this response now instead of retrying it."""
    if BUDGET_HEADER in response.headers:
        return
    original = response.headers.get("x-should-retry")
    response.headers[BUDGET_HEADER] = "empty" if original is None else \
        f"empty; x-should-retry was {original}"
    response.headers["x-should-retry"] = "false"


@dataclass(slots=True)
class _Pending:
    """What one call's last failed attempt left for its next attempt."""

    key: str | None
    paid: bool = False  # the next retry is already paid for
    denied: bool = False  # the budget refused: answer every further attempt locally
    response: Any = None  # the failed APIResponse (body read), to answer again
    error: BaseException | None = None  # or the connection error


class BudgetMiddleware(anthropic.Middleware):
    """A :class:`~resilience.RetryBudget` on the SDK's own retries (sync and async clients).

    * A first attempt (``request.retries_taken == 0``) deposits: ``budget.deposit()``.
    * A retry spends ``budget.try_spend()`` before it is sent.
    * An attempt that fails in a way the SDK would retry (:func:`sdk_would_retry`, or a
      connection error) while the budget holds less than ``budget.cost``: the budget
      refuses the retry (counted in ``budget.denied``). A response gets
      ``x-should-retry: false``, so the SDK raises its usual exception for it at once. A
      connection error has no response to mark and the SDK retries it regardless, so the
      SDK's further attempts for that call are answered here with the same exception and
      no HTTP request (only the SDK's backoff sleeps remain).

    Under a total outage with ``R`` calls the SDK then sends about
    ``R + capacity / cost + ratio * R / cost`` attempts instead of ``(1 + max_retries) * R``.

    A middleware cannot see the client's ``max_retries``: a failure of a call's *last*
    attempt while the budget is empty is counted in ``budget.denied`` although the SDK
    would not have retried it anyway. Use it on clients that retry (``max_retries >= 1``).

    Args:
        budget: the shared :class:`~resilience.RetryBudget`.
    """

    def __init__(self, budget: RetryBudget) -> None:
        if not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a resilience.RetryBudget, "
                            f"got {type(budget).__name__}")
        self.budget = budget
        self._pending: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar(
            f"budget-middleware-{id(self)}", default=None)

    def _before(self, request: APIRequest) -> _Pending | None:
        """Deposit or spend before an attempt; return the failure to repeat, if refused."""
        _LOCAL_ANSWER.set(False)
        if request.retries_taken == 0:
            self._pending.set(None)
            self.budget.deposit()
            return None
        pending = self._pending.get()
        if pending is None or pending.key != _call_key(request):
            # No record of this call's last attempt (it ran in another context): pay as
            # usual, and send the attempt even if refused, as there is nothing to answer.
            self.budget.try_spend()
            return None
        if pending.denied:
            return pending
        if pending.paid:
            pending.paid = False
            return None
        if self.budget.try_spend():
            return None
        pending.denied = True  # emptied by other calls since this one failed
        return pending

    def _after_error(self, request: APIRequest, error: BaseException) -> None:
        pending = _Pending(_call_key(request), error=error)
        if self.budget.tokens < self.budget.cost:
            pending.paid = self.budget.try_spend()  # False, unless refilled meanwhile
            pending.denied = not pending.paid
        self._pending.set(pending)

    def _after_response(self, request: APIRequest, response: Any) -> None:
        """After a failed response the SDK would retry (its body read): stop or allow."""
        pending = _Pending(_call_key(request), response=response)
        if self.budget.tokens < self.budget.cost:
            pending.paid = self.budget.try_spend()
            if not pending.paid:
                _stop(response.http_response)
                pending.denied = True
        self._pending.set(pending)

    @staticmethod
    def _replay(pending: _Pending) -> Any:
        """Answer a refused retry without HTTP: the last failure again, not to be retried."""
        _LOCAL_ANSWER.set(True)
        if pending.error is not None:
            raise pending.error.with_traceback(None)
        _stop(pending.response.http_response)
        return pending.response

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        """Deposit or spend, send the attempt, and stop the SDK when the budget is empty."""
        refused = self._before(request)
        if refused is not None:
            replayed: APIResponse[Any] = self._replay(refused)
            return replayed
        try:
            response = call_next(request)
        except anthropic.APIConnectionError as e:
            self._after_error(request, e)
            raise
        if sdk_would_retry(response.http_response):
            response.http_response.read()  # so that it can be answered again if refused
            self._after_response(request, response)
        return response

    async def handle_async(self, request: APIRequest,
                           call_next: AsyncCallNext) -> AsyncAPIResponse[Any]:
        """The async twin of :meth:`handle`."""
        refused = self._before(request)
        if refused is not None:
            replayed: AsyncAPIResponse[Any] = self._replay(refused)
            return replayed
        try:
            response = await call_next(request)
        except anthropic.APIConnectionError as e:
            self._after_error(request, e)
            raise
        if sdk_would_retry(response.http_response):
            await response.http_response.aread()
            self._after_response(request, response)
        return response

    def __repr__(self) -> str:
        return f"BudgetMiddleware({self.budget!r})"


# -- the attempt log ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt, as the middleware chain saw it.

    Attributes:
        retry: the SDK's retry count (``x-stainless-retry-count``): 0 for a first attempt.
        status: the HTTP status, or None when no response came (connection error, timeout,
            or a middleware further out refused the attempt).
        request_id: the response's ``request-id`` header, if any.
        wait: seconds between the end of this call's previous attempt and the start of this
            one (the SDK's backoff sleep), or None for a first attempt.
        error: the name of the exception the attempt raised (``"APITimeoutError"``), if any.
        time: when the attempt started, on the log's clock.
        sent: False when no HTTP request went out (a breaker further in refused it, or a
            :class:`BudgetMiddleware` further in answered a refused retry itself).
    """

    retry: int
    status: int | None
    request_id: str | None
    wait: float | None
    error: str | None
    time: float
    sent: bool = True

    def __str__(self) -> str:
        status = "no answer" if self.status is None else str(self.status)
        wait = "" if self.wait is None else f" after {self.wait:.3f} s"
        error = "" if self.error is None else f" {self.error}"
        local = "" if self.sent else " (not sent)"
        return f"retry {self.retry}{wait} -> {status}{error}{local}"


class AttemptLog(anthropic.Middleware):
    """Record every HTTP attempt (retry count, status, request-id, wait) and call back.

    Put it innermost (last in ``middleware=[...]``) to see only attempts that reached the
    network. It changes nothing about the attempt.

    Args:
        callback: called with each :class:`Attempt` as it finishes, or None. A callback
            that raises is logged (logger ``resilience.middleware``) and ignored: it never
            fails the call.
        clock: measures the waits; :class:`~resilience.SystemClock` by default (pass the
            ``VirtualClock`` the SDK sleeps on in tests and lessons).

    Attributes:
        attempts: every :class:`Attempt`, in order (thread-safe appends).
    """

    def __init__(self, callback: Callable[[Attempt], object] | None = None, *,
                 clock: Clock | None = None) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        self.callback = callback
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        # When each recent call's last attempt ended, by the call's key (bounded).
        self._ends: OrderedDict[str, float] = OrderedDict()

    def _start(self, request: APIRequest) -> tuple[float, float | None]:
        _LOCAL_ANSWER.set(False)
        now = self.clock.now()
        key = _call_key(request)
        wait = None
        if request.retries_taken > 0 and key is not None:
            with self._lock:
                ended = self._ends.get(key)
            if ended is not None:
                wait = now - ended
        return now, wait

    def _finish(self, request: APIRequest, started: float, wait: float | None,
                http: httpx2.Response | None, error: BaseException | None) -> None:
        key = _call_key(request)
        if key is not None:
            with self._lock:
                self._ends[key] = self.clock.now()
                self._ends.move_to_end(key)
                while len(self._ends) > _RECENT_CALLS:
                    self._ends.popitem(last=False)
        sent = not _answered_locally() and not isinstance(error, CircuitOpenError)
        attempt = Attempt(
            retry=request.retries_taken,
            status=None if http is None else http.status_code,
            request_id=None if http is None else http.headers.get("request-id"),
            wait=wait,
            error=None if error is None else type(error).__name__,
            time=started,
            sent=sent,
        )
        with self._lock:
            self.attempts.append(attempt)
        if self.callback is not None:
            try:
                self.callback(attempt)
            except Exception:  # a faulty hook must not fail a call that may have succeeded
                _log.exception("AttemptLog: callback %r raised on %s; ignored",
                               self.callback, attempt)

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        """Send the attempt and record it."""
        started, wait = self._start(request)
        try:
            response = call_next(request)
        except Exception as e:
            self._finish(request, started, wait, None, e)
            raise
        self._finish(request, started, wait, response.http_response, None)
        return response

    async def handle_async(self, request: APIRequest,
                           call_next: AsyncCallNext) -> AsyncAPIResponse[Any]:
        """The async twin of :meth:`handle`."""
        started, wait = self._start(request)
        try:
            response = await call_next(request)
        except Exception as e:
            self._finish(request, started, wait, None, e)
            raise
        self._finish(request, started, wait, response.http_response, None)
        return response

    def __repr__(self) -> str:
        return f"AttemptLog(attempts={len(self.attempts)})"
