"""Checkers for lesson 06, "Backoff and jitter".

* ``full_jitter_delay(n, base, cap, u)``: the full-jitter delay before retry ``n``, checked
  against :meth:`resilience.backoff.Backoff.next_delay`.
* ``calls_saved(rows, clients=100)``: the share of write calls full jitter saves compared
  with exponential backoff in Brooker's study, from :class:`~resilience.lab.Brooker2015Row`
  rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from course import exercise
from resilience import backoff

__all__ = ["CHECKS", "check_calls_saved", "check_full_jitter"]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@exercise("06.1", "full jitter")
def check_full_jitter(solution: Callable[..., Any]) -> None:
    """``solution(n, base, cap, u)`` equals ``full_jitter(base, cap).next_delay(n, base, u)``."""
    rng = random.Random(6)
    cases = [(0, 0.5, 30.0, 0.0), (0, 0.5, 30.0, 0.999), (3, 0.5, 30.0, 0.5),
             (10, 0.5, 30.0, 0.25), (2, 0.005, 2.0, 0.7), (1, 1.0, 60.0, 0.5)]
    cases += [(rng.randrange(12), rng.choice([0.005, 0.1, 0.5, 1.0]),
               rng.choice([2.0, 8.0, 30.0]), rng.random()) for _ in range(30)]
    for n, base, cap, u in cases:
        expected = backoff.full_jitter(base, cap).next_delay(n, base, u)
        got = solution(n, base, cap, u)
        call = f"full_jitter_delay({n}, {base}, {cap}, {u:.3f})"
        assert _number(got), f"{call} returned {got!r}; expected a number of seconds."
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (
            f"{call} returned {got:.6f}; expected {expected:.6f} = u * min(cap, base * 2**n).")


def _rows(table: dict[int, dict[str, float]]) -> list[Any]:
    from resilience.lab.brooker2015 import Brooker2015Row  # the lab needs NumPy; import it late

    return [Brooker2015Row(n, name, calls, 1000.0) for n, by_name in table.items()
            for name, calls in by_name.items()]


@exercise("06.2", "calls saved by full jitter")
def check_calls_saved(solution: Callable[..., Any]) -> None:
    """``solution(rows, clients=100)`` is ``1 - full_jitter calls / exponential calls``."""
    table = {10: {"exponential": 60.0, "full_jitter": 40.0},
             100: {"none": 2400.0, "exponential": 2000.0, "full_jitter": 800.0,
                   "equal_jitter": 820.0},
             190: {"exponential": 5000.0, "full_jitter": 1500.0}}
    for args, expected in [((_rows(table),), 0.6), ((_rows(table), 10), 1 / 3),
                           ((_rows(table), 190), 0.7),
                           ((list(reversed(_rows(table))),), 0.6)]:
        got = solution(*args)
        where = f"at N={args[1] if len(args) > 1 else 100}"
        assert _number(got), f"calls_saved(...) {where} returned {got!r}; expected a fraction."
        assert math.isclose(got, expected, rel_tol=1e-9), (
            f"calls_saved(...) {where} returned {got:.4f}; expected {expected:.4f} "
            "(1 - full_jitter calls / exponential calls, at that N only).")


CHECKS = {"full_jitter_delay": check_full_jitter, "calls_saved": check_calls_saved}
