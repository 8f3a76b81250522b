"""Every factual claim lesson 10 ("Fallbacks and graceful degradation") makes, checked by
running it.

The lesson's chain and its bad day are its own code: these tests run the lesson's code
cells (not the plot or the exercises) once, with :func:`lesson_code.run_lesson`, against
the installed SDK and the simulated API, and pin what its prose says about the numbers
they print. A few facts the lesson builds on are checked on their own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anthropic
import pytest
from lesson_code import run_lesson

from resilience import (
    FALLBACK_MODEL,
    MODEL,
    CircuitBreaker,
    CircuitOpenError,
    VirtualClock,
    classify,
    may_fall_back,
)
from resilience.testing import FakeClaude, ForModel


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped)."""
    return run_lesson("10_fallbacks")


def served_in(lesson: dict[str, Any], scenarios: list[Any], prompt: str) -> tuple[Any, int]:
    """What the lesson's chain serves with ``scenarios`` added, and the calls it made."""
    with FakeClaude(seed=0) as api:
        api.scenario(*scenarios)
        served = lesson["build_chain"](api.client(max_retries=0)).call(prompt)
    return served, len(api.calls)


def share(steps: list[str], *served_by: str) -> str:
    """The share of requests served by these steps, as the lesson prints it."""
    return f"{sum(steps.count(step) for step in served_by) / len(steps):.1%}"


# -- the steps and the chain ------------------------------------------------------------

def test_the_fake_echoes_the_requested_model_and_for_model_breaks_only_one(
        lesson: dict[str, Any]) -> None:
    with FakeClaude(seed=0) as api:
        api.scenario(ForModel(MODEL, lesson["DOWN"]))
        client = api.client(max_retries=0)
        assert lesson["ask"](client, FALLBACK_MODEL, "Hi").startswith(f"{FALLBACK_MODEL}: ")
        with pytest.raises(anthropic.OverloadedError):
            lesson["ask"](client, MODEL, "Hi")
    assert [(call.model, call.status) for call in api.calls] == [
        (FALLBACK_MODEL, 200), (MODEL, 529)]


def test_a_cache_miss_falls_back_and_other_bugs_do_not(lesson: dict[str, Any]) -> None:
    cache_miss = lesson["CacheMiss"]("x")
    assert not may_fall_back(cache_miss) and lesson["falls_back"](cache_miss)
    assert not lesson["falls_back"](KeyError("a bug"))
    with pytest.raises(lesson["CacheMiss"]):
        lesson["from_cache"](lesson["QUESTIONS"][9])


def test_transient_failures_and_an_open_circuit_may_fall_back() -> None:
    for status in (429, 500, 502, 503, 504, 529):
        assert classify(status).retryable
    assert may_fall_back(CircuitOpenError("claude", "open", 5.0))


def test_each_situation_goes_one_step_further(lesson: dict[str, Any]) -> None:
    questions = lesson["QUESTIONS"]
    rows = {(name, prompt in lesson["CACHE"]): served_in(lesson, scenarios, prompt)
            for name, scenarios in lesson["situations"].items()
            for prompt in (questions[0], questions[9])}
    # max_retries=0: one call per model step
    assert {row: (served.step, calls) for row, (served, calls) in rows.items()} == {
        ("healthy", True): ("main", 1), ("healthy", False): ("main", 1),
        ("main down", True): ("smaller", 2), ("main down", False): ("smaller", 2),
        ("both down", True): ("cache", 2), ("both down", False): ("static", 2)}


def test_served_names_the_step_and_the_failures_before_it(lesson: dict[str, Any]) -> None:
    served, _ = served_in(lesson, [ForModel(MODEL, lesson["DOWN"])], lesson["QUESTIONS"][9])
    assert (served.step, served.index, served.degraded) == ("smaller", 1, True)
    [(step, verdict)] = served.failures
    assert (step, str(verdict)) == ("main", "overloaded 529 (retryable)")
    assert "fall back to a smaller model" in verdict.advice


# -- what must never fall back ------------------------------------------------------------

@pytest.mark.parametrize(("error", "cls", "status"), [
    ("invalid_request_error", anthropic.BadRequestError, 400),
    ("authentication_error", anthropic.AuthenticationError, 401),
    ("permission_error", anthropic.PermissionDeniedError, 403),
])
def test_400_401_403_surface_after_one_call(lesson: dict[str, Any], error: str,
                                            cls: type[Exception], status: int) -> None:
    with FakeClaude(seed=0) as api:
        api.respond(error)
        with pytest.raises(cls) as caught:
            lesson["build_chain"](api.client(max_retries=0)).call(lesson["QUESTIONS"][9])
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert len(api.calls) == 1
    assert may_fall_back(caught.value) is False


def test_a_catch_all_turns_a_401_and_a_404_into_the_apology(lesson: dict[str, Any]) -> None:
    for error, status in (("authentication_error", 401), ("not_found_error", 404)):
        with FakeClaude(seed=0) as api:
            api.respond(error)
            assert lesson["catch_all"](api.client(max_retries=0), "Hi") == lesson["STATIC"]
            api.respond(error)
            with pytest.raises(anthropic.APIStatusError) as caught:
                lesson["ask"](api.client(max_retries=0), MODEL, "Hi")
        assert caught.value.status_code == status
        assert not classify(caught.value).retryable          # "no retry fixes either"
    assert classify(401).advice.startswith("Check the API key")
    assert "retired model id answers 404" in classify(404).advice


# -- 200 requests on a bad day --------------------------------------------------------------

def test_the_bad_day_is_what_the_prose_describes(lesson: dict[str, Any]) -> None:
    main, smaller = lesson["BAD_DAY"]
    assert isinstance(main, ForModel) and isinstance(smaller, ForModel)
    assert (main.model, smaller.model) == (MODEL, FALLBACK_MODEL)
    outage, main_rates = main.scenarios
    assert (outage.start, outage.end) == (60, 140)
    assert sum(main_rates.rates.values()) == pytest.approx(0.05)
    assert set(main_rates.rates) == {"overloaded_error", "api_error", "rate_limit_error"}
    [smaller_rates] = smaller.scenarios
    assert dict(smaller_rates.rates) == {"overloaded_error": 0.1}
    calls = lesson["calls"]
    assert len(lesson["steps"]) == 200
    assert [call.time for call in calls if call.model == MODEL][:3] == [0.0, 1.0, 2.0]


def test_the_chain_answers_where_the_main_model_alone_answers_about_half(
        lesson: dict[str, Any]) -> None:
    steps = lesson["steps"]
    assert Counter(steps) == {"main": 115, "smaller": 76, "cache": 3, "static": 6}
    assert share(steps, "main") == "57.5%"                    # the recap's numbers
    assert share(steps, "main", "smaller") == "95.5%"
    assert (share(steps, "cache"), share(steps, "static")) == ("1.5%", "3.0%")
    during = steps[60:140]
    assert during.count("main") == 0                          # "drops to zero"
    assert during.count("smaller") >= 70                      # "almost everything"
    assert during.count("cache") + during.count("static") <= 10   # "the few"


def test_fallbacks_before_the_outage_are_the_main_models_everyday_failures(
        lesson: dict[str, Any]) -> None:
    """Issue 11: the plot shows fallbacks before t = 60 s; the lesson explains them."""
    before = lesson["before"]
    assert dict(before) == {"main": 56, "smaller": 3, "static": 1}, (
        f"lesson 10: before the outage the steps were {dict(before)}, the lesson prints "
        "56 main, 3 smaller, 1 static")
    failed = [c for c in lesson["calls"] if c.model == MODEL and c.time < 60 and c.status != 200]
    assert len(failed) == 60 - before["main"] == 4, (
        "lesson 10: every fallback before the outage should follow a failed main call "
        f"(the main model's random 5 %); {len(failed)} main calls failed")
    assert {c.status for c in failed} <= {429, 500, 529}


def test_the_steps_plot_shades_the_outage_and_stacks_every_request(
        lesson: dict[str, Any]) -> None:
    from matplotlib.colors import to_rgba

    from resilience.lab.plots import OUTAGE_COLOUR, plot_fallback_steps

    ax = plot_fallback_steps(lesson["steps"], outage=(60, 140)).axes[0]
    outage, *bars = ax.patches
    assert outage.get_facecolor() == to_rgba(OUTAGE_COLOUR, 0.08)
    assert sum(bar.get_height() for bar in bars) == 200
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "main model down", "main", "smaller", "cache", "static"]
    first_block = [bar.get_height() for bar in bars[::10]]      # block 0 of each step
    assert first_block == [18, 2, 0, 0], "lesson 10: the arrow points at 2 early fallbacks"


def test_a_breaker_on_the_main_step_skips_it_during_the_outage(lesson: dict[str, Any]) -> None:
    def hits(calls: list[Any]) -> int:
        return sum(call.model == MODEL and 60 <= call.time < 140 for call in calls)

    assert (hits(lesson["calls"]), hits(lesson["guarded_calls"])) == (80, 8)
    guarded, breaker = lesson["guarded"], lesson["breaker"]
    assert (breaker.failure_threshold, breaker.recovery_timeout) == (5, 20.0)
    assert Counter(guarded) == {"main": 111, "smaller": 80, "static": 6, "cache": 3}
    steps = lesson["steps"]                                   # "availability barely changes"
    assert abs(guarded.count("main") + guarded.count("smaller")
               - steps.count("main") - steps.count("smaller")) <= 2
    assert breaker.history[1] == (64.0, "open")               # open for most of the outage
    assert breaker.history[-1] == (144.0, "closed")           # soon after the outage ends
    trials = [t for t, state in breaker.history if state == "half_open"]
    assert trials == [84.0, 104.0, 124.0, 144.0]              # a trial every 20 s


def test_an_open_circuit_falls_through_to_the_next_step(lesson: dict[str, Any]) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(1, 20.0, clock=clock)
    with FakeClaude(clock=clock, seed=0) as api:
        api.scenario(ForModel(MODEL, lesson["DOWN"]))
        client = api.client(max_retries=0)
        chain = lesson["build_chain"](
            client, breaker(lambda prompt: lesson["ask"](client, MODEL, prompt)))
        chain.call(lesson["QUESTIONS"][9])
        served = chain.call(lesson["QUESTIONS"][9])
    assert served.step == "smaller"
    assert [(step, v.category) for step, v in served.failures] == [("main", "circuit_open")]
    assert [call.model for call in api.calls] == [MODEL, FALLBACK_MODEL, FALLBACK_MODEL]


# -- exercise hints ---------------------------------------------------------------------------

def test_a_lambda_in_a_loop_sees_the_last_value() -> None:
    late = [lambda: model for model in (MODEL, FALLBACK_MODEL)]  # noqa: B023 (the point)
    bound = [lambda model=model: model for model in (MODEL, FALLBACK_MODEL)]
    assert [f() for f in late] == [FALLBACK_MODEL, FALLBACK_MODEL]
    assert [f() for f in bound] == [MODEL, FALLBACK_MODEL]
