"""Limits on retrying, compared: load and success rate against the failure rate.

Brooker (2022), "Fixing retries with token buckets and circuit breakers", and the Google SRE
book, "Handling Overload". Requests arrive at ``rate`` per second; every call fails
independently with probability ``x``; each request makes at most ``1 + retries`` calls.
What limits the retries:

* ``retries``: nothing else. Load ``1 + x + x**2 + x**3`` with 3 retries (4x at ``x = 1``).
* ``token_bucket``: a real :class:`~resilience.RetryBudget` (capacity 5, each first try
  deposits 0.1, a retry spends 1). Under total failure retries level off at 0.1 per
  request: load about 1.1x.
* ``retry_breaker``: retry only while the failure rate of first tries is low. A real
  :class:`~resilience.CircuitBreaker` watches first tries (opens at >= 10 % failures among
  the last 100, after at least 20; 1 s open, then one trial first try); retries are made
  only while it is closed. Load stays near 1x once failures are common.
* ``adaptive_throttle``: a real :class:`~resilience.AdaptiveThrottle` (k = 2, 120 s window)
  decides before every call; rejected calls fail locally without reaching the server.

Time is virtual: a :class:`~resilience.VirtualClock` moves ``1 / rate`` per request, and
the breaker and the throttle read it. Load is server calls per request. Every policy
decides its retries with the retry decorator's own rule,
:meth:`resilience.retrying.RetryPolicy.decide` (``1 + retries`` attempts, retries at once);
the token bucket is its budget, the retry breaker its gate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .._check import choices, fraction, positive_number, seed_value, whole_number
from ..breaker import CLOSED, CircuitBreaker, CircuitOpenError
from ..budget import AdaptiveThrottle, RetryBudget
from ..clock import VirtualClock
from ..retrying import RetryPolicy
from .series import geometric_series
from .sizing import require

__all__ = ["POLICIES", "BudgetRow", "budgets", "expected_load"]

POLICIES = ("retries", "token_bucket", "retry_breaker", "adaptive_throttle")

WORK_LIMIT = 8_000_000
"""The most requests simulated per call, over all points (about a minute: each is a few
Python calls; the default run is 440,000)."""


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """Load and success for one policy at one failure rate.

    Attributes:
        policy: one of :data:`POLICIES`.
        failure_rate: x.
        requests: requests simulated.
        load: server calls per request.
        success_rate: the share of requests that got a success.
    """

    policy: str
    failure_rate: float
    requests: int
    load: float
    success_rate: float


def expected_load(failure_rate: float, retries: int = 3) -> float:
    """``1 + x + x**2 + ... + x**retries``: calls per request with plain retries."""
    x = fraction("failure_rate", failure_rate)
    retries = whole_number("retries", retries, minimum=0)
    return geometric_series(x, retries)


class _Failed(Exception):
    """A simulated failed call."""


def _run(policy: str, x: float, requests: int, retries: int, rate: float,
         seed: int) -> BudgetRow:
    rng = random.Random(seed)
    clock = VirtualClock()
    budget = RetryBudget(capacity=5.0, ratio=0.1, cost=1.0)
    breaker = CircuitBreaker(failure_threshold=None, failure_rate_threshold=0.1,
                             window_size=100, minimum_calls=20, recovery_timeout=1.0,
                             clock=clock, is_failure=lambda e: isinstance(e, _Failed),
                             name="retry-breaker")
    throttle = AdaptiveThrottle(k=2.0, window=120.0, clock=clock)
    decide = RetryPolicy(attempts=retries + 1, deadline=None,
                         budget=budget if policy == "token_bucket" else None).decide
    gate = (lambda: breaker.state == CLOSED) if policy == "retry_breaker" else None
    calls = successes = 0

    def server() -> None:
        nonlocal calls
        calls += 1
        if rng.random() < x:
            raise _Failed

    def attempt(first: bool) -> bool:
        """One attempt of a request; True on success."""
        if policy == "adaptive_throttle" and not throttle.allow(rng):
            return False              # rejected locally: counts as a failed attempt
        try:
            if policy == "retry_breaker" and first:
                try:
                    breaker.call(server)   # first tries feed the breaker
                except CircuitOpenError:
                    server()               # open: the first try still goes out
            else:
                server()
        except _Failed:
            return False
        if policy == "adaptive_throttle":
            throttle.record_accept()
        return True

    for _ in range(requests):
        clock.advance(1.0 / rate)
        if policy == "token_bucket":
            budget.deposit()
        failed = 0
        while not attempt(failed == 0):
            failed += 1
            if decide(failed, 0.0, delay=0.0, gate=gate).reason is not None:
                break
        else:
            successes += 1
    return BudgetRow(policy, x, requests, calls / requests, successes / requests)


def budgets(failure_rates: Iterable[float], seed: int, *, requests: int = 10_000,
            retries: int = 3, rate: float = 100.0, policies: Iterable[str] = POLICIES,
            progress: Callable[[int], object] | None = None) -> tuple[BudgetRow, ...]:
    """Load and success rate of each policy at each failure rate.

    Args:
        failure_rates: values of x in [0, 1].
        seed: the random seed (each point uses ``seed``; policies see the same draws
            as far as they make the same calls).
        requests: requests per point (>= 1).
        retries: retries per request (>= 0).
        rate: requests per second, for the breaker's and the throttle's clocks (> 0).
        policies: names from :data:`POLICIES`.
        progress: called with 1 after each ``(failure rate, policy)`` point.

    Raises:
        ValueError: a setting out of range, or a run too long (see :mod:`.sizing`).
    """
    rates = tuple(fraction("failure_rates", x) for x in failure_rates)
    if not rates:
        raise ValueError("failure_rates must hold at least one value")
    seed = seed_value(seed)
    requests = whole_number("requests", requests, minimum=1, maximum=10_000_000)
    retries = whole_number("retries", retries, minimum=0, maximum=30)
    rate = positive_number("rate", rate)
    names = choices("policies", policies, POLICIES)
    points = [(x, name) for x in rates for name in names]
    require("budgets", f"{requests:,} requests x {len(points)} points", memory=0.0,
            work=requests * len(points), work_limit=WORK_LIMIT, unit="requests")
    rows = []
    for x, name in points:
        rows.append(_run(name, x, requests, retries, rate, seed))
        if progress is not None:
            progress(1)
    return tuple(rows)
