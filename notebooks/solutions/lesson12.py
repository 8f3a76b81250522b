"""Model answers for lesson 12, "Retry storms and budgets"."""

from __future__ import annotations

from collections.abc import Callable

from resilience import RetryBudget


def stacked_calls(attempts: list[int], failure_rate: float) -> float:
    """Expected bottom calls per user request; ``attempts`` from the top layer down.

    Each layer makes up to ``tries`` calls to the one below, stopping at the first success.
    Working up from the bottom: a layer whose calls fail with probability ``p`` makes
    ``1 + p + ... + p**(tries - 1)`` of them on average, and fails with ``p**tries``.
    """
    calls, p = 1.0, failure_rate
    for tries in reversed(attempts):
        calls *= sum(p**k for k in range(tries))
        p = p**tries
    return calls


def send_with_budget(call: Callable[[], bool], budget: RetryBudget, attempts: int) -> bool:
    """Up to ``attempts`` calls, each retry paid for from ``budget``; True on success."""
    budget.deposit()
    for attempt in range(attempts):
        if attempt > 0 and not budget.try_spend():
            return False
        if call():
            return True
    return False


def reject_probability(requests: int, accepts: int, k: float = 2.0) -> float:
    """Google SRE client-side throttling: the chance to reject a new request locally."""
    return max(0.0, (requests - k * accepts) / (requests + 1))
