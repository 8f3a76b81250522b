"""Fallback chains: serve the next best answer on transient failures, surface the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest
from sdk_responses import error_body, sdk_error

from resilience import CircuitOpenError, Fallback, may_fall_back


def raising(exc: BaseException) -> Any:
    def step(*args: Any, **kwargs: Any) -> Any:
        raise exc
    return step


def test_first_choice_serves_when_it_works() -> None:
    chain = Fallback([("sonnet", lambda q: f"sonnet:{q}"), ("static", lambda q: "sorry")])
    served = chain.call("hi")
    assert (served.value, served.step, served.index, served.degraded) == ("sonnet:hi", "sonnet",
                                                                          0, False)


def test_overload_falls_through_to_the_smaller_model_and_says_so() -> None:
    overloaded = sdk_error(529, error_body("overloaded_error"))
    chain = Fallback([("sonnet", raising(overloaded)), ("haiku", lambda q: f"haiku:{q}"),
                      ("static", lambda q: "sorry")])
    served = chain.call("hi")
    assert (served.value, served.step, served.degraded) == ("haiku:hi", "haiku", True)
    assert [(name, v.category) for name, v in served.failures] == [("sonnet", "overloaded")]


def test_an_open_circuit_falls_through() -> None:
    chain = Fallback([("sonnet", raising(CircuitOpenError("claude", "open", 3.0))),
                      ("cache", lambda: "cached")])
    assert chain.call().step == "cache"


@pytest.mark.parametrize(("status", "error_type"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"),
    (403, "permission_error"), (404, "not_found_error"), (413, "request_too_large")])
def test_caller_errors_surface_and_never_fall_back(status: int, error_type: str) -> None:
    exc = sdk_error(status, error_body(error_type))
    later = []
    chain = Fallback([("sonnet", raising(exc)), ("static", lambda: later.append(1))])
    with pytest.raises(type(exc)) as info:
        chain.call()
    assert info.value is exc
    assert later == []


def test_a_bug_in_a_step_surfaces() -> None:
    chain = Fallback([("sonnet", raising(TypeError("bad arg"))), ("static", lambda: "x")])
    with pytest.raises(TypeError):
        chain.call()


def test_when_every_step_fails_the_last_error_carries_each_step() -> None:
    errors = [TimeoutError("a"), ConnectionError("b")]
    chain = Fallback([("sonnet", raising(errors[0])), ("haiku", raising(errors[1]))])
    with pytest.raises(ConnectionError) as info:
        chain.call()
    assert info.value is errors[1]
    assert info.value.__notes__ == ["resilience.fallback: step 'sonnet' failed: timeout "
                                    "(retryable)",
                                    "resilience.fallback: step 'haiku' failed: connection "
                                    "(retryable)"]


def test_custom_predicate() -> None:
    chain = Fallback([raising(KeyError("k")), lambda: "second"],
                     should_fall_back=lambda e: isinstance(e, KeyError))
    assert chain.call().value == "second"
    assert chain.call().step == "<lambda>"


def test_async_chain_mixes_async_and_sync_steps() -> None:
    async def sonnet(q: str) -> str:
        raise anthropic.APITimeoutError(request=sdk_error(500).request)  # type: ignore[attr-defined]

    async def haiku(q: str) -> str:
        await asyncio.sleep(0)
        return f"haiku:{q}"

    served = asyncio.run(Fallback([sonnet, haiku, lambda q: "static"]).acall("hi"))
    assert (served.value, served.step) == ("haiku:hi", "haiku")
    assert served.failures[0][1].category == "timeout"


def test_may_fall_back_default() -> None:
    assert may_fall_back(TimeoutError())
    assert not may_fall_back(ValueError())


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        Fallback([])


@pytest.mark.parametrize(("args", "needle"), [(([42],), r"steps\[0\] must be a callable"),
                                              (([("a", 1)],), r"steps\[0\]"),
                                              (([("a",)],), r"steps\[0\]"),
                                              ((42,), "steps must be a list"),
                                              (([str], 5), "should_fall_back must be callable")])
def test_wrong_types_raise_type_error_naming_the_argument(args: tuple[Any, ...],
                                                          needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        Fallback(*args)
