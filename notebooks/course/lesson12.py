"""Checkers for lesson 12, "Retry storms and budgets".

* ``stacked_calls(attempts, failure_rate)``: expected calls at the bottom of a stack of
  retrying layers, ``attempts`` listed from the top layer down (they may differ).
* ``send_with_budget(call, budget, attempts)``: one request with retries limited by a
  shared :class:`~resilience.RetryBudget`.
* ``reject_probability(requests, accepts, k)``: Google SRE client-side throttling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from course import exercise
from resilience.budget import RetryBudget

__all__ = ["CHECKS", "check_reject_probability", "check_send_with_budget",
           "check_stacked_calls"]


def _stack(attempts: list[int], x: float) -> float:
    """The reference: Wald's identity layer by layer, from the bottom layer up."""
    calls, p = 1.0, x
    for tries in reversed(attempts):
        calls *= float(tries) if p == 1.0 else (1.0 - p**tries) / (1.0 - p)
        p = p**tries
    return calls


@exercise("12.1", "calls at the bottom of a stack")
def check_stacked_calls(solution: Callable[..., Any]) -> None:
    """``solution(attempts, failure_rate)`` matches the layer-by-layer expectation."""
    cases = [([4, 4, 4], 1.0, 64.0), ([3] * 5, 1.0, 243.0), ([5, 3], 1.0, 15.0),
             ([1, 1, 4], 1.0, 4.0), ([3], 0.0, 1.0)]
    cases += [(a, x, _stack(a, x)) for a in ([5, 3], [3, 5], [4, 4, 4], [2, 3, 4])
              for x in (0.1, 0.5, 0.9)]
    for attempts, x, expected in cases:
        got = solution(list(attempts), x)
        call = f"stacked_calls({attempts}, {x})"
        assert isinstance(got, int | float) and not isinstance(got, bool), (
            f"{call} returned {got!r}; expected a number of calls.")
        assert math.isclose(got, expected, rel_tol=1e-9), (
            f"{call} returned {got:.4f}; expected {expected:.4f}.")


class _Service:
    """A fake downstream call: fails the first ``failures`` calls of each request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self._this_request = 0

    def new_request(self) -> None:
        self._this_request = 0

    def __call__(self) -> bool:
        self.calls += 1
        self._this_request += 1
        return self._this_request > self.failures


def _reference(service: _Service, budget: RetryBudget, attempts: int) -> bool:
    budget.deposit()
    for attempt in range(attempts):
        if attempt > 0 and not budget.try_spend():
            return False
        if service():
            return True
    return False


@exercise("12.2", "retries within a budget")
def check_send_with_budget(solution: Callable[..., Any]) -> None:
    """``solution(call, budget, attempts)`` behaves like the reference on three services."""
    for failures, requests, attempts in [(10**9, 1000, 4), (1, 300, 4), (0, 50, 3),
                                         (2, 200, 3)]:
        mine, ref = _Service(failures), _Service(failures)
        my_budget, ref_budget = RetryBudget(5, 0.1, 1), RetryBudget(5, 0.1, 1)
        for _ in range(10):              # start with an empty bucket: deposits must count
            my_budget.try_spend()
            ref_budget.try_spend()
        for i in range(requests):
            mine.new_request()
            ref.new_request()
            got = solution(mine, my_budget, attempts)
            expected = _reference(ref, ref_budget, attempts)
            assert got is expected, (
                f"request {i + 1} (service failing the first {failures} calls) returned "
                f"{got!r}; expected {expected} (True on success, False when it gives up).")
        assert mine.calls == ref.calls, (
            f"{requests} requests made {mine.calls} calls (service failing the first "
            f"{failures} calls of each); expected {ref.calls}. Deposit once per request; "
            "spend before each retry, never before the first try.")
        assert math.isclose(my_budget.tokens, ref_budget.tokens), (
            f"the budget holds {my_budget.tokens:.2f} tokens; expected "
            f"{ref_budget.tokens:.2f}.")


@exercise("12.3", "adaptive throttling")
def check_reject_probability(solution: Callable[..., Any]) -> None:
    """``solution(requests, accepts, k)`` is ``max(0, (requests - k*accepts)/(requests+1))``."""
    cases = [(0, 0, 2.0), (100, 100, 2.0), (100, 50, 2.0), (100, 40, 2.0), (1000, 0, 2.0),
             (1000, 100, 2.0), (1000, 100, 1.1), (30, 10, 1.0), (7, 3, 1.5)]
    for requests, accepts, k in cases:
        expected = max(0.0, (requests - k * accepts) / (requests + 1))
        got = solution(requests, accepts, k)
        call = f"reject_probability({requests}, {accepts}, {k})"
        assert isinstance(got, int | float) and not isinstance(got, bool), (
            f"{call} returned {got!r}; expected a probability.")
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (
            f"{call} returned {got:.4f}; expected {expected:.4f}.")


CHECKS = {"stacked_calls": check_stacked_calls, "send_with_budget": check_send_with_budget,
          "reject_probability": check_reject_probability}
