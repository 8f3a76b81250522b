"""Checkers for lesson 19, "Observability", and the time window its bad hour runs on.

* :class:`During`: a scenario that applies another one only between two virtual times (a
  brown-out from minute 10 to minute 20, say).
* ``prepare(record, key)``: a logging filter that gives every record a ``request_id`` (the
  one passed with ``extra=``, else the logged exception's, else None) and makes sure the
  API key never reaches the log, wherever it hides: in the message, in its arguments, in a
  mapping of arguments. It keeps every record.
* ``on_call(attempts, history, until)``: the numbers an on-call dashboard shows, from an
  :class:`~resilience.middleware.AttemptLog`'s attempts and a breaker's history.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from course import exercise
from resilience.middleware import Attempt
from resilience.models import MODEL
from resilience.testing.outcomes import Exchange, Outcome
from resilience.testing.scenarios import Scenario

__all__ = ["CHECKS", "REDACTED", "During", "check_on_call", "check_prepare"]

REDACTED = "[REDACTED]"
"""What the key becomes in a log line."""


@dataclass(frozen=True, slots=True)
class During:
    """Apply ``scenario`` only while ``start <= now < end`` on the virtual clock.

    Example: ``During(600, 1200, FailureRates({"overloaded_error": 0.4}))`` is a brown-out
    from minute 10 to minute 20; outside it, requests pass on to the next scenario.
    """

    start: float
    end: float
    scenario: Scenario

    def __post_init__(self) -> None:
        if not self.start <= self.end:
            raise ValueError(f"start must be <= end, got start={self.start}, end={self.end}")

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """The inner scenario's outcome inside the window, else None."""
        if self.start <= exchange.clock.now() < self.end:
            return self.scenario.decide(exchange, rng)
        return None


# -- exercise 19.1: a filter that adds the request id and keeps the key out -----------------

_FIELDS = ("request_id", "status", "retry")


class _JsonLines(logging.Formatter):
    """One JSON object per record: the message and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"msg": record.getMessage()}
        line.update({name: getattr(record, name, None) for name in _FIELDS})
        return json.dumps(line)


class _Loud(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that raises what it cannot format, instead of printing it on stderr."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # the error being handled: logging calls this inside its except block


def _logged(solution: Callable[..., Any], key: str,
            emit: Callable[[logging.Logger], None]) -> tuple[str, list[dict[str, Any]]]:
    """Log through a handler filtered by ``solution``; return the text and its lines."""
    stream = io.StringIO()
    handler = _Loud(stream)
    handler.setFormatter(_JsonLines())
    handler.addFilter(lambda record: solution(record, key))
    logger = logging.getLogger("course.lesson19.check")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    return text, [json.loads(line) for line in text.splitlines()]


def _sdk_error() -> Any:
    """A real ``OverloadedError`` from the SDK, with its request (and the key in it)."""
    from resilience.testing import FakeClaude

    with FakeClaude(seed=0) as api:
        return api.raised("overloaded_error")


@exercise("19.1", "log the request id, never the key")
def check_prepare(solution: Callable[..., Any]) -> None:
    """Every record kept, with the right request_id; the key nowhere in the log."""
    from resilience.testing import FAKE_API_KEY as key

    err = _sdk_error()
    headers = dict(err.request.headers)  # the key is in here (authorization)

    def emit(log: logging.Logger) -> None:
        log.info("attempt", extra={"request_id": "req_given", "status": 529, "retry": 1})
        try:
            raise err
        except Exception:
            log.exception("call failed")
        log.error("call failed", exc_info=err, extra={"request_id": "req_mine"})
        log.error("call failed, headers: %s", headers, exc_info=err)
        log.warning("client built with api_key=" + key)
        log.info("key=%(key)s model=%(model)s", {"key": key, "model": MODEL})
        log.info("budget at %d%% after %s", 40, "a brown-out")
        log.error("bad settings", exc_info=ValueError("max_tokens must be > 0"))

    _, lines = _logged(solution, key, emit)
    assert len(lines) == 8, (
        f"8 records were logged and {len(lines)} reached the log. Keep every record (return "
        "True): a dropped error takes its request-id with it. Remove the key, not the line.")
    for number, line in enumerate(lines, 1):
        assert key not in json.dumps(line), (
            f"the key reached the log in record {number}: {_short(line['msg'], key)}. Redact "
            f"it in the whole message, record.getMessage() (msg % args), not only in "
            "record.msg.")
    wanted = [
        ("attempt", "req_given"),
        ("call failed", err.request_id),
        ("call failed", "req_mine"),
        (None, err.request_id),
        (f"client built with api_key={REDACTED}", None),
        (f"key={REDACTED} model={MODEL}", None),
        ("budget at 40% after a brown-out", None),
        ("bad settings", None),
    ]
    for number, (line, (msg, request_id)) in enumerate(zip(lines, wanted, strict=True), 1):
        assert line["request_id"] == request_id, (
            f"record {number} ({line['msg'][:40]!r}) has request_id={line['request_id']!r}, "
            f"expected {request_id!r}: keep one given with extra=, else take the logged "
            "exception's (record.exc_info[1].request_id, if it has one), else None.")
        if msg is not None:
            assert line["msg"] == msg, (
                f"record {number}: the message is {line['msg']!r}, expected {msg!r}. "
                f"Replace the key with {REDACTED!r} in record.getMessage(), and keep the rest.")
    shown = lines[3]["msg"]
    assert shown.startswith("call failed, headers: {") and REDACTED in shown, (
        f"record 4 logged the request's headers; expected 'call failed, headers: {{...' with "
        f"the key as {REDACTED!r}, got {shown[:60]!r}.")
    assert (lines[0]["status"], lines[0]["retry"]) == (529, 1), (
        "record 1's status and retry (given with extra=) were lost: leave other fields alone.")


def _short(message: str, key: str) -> str:
    where = message.find(key)
    return repr(message[max(0, where - 30):where] + "<the key>...")


# -- exercise 19.2: what an on-call dashboard needs -----------------------------------------


def _reference(attempts: Sequence[Attempt], history: Sequence[tuple[float, str]],
               until: float) -> dict[str, Any]:
    """The model numbers (kept here so the checker does not import the solutions)."""
    errors: Counter[str] = Counter()
    for a in attempts:
        if a.sent and (a.status is None or a.status >= 400):
            errors[str(a.status) if a.status is not None else str(a.error)] += 1
    ends = [t for t, _ in history[1:]] + [until]
    open_seconds = sum(max(0.0, min(end, until) - start)
                       for (start, state), end in zip(history, ends, strict=True)
                       if state == "open")
    return {
        "calls": sum(1 for a in attempts if a.retry == 0),
        "retries": sum(1 for a in attempts if a.retry > 0 and a.sent),
        "refused": sum(1 for a in attempts if not a.sent),
        "errors": dict(errors),
        "opened": sum(1 for _, state in history[1:] if state == "open"),
        "open_seconds": open_seconds,
    }


def _a_run() -> tuple[list[Attempt], list[tuple[float, str]], float]:
    """A short bad stretch through the real SDK: retries, an outage, a breaker, a budget."""
    import anthropic

    from resilience import CircuitBreaker, CircuitOpenError, RetryBudget
    from resilience.middleware import AttemptLog, BreakerMiddleware, BudgetMiddleware
    from resilience.testing import FakeClaude, Outage

    with FakeClaude(seed=1) as api:
        api.respond("overloaded_error", "ok", "connection_error", "rate_limit_error", "ok")
        api.scenario(Outage(start=40.0, end=130.0, error="api_error"))
        breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, clock=api.clock)
        log = AttemptLog(clock=api.clock)
        client = api.client(middleware=[log, BreakerMiddleware(breaker),
                                        BudgetMiddleware(RetryBudget(capacity=2, ratio=0.1))])
        for i in range(18):
            api.clock.advance(max(0.0, 10.0 * i - api.clock.now()))
            with contextlib.suppress(anthropic.APIError, CircuitOpenError):
                client.messages.create(model=api.model, max_tokens=16,
                                       messages=[{"role": "user", "content": "Hi"}])
        return list(log.attempts), list(breaker.history), 180.0


def _attempt(retry: int, status: int | None, error: str | None = None, sent: bool = True,
             time: float = 0.0) -> Attempt:
    return Attempt(retry=retry, status=status, request_id=None, wait=None, error=error,
                   time=time, sent=sent)


_HAND_MADE = (
    [_attempt(0, 529), _attempt(1, 529), _attempt(2, 200), _attempt(0, None, "APITimeoutError"),
     _attempt(1, 500), _attempt(0, None, "CircuitOpenError", sent=False),
     _attempt(0, 429), _attempt(1, 529, sent=False), _attempt(0, 200)],
    [(0.0, "closed"), (100.0, "open"), (130.0, "half_open"), (131.0, "open"),
     (161.0, "half_open"), (162.0, "closed"), (400.0, "open")],
    500.0,
)
"""Attempts and a history with an answer worked out by hand (see the tests)."""


def _compare(got: Any, want: dict[str, Any], what: str) -> None:
    assert isinstance(got, dict), (
        f"on_call returned {type(got).__name__}; return a dict with the keys "
        f"{sorted(want)}.")
    missing = sorted(set(want) - set(got))
    assert not missing, f"the dict you returned lacks {missing} ({what})."
    hints = {
        "calls": "count first attempts only (retry == 0), sent or not: one per call your "
                 "app made.",
        "retries": "count attempts with retry > 0 that were sent: the extra load your "
                   "retries put on the API. A refused retry never reached it.",
        "refused": "count attempts that were not sent (a breaker or a budget answered them).",
        "errors": "count sent attempts that failed, by str(status) ('529') or, with no "
                  "status, by the error's name ('APITimeoutError'); a refused attempt is not "
                  "an error of the API, and a 200 is no error.",
        "opened": "count every change into 'open' in the history, a re-opening after a "
                  "failed trial included.",
        "open_seconds": "add up the time spent in 'open' only (half-open is not open), up "
                        "to `until` for a breaker that is still open at the end.",
    }
    for name, expected in want.items():
        value = got[name]
        if name == "open_seconds":
            ok = isinstance(value, int | float) and abs(value - expected) < 1e-6
        else:
            ok = value == expected
        assert ok, f"{what}: {name} is {value!r}, expected {expected!r}. {hints[name]}"


@exercise("19.2", "the on-call numbers")
def check_on_call(solution: Callable[..., Any]) -> None:
    """Calls, retries, refusals, errors by type, openings and time open, on two inputs."""
    attempts, history, until = _HAND_MADE
    _compare(solution(list(attempts), list(history), until),
             _reference(attempts, history, until), "on a short hand-made log")
    attempts, history, until = _a_run()
    _compare(solution(attempts, history, until), _reference(attempts, history, until),
             "on a 3-minute run through the simulated API")


CHECKS = {"prepare": check_prepare, "on_call": check_on_call}
