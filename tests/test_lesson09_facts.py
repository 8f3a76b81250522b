"""Every factual claim lesson 09 ("Fallbacks and graceful degradation") makes, computed
from the package and the installed SDK (through the simulated API).

The lesson prints these numbers under strict nbval; these tests pin what its prose *says*
about them. The helpers repeat the lesson's own code.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import anthropic
import pytest

from resilience import (
    FALLBACK_MODEL,
    MODEL,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    VirtualClock,
    classify,
    may_fall_back,
)
from resilience.fakeapi import FailureRates, FakeClaude, Outage

SEED = 0
QUESTIONS = [f"Question {i} about your order" for i in range(10)]
CACHE = {q: f"(saved answer to {q!r})" for q in QUESTIONS[:3]}
STATIC = "Sorry, answers are slow right now. Please try again in a few minutes."
DOWN = [Outage(0, float("inf"))]


class CacheMiss(Exception):
    pass


def ask(client: Any, model: str, prompt: str) -> str:
    reply = client.messages.create(model=model, max_tokens=256,
                                   messages=[{"role": "user", "content": prompt}])
    return f"{reply.model}: {reply.content[0].text}"


def from_cache(prompt: str) -> str:
    if prompt not in CACHE:
        raise CacheMiss(prompt)
    return CACHE[prompt]


def falls_back(e: BaseException) -> bool:
    return may_fall_back(e) or isinstance(e, CacheMiss)


def build_chain(client: Any, main: Any = None) -> Fallback[str]:
    main = main or (lambda prompt: ask(client, MODEL, prompt))
    return Fallback([("main", main),
                     ("smaller", lambda prompt: ask(client, FALLBACK_MODEL, prompt)),
                     ("cache", from_cache),
                     ("static", lambda prompt: STATIC)], should_fall_back=falls_back)


class PerModel:
    def __init__(self, by_model: dict[str, list[Any]]) -> None:
        self.by_model, self.log = by_model, []  # type: ignore[var-annotated]

    def decide(self, exchange: Any, rng: random.Random) -> Any:
        self.log.append((exchange.arrived, exchange.model))
        for scenario in self.by_model.get(exchange.model, []):
            if (outcome := scenario.decide(exchange, rng)) is not None:
                return outcome
        return None


def serve(prompt: str, down: dict[str, list[Any]]) -> tuple[Any, int]:
    with FakeClaude(seed=SEED) as api:
        api.scenario(PerModel(down))
        served = build_chain(api.client(max_retries=0)).call(prompt)
    return served, len(api.calls)


# -- the chain, step by step ------------------------------------------------------------

def test_the_fake_echoes_the_requested_model() -> None:
    with FakeClaude(seed=SEED) as api:
        client = api.client(max_retries=0)
        assert ask(client, FALLBACK_MODEL, "Hi").startswith(f"{FALLBACK_MODEL}: ")
        assert ask(client, MODEL, "Hi").startswith(f"{MODEL}: ")


@pytest.mark.parametrize(("down", "prompt", "step", "calls"), [
    ({}, QUESTIONS[0], "main", 1), ({}, QUESTIONS[9], "main", 1),
    ({MODEL: DOWN}, QUESTIONS[0], "smaller", 2), ({MODEL: DOWN}, QUESTIONS[9], "smaller", 2),
    ({MODEL: DOWN, FALLBACK_MODEL: DOWN}, QUESTIONS[0], "cache", 2),
    ({MODEL: DOWN, FALLBACK_MODEL: DOWN}, QUESTIONS[9], "static", 2),
])
def test_each_situation_goes_one_step_further(down: dict[str, list[Any]], prompt: str,
                                              step: str, calls: int) -> None:
    served, made = serve(prompt, down)
    assert (served.step, made) == (step, calls)


def test_served_names_the_step_and_the_failures_before_it() -> None:
    served, _ = serve(QUESTIONS[9], {MODEL: DOWN})
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
def test_400_401_403_surface_after_one_call(error: str, cls: type[Exception],
                                            status: int) -> None:
    with FakeClaude(seed=SEED) as api:
        api.respond(error)
        with pytest.raises(cls) as caught:
            build_chain(api.client(max_retries=0)).call(QUESTIONS[9])
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert len(api.calls) == 1
    assert may_fall_back(caught.value) is False


def test_transient_failures_and_an_open_circuit_may_fall_back() -> None:
    for status in (429, 500, 502, 503, 504, 529):
        assert classify(status).retryable
    assert may_fall_back(CircuitOpenError("claude", "open", 5.0))
    assert not may_fall_back(CacheMiss("x")) and falls_back(CacheMiss("x"))
    assert not may_fall_back(KeyError("a bug"))


def test_a_catch_all_turns_a_401_and_a_404_into_the_apology() -> None:
    def catch_all(client: Any, prompt: str) -> str:
        try:
            return ask(client, MODEL, prompt)
        except Exception:
            return STATIC

    for error, status in (("authentication_error", 401), ("not_found_error", 404)):
        with FakeClaude(seed=SEED) as api:
            api.respond(error)
            assert catch_all(api.client(max_retries=0), "Hi") == STATIC
            api.respond(error)
            with pytest.raises(anthropic.APIStatusError) as caught:
                ask(api.client(max_retries=0), MODEL, "Hi")
        assert caught.value.status_code == status
        assert not classify(caught.value).retryable          # "no retry fixes either"
    assert classify(401).advice.startswith("Check the API key")
    assert "retired model id answers 404" in classify(404).advice


# -- 200 requests on a bad day --------------------------------------------------------------

def bad_day(guard: bool = False, requests: int = 200) -> tuple[list[str], list[Any], Any]:
    clock, picks = VirtualClock(), random.Random(SEED)
    scenario = PerModel({
        MODEL: [Outage(60, 140), FailureRates({"overloaded_error": 0.03, "api_error": 0.01,
                                               "rate_limit_error": 0.01})],
        FALLBACK_MODEL: [FailureRates({"overloaded_error": 0.1})]})
    breaker = CircuitBreaker(5, 20.0, clock=clock) if guard else None
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(scenario)
        client = api.client(max_retries=0)

        def main(prompt: str) -> str:
            return ask(client, MODEL, prompt)

        chain = build_chain(client, breaker(main) if breaker is not None else main)
        steps = []
        for _ in range(requests):
            steps.append(chain.call(picks.choice(QUESTIONS)).step)
            clock.advance(1.0)
    return steps, scenario.log, breaker


@pytest.fixture(scope="module")
def days() -> dict[bool, tuple[list[str], list[Any], Any]]:
    return {False: bad_day(), True: bad_day(guard=True)}


def test_the_chain_answers_where_the_main_model_alone_answers_about_half(
        days: dict[bool, tuple[list[str], list[Any], Any]]) -> None:
    steps, _, _ = days[False]
    assert Counter(steps) == {"main": 115, "smaller": 76, "cache": 3, "static": 6}
    share = {step: count / len(steps) for step, count in Counter(steps).items()}
    assert f"{share['main']:.1%}" == "57.5%"
    assert f"{share['main'] + share['smaller']:.1%}" == "95.5%"
    assert (f"{share['cache']:.1%}", f"{share['static']:.1%}") == ("1.5%", "3.0%")
    during = steps[60:140]
    assert during.count("main") == 0
    assert during.count("smaller") >= 70                  # "almost everything"


def test_a_breaker_on_the_main_step_skips_it_during_the_outage(
        days: dict[bool, tuple[list[str], list[Any], Any]]) -> None:
    def hits(log: list[Any]) -> int:
        return sum(model == MODEL and 60 <= t < 140 for t, model in log)

    assert hits(days[False][1]) == 80
    assert hits(days[True][1]) == 8
    guarded, _, breaker = days[True]
    assert Counter(guarded) == {"main": 111, "smaller": 80, "static": 6, "cache": 3}
    assert breaker.history[1] == (64.0, "open")
    assert breaker.history[-1] == (144.0, "closed")       # soon after the outage ends
    assert [s for _, s in breaker.history].count("half_open") == 4   # a trial every 20 s


def test_an_open_circuit_falls_through_to_the_next_step() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(1, 20.0, clock=clock)
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(PerModel({MODEL: DOWN}))
        client = api.client(max_retries=0)
        chain = build_chain(client, breaker(lambda prompt: ask(client, MODEL, prompt)))
        chain.call(QUESTIONS[9])
        served = chain.call(QUESTIONS[9])
    assert served.step == "smaller"
    assert [(step, v.category) for step, v in served.failures] == [("main", "circuit_open")]
    assert len(api.calls) == 3                            # main, smaller, smaller


# -- exercise hints ---------------------------------------------------------------------------

def test_a_lambda_in_a_loop_sees_the_last_value() -> None:
    late = [lambda: model for model in (MODEL, FALLBACK_MODEL)]  # noqa: B023 (the point)
    bound = [lambda model=model: model for model in (MODEL, FALLBACK_MODEL)]
    assert [f() for f in late] == [FALLBACK_MODEL, FALLBACK_MODEL]
    assert [f() for f in bound] == [MODEL, FALLBACK_MODEL]
