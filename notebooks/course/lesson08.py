"""Checkers for lesson 08, "Circuit breakers".

* ``predict_states(events, failure_threshold=3, recovery_timeout=5.0)``: the state a
  :class:`~resilience.CircuitBreaker` is in when each call arrives (one call a second),
  checked against a real breaker on a virtual clock.
* ``is_failure(e)``: True only for errors that say the *service* is unhealthy; checked on
  real SDK exceptions from the simulated API, then used as a breaker's ``is_failure``.
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
    import anthropic

    from resilience.testing import FakeClaude, connection_error, timeout

    names = ["invalid_request_error", "authentication_error", "permission_error",
             "not_found_error", "request_too_large", "rate_limit_error", "api_error",
             "service_unavailable", "timeout_error", "overloaded_error"]
    errors: dict[str, BaseException] = {}
    with FakeClaude(clock=VirtualClock(), seed=8) as api:
        api.respond(*names, connection_error(), timeout(30.0))
        client = api.client(max_retries=0)
        for name in [*names, "connection_error", "timeout"]:
            try:
                client.messages.create(model=api.model, max_tokens=16,
                                       messages=[{"role": "user", "content": "Hi"}])
            except anthropic.APIError as e:
                errors[name] = e
    return errors


_COUNTS = {"rate_limit_error", "api_error", "service_unavailable", "timeout_error",
           "overloaded_error", "connection_error", "timeout"}


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
            assert not got, (f"is_failure({what}) returned True, but a {status} is the "
                             "caller's mistake: it must not open the circuit for everybody.")
    bug = ValueError("a bug in your own code")
    assert solution(bug) is False, "is_failure(ValueError(...)) must be False: that is your bug."

    def replay(e: BaseException) -> None:
        raise e

    breaker = CircuitBreaker(3, 30.0, clock=VirtualClock(), is_failure=solution)
    for _ in range(10):
        with contextlib.suppress(Exception):
            breaker.call(replay, errors["invalid_request_error"])
    assert breaker.state == "closed", "ten 400s opened the breaker; they must not count."
    for _ in range(3):
        with contextlib.suppress(Exception):
            breaker.call(replay, errors["overloaded_error"])
    assert breaker.state == "open", "three 529s in a row should open a breaker with " \
                                    "failure_threshold=3."


CHECKS = {"predict_states": check_predict_states, "is_failure": check_is_failure}
