"""A thundering herd: many clients hit a Claude-like server during and after an outage.

Server model (virtual time, seconds; requests are answered at once):

* During the outage, ``0 <= t < outage``, every request gets **529 overloaded** (no
  ``retry-after``).
* Afterwards a token bucket admits ``capacity`` requests per second (bucket size
  ``capacity``, full when the outage ends). A request finding a token is served (**200**);
  otherwise it gets **429** with ``retry-after = (1 - tokens) / capacity``, the seconds until
  the next token.

Client model: all ``clients`` send at ``t = 0``. After a failure a client waits, then tries
again, up to ``max_attempts`` attempts in all, then gives up. Each client decides with the
retry decorator's own rule, :meth:`resilience.retrying.RetryPolicy.decide`: the wait before
retry ``n`` (``n = 0`` first) is ``max(strategy.next_delay(n, previous, u), retry_after)``;
the ``sdk_default`` strategy waits like the anthropic SDK instead: exactly
``retry-after`` when the server sent one, else its own schedule.

Speed: a client's backoff delays do not depend on the server's answers (``previous`` is the
backoff delay before any retry-after floor, as in :func:`resilience.retry`), so every
client's whole schedule is computed up front with one vectorised ``next_delay`` call per
retry number. During the outage clients do not affect each other (every answer is 529), so
their attempts there are a cumulative sum. Only after the outage, where clients compete for
tokens, are attempts handled one by one in time order in an :class:`~.engine.EventQueue`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .. import backoff
from .._check import choices, positive_number, seed_value, whole_number
from ..ratelimit import TokenBucket
from ..retrying import RetryPolicy
from .engine import EventQueue
from .sizing import require

__all__ = ["STRATEGIES", "HerdResult", "herd", "herd_sweep"]

STRATEGIES = tuple(name for name in backoff.NAMES if name != "none")
"""Strategies from :mod:`resilience.backoff` (all but ``none``), built by
:func:`resilience.backoff.by_name` with their defaults (0.5 s base, 30 s cap)."""

WORK_LIMIT = 10_000_000
"""The most ``clients x max_attempts`` per call, summed over a sweep (about a minute: after
the outage each attempt is one event handled in Python)."""
_BYTES = 100.0
"""Peak bytes per client-attempt: three ``(clients, max_attempts)`` arrays, the outage's
attempt times, and a Python float per arrival."""


def _check_size(clients: int, max_attempts: int, work: int | None = None,
                herds: int = 1) -> None:
    """Refuse herds of up to ``clients`` clients (``work`` client-attempts in all)."""
    what = f"{clients:,} clients x {max_attempts:,} attempts"
    require("herd", what if herds == 1 else f"{herds} herds of up to {what}",
            memory=clients * max_attempts * _BYTES,
            work=clients * max_attempts if work is None else work,
            work_limit=WORK_LIMIT, unit="client-attempts")


@dataclass(frozen=True, slots=True)
class HerdResult:
    """What one herd did.

    Attributes:
        strategy, clients, capacity, outage_s, max_attempts: the setup.
        attempts: requests the server received.
        served: clients that got a 200.
        gave_up: clients that used all their attempts without a 200.
        last_success_s: when the last 200 was sent (0.0 if none).
        p50_s, p99_s: percentiles of the time from t = 0 to success, over served clients
            (NaN if none was served).
        timeline: requests received in each second ``[s, s + 1)``.
        successes: 200s sent in each second.
    """

    strategy: str
    clients: int
    capacity: float
    outage_s: float
    max_attempts: int
    attempts: int
    served: int
    gave_up: int
    last_success_s: float
    p50_s: float
    p99_s: float
    timeline: tuple[int, ...]
    successes: tuple[int, ...]


def _schedules(strategy: backoff.Backoff, clients: int, retries: int,
               rng: np.random.Generator) -> NDArray[np.float64]:
    """``(clients, retries + 1)`` backoff delays: column ``n`` is ``next_delay(n, previous,
    u)``; the last column is 0 (no retry follows the last attempt)."""
    delays = np.zeros((clients, retries + 1))
    previous = np.full(clients, strategy.base)
    for n in range(retries):
        previous = strategy.next_delay(n, previous, rng.random(clients))
        delays[:, n] = previous
    return delays


def herd(clients: int, strategy: str, seed: int, *, capacity: float = 50.0,
         outage: float = 30.0, max_attempts: int = 10) -> HerdResult:
    """Simulate one thundering herd; see the module docstring for the model.

    Args:
        clients: clients that all send at t = 0 (>= 1).
        strategy: one of :data:`STRATEGIES`.
        seed: the random seed (the same seed repeats the result exactly).
        capacity: requests per second served after the outage (> 0).
        outage: seconds of 529s from t = 0 (>= 0).
        max_attempts: attempts per client, the first included (>= 1).
    """
    clients = whole_number("clients", clients, minimum=1, maximum=10_000_000)
    choices("strategy", (strategy,), STRATEGIES)
    seed = seed_value(seed)
    capacity = positive_number("capacity", capacity)
    outage = positive_number("outage", outage, allow_zero=True)
    max_attempts = whole_number("max_attempts", max_attempts, minimum=1, maximum=1000)
    _check_size(clients, max_attempts)
    chosen = backoff.by_name(strategy)
    rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
    delays = _schedules(chosen, clients, max_attempts - 1, rng)

    # The outage: attempt k of a client is at the sum of its first k delays.
    times = np.zeros((clients, max_attempts))
    np.cumsum(delays[:, :-1], axis=1, out=times[:, 1:])
    in_outage = times < outage
    during = times[in_outage]             # every one of these got a 529
    first_after = in_outage.sum(axis=1)   # index of each client's first attempt after it
    arrival: list[float] = list(during)
    served_at: list[float] = []

    # After the outage: a token bucket, one request at a time in time order.
    queue: EventQueue[tuple[int, int]] = EventQueue()
    for late in np.flatnonzero(first_after < max_attempts):
        first = int(first_after[late])
        queue.push(float(times[late, first]), (int(late), first))
    server = TokenBucket(rate=capacity, capacity=capacity, start=outage)
    policy = RetryPolicy(attempts=max_attempts, deadline=None, backoff=chosen)
    honour_exactly = strategy == "sdk_default"
    while len(queue):
        now, (client, k) = queue.pop()
        arrival.append(now)
        retry_after = server.take(now)
        if retry_after == 0.0:
            served_at.append(now)
            continue
        decision = policy.decide(k + 1, now, retry_after, delay=float(delays[client, k]))
        if decision.reason is not None:
            continue                      # gave up: no attempts left
        queue.push(now + (retry_after if honour_exactly else decision.wait), (client, k + 1))

    horizon = max(1, math.ceil(max(arrival)) + 1)
    timeline = np.bincount(np.floor(np.asarray(arrival)).astype(np.int64), minlength=horizon)
    served = np.asarray(served_at)
    success_bins = np.bincount(np.floor(served).astype(np.int64), minlength=horizon)
    p50, p99 = (np.percentile(served, [50, 99]) if len(served) else (math.nan, math.nan))
    return HerdResult(
        strategy=strategy, clients=clients, capacity=capacity, outage_s=outage,
        max_attempts=max_attempts, attempts=len(arrival), served=len(served),
        gave_up=clients - len(served),
        last_success_s=float(served.max()) if len(served) else 0.0,
        p50_s=float(p50), p99_s=float(p99),
        timeline=tuple(int(x) for x in timeline[:horizon]),
        successes=tuple(int(x) for x in success_bins[:horizon]))


def herd_sweep(clients: Iterable[int], strategies: Iterable[str], seed: int, *,
               capacity: float = 50.0, outage: float = 30.0, max_attempts: int = 10,
               progress: Callable[[int], object] | None = None) -> tuple[HerdResult, ...]:
    """:func:`herd` for every ``(clients, strategy)`` pair, clients-major.

    ``progress`` is called with 1 after each herd. A sweep too big for this machine is
    refused before the first herd runs (see :mod:`.sizing`).
    """
    counts = tuple(whole_number("clients", n, minimum=1, maximum=10_000_000) for n in clients)
    if not counts:
        raise ValueError("clients must hold at least one number of clients")
    names = choices("strategies", strategies, STRATEGIES)
    max_attempts = whole_number("max_attempts", max_attempts, minimum=1, maximum=1000)
    _check_size(max(counts), max_attempts, sum(counts) * len(names) * max_attempts,
                len(counts) * len(names))
    results = []
    for n in counts:
        for name in names:
            results.append(herd(n, name, seed, capacity=capacity, outage=outage,
                                max_attempts=max_attempts))
            if progress is not None:
                progress(1)
    return tuple(results)
