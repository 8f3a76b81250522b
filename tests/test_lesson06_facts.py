"""Every factual claim lesson 06 ("Backoff and jitter") makes, computed from the package.

The lesson prints these numbers under strict nbval; these tests pin what its prose *says*
about them, so neither can drift from the package unnoticed.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from course.lesson06 import (
    BASE,
    CAP,
    CLIENTS,
    MORE_CALLS,
    check_call_with_backoff,
    check_guide_fixed,
    crowd,
)

import resilience
from resilience import backoff
from resilience.lab import brooker2015, brooker2015_runs

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = {c["id"]: c for c in json.loads((ROOT / "data" / "published_claims.json")
                                         .read_text())["claims"]}
SEED = 0
STRATEGIES = {name: backoff.by_name(name) for name in backoff.NAMES if name != "none"}


def busiest(times: list[float]) -> int:
    return max(Counter(int(t * 10) for t in times).values())


def fifth_attempt_times(strategy: backoff.Backoff, clients: int = 1000) -> list[float]:
    times = []
    for i in range(clients):
        waits = strategy.delays(random.Random(SEED + i))
        times.append(sum(next(waits) for _ in range(4)))
    return times


# -- one formula per strategy -------------------------------------------------------------

def test_the_lookup_by_name_gives_the_five_strategies_the_lesson_plots() -> None:
    plotted = {"exponential": backoff.exponential(), "full_jitter": backoff.full_jitter(),
               "equal_jitter": backoff.equal_jitter(),
               "decorrelated_jitter": backoff.decorrelated_jitter(),
               "sdk_default": backoff.sdk_default()}
    assert plotted == STRATEGIES, (
        "lesson 06: backoff.by_name no longer builds the five strategies the lesson plots")
    assert backoff.NAMES[0] == "none", "lesson 06 says NAMES lists `none` first"


def test_exponential_waits_are_exact_powers_of_two_for_every_client() -> None:
    for seed in range(20):
        waits = backoff.exponential().delays(random.Random(seed))
        assert [next(waits) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_full_jitter_reaches_down_to_zero_and_sdk_jitter_only_shortens_to_75_percent() -> None:
    full, sdk = backoff.full_jitter(), backoff.sdk_default()
    assert full.next_delay(3, 0.5, 0.0) == 0.0
    for n in range(10):
        x = min(0.5 * 2**n, 8.0)
        assert sdk.next_delay(n, 0.5, 0.0) == x and sdk.next_delay(n, 0.5, 1.0) == 0.75 * x
    assert sdk.next_delay(4, 0.5, 0.0) == sdk.next_delay(9, 0.5, 0.0) == 8.0  # capped from 5


# -- what jitter does to a crowd --------------------------------------------------------

def test_without_jitter_all_1000_clients_arrive_in_one_100_ms_window() -> None:
    bursts = {name: busiest(fifth_attempt_times(s)) for name, s in STRATEGIES.items()}
    assert bursts["exponential"] == 1000
    assert bursts["full_jitter"] < 100                       # "a few dozen"
    assert bursts["full_jitter"] < bursts["sdk_default"] < bursts["exponential"]


# -- the guide's formula ----------------------------------------------------------------

def guide_linear(attempt: int, u: float, base: float = 1.0, cap: float = 60.0) -> float:
    return min(base * (2 * attempt) + u, cap)


def guide_exponential(attempt: int, u: float, base: float = 1.0, cap: float = 60.0) -> float:
    return min(base * 2**attempt + u, cap)


def test_the_guides_additive_jitter_never_spreads_the_crowd_wider_than_one_second() -> None:
    rng = random.Random(7)
    fixed = backoff.full_jitter(base=1.0, cap=60.0)
    full_bursts = []
    for attempt in range(5):
        linear = [guide_linear(attempt, rng.random()) for _ in range(1000)]
        expo = [guide_exponential(attempt, rng.random()) for _ in range(1000)]
        full = [fixed.next_delay(attempt, 1.0, rng.random()) for _ in range(1000)]
        assert max(linear) - min(linear) < 1.0 and max(expo) - min(expo) < 1.0
        assert busiest(linear) > 100 and busiest(expo) > 100
        full_bursts.append(busiest(full))
    assert full_bursts == sorted(full_bursts, reverse=True)  # shrinks as the waits grow
    assert [guide_linear(a, 0.0) for a in range(4)] == [0.0, 2.0, 4.0, 6.0]  # linear


def test_the_guides_garbled_line_would_call_a_float() -> None:
    base_delay = 1.0
    with pytest.raises(TypeError, match="not callable"):
        base_delay(2 * 1)  # type: ignore[operator]  # what the printed line does


# -- the AWS study ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def at_100() -> dict[str, tuple[float, float]]:
    runs = brooker2015_runs(100, ("none", "exponential", "full_jitter", "equal_jitter",
                                  "decorrelated_jitter"), runs=100, seed=SEED)
    return {name: (float(c.mean()), float(t.mean())) for name, (c, t) in runs.items()}


def test_at_100_exponential_makes_over_twice_the_calls_and_takes_over_ten_times_as_long(
        at_100: dict[str, tuple[float, float]]) -> None:
    # The study shows curves; these ratios are our reproduction (the lesson says so).
    exp_calls, exp_time = at_100["exponential"]
    full_calls, full_time = at_100["full_jitter"]
    assert exp_calls > 2 * full_calls, (
        f"lesson 06: exponential now makes {exp_calls / full_calls:.2f}x the calls of full "
        "jitter at N = 100; the lesson says more than twice")
    assert exp_time > 10 * full_time, (
        f"lesson 06: exponential now takes {exp_time / full_time:.1f}x as long as full "
        "jitter at N = 100; the lesson says more than ten times")


def test_none_is_fastest_but_makes_the_most_calls(at_100: dict[str, tuple[float, float]]) -> None:
    assert min(at_100, key=lambda s: at_100[s][1]) == "none"
    assert max(at_100, key=lambda s: at_100[s][0]) == "none"


def test_the_lessons_claims_table(at_100: dict[str, tuple[float, float]]) -> None:
    calls = {s: c for s, (c, _) in at_100.items()}
    time = {s: t for s, (_, t) in at_100.items()}
    assert f"{calls['full_jitter'] / calls['exponential']:.3f}" == "0.425"
    assert f"{1 - calls['full_jitter'] / calls['exponential']:.3f}" == "0.575"  # 57.5 % fewer
    assert f"{calls['equal_jitter'] / calls['full_jitter']:.3f}" == "1.021"
    assert f"{calls['decorrelated_jitter'] / calls['full_jitter']:.3f}" == "1.263"
    assert f"{time['equal_jitter'] / time['full_jitter']:.3f}" == "1.349"
    backoffs = ("exponential", "full_jitter", "equal_jitter", "decorrelated_jitter")
    assert max(backoffs, key=time.__getitem__) == "exponential"
    # ... and the same numbers are recorded in the claims file
    claim = CLAIMS["brooker2015.full_vs_exponential_calls"]["reproduced"]
    assert claim["full_jitter"] == round(calls["full_jitter"], 1)
    assert claim["exponential"] == round(calls["exponential"], 1)


def test_a_point_is_the_same_in_the_lessons_subset_and_in_the_full_sweep() -> None:
    subset = {r.strategy: r for r in brooker2015((10, 50), runs=5, seed=SEED)
              if r.clients == 50}
    alone = {r.strategy: r for r in brooker2015((50,), runs=5, seed=SEED)}
    assert subset == alone


def test_the_cli_default_is_the_full_sweep() -> None:
    from resilience.lab.cli import _parser

    args = _parser().parse_args(["brooker2015", "--seed", "0"])
    assert args.clients == tuple(range(10, 200, 10)) and args.runs == 100


# -- exercise 06.1: a strategy run by resilience.retry through an outage --------------------

class Formula:
    """A strategy made of one formula, as a learner's class would be."""

    base, cap = BASE, CAP

    def __init__(self, formula: Callable[[int, float, float], float]) -> None:
        self.formula = formula

    def next_delay(self, n: int, previous: float, u: float) -> float:
        return self.formula(n, previous, u)


WRONG_STRATEGIES = {
    "no jitter": lambda n, p, u: min(CAP, BASE * 2**n),
    "the guide's additive jitter": lambda n, p, u: min(BASE * 2**n + u, CAP),
    "the guide's linear reading": lambda n, p, u: min(BASE * (2 * n) + u, CAP),
    "no cap": lambda n, p, u: u * BASE * 2**n,
    "the SDK's narrow jitter": lambda n, p, u: min(CAP, BASE * 2**n) * (1 - 0.25 * u),
}


@pytest.mark.parametrize("name", list(WRONG_STRATEGIES))
def test_checker_06_1_rejects_a_strategy_that_does_not_spread_the_crowd(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_guide_fixed(lambda: Formula(WRONG_STRATEGIES[name])) is False, name
    assert "not yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["equal_jitter", "decorrelated_jitter"])
def test_checker_06_1_passes_the_other_jitters_as_the_hint_says(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_guide_fixed(lambda: backoff.by_name(name, base=BASE, cap=CAP)) is True
    assert capsys.readouterr().out.rstrip().endswith(": pass.")


def test_the_guides_crowd_keeps_colliding() -> None:
    # the hint: "its crowd stays within 1 s, so the clients keep colliding"
    guide = crowd(Formula(WRONG_STRATEGIES["the guide's additive jitter"]))
    full = crowd(backoff.full_jitter(BASE, CAP))
    assert full.served == CLIENTS and guide.calls > MORE_CALLS * full.calls, (
        f"lesson 06: the guide's crowd now makes {guide.calls} calls against full "
        f"jitter's {full.calls}; the lesson says it keeps colliding")


# -- exercise 06.2: a retry loop of your own ----------------------------------------------

def loop(*, first_n: int = 0, keep_base: bool = False, sleep_after_last: bool = False,
         retry_everything: bool = False, swallow: bool = False,
         draws: int = 1) -> Callable[..., Any]:
    """A retry loop with one plausible mistake switched on."""

    def call_with_backoff(call: Callable[[], Any], strategy: Any, attempts: int,
                          clock: Any, rng: random.Random) -> Any:
        previous = strategy.base
        for n in range(attempts):
            try:
                return call()
            except Exception as e:
                last = n == attempts - 1
                if not retry_everything and not resilience.classify(e).retryable:
                    raise
                if last and not sleep_after_last:
                    if swallow:
                        return None
                    raise
                for _ in range(draws - 1):
                    rng.random()
                delay = strategy.next_delay(n + first_n, previous, rng.random())
                previous = previous if keep_base else delay
                clock.sleep(delay)
                if last:
                    raise
        return None

    return call_with_backoff


WRONG_LOOPS = {
    "n starts at 1": loop(first_n=1),
    "previous stays at base": loop(keep_base=True),
    "a wait after the last attempt": loop(sleep_after_last=True),
    "a 400 retried": loop(retry_everything=True),
    "the last error swallowed": loop(swallow=True),
    "two draws per wait": loop(draws=2),
}


def test_the_wrong_loop_switches_off_to_the_model_answer(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_call_with_backoff(loop()) is True


@pytest.mark.parametrize("name", list(WRONG_LOOPS))
def test_checker_06_2_rejects_a_plausible_wrong_loop(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_call_with_backoff(WRONG_LOOPS[name]) is False, name
    assert "not yet" in capsys.readouterr().out
