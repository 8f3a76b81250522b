"""Model answers for lesson 06, "Backoff and jitter"."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import resilience
from resilience.clock import Clock


class GuideFixed:
    """The guide's backoff with its jitter fixed: full jitter, base 1 s, cap 60 s."""

    base = 1.0
    cap = 60.0

    def next_delay(self, n: int, previous: float, u: float) -> float:
        """Uniform in [0, min(cap, base * 2**n)): the jitter scales with the wait."""
        return u * min(self.cap, self.base * 2**n)


def call_with_backoff(call: Callable[[], Any], strategy: Any, attempts: int, clock: Clock,
                      rng: random.Random) -> Any:
    """Call ``call()`` up to ``attempts`` times, waiting ``strategy.next_delay`` between."""
    previous = strategy.base
    for n in range(attempts):
        try:
            return call()
        except Exception as e:
            if n == attempts - 1 or not resilience.classify(e).retryable:
                raise
            previous = strategy.next_delay(n, previous, rng.random())
            clock.sleep(previous)
    raise AssertionError("unreachable: the last attempt returns or raises")
