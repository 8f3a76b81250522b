"""Checkers for lesson 04, "Overloaded and server errors".

* ``is_retryable(exc)``: whether an exception the SDK raised is worth another attempt,
  checked on real SDK exceptions from the simulated API (500, 502 as HTML, 503, 504, 520,
  529, 409, 429, connection errors, timeouts, and the errors that must not be retried: 501,
  which is an ``InternalServerError`` too, and the other 4xx).
* ``patient(fn, clock, rng)``: wrap ``fn`` so that it rides out a 60 s outage of 529s
  within 12 attempts and 120 s; ten users in the same outage do not retry in lockstep; a
  400 is tried once; an endless outage, even one whose 529s ask for ``retry-after: 300``,
  ends with the real ``OverloadedError`` within 12 attempts and 120 s.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from anthropic.types import MessageParam

from course import exercise

__all__ = ["CHECKS", "check_is_retryable", "check_patient"]

_MESSAGES: list[MessageParam] = [{"role": "user", "content": "Hi"}]
_HTML_520 = b"<html><body><h1>520 Web server is returning an unknown error</h1></body></html>"
_NOT_IMPLEMENTED = {"type": "error", "error": {"type": "api_error",
                                               "message": "This method is not implemented."}}


def _raised(outcome: object) -> BaseException:
    """The exception a client without retries raises for ``outcome``."""
    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(outcome)
        try:
            api.client(max_retries=0, timeout=5.0).messages.create(
                model=api.model, max_tokens=16, messages=_MESSAGES)
        except Exception as e:  # the exception is what we came for
            return e
    raise AssertionError(f"{outcome!r} did not fail")  # pragma: no cover


def _cases() -> list[tuple[str, BaseException, bool]]:
    import httpx

    from resilience.classification import classify

    outcomes: list[tuple[str, object]] = [
        (name, name) for name in ("api_error", "bad_gateway", "service_unavailable",
                                  "timeout_error", "overloaded_error", "rate_limit_error",
                                  "conflict_error", "invalid_request_error",
                                  "authentication_error", "permission_error",
                                  "not_found_error")]
    outcomes += [("520 (HTML from a proxy)", httpx.Response(
                     520, content=_HTML_520, headers={"content-type": "text/html"})),
                 ("501 Not Implemented", httpx.Response(501, json=_NOT_IMPLEMENTED)),
                 ("timeout", "timeout"), ("connection_error", "connection_error")]
    cases = []
    for label, value in outcomes:
        e = _raised(value)
        cases.append((label, e, classify(e).retryable))
    return cases


@exercise("04.1", "retry on >= 500, not a list")
def check_is_retryable(solution: Callable[..., Any]) -> None:
    """``solution(exc)`` agrees with ``classify(exc).retryable`` on real SDK exceptions."""
    for label, e, expected in _cases():
        status = getattr(e, "status_code", None)
        got = solution(e)
        what = f"is_retryable({type(e).__name__}" + (f" {status})" if status else ")")
        assert isinstance(got, bool), f"{what} returned {got!r}; expected True or False."
        if status == 501:
            why = ("501 Not Implemented is an InternalServerError too, but the server does "
                   "not support the request: every status >= 500 except 501")
        elif expected:
            why = ("every status >= 500 but 501, 408, 409, 429, connection errors and "
                   "timeouts are worth another try")
        else:
            why = "a 4xx other than 408, 409 and 429 fails the same way every time"
        assert got == expected, f"{what} for {label} returned {got}; expected {expected}: {why}."


_OUTAGE = 60.0
"""The outage to ride out, in seconds (529s from t = 0)."""
_PATIENCE = 120.0
"""How long a user may wait for an answer or a clear failure, in seconds."""
_MAX_ATTEMPTS = 12


def _attempts(solution: Callable[..., Any], seed: int, outage_end: float,
              outcomes: tuple[object, ...] = ()) -> tuple[object, list[float], float]:
    """Run one wrapped call during an outage from t = 0 to ``outage_end`` (``outcomes``,
    if any, answer the first requests instead); return (result or exception, the time of
    each attempt, virtual seconds)."""
    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, Outage

    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=seed) as api:
        api.scenario(Outage(start=0, end=outage_end))
        if outcomes:
            api.respond(*outcomes)
        client = api.client(max_retries=0)

        def ask() -> Any:
            return client.messages.create(model=api.model, max_tokens=16, messages=_MESSAGES)

        wrapped = solution(ask, clock, random.Random(seed))
        assert callable(wrapped), (
            f"patient(fn, clock, rng) returned {wrapped!r}; expected a function to call.")
        try:
            result: object = wrapped()
        except Exception as e:
            result = e
    return result, [call.time for call in api.calls], clock.now()


@exercise("04.2", "ride out an outage")
def check_patient(solution: Callable[..., Any]) -> None:
    """Survives a 60 s outage in <= 12 attempts and <= 120 s; ten users do not retry in
    lockstep; a 400 is tried once; an endless outage ends with the real OverloadedError
    within 12 attempts and 120 s, even when each 529 asks for ``retry-after: 300``."""
    import anthropic

    from resilience.testing import error

    for seed in (0, 1, 2):
        result, times, took = _attempts(solution, seed, outage_end=_OUTAGE)
        assert isinstance(result, anthropic.types.Message), (
            f"seed {seed}: a {_OUTAGE:.0f} s outage of 529s ended with "
            f"{type(result).__name__} after {len(times)} attempts and {took:.1f} s; keep "
            f"trying for longer: the user can wait {_PATIENCE:.0f} s (a later deadline, "
            "longer waits, more attempts).")
        assert len(times) <= _MAX_ATTEMPTS, (
            f"seed {seed}: {len(times)} attempts to ride out a {_OUTAGE:.0f} s outage; at "
            f"most {_MAX_ATTEMPTS}, please: wait longer between them (exponential backoff).")
        assert took <= _PATIENCE, (
            f"seed {seed}: the call took {took:.1f} s; at most {_PATIENCE:.0f} s, please.")
    first_retries = [_attempts(solution, 100 + user, outage_end=_OUTAGE)[1][1:2]
                     for user in range(10)]
    distinct = {round(t[0], 3) for t in first_retries if t}
    assert len(distinct) >= 5, (
        f"ten users hit by the same outage sent their first retries at only {len(distinct)} "
        "distinct moments: they retry in lockstep, and each wave hits the API at once. "
        "Add jitter, drawn from the rng you are given.")
    result, times, _ = _attempts(solution, 0, outage_end=0,
                                 outcomes=("invalid_request_error",))
    assert isinstance(result, anthropic.BadRequestError) and len(times) == 1, (
        f"a 400 was tried {len(times)} times and ended with {type(result).__name__}; it "
        "should be tried once and raise BadRequestError.")
    for label, end, outcomes in [
            ("an endless outage", 1e9, ()),
            ("an endless outage whose 529s ask for retry-after: 300", 0,
             (error("overloaded_error", retry_after=300),) * (_MAX_ATTEMPTS + 1))]:
        result, times, took = _attempts(solution, 0, outage_end=end, outcomes=outcomes)
        assert isinstance(result, anthropic.OverloadedError), (
            f"{label} ended with {type(result).__name__}; let the last OverloadedError "
            "through, unwrapped.")
        assert len(times) <= _MAX_ATTEMPTS and took <= _PATIENCE, (
            f"{label} took {len(times)} attempts and {took:.1f} s; give up within "
            f"{_MAX_ATTEMPTS} attempts and {_PATIENCE:.0f} s: set a deadline, so that no "
            "wait (not even one the server asks for) runs past it.")


CHECKS = {"is_retryable": check_is_retryable, "patient": check_patient}
