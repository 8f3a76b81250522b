"""Model answers for lesson 07, "The thundering herd"."""

from __future__ import annotations

import random


def wait(n: int, retry_after: float | None, u: float) -> float:
    """Full jitter, with the server's ``retry-after`` as a floor under it."""
    jittered = u * min(30.0, 0.5 * 2**n)
    return jittered if retry_after is None else max(retry_after, jittered)


def worker_rng(worker_id: int, seed: int) -> random.Random:
    """A random source of this worker's own, the same on every run with this seed."""
    return random.Random(f"{seed}-{worker_id}")
