"""Every factual claim lesson 12 ("Retry storms and budgets") makes, computed from the package.

The SDK facts it states (3 attempts by default, so a 5-attempt loop over it makes 15 calls)
are counted here with the real SDK on the simulated API; its `BudgetMiddleware` demo runs
the lesson's own code (``tests/lesson_code.py``).
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import anthropic
import pytest
from lesson_code import run_lesson

from resilience import MODEL, AdaptiveThrottle, RetryBudget, VirtualClock
from resilience.lab import amplification, budgets, expected_calls, openloop
from resilience.testing import FakeClaude, Outage

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = {c["id"]: c for c in json.loads((ROOT / "data" / "published_claims.json")
                                         .read_text())["claims"]}
SEED = 0


def test_retries_at_every_layer_multiply() -> None:
    assert expected_calls(3, 4, 1.0) == 64
    assert expected_calls(5, 3, 1.0) == 243
    rows = {r.policy: r.simulated for r in amplification(3, 4, 1.0, requests=1000, seed=SEED)}
    assert rows == {"every_layer": 64.0, "top_layer": 4.0, "budget_per_layer": 1.3}
    first_100 = {r.policy: r.simulated
                 for r in amplification(3, 4, 1.0, requests=100, seed=SEED)}
    assert first_100["budget_per_layer"] == 4.0
    rows = {r.policy: r.simulated for r in amplification(5, 3, 1.0, requests=10, seed=SEED)}
    assert rows["every_layer"] == 243.0 and rows["top_layer"] == 3.0


def test_under_partial_failure_the_multiplication_hardly_shows() -> None:
    assert expected_calls(3, 4, 0.5) == pytest.approx(2.0, abs=5e-4)
    assert expected_calls(3, 4, 0.5, retrying_layers=1) == 1.875


def guide_loop(client: anthropic.Anthropic, clock: VirtualClock, attempts: int = 5) -> None:
    for attempt in range(attempts):
        try:
            client.messages.create(model=MODEL, max_tokens=64,
                                   messages=[{"role": "user", "content": "Hi"}])
            return
        except anthropic.APIStatusError:
            clock.sleep(2 * attempt + 0.5)


def test_a_5_attempt_loop_over_the_sdks_defaults_makes_15_calls() -> None:
    assert anthropic.DEFAULT_MAX_RETRIES == 2          # "1 + 2" in the lesson
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(Outage(0.0, 3600.0))
        guide_loop(api.client(), clock)
    assert len(api.calls) == 15
    assert [c.retry_count for c in api.calls] == [0, 1, 2] * 5
    assert {c.status for c in api.calls} == {529}
    with FakeClaude(clock=clock) as api:
        api.scenario(Outage(0.0, 3600.0))
        guide_loop(api.client(max_retries=0), clock)
    assert len(api.calls) == 5


def test_backoff_barely_changes_open_loop_load_but_cuts_closed_loop_load() -> None:
    loops = {(r.loop, r.backoff, r.failure_rate): r.calls_per_s
             for r in openloop((0.0, 0.5, 0.9), seed=SEED)}
    reproduced = CLAIMS["brooker2022.open_loop"]["reproduced"]
    assert round(loops[("open", "none", 0.5)], 1) == reproduced["open_none"] == 1876.5
    assert round(loops[("open", "exponential", 0.5)], 1) == reproduced["open_backoff"] == 1873.0
    assert loops[("closed", "none", 0.5)] == reproduced["closed_none"] == 1000.0
    assert round(loops[("closed", "exponential", 0.5)], 1) == reproduced["closed_backoff"]
    for x in (0.5, 0.9):
        assert loops[("open", "exponential", x)] == pytest.approx(loops[("open", "none", x)],
                                                                  rel=0.01)
        assert loops[("closed", "exponential", x)] < 0.6 * loops[("closed", "none", x)]
    assert 1000 * sum(0.5**k for k in range(4)) == 1875


def test_the_token_bucket_demo() -> None:
    budget = RetryBudget(capacity=5, ratio=0.1, cost=1)
    calls = 0
    for _ in range(1000):
        budget.deposit()
        calls += 1 + sum(1 for _ in range(3) if budget.try_spend())
    assert (calls, budget.granted, budget.denied) == (1104, 104, 2896)
    assert calls < 4000


@pytest.fixture(scope="module")
def table() -> dict[tuple[str, float], tuple[float, float]]:
    rows = budgets((0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0), seed=SEED, requests=1000)
    return {(r.policy, r.failure_rate): (r.load, r.success_rate) for r in rows}


def test_four_policies(table: dict[tuple[str, float], tuple[float, float]]) -> None:
    def load(policy: str, x: float) -> str:
        return f"{table[(policy, x)][0]:.3f}"

    def success(policy: str, x: float) -> str:
        return f"{table[(policy, x)][1]:.3f}"

    assert [load(p, 1.0) for p in ("retries", "token_bucket", "retry_breaker")] == [
        "4.000", "1.104", "1.057"]
    assert [success(p, 0.2) for p in ("retries", "token_bucket", "retry_breaker")] == [
        "0.998", "0.880", "0.831"]
    # flat lines: the bucket and the breaker stay near 1x at every failure rate
    for x in (0.2, 0.4, 0.5, 0.6, 0.8, 1.0):
        assert table[("token_bucket", x)][0] < 1.15 and table[("retry_breaker", x)][0] < 1.15
    # the throttle follows plain retries up to x = 0.5, then falls to almost 0
    for x in (0.2, 0.4, 0.5):
        assert table[("adaptive_throttle", x)][0] == pytest.approx(table[("retries", x)][0],
                                                                   rel=0.03)
    assert table[("adaptive_throttle", 0.8)][0] < 0.2 and table[("adaptive_throttle", 1.0)][
        0] < 0.02


def test_the_published_checks_hold_at_the_lessons_size(
        table: dict[tuple[str, float], tuple[float, float]]) -> None:
    check = CLAIMS["brooker2022.token_bucket_and_breaker"]["check"]
    assert table[("retries", 1.0)][0] == check["retries_at_x_1"]
    low, high = check["token_bucket_at_x_1"]["between"]
    assert low <= table[("token_bucket", 1.0)][0] <= high
    assert table[("retry_breaker", 1.0)][0] < check["retry_breaker_at_x_1"]["less_than"]
    throttle = CLAIMS["sre.adaptive_throttling"]["check"]["adaptive_throttle_load_at_x_1"]
    assert table[("adaptive_throttle", 1.0)][0] < throttle["less_than"]


def test_under_overload_the_backend_sees_about_2c() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(k=2.0, window=120.0, clock=clock)
    rng, sent, free = random.Random(7), [], 0
    for tick in range(12_000):
        clock.advance(0.01)
        if tick % 100 == 0:
            free = 10
        if throttle.allow(rng):
            sent.append(tick)
            if free:
                free -= 1
                throttle.record_accept()
    rate = sum(t >= 6000 for t in sent) / 60
    assert f"{rate:.1f}" == "20.1"
    assert rate == pytest.approx(2 * 10, rel=0.1)


def test_the_throttle_formula_is_zero_at_half_accepted() -> None:
    # exercise 12.3 asks why reject_probability(100, 50, 2.0) is 0
    assert max(0.0, (100 - 2.0 * 50) / 101) == 0.0
    assert max(0.0, (100 - 2.0 * 40) / 101) > 0.0


# -- the budget on the SDK's own retries ------------------------------------------------------

@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran, from notebooks/ as in Jupyter."""
    with contextlib.chdir(ROOT / "notebooks"):
        return run_lesson("12_retry_storms_and_budgets")


def test_budget_middleware_cuts_80_sdk_attempts_to_26(lesson: dict[str, Any]) -> None:
    from resilience.middleware import BudgetMiddleware

    alone = lesson["outage"]([])
    assert alone == (80, {"OverloadedError": 20}), (
        f"lesson 12: 20 requests with max_retries=3 during an outage gave {alone}, the lesson "
        "says 80 HTTP attempts (the SDK retries a 529 3 times) and 20 OverloadedError")
    budget = RetryBudget(capacity=5, ratio=0.1, cost=1)
    capped = lesson["outage"]([BudgetMiddleware(budget)])
    assert capped == (26, {"OverloadedError": 20}), (
        f"lesson 12: with BudgetMiddleware the same outage gave {capped}, the lesson says 26 "
        "attempts and the SDK's usual OverloadedError for every request")
    assert (budget.granted, budget.denied) == (6, 19), (
        f"lesson 12: the budget granted {budget.granted} and refused {budget.denied} "
        "retries, the lesson says 6 (5 tokens + 1 from deposits) and 19")
    shown = lesson["sdk_budget"]
    assert (shown.granted, shown.denied) == (6, 19), "lesson 12: the printed budget differs"


def test_with_the_budget_empty_the_sdk_stops_at_once() -> None:
    """One request, an empty budget: the SDK's usual exception after one attempt, no sleep."""
    from resilience.middleware import BudgetMiddleware

    budget = RetryBudget(capacity=1, ratio=0.1, cost=1)
    assert budget.try_spend()
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(Outage(0.0, 3600.0))
        client = api.client(middleware=[BudgetMiddleware(budget)], max_retries=3)
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(model=MODEL, max_tokens=64,
                                   messages=[{"role": "user", "content": "Hi"}])
    assert len(api.calls) == 1 and clock.now() == 0.0, (
        f"lesson 12: with an empty budget the SDK made {len(api.calls)} attempts over "
        f"{clock.now():.2f} s, the lesson says it stops retrying at once")


# -- the amplification plot and the budget playground ----------------------------------------

def test_the_amplification_plot_is_linear_with_plain_labels() -> None:
    """Issue 11: 4 vs 64 on a log axis with jargon labels; now a linear axis, plain words."""
    from resilience.lab.plots import plot_amplification

    ax = plot_amplification(amplification(3, 4, 1.0, requests=1000, seed=SEED)).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert all("_" not in label for label in labels), labels
    assert labels[:2] == ["every layer retries", "only the top layer retries"]
    assert [t.get_text() for t in ax.texts] == ["64.0 calls", "4.0 calls", "1.3 calls"]


def test_with_bucket_is_the_labs_token_bucket_draw_for_draw(lesson: dict[str, Any]) -> None:
    lab = {r.failure_rate: (r.load, r.success_rate)
           for r in budgets(lesson["rates"], seed=SEED, requests=1000,
                            policies=("token_bucket",))}
    assert lesson["bucket"] == lab, (
        "lesson 12: with_bucket(x, 0.1) no longer matches the lab's token_bucket; the lesson "
        "prints 'same as the lab: True'")


def test_the_budget_playground_titles_and_prose(lesson: dict[str, Any]) -> None:
    draw, table = lesson["draw_budget"], lesson["table"]
    assert draw(0.1).axes[0].get_title() == (
        "ratio 0.10: 1.10x load at x = 1.0, 88.0% succeed at x = 0.2")
    ax = draw(0.5).axes[0]
    assert ax.get_title() == "ratio 0.50: 1.50x load at x = 1.0, 99.8% succeed at x = 0.2"
    assert table[("retries", 0.2)].success_rate == 0.998      # "as many as plain retries"
    assert table[("retries", 1.0)].load == 4.0                # "1.5x, not 4x"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "retries", "retry_breaker", "adaptive_throttle", "token_bucket, ratio 0.50"]


def test_moving_the_ratio_slider_redraws(lesson: dict[str, Any]) -> None:
    from resilience.lab.playground import Playground

    slider = lesson["slider"]
    assert (slider.value, slider.continuous_update) == (0.1, False)
    playground = Playground({"ratio": slider}, lesson["draw_budget"], "text")
    first = playground.image.value
    try:
        slider.value = 0.5
        assert playground.draws == 2 and playground.image.value != first
    finally:
        slider.value = 0.1
