"""Checkers for lesson 08, "Circuit breakers".

* ``predict_states(events, failure_threshold=3, recovery_timeout=5.0)``: the state a
  :class:`~resilience.CircuitBreaker` is in when each call arrives (one call a second),
  checked against a real breaker on a virtual clock.
* ``closes_at(start, end, failure_threshold, recovery_timeout)``: when a breaker closes
  again after an outage from ``start`` to ``end`` (one call a second), checked against a
  real breaker on a virtual clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from course import exercise
from resilience.breaker import CircuitBreaker, CircuitOpenError
from resilience.clock import VirtualClock

__all__ = ["CHECKS", "check_closes_at", "check_predict_states"]


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


def breaker_closes_at(start: int, end: int, failure_threshold: int,
                      recovery_timeout: int) -> float:
    """What a real breaker says: the time it closes after the outage ``start <= t < end``."""
    events = ["fail" if start <= t < end else "ok"
              for t in range(end + 2 * recovery_timeout + failure_threshold + 2)]
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold, recovery_timeout, clock=clock)
    for event in events:
        with contextlib.suppress(CircuitOpenError, _Down):
            breaker.call(_service, event)
        clock.advance(1.0)
    closes = [t for t, state in breaker.history if state == "closed" and t > start]
    assert closes, f"the breaker never closed for {(start, end, failure_threshold)}"
    return closes[0]


_OUTAGES: list[tuple[int, int, int, int]] = [
    (20, 65, 5, 10), (20, 64, 5, 10), (20, 65, 5, 40), (0, 30, 3, 5), (10, 22, 3, 5),
    (10, 23, 1, 4), (5, 50, 2, 7), (100, 101, 1, 30), (3, 20, 4, 8), (0, 9, 1, 3),
]
"""(start, end, failure_threshold, recovery_timeout): trials landing just before, at and
after the end, a trial right at the end, thresholds of 1, outages shorter than a timeout."""


@exercise("08.2", "when does it close?")
def check_closes_at(solution: Callable[..., Any]) -> None:
    """``solution(start, end, failure_threshold, recovery_timeout)`` matches a real breaker."""
    for start, end, threshold, timeout in _OUTAGES:
        expected = breaker_closes_at(start, end, threshold, timeout)
        got = solution(start, end, threshold, timeout)
        call = f"closes_at({start}, {end}, {threshold}, {timeout})"
        assert isinstance(got, int | float) and not isinstance(got, bool), (
            f"{call} returned {got!r}; expected a time in seconds.")
        opened = start + threshold - 1
        assert got == expected, (
            f"{call} returned {got!r}; the breaker closes at t = {expected:g} s. It opened "
            f"at t = {opened} s (the {threshold}th failure) and tries every {timeout} s "
            "from there.")


CHECKS = {"predict_states": check_predict_states, "closes_at": check_closes_at}
