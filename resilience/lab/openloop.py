"""Brooker (2022), "What is Backoff For?": open-loop versus closed-loop clients.

Setup: ``clients = 100`` clients, each wanting ``rate = 10`` requests per second; every call
fails independently with probability ``x`` (failure is *not* caused by load); up to
``retries = 3`` retries per request; backoff ``0.1 s`` doubling (``exponential(0.1)`` from
:mod:`resilience.backoff`: 0.1, 0.2, 0.4 s) or none.

* **Open loop**: requests arrive on a fixed schedule (every ``1 / rate`` s per client)
  whatever happens to earlier ones, as with independent users. Each request makes
  ``1 + x + x**2 + x**3`` calls on average, so the server sees about
  ``clients * rate * (1 + x + x**2 + x**3)`` calls per second **with or without backoff**:
  backoff only moves a retry later, it does not remove it.
* **Closed loop**: each client sends its next request only when the previous one is done
  (serial work, a fixed pool of workers). A call takes ``latency = 1 / rate`` s, so with no
  failures each client makes ``rate`` calls per second. Time spent backing off is time not
  spent calling, so backoff lowers the call rate sharply as ``x`` grows; without backoff a
  closed-loop client calls at ``rate`` per second whatever ``x`` is.

Calls are counted over ``seconds`` of simulated time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .. import backoff
from .._check import fraction, positive_number, seed_value, whole_number
from .series import geometric_series
from .sizing import require

__all__ = ["WORK_LIMIT", "OpenLoopRow", "openloop"]

WORK_LIMIT = 3e8
"""The most requests simulated per call (about a minute): each failure rate simulates
``clients * rate * seconds`` requests four times (open and closed loop, with and without
backoff), and each closed-loop step costs about as much as 20 requests."""


@dataclass(frozen=True, slots=True)
class OpenLoopRow:
    """Calls per second the server saw, for one loop type, backoff choice and failure rate.

    Attributes:
        loop: ``open`` or ``closed``.
        backoff: ``none`` or ``exponential`` (0.1 s doubling).
        failure_rate: x.
        calls_per_s: calls received per second, averaged over the run.
        expected_per_s: ``clients * rate * (1 + x + ... + x**retries)`` (the open-loop value).
        success_rate: the share of finished requests that succeeded.
    """

    loop: str
    backoff: str
    failure_rate: float
    calls_per_s: float
    expected_per_s: float
    success_rate: float


def openloop(failure_rates: Iterable[float], seed: int, *, clients: int = 100,
             rate: float = 10.0, retries: int = 3, base: float = 0.1,
             seconds: float = 60.0,
             progress: Callable[[int], object] | None = None) -> tuple[OpenLoopRow, ...]:
    """Open- and closed-loop call rates, with and without backoff, for each failure rate.

    Args:
        failure_rates: values of x in [0, 1].
        seed: the random seed.
        clients: clients (>= 1).
        rate: requests per second per client in the open loop, and ``1 / latency`` (> 0).
        retries: retries per request (>= 0).
        base: the first backoff delay in seconds, doubling after (> 0).
        seconds: simulated time (> 0).
        progress: called with 1 after each failure rate (a progress bar's ``update``).

    Raises:
        ValueError: a setting out of range, or a run too big for this machine (see
            :mod:`.sizing`), before anything is allocated.
    """
    rates = tuple(fraction("failure_rates", x) for x in failure_rates)
    if not rates:
        raise ValueError("failure_rates must hold at least one value")
    seed = seed_value(seed)
    clients = whole_number("clients", clients, minimum=1, maximum=100_000)
    rate = positive_number("rate", rate)
    retries = whole_number("retries", retries, minimum=0, maximum=30)
    base = positive_number("base", base)
    seconds = positive_number("seconds", seconds)
    requests = clients * math.ceil(seconds * rate)    # per loop, per failure rate
    steps = math.ceil(seconds * rate)                 # closed-loop steps, at most
    require("openloop", f"{clients:,} clients x {rate:g}/s x {seconds:g} s",
            memory=requests * ((retries + 1) * 24.0 + 48.0),
            work=len(rates) * 4 * (requests + 20 * steps), work_limit=WORK_LIMIT,
            unit="requests")
    strategy = backoff.exponential(base, base * 2.0**retries)
    latency = 1.0 / rate
    # The wait before retry n; exponential ignores u, which is drawn anyway (one per delay).
    waits = {"none": np.zeros(retries),
             "exponential": np.array([strategy.next_delay(n, base, 0.0)
                                      for n in range(retries)], dtype=float)}
    rows = []
    for x in rates:
        expected = clients * rate * geometric_series(x, retries)
        for name, wait in waits.items():
            rng = np.random.default_rng([seed, round(x * 1e6)])
            rows.append(_open(x, name, wait, expected, rng, clients, rate, retries, seconds))
            rng = np.random.default_rng([seed, round(x * 1e6)])
            rows.append(_closed(x, name, wait, expected, rng, clients, latency, retries,
                                seconds))
        if progress is not None:
            progress(1)
    return tuple(rows)


def _calls_per_request(x: float, retries: int, size: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Calls made by ``size`` requests (first failure-free call ends it) and their success."""
    fails = rng.random((size, retries + 1)) < x
    succeeded = np.asarray(~fails.all(axis=1))
    calls = np.where(succeeded, fails.argmin(axis=1) + 1, retries + 1)
    return calls, succeeded


def _open(x: float, name: str, wait: np.ndarray, expected: float, rng: np.random.Generator,
          clients: int, rate: float, retries: int, seconds: float) -> OpenLoopRow:
    """Requests at fixed times; count the calls that land inside ``[0, seconds)``."""
    starts = np.arange(0.0, seconds, 1.0 / rate)
    starts = np.tile(starts, clients)
    calls, succeeded = _calls_per_request(x, retries, len(starts), rng)
    latency = 1.0 / rate
    # Call k of a request starts at start + k * latency + (waits before retries 1..k).
    offsets = np.concatenate([[0.0], np.cumsum(wait)]) + latency * np.arange(retries + 1)
    call_times = starts[:, None] + offsets[None, :]
    made = np.arange(retries + 1)[None, :] < calls[:, None]
    counted = int((made & (call_times < seconds - 1e-9)).sum())
    return OpenLoopRow("open", name, x, counted / seconds, expected,
                       float(succeeded.mean()))


def _closed(x: float, name: str, wait: np.ndarray, expected: float,
            rng: np.random.Generator, clients: int, latency: float, retries: int,
            seconds: float) -> OpenLoopRow:
    """Each client works serially until ``seconds``; count the calls started before then."""
    clock = np.zeros(clients)
    counted = 0
    finished = succeeded_total = 0
    offsets = np.concatenate([[0.0], np.cumsum(wait)]) + latency * np.arange(retries + 1)
    while (clock < seconds).any():
        calls, succeeded = _calls_per_request(x, retries, clients, rng)
        active = clock < seconds
        call_times = clock[:, None] + offsets[None, :]
        made = (np.arange(retries + 1)[None, :] < calls[:, None]) & active[:, None]
        counted += int((made & (call_times < seconds - 1e-9)).sum())
        duration = offsets[calls - 1] + latency
        done = active & (clock + duration <= seconds)
        finished += int(done.sum())
        succeeded_total += int((done & succeeded).sum())
        clock = np.where(active, clock + duration, clock)
    return OpenLoopRow("closed", name, x, counted / seconds, expected,
                       succeeded_total / finished if finished else float("nan"))
