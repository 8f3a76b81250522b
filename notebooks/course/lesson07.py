"""Checkers for lesson 07, "The thundering herd".

* ``attempt_times(base, cap, attempts)``: when a client with plain exponential backoff (no
  jitter) sends each attempt, checked against :func:`resilience.backoff.exponential`.
* ``recovery_peak(result)``: the most attempts the server got in one second after the
  outage, from a :class:`~resilience.lab.HerdResult`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from course import exercise
from resilience import backoff

__all__ = ["CHECKS", "check_attempt_times", "check_recovery_peak"]


def _expected_times(base: float, cap: float, attempts: int) -> list[float]:
    strategy = backoff.exponential(base, cap)
    times = [0.0]
    for n in range(attempts - 1):
        times.append(times[-1] + strategy.next_delay(n, base, 0.0))
    return times


@exercise("07.1", "when a client without jitter sends")
def check_attempt_times(solution: Callable[..., Any]) -> None:
    """``solution(base, cap, attempts)`` lists the send times, the first at 0."""
    for base, cap, attempts in [(0.5, 30.0, 10), (0.5, 30.0, 1), (1.0, 60.0, 6),
                                (0.1, 0.4, 7), (0.25, 8.0, 12)]:
        expected = _expected_times(base, cap, attempts)
        got = solution(base, cap, attempts)
        call = f"attempt_times({base}, {cap}, {attempts})"
        assert isinstance(got, list | tuple), f"{call} returned {got!r}; expected a list."
        assert len(got) == attempts, (
            f"{call} returned {len(got)} times; expected {attempts} (the first at 0).")
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert isinstance(g, int | float) and math.isclose(g, e, abs_tol=1e-9), (
                f"{call}[{k}] is {g!r}; expected {e} (times: {expected}).")


def _result(timeline: tuple[int, ...], outage: float) -> Any:
    from resilience.lab import HerdResult  # the lab needs NumPy; import it late

    return HerdResult(strategy="exponential", clients=1, capacity=1.0, outage_s=outage,
                      max_attempts=1, attempts=sum(timeline), served=0, gave_up=1,
                      last_success_s=0.0, p50_s=math.nan, p99_s=math.nan,
                      timeline=timeline, successes=tuple(0 for _ in timeline))


@exercise("07.2", "the peak after the outage")
def check_recovery_peak(solution: Callable[..., Any]) -> None:
    """``solution(result)`` is the largest count in ``timeline`` from second ``outage_s`` on."""
    cases = [((900, 5, 5, 7, 3), 2.0, 7), ((50, 40, 30), 0.0, 50),
             ((9, 9, 9, 1, 2, 2), 3.0, 2), ((100, 90, 80, 20), 1.5, 80),
             ((5, 1000, 0, 0, 0, 0, 12, 0), 4.0, 12)]
    for timeline, outage, expected in cases:
        got = solution(_result(timeline, outage))
        where = f"for timeline {timeline} and an outage of {outage} s"
        assert isinstance(got, int) and not isinstance(got, bool), (
            f"recovery_peak returned {got!r} {where}; expected a whole number of attempts.")
        assert got == expected, (
            f"recovery_peak returned {got} {where}; expected {expected}: count only the "
            "seconds that start once the outage is over.")


CHECKS = {"attempt_times": check_attempt_times, "recovery_peak": check_recovery_peak}
