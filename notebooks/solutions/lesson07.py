"""Model answers for lesson 07, "The thundering herd"."""

from __future__ import annotations

import math
from typing import Any


def attempt_times(base: float, cap: float, attempts: int) -> list[float]:
    """Send times of a client with plain exponential backoff: 0, then after each wait."""
    times = [0.0]
    for n in range(attempts - 1):
        times.append(times[-1] + min(cap, base * 2**n))
    return times


def recovery_peak(result: Any) -> int:
    """The most attempts in one second, over the seconds that start after the outage."""
    return max(result.timeline[math.ceil(result.outage_s):])
