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
the breaker and the throttle read it. Load is server calls per request.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from ..breaker import CLOSED, CircuitBreaker, CircuitOpenError
from ..budget import AdaptiveThrottle, RetryBudget
from ..clock import VirtualClock
from .params import choices, fraction, positive_number, seed_value, whole_number

__all__ = ["POLICIES", "BudgetRow", "budgets", "expected_load"]

POLICIES = ("retries", "token_bucket", "retry_breaker", "adaptive_throttle")


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
    return sum(x**k for k in range(retries + 1))


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
    calls = successes = 0

    def server() -> None:
        nonlocal calls
        calls += 1
        if rng.random() < x:
            raise _Failed

    for _ in range(requests):
        clock.advance(1.0 / rate)
        for attempt in range(retries + 1):
            if attempt > 0:
                if policy == "token_bucket" and not budget.try_spend():
                    break
                if policy == "retry_breaker" and breaker.state != CLOSED:
                    break
            elif policy == "token_bucket":
                budget.deposit()
            if policy == "adaptive_throttle" and not throttle.allow(rng):
                continue              # rejected locally: counts as a failed attempt
            try:
                if policy == "retry_breaker" and attempt == 0:
                    try:
                        breaker.call(server)   # first tries feed the breaker
                    except CircuitOpenError:
                        server()               # open: the first try still goes out
                else:
                    server()
            except _Failed:
                continue
            if policy == "adaptive_throttle":
                throttle.record_accept()
            successes += 1
            break
    return BudgetRow(policy, x, requests, calls / requests, successes / requests)


def budgets(failure_rates: Iterable[float], seed: int, *, requests: int = 10_000,
            retries: int = 3, rate: float = 100.0,
            policies: Iterable[str] = POLICIES) -> tuple[BudgetRow, ...]:
    """Load and success rate of each policy at each failure rate.

    Args:
        failure_rates: values of x in [0, 1].
        seed: the random seed (each point uses ``seed``; policies see the same draws
            as far as they make the same calls).
        requests: requests per point (>= 1).
        retries: retries per request (>= 0).
        rate: requests per second, for the breaker's and the throttle's clocks (> 0).
        policies: names from :data:`POLICIES`.
    """
    rates = tuple(fraction("failure_rates", x) for x in failure_rates)
    if not rates:
        raise ValueError("failure_rates must hold at least one value")
    seed = seed_value(seed)
    requests = whole_number("requests", requests, minimum=1, maximum=10_000_000)
    retries = whole_number("retries", retries, minimum=0, maximum=30)
    rate = positive_number("rate", rate)
    names = choices("policies", policies, POLICIES)
    return tuple(_run(name, x, requests, retries, rate, seed) for x in rates for name in names)
