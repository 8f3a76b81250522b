"""Checkers for lesson 09, "Circuit breakers in practice".

* ``is_failure(e)``: True only for errors that say the *service* is unhealthy (5xx but 501,
  timeouts, connection errors; no 4xx, not even 429); checked on real SDK exceptions from
  the simulated API, then used as a breaker's ``is_failure``.
* ``guarded(api, breaker)``: a ``messages.create`` whose breaker sees one outcome per
  request while the SDK keeps its default retries; run against the simulated API.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from course import exercise
from resilience.breaker import CircuitBreaker, CircuitOpenError
from resilience.clock import VirtualClock

__all__ = ["CHECKS", "check_guarded", "check_is_failure"]


def _sdk_errors() -> dict[str, BaseException]:
    """One real SDK exception per case, from the simulated API (each with one attempt)."""
    import httpx

    from resilience.testing import FakeClaude, connection_error, timeout

    special: dict[str, object] = {
        "not_implemented": httpx.Response(501, json={"type": "error", "error": {
            "type": "api_error", "message": "Not Implemented"}}),
        "connection_error": connection_error(), "timeout": timeout(30.0)}
    errors: dict[str, BaseException] = {}
    with FakeClaude(clock=VirtualClock(), seed=8) as api:
        for name in _CASES:
            e = api.raised(special.get(name, name))
            assert e is not None, f"the simulated API answered {name} with success"
            errors[name] = e
    return errors


_COUNTS = ("overloaded_error", "api_error", "bad_gateway", "service_unavailable",
           "timeout_error", "connection_error", "timeout")
"""Service failures: 5xx but 501, timeouts, connection errors."""

_NEUTRAL = ("rate_limit_error", "spend_limit_reached", "not_implemented",
            "invalid_request_error", "authentication_error", "permission_error",
            "not_found_error", "conflict_error", "request_too_large")
"""About the caller, not the service's health: every 4xx (429 first) and 501."""

_CASES = _COUNTS + _NEUTRAL

_WHY_NOT = {
    429: "a 429 is your own quota running out, not a sick service (the API answered at "
         "once): slow down for it, but do not open the circuit for everybody.",
    501: "a 501 says the request asks for something the API does not do: the service is "
         "healthy, and the request would fail the same way every time.",
}


@exercise("09.1", "count only service failures")
def check_is_failure(solution: Callable[..., Any]) -> None:
    """``solution(e)`` is True for service failures only, and works inside a breaker."""
    errors = _sdk_errors()
    for name, e in errors.items():
        got = solution(e)
        status = getattr(e, "status_code", None)
        what = f"{type(e).__name__}" + (f" ({status})" if status is not None else "")
        assert isinstance(got, bool), f"is_failure({what}) returned {got!r}; expected a bool."
        if name in _COUNTS:
            assert got, (f"is_failure({what}) returned False, but a {name} says the service "
                         "is unhealthy: it must count.")
        else:
            why = _WHY_NOT.get(status or 0, f"a {status} is about the caller's request: it "
                               "must not open the circuit for everybody.")
            assert not got, f"is_failure({what}) returned True, but {why}"
    bug = ValueError("a bug in your own code")
    assert solution(bug) is False, "is_failure(ValueError(...)) must be False: that is your bug."

    def replay(e: BaseException) -> None:
        raise e

    breaker = CircuitBreaker(3, 30.0, clock=VirtualClock(), is_failure=solution)
    for name, status in (("invalid_request_error", 400), ("rate_limit_error", 429)):
        for _ in range(10):
            with contextlib.suppress(Exception):
                breaker.call(replay, errors[name])
        assert breaker.state == "closed", (
            f"ten {status}s opened the breaker; they must not count.")
    for _ in range(3):
        with contextlib.suppress(Exception):
            breaker.call(replay, errors["overloaded_error"])
    assert breaker.state == "open", "three 529s in a row should open a breaker with " \
                                    "failure_threshold=3."




_PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]


@exercise("09.2", "count requests, not attempts")
def check_guarded(solution: Callable[..., Any]) -> None:
    """``solution(api, breaker)`` keeps the SDK's retries and counts one outcome per request."""
    import anthropic

    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=9) as api:
        breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, clock=api.clock)
        create = solution(api, breaker)
        assert callable(create), f"guarded() returned {create!r}; return a function."
        api.respond("overloaded_error", "overloaded_error", "ok")
        try:
            create(model=api.model, max_tokens=64, messages=_PROMPT)
        except (anthropic.APIStatusError, CircuitOpenError) as e:
            raise AssertionError(
                f"a request meeting two 529s and then an answer raised {type(e).__name__}: "
                "keep the SDK's default retries (2), so the third attempt answers.") from None
        assert len(api.calls) == 3, (
            f"the request took {len(api.calls)} attempts; with the SDK's default retries it "
            "takes 3 (two 529s, then the answer).")
        for n in (1, 2, 3):
            api.respond("overloaded_error", "overloaded_error", "overloaded_error")
            with contextlib.suppress(anthropic.APIStatusError, CircuitOpenError):
                create(model=api.model, max_tokens=64, messages=_PROMPT)
            want = "open" if n == 3 else "closed"
            assert breaker.state == want, (
                f"after {n} failed request(s) the breaker is {breaker.state}; it should be "
                f"{want}: it counts one failure per request, so three requests open it. "
                "A breaker inside the SDK's retries (BreakerMiddleware) counts each attempt.")
        sent = len(api.calls)
        with contextlib.suppress(anthropic.APIStatusError, CircuitOpenError):
            create(model=api.model, max_tokens=64, messages=_PROMPT)
        assert len(api.calls) == sent, "the open breaker let a request reach the API."


CHECKS = {"is_failure": check_is_failure, "guarded": check_guarded}
