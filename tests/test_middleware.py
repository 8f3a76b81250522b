"""resilience.middleware through the real SDK: the breaker and the retry budget as middleware
inside the SDK's own retry loop, with both clients, streaming and not, answered by FakeClaude."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from resilience import CircuitBreaker, CircuitOpenError, RetryBudget, VirtualClock
from resilience.errors import CLOSED, HALF_OPEN, OPEN
from resilience.middleware import (
    BUDGET_HEADER,
    Attempt,
    AttemptLog,
    BreakerMiddleware,
    BudgetMiddleware,
    sdk_would_retry,
    status_error,
)
from resilience.testing import FakeClaude

HI = [{"role": "user", "content": "Hi"}]
TEXT = "Hello from the simulated Claude API."
MODES = ["sync", "async"]
SHAPES = ["create", "stream=True", "messages.stream"]


def send(api: FakeClaude, middleware: list[Any], *, mode: str = "sync", shape: str = "create",
         max_retries: int = 2) -> str:
    """One call through a fresh client with ``middleware``; the text of the answer."""
    if mode == "sync":
        client = api.client(middleware=middleware, max_retries=max_retries)
        if shape == "create":
            return str(client.messages.create(model=api.model, max_tokens=64,
                                              messages=HI).content[0].text)
        if shape == "stream=True":
            events = client.messages.create(model=api.model, max_tokens=64, messages=HI,
                                            stream=True)
            return "".join(e.delta.text for e in events if e.type == "content_block_delta"
                           and e.delta.type == "text_delta")
        with client.messages.stream(model=api.model, max_tokens=64, messages=HI) as stream:
            return stream.get_final_text()

    async def main() -> str:
        aclient = api.async_client(middleware=middleware, max_retries=max_retries)
        if shape == "create":
            message = await aclient.messages.create(model=api.model, max_tokens=64,
                                                    messages=HI)
            return str(message.content[0].text)
        if shape == "stream=True":
            events = await aclient.messages.create(model=api.model, max_tokens=64,
                                                   messages=HI, stream=True)
            return "".join([e.delta.text async for e in events
                            if e.type == "content_block_delta"
                            and e.delta.type == "text_delta"])
        async with aclient.messages.stream(model=api.model, max_tokens=64,
                                           messages=HI) as astream:
            return await astream.get_final_text()

    return asyncio.run(main())


def failure(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as e:
        return e
    raise AssertionError("the call did not fail")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def api(clock: VirtualClock) -> Any:
    with FakeClaude(clock=clock, seed=0) as fake:
        yield fake


# -- the breaker -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("outcome", "sdk_class"), [
    ("overloaded_error", anthropic.OverloadedError),
    ("api_error", anthropic.InternalServerError),
    ("connection_error", anthropic.APIConnectionError),
    ("timeout", anthropic.APITimeoutError),
])
def test_breaker_counts_service_failures_and_the_caller_gets_the_sdk_error(
        api: FakeClaude, clock: VirtualClock, mode: str, outcome: str,
        sdk_class: type[Exception]) -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30.0, clock=clock)
    api.respond(outcome)
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode, max_retries=0))
    assert type(error) is sdk_class
    assert (breaker.state, breaker.consecutive_failures) == (CLOSED, 1)
    api.respond(outcome)
    failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode, max_retries=0))
    assert breaker.state == OPEN


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("outcome", ["rate_limit_error", "invalid_request_error",
                                     "authentication_error", "not_found_error"])
def test_breaker_ignores_4xx_even_429(api: FakeClaude, clock: VirtualClock, mode: str,
                                      outcome: str) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    for _ in range(3):
        api.respond(outcome)
        error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode,
                                     max_retries=0))
        assert isinstance(error, anthropic.APIStatusError)
        assert 400 <= error.status_code < 500
    assert (breaker.state, breaker.consecutive_failures) == (CLOSED, 0)
    assert len(api.calls) == 3


@pytest.mark.parametrize("mode", MODES)
def test_breaker_counts_every_sdk_attempt(api: FakeClaude, clock: VirtualClock,
                                          mode: str) -> None:
    breaker = CircuitBreaker(failure_threshold=10, recovery_timeout=30.0, clock=clock)
    api.respond("overloaded_error", "api_error", "ok")
    assert send(api, [BreakerMiddleware(breaker)], mode=mode) == TEXT
    assert [c.retry_count for c in api.calls] == [0, 1, 2]
    assert breaker.consecutive_failures == 0  # the success reset the run of two
    api.respond("overloaded_error", "overloaded_error", "overloaded_error")
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode))
    assert type(error) is anthropic.OverloadedError
    assert breaker.consecutive_failures == 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_open_breaker_fails_at_once_without_http_or_sdk_retry(
        api: FakeClaude, clock: VirtualClock, mode: str, shape: str) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    assert breaker.state == OPEN
    api.calls.clear()
    before = clock.now()
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode, shape=shape,
                                 max_retries=5))
    assert type(error) is CircuitOpenError
    assert api.calls == []  # no HTTP attempt
    assert clock.now() == before  # and no SDK retry: it would have slept first
    assert error.retry_in == pytest.approx(30.0)


@pytest.mark.parametrize("mode", MODES)
def test_breaker_opening_mid_call_stops_the_sdk_retries(api: FakeClaude, clock: VirtualClock,
                                                        mode: str) -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30.0, clock=clock)
    api.respond(*["overloaded_error"] * 6)
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode, max_retries=5))
    assert type(error) is CircuitOpenError
    assert [c.retry_count for c in api.calls] == [0, 1]  # the third attempt never went out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_half_open_trial_success_closes_failure_reopens(
        api: FakeClaude, clock: VirtualClock, mode: str, shape: str) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    clock.advance(30.0)
    assert breaker.state == HALF_OPEN
    api.calls.clear()
    api.respond("overloaded_error", "ok")
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode, shape=shape))
    # the trial failed and reopened the circuit, so the SDK's retry was refused locally
    assert type(error) is CircuitOpenError
    assert len(api.calls) == 1
    assert breaker.state == OPEN
    clock.advance(30.0)
    assert send(api, [BreakerMiddleware(breaker)], mode=mode, shape=shape) == TEXT
    assert breaker.state == CLOSED
    assert len(api.calls) == 2


def test_a_429_trial_is_neutral_and_gives_its_slot_back(api: FakeClaude,
                                                        clock: VirtualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    clock.advance(30.0)
    api.respond("rate_limit_error")
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    assert type(error) is anthropic.RateLimitError
    assert breaker.state == HALF_OPEN  # neither success nor failure
    assert send(api, [BreakerMiddleware(breaker)], max_retries=0) == TEXT  # admitted
    assert breaker.state == CLOSED


def _half_open(api: FakeClaude, clock: VirtualClock) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    clock.advance(30.0)
    assert breaker.state == HALF_OPEN
    return breaker


def test_half_open_slot_is_given_back_when_call_next_raises(api: FakeClaude,
                                                           clock: VirtualClock) -> None:
    breaker = _half_open(api, clock)

    def broken(request: anthropic.APIRequest, call_next: anthropic.CallNext) -> Any:
        raise RuntimeError("a bug further in")

    error = failure(lambda: send(api, [BreakerMiddleware(breaker), broken], max_retries=3))
    assert type(error) is RuntimeError  # propagated as-is, not retried
    assert breaker.state == HALF_OPEN
    assert send(api, [BreakerMiddleware(breaker)]) == TEXT  # the slot is free again
    assert breaker.state == CLOSED


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("first", ["ok", "overloaded_error"])
def test_half_open_slot_is_given_back_when_is_failure_raises(api: FakeClaude,
                                                            clock: VirtualClock, mode: str,
                                                            first: str) -> None:
    breaker = _half_open(api, clock)
    rule = breaker.is_failure

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("a bug in the predicate")

    breaker.is_failure = broken
    api.respond(first)
    if first == "ok":  # a success needs no predicate: the trial closes the breaker
        assert send(api, [BreakerMiddleware(breaker)], mode=mode, max_retries=0) == TEXT
        assert breaker.state == CLOSED
        return
    error = failure(lambda: send(api, [BreakerMiddleware(breaker)], mode=mode,
                                 max_retries=0))
    assert type(error) is RuntimeError
    assert breaker.state == HALF_OPEN  # neutral: neither closed nor reopened
    breaker.is_failure = rule
    assert send(api, [BreakerMiddleware(breaker)], mode=mode) == TEXT  # the slot is free
    assert breaker.state == CLOSED


def test_half_open_slot_is_given_back_when_the_task_is_cancelled(api: FakeClaude,
                                                                clock: VirtualClock) -> None:
    breaker = _half_open(api, clock)

    async def hang(request: anthropic.APIRequest, call_next: anthropic.AsyncCallNext) -> Any:
        await asyncio.Event().wait()

    async def main() -> str:
        stuck = api.async_client(middleware=[BreakerMiddleware(breaker), hang])
        task = asyncio.create_task(stuck.messages.create(model=api.model, max_tokens=8,
                                                         messages=HI))
        for _ in range(5):
            await asyncio.sleep(0)
        with pytest.raises(CircuitOpenError):  # the trial slot is taken meanwhile
            await api.async_client(middleware=[BreakerMiddleware(breaker)]).messages.create(
                model=api.model, max_tokens=8, messages=HI)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert breaker.state == HALF_OPEN
        free = api.async_client(middleware=[BreakerMiddleware(breaker)])
        message = await free.messages.create(model=api.model, max_tokens=8, messages=HI)
        return str(message.content[0].text)

    assert asyncio.run(main()) == TEXT
    assert breaker.state == CLOSED


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_gives_its_trial_slot_back_when_its_status_arrives(
        api: FakeClaude, clock: VirtualClock, mode: str) -> None:
    breaker = _half_open(api, clock)

    def opened() -> None:  # open a stream, do not read it yet
        client = api.client(middleware=[BreakerMiddleware(breaker)])
        stream = client.messages.create(model=api.model, max_tokens=8, messages=HI,
                                        stream=True)
        assert breaker.state == CLOSED  # judged by its 200, before one event is read
        stream.close()

    async def aopened() -> None:
        client = api.async_client(middleware=[BreakerMiddleware(breaker)])
        stream = await client.messages.create(model=api.model, max_tokens=8, messages=HI,
                                              stream=True)
        assert breaker.state == CLOSED
        await stream.close()

    if mode == "sync":
        opened()
    else:
        asyncio.run(aopened())


def test_breaker_rule_gets_the_sdk_exception_class(api: FakeClaude,
                                                   clock: VirtualClock) -> None:
    seen: list[type[BaseException]] = []

    def only_overload(e: BaseException) -> bool:
        seen.append(type(e))
        return isinstance(e, anthropic.OverloadedError)

    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock,
                             is_failure=only_overload)
    api.respond("api_error", "connection_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=1))
    assert breaker.state == CLOSED
    api.respond("overloaded_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    assert breaker.state == OPEN
    assert seen == [anthropic.InternalServerError, anthropic.APIConnectionError,
                    anthropic.OverloadedError]


def test_raw_response_calls_go_through_the_breaker(api: FakeClaude,
                                                   clock: VirtualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    client = api.client(middleware=[BreakerMiddleware(breaker)], max_retries=0)
    raw = client.messages.with_raw_response.create(model=api.model, max_tokens=8, messages=HI)
    assert raw.status_code == 200
    api.respond("overloaded_error")
    with pytest.raises(anthropic.OverloadedError):
        client.messages.with_raw_response.create(model=api.model, max_tokens=8, messages=HI)
    assert breaker.state == OPEN


# -- the retry budget ------------------------------------------------------------------


def attempts_per_call(api: FakeClaude) -> list[int]:
    """How many HTTP attempts each call made (a call starts at retry count 0)."""
    counts: list[int] = []
    for call in api.calls:
        if call.retry_count == 0:
            counts.append(0)
        counts[-1] += 1
    return counts


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_budget_runs_out_mid_outage_and_the_caller_gets_the_sdk_error(
        api: FakeClaude, clock: VirtualClock, mode: str, shape: str) -> None:
    budget = RetryBudget(capacity=3, ratio=0.5, cost=1.0)
    api.respond(*["overloaded_error"] * 20)
    errors = [failure(lambda: send(api, [BudgetMiddleware(budget)], mode=mode, shape=shape))
              for _ in range(4)]
    # tokens: 3 -> 2 -> 1 | 1.5 -> 0.5 (stop) | 1.0 -> 0 (stop) | 0.5 (stop)
    assert attempts_per_call(api) == [3, 2, 2, 1]
    assert [type(e) for e in errors] == [anthropic.OverloadedError] * 4
    assert (budget.granted, budget.denied) == (4, 3)
    assert clock.now() == api.calls[-1].time  # stopped at once: no SDK sleep after it
    stopped = errors[-1]
    assert isinstance(stopped, anthropic.APIStatusError)
    assert stopped.response.headers["x-should-retry"] == "false"
    assert stopped.response.headers[BUDGET_HEADER] == "empty"
    assert stopped.type == "overloaded_error"  # the body is the server's
    assert BUDGET_HEADER not in errors[0].response.headers  # SDK retries ran out, not budget


@pytest.mark.parametrize("mode", MODES)
def test_budget_without_middleware_would_retry_every_call(api: FakeClaude, mode: str) -> None:
    # the control for the test above: the same outage without the budget
    api.respond(*["overloaded_error"] * 12)
    for _ in range(4):
        failure(lambda: send(api, [], mode=mode))
    assert attempts_per_call(api) == [3, 3, 3, 3]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("outcome", "sdk_class"), [
    ("connection_error", anthropic.APIConnectionError),
    ("timeout", anthropic.APITimeoutError),
])
def test_empty_budget_on_connection_errors_sends_no_more_attempts(
        api: FakeClaude, clock: VirtualClock, mode: str, outcome: str,
        sdk_class: type[Exception]) -> None:
    budget = RetryBudget(capacity=1, ratio=0.25, cost=1.0)
    api.respond(*[outcome] * 10)
    errors = [failure(lambda: send(api, [BudgetMiddleware(budget)], mode=mode))
              for _ in range(3)]
    assert [type(e) for e in errors] == [sdk_class] * 3  # exactly the SDK's type
    # call 1: one paid retry, then refused; calls 2 and 3: refused at once
    assert attempts_per_call(api) == [2, 1, 1]
    assert budget.granted == 1


def test_refused_connection_retries_cost_only_the_sdk_sleeps(api: FakeClaude,
                                                             clock: VirtualClock) -> None:
    log = AttemptLog(clock=clock)
    budget = RetryBudget(capacity=1, ratio=0.1)
    budget.try_spend()  # empty
    api.respond("connection_error")
    error = failure(lambda: send(api, [log, BudgetMiddleware(budget)], max_retries=2))
    assert type(error) is anthropic.APIConnectionError
    assert len(api.calls) == 1
    assert [(a.retry, a.sent, a.error) for a in log.attempts] == [
        (0, True, "APIConnectionError"), (1, False, "APIConnectionError"),
        (2, False, "APIConnectionError")]
    waits = [a.wait for a in log.attempts[1:]]
    assert waits[0] is not None and 0.375 <= waits[0] <= 0.5  # the SDK's backoff schedule
    assert waits[1] is not None and 0.75 <= waits[1] <= 1.0


@pytest.mark.parametrize("mode", MODES)
def test_budget_deposits_on_first_attempts_and_spends_on_retries(api: FakeClaude,
                                                                 mode: str) -> None:
    budget = RetryBudget(capacity=10, ratio=0.5, cost=2.0)
    api.respond("rate_limit_error", "ok")  # a 429 the SDK retries: a retry like any other
    assert send(api, [BudgetMiddleware(budget)], mode=mode) == TEXT
    assert budget.tokens == pytest.approx(8.0)  # capped deposit, then one retry at cost 2
    assert send(api, [BudgetMiddleware(budget)], mode=mode) == TEXT
    assert budget.tokens == pytest.approx(8.5)
    api.respond("invalid_request_error")  # the SDK does not retry a 400: nothing spent
    failure(lambda: send(api, [BudgetMiddleware(budget)], mode=mode))
    assert budget.tokens == pytest.approx(9.0)
    assert (budget.granted, budget.denied) == (1, 0)


def test_budget_emptied_by_others_during_the_sdk_sleep(api: FakeClaude,
                                                       clock: VirtualClock) -> None:
    budget = RetryBudget(capacity=1, ratio=0.0)
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=clock)

    def others(request: anthropic.APIRequest, call_next: anthropic.CallNext) -> Any:
        try:
            return call_next(request)
        finally:
            while budget.try_spend():  # other calls take the last token meanwhile
                pass

    api.respond("overloaded_error")  # a retry that went out would get "ok"
    chain = [BreakerMiddleware(breaker), others, BudgetMiddleware(budget)]
    error = failure(lambda: send(api, chain))
    assert type(error) is anthropic.OverloadedError
    assert error.response.headers[BUDGET_HEADER] == "empty"
    assert len(api.calls) == 1  # the refused retry was answered without HTTP
    assert breaker.consecutive_failures == 1  # and the breaker did not count it again
    api.calls.clear()
    api.respond("connection_error")
    budget = RetryBudget(capacity=1, ratio=0.0)
    error = failure(lambda: send(api, [others, BudgetMiddleware(budget)]))
    assert type(error) is anthropic.APIConnectionError
    assert len(api.calls) == 1


def test_breaker_and_budget_together(api: FakeClaude, clock: VirtualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=4, recovery_timeout=30.0, clock=clock)
    budget = RetryBudget(capacity=1, ratio=0.1)
    chain = [BreakerMiddleware(breaker), BudgetMiddleware(budget)]
    api.respond("overloaded_error", "overloaded_error")  # a third attempt would get "ok"
    error = failure(lambda: send(api, chain))
    assert type(error) is anthropic.OverloadedError
    assert attempts_per_call(api) == [2]  # one retry paid, then the budget stopped the SDK
    assert breaker.consecutive_failures == 2  # the stopped 529 still counts
    api.respond("connection_error")
    error = failure(lambda: send(api, chain))
    assert type(error) is anthropic.APIConnectionError
    assert attempts_per_call(api) == [2, 1]
    assert breaker.consecutive_failures == 3  # the locally answered retries do not count
    api.respond("overloaded_error")
    failure(lambda: send(api, chain))
    assert breaker.state == OPEN
    api.calls.clear()
    tokens = budget.tokens
    assert type(failure(lambda: send(api, chain))) is CircuitOpenError
    assert (api.calls, budget.tokens) == ([], tokens)  # refused before any deposit


# -- the attempt log -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_attempt_log_sees_each_attempt(api: FakeClaude, clock: VirtualClock,
                                       mode: str) -> None:
    seen: list[Attempt] = []
    log = AttemptLog(seen.append, clock=clock)
    api.respond("overloaded_error", "connection_error", "ok")
    assert send(api, [log], mode=mode) == TEXT
    assert seen == log.attempts
    assert [(a.retry, a.status, a.error) for a in seen] == [
        (0, 529, None), (1, None, "APIConnectionError"), (2, 200, None)]
    assert [a.request_id for a in seen] == [api.calls[0].request_id, None,
                                            api.calls[2].request_id]
    gaps = [api.calls[i + 1].time - api.calls[i].time for i in range(2)]
    assert [a.wait for a in seen] == [None, *[pytest.approx(g) for g in gaps]]
    assert str(seen[1]).startswith("retry 1 after 0.")


def test_attempt_log_outside_an_open_breaker_marks_attempts_not_sent(
        api: FakeClaude, clock: VirtualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    log = AttemptLog(clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [log, BreakerMiddleware(breaker)]))
    assert [(a.retry, a.status, a.sent, a.error) for a in log.attempts] == [
        (0, 529, True, None), (1, None, False, "CircuitOpenError")]


# -- construction, the SDK's rules, imports ---------------------------------------------


def test_wrong_arguments_raise_type_error() -> None:
    with pytest.raises(TypeError, match="breaker"):
        BreakerMiddleware(RetryBudget())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="budget"):
        BudgetMiddleware(CircuitBreaker())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback"):
        AttemptLog(3)  # type: ignore[arg-type]


def test_both_clients_accept_the_middleware(api: FakeClaude) -> None:
    items = [BreakerMiddleware(CircuitBreaker()), BudgetMiddleware(RetryBudget()),
             AttemptLog()]
    assert api.client(middleware=items).middleware == tuple(items)
    assert api.async_client(middleware=items).middleware == tuple(items)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 501,
                                    502, 503, 504, 529])
@pytest.mark.parametrize("header", [None, "true", "false"])
def test_sdk_would_retry_agrees_with_the_sdk(status: int, header: str | None) -> None:
    headers = {} if header is None else {"x-should-retry": header}
    response = httpx2.Response(status, headers=headers)
    client = anthropic.Anthropic(api_key="test")
    assert sdk_would_retry(response) == client._should_retry(response)


@pytest.mark.parametrize("name", ["overloaded_error", "api_error", "rate_limit_error",
                                  "invalid_request_error", "spend_limit_reached",
                                  "service_unavailable"])
def test_status_error_is_the_class_the_sdk_raises(api: FakeClaude, name: str) -> None:
    raised = api.raised(name)
    assert isinstance(raised, anthropic.APIStatusError)
    response = httpx2.Response(raised.status_code, headers=raised.response.headers,
                               content=raised.response.content, request=raised.request)
    assert type(status_error(response)) is type(raised)


def test_import_resilience_does_not_import_the_middleware() -> None:
    code = ("import sys, resilience; "
            "print('resilience.middleware' in sys.modules, 'anthropic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def test_httpx_is_not_what_the_sdk_sends_with() -> None:
    # the middleware reads httpx2 responses; a plain httpx response would be a test mistake
    assert not issubclass(httpx2.Response, httpx.Response)


def test_a_local_answer_does_not_leak_into_the_next_call(api: FakeClaude,
                                                         clock: VirtualClock) -> None:
    budget = RetryBudget(capacity=1, ratio=0.0)
    budget.try_spend()  # empty: the SDK's retries of a connection error are answered here

    def answered_locally() -> None:
        api.respond("connection_error")
        failure(lambda: send(api, [BudgetMiddleware(budget)], max_retries=1))

    answered_locally()
    log = AttemptLog(clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [log], max_retries=0))
    assert [(a.status, a.sent) for a in log.attempts] == [(529, True)]
    answered_locally()
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=clock)
    api.respond("overloaded_error")
    failure(lambda: send(api, [BreakerMiddleware(breaker)], max_retries=0))
    assert breaker.consecutive_failures == 1


# -- what the caller's exception says after the budget stopped the SDK --------------------


def test_classify_reads_the_server_past_the_budgets_stop_sign(api: FakeClaude) -> None:
    from resilience import classify, may_fall_back

    budget = RetryBudget(capacity=1, ratio=0.0)
    budget.try_spend()
    api.respond("overloaded_error")
    stopped = failure(lambda: send(api, [BudgetMiddleware(budget)]))
    assert isinstance(stopped, anthropic.OverloadedError)
    assert stopped.response.headers["x-should-retry"] == "false"  # what stopped the SDK
    assert classify(stopped).retryable is True  # the server sent a plain 529
    assert may_fall_back(stopped) is True
    api.respond("spend_limit_reached")  # a 429 the SDK retries, but no retry can fix
    capped = failure(lambda: send(api, [BudgetMiddleware(budget)]))
    assert type(capped).__name__ == "EnforcedSpendLimitReachedError"
    assert BUDGET_HEADER in capped.response.headers
    assert may_fall_back(capped) is False


def test_the_servers_own_x_should_retry_survives_the_stop_sign(api: FakeClaude,
                                                              clock: VirtualClock) -> None:
    from resilience import classify
    from resilience.testing import error

    budget = RetryBudget(capacity=1, ratio=0.0)
    budget.try_spend()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    api.respond(error("invalid_request_error", should_retry=True))  # the server says retry
    stopped = failure(lambda: send(api, [BreakerMiddleware(breaker),
                                         BudgetMiddleware(budget)]))
    assert isinstance(stopped, anthropic.BadRequestError)
    assert len(api.calls) == 1
    assert stopped.response.headers["x-should-retry"] == "false"
    assert classify(stopped).retryable is True  # the server's true, not our stop sign
    assert breaker.state == CLOSED  # a 400 is the caller's, whatever the headers say


def test_attempt_log_remembers_a_bounded_number_of_calls(api: FakeClaude,
                                                         clock: VirtualClock) -> None:
    from resilience import middleware

    log = AttemptLog(clock=clock)
    client = api.client(middleware=[log], max_retries=0)
    for _ in range(5):
        client.messages.create(model=api.model, max_tokens=16, messages=HI)
    assert len(log._ends) == 5
    limit, middleware._RECENT_CALLS = middleware._RECENT_CALLS, 3
    try:
        for _ in range(5):
            client.messages.create(model=api.model, max_tokens=16, messages=HI)
    finally:
        middleware._RECENT_CALLS = limit
    assert len(log._ends) == 3  # memory stays bounded however many calls go through
