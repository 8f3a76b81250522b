"""Every factual claim lesson 13 ("Putting it together") makes, checked by running it.

The lesson's simulation is its own code: these tests run the lesson's code cells (not the
plot or the exercises) once, against the installed SDK and the simulated API, and pin the
numbers its prose states. A few SDK facts it builds on are checked on their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from course.lesson13 import check_make_ask, check_make_chain
from lesson_code import run_lesson

from resilience import FALLBACK_MODEL, MODEL, Fallback, VirtualClock
from resilience.middleware import BreakerMiddleware, BudgetMiddleware
from resilience.testing import FAKE_API_KEY, FakeClaude


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped).

    A shallow copy of the shared namespace, with ``logged``: the log records as the run
    left them (other tests below run the lesson's client again and log more).
    """
    namespace = run_lesson("13_putting_it_together")
    return {**namespace, "logged": list(namespace["records"])}


# -- SDK facts the lesson builds on -----------------------------------------------------

def test_the_sdk_retries_twice_by_default() -> None:
    assert anthropic.DEFAULT_MAX_RETRIES == 2


def test_stacking_the_guides_loop_on_the_sdk_makes_15_attempts(lesson: dict[str, Any]) -> None:
    clock = lesson["TurnClock"]()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*["overloaded_error"] * 20)
        (handle,) = lesson["naive_handler"](api, clock)
        result, latency = clock.run(handle, [0.0])[0]
    assert isinstance(result, anthropic.OverloadedError)
    assert [c.retry_count for c in api.calls] == [0, 1, 2] * 5  # 3 SDK attempts x 5
    assert f"{latency:.1f}" == "19.7"  # "about 20 s for a request that fails anyway"


def test_a_400_is_sent_once_and_raised_not_served(lesson: dict[str, Any]) -> None:
    clock = lesson["TurnClock"]()
    with FakeClaude(clock=clock, seed=0) as api:
        chain, breakers, _ = lesson["resilient"](api, clock)
        api.respond("invalid_request_error")
        tried: list[str] = []
        with pytest.raises(anthropic.BadRequestError):
            chain.call(tried)
    assert tried == [MODEL] and len(api.calls) == 1
    assert breakers[MODEL].state == "closed"


# -- the run ----------------------------------------------------------------------------

def test_who_answered(lesson: dict[str, Any]) -> None:
    assert lesson["served"](lesson["good"]) == Counter(main=258, small=41, static=1)
    assert lesson["served"](lesson["naive"]) == Counter(main=279, OverloadedError=21)


def test_attempts(lesson: dict[str, Any]) -> None:
    attempts = Counter(v.attempts for v, _ in lesson["good"])
    assert attempts == Counter({1: 268, 2: 28, 3: 3, 4: 1})
    budget = lesson["budget"]
    assert (budget.granted, budget.denied) == (32, 2)
    assert (len(lesson["good_calls"]), len(lesson["naive_calls"])) == (337, 794)


def test_the_sdk_is_the_one_retry_layer(lesson: dict[str, Any]) -> None:
    counts = Counter(call.retry_count for call in lesson["good_calls"])
    assert set(counts) == {0, 1, 2}, (
        f"lesson 13: the resilient client's SDK retry counts are {dict(counts)}; the lesson "
        "says the SDK retries (counts 1 and 2) and nothing retries around it")


def test_an_empty_budget_stops_the_sdk_and_the_chain_still_falls_back(
        lesson: dict[str, Any]) -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        chain, _, budget = lesson["resilient"](api, clock)
        while budget.try_spend():
            pass
        api.respond("overloaded_error")  # the main model's one attempt; then "ok"
        tried: list[str] = []
        served = chain.call(tried)
    assert (served.step, tried) == ("small", [MODEL, FALLBACK_MODEL])
    assert [c.model for c in api.calls] == [MODEL, FALLBACK_MODEL]


def test_model_client_has_the_breaker_then_the_budget(lesson: dict[str, Any]) -> None:
    clock = lesson["TurnClock"]()
    with FakeClaude(clock=clock, seed=0) as api:
        breaker = lesson["CircuitBreaker"](clock=clock)
        budget = lesson["RetryBudget"]()
        client = lesson["model_client"](api, breaker, budget)
    assert client.max_retries == 2
    kinds = [type(m) for m in client.middleware]
    assert kinds == [BreakerMiddleware, BudgetMiddleware]
    assert client.middleware[0].breaker is breaker and client.middleware[1].budget is budget


def test_no_request_made_more_than_three_attempts_per_model(lesson: dict[str, Any]) -> None:
    # Re-run the resilient client, keeping the models each request tried.
    namespace = lesson
    tried_by_request: list[list[str]] = []

    def make(api: Any, clock: Any) -> Any:
        chain, breakers, budget = namespace["resilient"](api, clock)

        def handle(i: int) -> Any:
            tried: list[str] = []
            chain.call(tried)
            tried_by_request.append(tried)

        return handle, breakers, budget

    namespace["run"](make)
    assert max(max(Counter(t).values(), default=0) for t in tried_by_request) == 3


def test_latency(lesson: dict[str, Any]) -> None:
    pct = lesson["percentile"]
    good = [latency for _, latency in lesson["good"]]
    naive = [latency for _, latency in lesson["naive"]]
    assert [f"{pct(good, 50):.3f}", f"{pct(good, 99):.3f}"] == ["0.000", "5.000"]
    assert [f"{pct(naive, 50):.3f}", f"{pct(naive, 99):.3f}"] == ["0.000", "20.774"]
    assert max(good) < 10.0 and max(naive) > 20.0


def test_the_main_breaker_opens_in_the_outage_and_closes_after_it(
        lesson: dict[str, Any]) -> None:
    history = [(round(t, 3), state) for t, state in lesson["breakers"][MODEL].history]
    assert history[:2] == [(0.0, "closed"), (101.406, "open")]
    trials = [t for t, state in history if state == "half_open"]
    assert trials == [112.0, 122.0, 132.0, 142.0]  # one every 10 s
    assert history[-1] == (142.0, "closed")  # the first trial after t = 140 succeeds


def test_the_logs_hold_request_ids_and_never_the_key(lesson: dict[str, Any]) -> None:
    records = lesson["logged"]
    assert len(records) == 389
    assert not any(FAKE_API_KEY in r for r in records)
    assert records[0] == f"INFO    t=  0.000 {MODEL} answered, request-id req_fake_000001"
    failed = [r for r in records if " retry " in r]
    assert failed and all("request-id" in r for r in failed)
    assert any("no answer APIConnectionError, request-id None" in r for r in records)
    assert any("retry 1 after" in r for r in records)  # the SDK's own retries, logged


def test_the_naive_client_multiplies_its_load_during_the_outage(
        lesson: dict[str, Any]) -> None:
    def peak(calls: Any) -> float:
        return max(lesson["per_second"](calls)[1])

    assert peak(lesson["naive_calls"]) > 5 * peak(lesson["good_calls"])
    assert peak(lesson["good_calls"]) <= 2.0


# -- exercises: wrong answers the checkers must reject -----------------------------------

def _ask_builder(retries: tuple[type[Exception], ...]) -> Callable[[Any, Any], Any]:
    """A hand-written loop on a max_retries=0 client that sleeps its own backoff and never
    reads retry-after."""
    def make_ask(api: Any, clock: Any) -> Any:
        client = api.client(max_retries=0)

        def ask(prompt: str) -> str:
            for n in range(4):
                try:
                    message = client.messages.create(
                        model=api.model, max_tokens=256,
                        messages=[{"role": "user", "content": prompt}])
                    return str(message.content[0].text)
                except retries:
                    if n == 3:
                        raise
                    clock.sleep(0.5 * 2**n)
            raise AssertionError("unreachable")

        return ask

    return make_ask


def test_12_1_rejects_a_loop_that_never_retries_a_429(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert check_make_ask(_ask_builder((anthropic.InternalServerError,))) is False
    assert "retry-after: 3" in capsys.readouterr().out


def test_12_1_rejects_a_loop_that_retries_a_429_too_soon(capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    loop = _ask_builder((anthropic.InternalServerError, anthropic.RateLimitError))
    assert check_make_ask(loop) is False
    assert "you retried after 0.50 s" in capsys.readouterr().out


def _chain_on(client_options: dict[str, Any]) -> Callable[[Any, Any], Any]:
    def make_chain(api: Any, clock: Any) -> Any:
        client = api.client(**client_options)

        def ask(model: str, prompt: str) -> str:
            message = client.messages.create(model=model, max_tokens=256,
                                             messages=[{"role": "user", "content": prompt}])
            return str(message.content[0].text)

        return Fallback([("main", lambda p: ask(MODEL, p)),
                         ("small", lambda p: ask(FALLBACK_MODEL, p)),
                         ("static", lambda p: "Busy, try again soon.")])

    return make_chain


def test_12_2_rejects_a_chain_on_a_default_client(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_make_chain(_chain_on({})) is False
    out = capsys.readouterr().out
    assert "got 3 attempts" in out and "max_retries=0" in out
    assert check_make_chain(_chain_on({"max_retries": 0})) is True  # the same, one layer
