"""Model answers for lesson 06, "Backoff and jitter"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def full_jitter_delay(n: int, base: float, cap: float, u: float) -> float:
    """The delay before retry ``n`` (0 first): uniform in [0, min(cap, base * 2**n))."""
    return u * min(cap, base * 2**n)


def calls_saved(rows: Iterable[Any], clients: int = 100) -> float:
    """The share of write calls full jitter saves against plain exponential at N = clients."""
    calls = {r.strategy: r.calls for r in rows if r.clients == clients}
    return 1 - calls["full_jitter"] / calls["exponential"]
