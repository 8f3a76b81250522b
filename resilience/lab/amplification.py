"""Retry amplification: retries at every layer of a stack multiply the load at the bottom.

A user request enters layer ``L`` (the top); each layer calls the one below it, and layer 1
calls the bottom service, whose calls fail independently with probability ``x``. A layer
that retries makes up to ``attempts`` calls to the layer below, stopping at the first
success.

Expected bottom calls per user request (Wald's identity, layer by layer): with ``p_0 = x``
and ``c_0 = 1``, a retrying layer ``l`` has::

    c_l = c_{l-1} * (1 + p + p**2 + ... + p**(attempts - 1))    with p = p_{l-1}
    p_l = p_{l-1}**attempts

(the series is :func:`~.series.geometric_series`, ``attempts`` when ``p = 1``)

so under total failure (``x = 1``) every layer retrying gives ``attempts**layers`` calls:
4 attempts x 3 layers = 64 (Google SRE book), 3 x 5 = 243 (Amazon Builders' Library).
Retrying at one layer only gives ``(1 - x**attempts) / (1 - x)``, at most ``attempts``.
Each retrying layer decides with the retry decorator's own rule,
:meth:`resilience.retrying.RetryPolicy.decide` (no waiting: time plays no part here).
A :class:`~resilience.RetryBudget` per layer caps the retries of that layer whatever the
failure rate: under a total outage, a budget with ``capacity / cost`` tokens and no refill
(``ratio = 0``) grants exactly ``capacity / cost`` retries (AWS SDK: 500 / 5 = 100).

:func:`amplification` computes the closed forms and checks them with a simulation of the
call tree that drives the real :class:`~resilience.RetryBudget`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._check import fraction, positive_number, seed_value, whole_number
from ..budget import RetryBudget
from ..retrying import RetryPolicy
from .series import geometric_series

__all__ = ["POLICIES", "AmplificationRow", "amplification", "expected_calls"]

POLICIES = ("every_layer", "top_layer", "budget_per_layer")
"""Where retries happen: at every layer, only at the top, or at every layer with a budget."""


@dataclass(frozen=True, slots=True)
class AmplificationRow:
    """Bottom calls per user request for one retry policy.

    Attributes:
        policy: one of :data:`POLICIES`.
        layers, attempts, failure_rate, requests: the setup.
        expected: the closed form (NaN for the budget, which depends on request order).
        simulated: the mean over ``requests`` simulated user requests.
        bottom_calls: total bottom calls in the simulation.
    """

    policy: str
    layers: int
    attempts: int
    failure_rate: float
    requests: int
    expected: float
    simulated: float
    bottom_calls: int


def expected_calls(layers: int, attempts: int, failure_rate: float,
                   retrying_layers: int | None = None) -> float:
    """Expected bottom calls per user request when the top ``retrying_layers`` layers retry.

    ``retrying_layers`` defaults to all of them; with ``failure_rate = 1`` and all layers
    retrying the answer is exactly ``attempts ** layers``.
    """
    layers = whole_number("layers", layers, minimum=1, maximum=20)
    attempts = whole_number("attempts", attempts, minimum=1, maximum=100)
    x = fraction("failure_rate", failure_rate)
    retrying = layers if retrying_layers is None else whole_number(
        "retrying_layers", retrying_layers, minimum=0, maximum=layers)
    calls, p = 1.0, x   # c_0 and p_0
    for layer in range(1, layers + 1):
        tries = attempts if layer > layers - retrying else 1
        calls *= geometric_series(p, tries - 1)
        p = p**tries
    return calls


def _call(layer: int, policies: list[RetryPolicy], x: float, rng: random.Random,
          counter: list[int]) -> bool:
    """One call into ``layer`` (0 = the bottom); True on success. Counts bottom calls.

    A layer deposits in its budget (if any), then calls the layer below until a success or
    until its policy gives up (no attempts left, or the budget refuses the retry).
    """
    if layer == 0:
        counter[0] += 1
        return rng.random() >= x
    policy = policies[layer - 1]
    if policy.budget is not None:
        policy.budget.deposit()
    failed = 0
    while not _call(layer - 1, policies, x, rng, counter):
        failed += 1
        if policy.decide(failed, 0.0, delay=0.0).reason is not None:
            return False
    return True


def amplification(layers: int, attempts: int, failure_rate: float, requests: int, seed: int,
                  *, budget_capacity: float = 500.0, budget_cost: float = 5.0,
                  budget_ratio: float = 0.0) -> tuple[AmplificationRow, ...]:
    """Bottom calls per user request for each policy in :data:`POLICIES`.

    Args:
        layers: layers in the stack (>= 1).
        attempts: attempts per call at a retrying layer, the first included (>= 1).
        failure_rate: the bottom service's failure probability per call, in [0, 1].
        requests: user requests to simulate (>= 1; at most 10**6 bottom calls in all).
        seed: the random seed.
        budget_capacity, budget_cost, budget_ratio: each layer's
            :class:`~resilience.RetryBudget` for ``budget_per_layer`` (AWS SDK standard mode
            by default: 500 tokens, 5 per retry, no refill on first tries).
    """
    layers = whole_number("layers", layers, minimum=1, maximum=20)
    attempts = whole_number("attempts", attempts, minimum=1, maximum=100)
    x = fraction("failure_rate", failure_rate)
    requests = whole_number("requests", requests, minimum=1)
    seed = seed_value(seed)
    positive_number("budget_capacity", budget_capacity)
    positive_number("budget_cost", budget_cost)
    positive_number("budget_ratio", budget_ratio, allow_zero=True)
    if requests * attempts**layers > 10**6:
        raise ValueError(f"requests * attempts**layers must be <= 10**6 to simulate, got "
                         f"{requests} * {attempts}**{layers} = {requests * attempts**layers}")
    rows = []
    for policy in POLICIES:
        rng = random.Random(seed)
        if policy == "top_layer":
            tries = [1] * (layers - 1) + [attempts]
            expected = expected_calls(layers, attempts, x, retrying_layers=1)
        else:
            tries = [attempts] * layers
            expected = expected_calls(layers, attempts, x)
        with_budget = policy == "budget_per_layer"
        policies = [RetryPolicy(attempts=t, deadline=None,
                                budget=RetryBudget(budget_capacity, budget_ratio, budget_cost)
                                if with_budget else None) for t in tries]
        if with_budget:
            expected = float("nan")
        counter = [0]
        for _ in range(requests):
            _call(layers, policies, x, rng, counter)
        rows.append(AmplificationRow(policy, layers, attempts, x, requests, expected,
                                     counter[0] / requests, counter[0]))
    return tuple(rows)
