"""Checkers for lesson 04, "Overloaded and server errors".

* ``is_retryable(exc)``: whether an exception the SDK raised is worth another attempt,
  checked on real SDK exceptions from the simulated API (500, 502 as HTML, 503, 504, 520,
  529, connection errors, timeouts, and the 4xx errors that must not be retried).
* ``patient(fn, clock, rng)``: wrap ``fn`` so that it rides out a 30 s outage of 529s, with
  a bounded number of attempts, and gives up at once on a 400.
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
                                  "invalid_request_error", "authentication_error",
                                  "permission_error", "not_found_error")]
    outcomes += [("520 (HTML from a proxy)", httpx.Response(
                     520, content=_HTML_520, headers={"content-type": "text/html"})),
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
        why = ("every status >= 500, 429, connection errors and timeouts are worth another "
               "try" if expected else "a 4xx other than 408, 409 and 429 fails the same way "
               "every time")
        assert got == expected, f"{what} for {label} returned {got}; expected {expected}: {why}."


def _attempts(solution: Callable[..., Any], seed: int, outage_end: float,
              first: object = None) -> tuple[object, int, float]:
    """Run one wrapped call; return (result or exception, attempts, virtual seconds)."""
    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, Outage

    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=seed) as api:
        api.scenario(Outage(start=0, end=outage_end))
        if first is not None:
            api.respond(first)
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
    return result, len(api.calls), clock.now()


@exercise("04.2", "ride out an outage")
def check_patient(solution: Callable[..., Any]) -> None:
    """Survives a 30 s outage in <= 12 attempts and <= 90 s; a 400 is tried once; a
    never-ending outage ends with the real OverloadedError within 12 attempts."""
    import anthropic

    for seed in (0, 1, 2):
        result, attempts, took = _attempts(solution, seed, outage_end=30)
        assert isinstance(result, anthropic.types.Message), (
            f"seed {seed}: a 30 s outage of 529s ended with {type(result).__name__} after "
            f"{attempts} attempts and {took:.1f} s; keep trying for longer (more attempts, "
            "longer waits, or a later deadline).")
        assert attempts <= 12, (
            f"seed {seed}: {attempts} attempts to ride out a 30 s outage; at most 12, please: "
            "wait longer between them (exponential backoff).")
        assert took <= 90, f"seed {seed}: the call took {took:.1f} s; at most 90 s, please."
    result, attempts, _ = _attempts(solution, 0, outage_end=0, first="invalid_request_error")
    assert isinstance(result, anthropic.BadRequestError) and attempts == 1, (
        f"a 400 was tried {attempts} times and ended with {type(result).__name__}; it "
        "should be tried once and raise BadRequestError.")
    result, attempts, took = _attempts(solution, 0, outage_end=1e9)
    assert isinstance(result, anthropic.OverloadedError), (
        f"an endless outage ended with {type(result).__name__}; let the last OverloadedError "
        "through, unwrapped.")
    assert attempts <= 12 and took <= 600, (
        f"an endless outage took {attempts} attempts and {took:.1f} s; give up within 12 "
        "attempts.")


CHECKS = {"is_retryable": check_is_retryable, "patient": check_patient}
