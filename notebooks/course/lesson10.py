"""Checkers for lesson 10, "Fallbacks and graceful degradation".

* ``remembering(step, cache)``: a step that saves each answer of ``step`` in ``cache``
  (keyed by the prompt) and lets exceptions through untouched.
* ``model_chain(client, models, static_text)``: a :class:`~resilience.Fallback` with one
  step per model id, then a static message; checked on the simulated API with models
  broken one at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from course import exercise
from resilience.clock import VirtualClock
from resilience.fallback import Fallback
from resilience.models import FALLBACK_MODEL, MODEL

__all__ = ["CHECKS", "check_model_chain", "check_remembering"]

_PROMPT = "Where is my order?"
_STATIC = "Sorry, please try again in a few minutes."


def _ask(client: Any, model: str, prompt: str) -> str:
    reply = client.messages.create(model=model, max_tokens=64,
                                   messages=[{"role": "user", "content": prompt}])
    return f"{reply.model}: {reply.content[0].text}"


@exercise("10.1", "a cache that fills itself")
def check_remembering(solution: Callable[..., Any]) -> None:
    """``solution(step, cache)`` saves answers, passes exceptions through, feeds a chain."""
    import anthropic

    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=9) as api:
        client = api.client(max_retries=0)

        def main(prompt: str) -> str:
            return _ask(client, MODEL, prompt)

        cache: dict[str, str] = {}
        remembered = solution(main, cache)
        assert callable(remembered), (
            f"remembering(step, cache) returned {remembered!r}; expected a new step "
            "(a function of the prompt).")
        answer = remembered(_PROMPT)
        assert answer == f"{MODEL}: Hello from the simulated Claude API.", (
            f"the new step returned {answer!r}; expected what the step returned.")
        assert cache == {_PROMPT: answer}, (
            f"after one answer the cache is {cache!r}; expected {{prompt: answer}}.")
        api.respond("overloaded_error")
        try:
            remembered("Another question")
        except anthropic.OverloadedError:
            pass
        else:
            raise AssertionError("the step got a 529, but the new step did not raise "
                                 "OverloadedError: let the exception through.")
        assert cache == {_PROMPT: answer}, (
            f"a failed call changed the cache to {cache!r}; save only answers.")

        def from_cache(prompt: str) -> str:
            return cache[prompt]

        chain: Fallback[str] = Fallback([("main", solution(main, cache)), ("cache", from_cache)])
        api.respond("overloaded_error")
        served = chain.call(_PROMPT)
        assert (served.step, served.value) == ("cache", answer), (
            f"with the model down the chain served {served.step!r}: {served.value!r}; "
            "expected the saved answer from the cache.")


def _case(solution: Callable[..., Any], models: Sequence[str],
          down: Sequence[str]) -> tuple[Any, list[str | None], Any]:
    from resilience.testing import FakeClaude, ForModel, Outage

    with FakeClaude(clock=VirtualClock(), seed=9) as api:
        api.scenario(*(ForModel(model, Outage(0.0, math.inf)) for model in down))  # 529s
        chain = solution(api.client(max_retries=0), list(models), _STATIC)
        assert isinstance(chain, Fallback), (
            f"model_chain(...) returned {chain!r}; expected a resilience.Fallback.")
        names = [name for name, _ in chain.steps]
        assert names == [*models, "static"], (
            f"the chain's steps are named {names}; expected {[*models, 'static']}.")
        served = chain.call(_PROMPT)
    return served, [call.model for call in api.calls], chain


@exercise("10.2", "a chain over any list of models")
def check_model_chain(solution: Callable[..., Any]) -> None:
    """``solution(client, models, static_text)`` builds the chain; checked model by model."""
    import anthropic

    from resilience.testing import FakeClaude

    text = "Hello from the simulated Claude API."
    cases: list[tuple[list[str], list[str], str, Any, list[str]]] = [
        ([MODEL, FALLBACK_MODEL], [], MODEL, text, [MODEL]),
        ([MODEL, FALLBACK_MODEL], [MODEL], FALLBACK_MODEL, text, [MODEL, FALLBACK_MODEL]),
        ([MODEL, FALLBACK_MODEL], [MODEL, FALLBACK_MODEL], "static", _STATIC,
         [MODEL, FALLBACK_MODEL]),
        ([FALLBACK_MODEL, MODEL], [FALLBACK_MODEL], MODEL, text, [FALLBACK_MODEL, MODEL]),
        ([FALLBACK_MODEL], [], FALLBACK_MODEL, text, [FALLBACK_MODEL]),
    ]
    for models, down, step, value, asked in cases:
        served, seen, _ = _case(solution, models, down)
        where = f"models={models}, down={down}"
        assert seen == asked, (
            f"{where}: the requests asked for {seen}; expected {asked}. If every step asks "
            "the same model, your loop's lambda sees only the last model.")
        assert served.step == step, f"{where}: served by {served.step!r}; expected {step!r}."
        assert served.value == value, (
            f"{where}: the answer was {served.value!r}; expected {value!r}.")
    with FakeClaude(clock=VirtualClock(), seed=9) as api:
        api.respond("authentication_error")
        chain = solution(api.client(max_retries=0), [MODEL, FALLBACK_MODEL], _STATIC)
        try:
            served = chain.call(_PROMPT)
        except anthropic.AuthenticationError:
            pass
        else:
            raise AssertionError(f"a 401 fell back to {served.step!r}; a wrong key must "
                                 "surface: keep the default should_fall_back.")


CHECKS = {"remembering": check_remembering, "model_chain": check_model_chain}
