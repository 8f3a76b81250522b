"""Checkers for lesson 08, "Circuit breakers".

* ``predict_states(events, failure_threshold=3, recovery_timeout=5.0)``: the state a
  :class:`~resilience.CircuitBreaker` is in when each call arrives (one call a second),
  checked against a real breaker on a virtual clock.
* ``is_failure(e)``: True only for errors that say the *service* is unhealthy (5xx but 501,
  timeouts, connection errors; no 4xx, not even 429); checked on real SDK exceptions from
  the simulated API, then used as a breaker's ``is_failure``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from course import exercise
from resilience.breaker import CircuitBreaker, CircuitOpenError
from resilience.clock import VirtualClock

__all__ = ["CHECKS", "check_is_failure", "check_predict_states"]


class _Down(ConnectionError):
    """What the checker's stand-in service raises for a ``"fail"`` event."""


def _service(event: str) -> str:
    if event == "fail":
        raise _Down("the service is down")
    return "ok"


def breaker_states(events: Sequence[str], failure_threshold: int = 3,
                   recovery_timeout: float = 5.0) -> list[str]:
    """What a real breaker says: its state as each call arrives, one call a second."""
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold, recovery_timeout, clock=clock)
    states = []
    for event in events:
        states.append(breaker.state)
        with contextlib.suppress(CircuitOpenError, _Down):
            breaker.call(_service, event)
        clock.advance(1.0)
    return states


_SEQUENCES: list[tuple[list[str], int, float]] = [
    (["fail", "fail", "fail", "ok", "ok", "ok", "ok", "ok", "ok"], 3, 5.0),
    (["fail", "fail", "ok", "fail", "fail", "ok", "fail"], 3, 5.0),
    (["fail", "fail", "fail", "ok", "ok", "ok", "ok", "fail", "ok", "ok", "ok", "ok", "ok",
      "ok"], 3, 5.0),
    (["fail", "ok", "ok", "ok", "fail", "ok"], 1, 2.0),
    (["fail"] * 12 + ["ok"] * 6, 2, 3.0),
    (["ok", "fail", "fail", "fail", "fail", "fail", "ok", "ok", "ok", "ok", "fail", "fail"],
     5, 4.0),
]


@exercise("08.1", "predict the breaker's states")
def check_predict_states(solution: Callable[..., Any]) -> None:
    """``solution(events, failure_threshold, recovery_timeout)`` matches a real breaker."""
    for events, threshold, timeout in _SEQUENCES:
        expected = breaker_states(events, threshold, timeout)
        got = solution(events, threshold, timeout)
        call = f"predict_states({events}, failure_threshold={threshold}, " \
               f"recovery_timeout={timeout})"
        assert isinstance(got, list | tuple), f"{call} returned {got!r}; expected a list."
        assert len(got) == len(events), (
            f"{call} returned {len(got)} states; expected one per event ({len(events)}).")
        for t, (mine, real) in enumerate(zip(got, expected, strict=True)):
            assert mine == real, (
                f"{call}: at t={t} s (event {events[t]!r}) you said {mine!r}, the breaker "
                f"says {real!r}. Full answer: {expected}")


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


@exercise("08.2", "count only service failures")
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


CHECKS = {"predict_states": check_predict_states, "is_failure": check_is_failure}
