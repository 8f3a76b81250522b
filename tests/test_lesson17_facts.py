"""Every factual claim lesson 17 ("Async and concurrency") makes, checked by running it.

The tests run the lesson's code cells once (not the plot or the exercises) against the
installed SDK and the simulated API on virtual time, and pin the numbers its prose and
outputs state. Then each exercise checker is fed plausible wrong answers, which it must
reject with the right advice.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic._constants import DEFAULT_CONNECTION_LIMITS
from course.lesson17 import (
    Echo,
    check_ask_within,
    check_fetch_all,
    greedy_finish,
    peak_in_flight,
)
from lesson_code import run_lesson

from resilience import VirtualClock, classify
from resilience.testing import FakeClaude, Outage, Slow
from resilience.testing.responses import DEFAULT_TEXT

STEM = "17_async_and_concurrency"


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plot and exercises skipped)."""
    return run_lesson(STEM)


def kinds(results: list[Any]) -> dict[str, int]:
    return dict(Counter("answer" if isinstance(r, str) else type(r).__name__ for r in results))


# -- AsyncAnthropic on virtual time ---------------------------------------------------------

def test_the_async_client_retries_a_529_on_the_virtual_clock(lesson: dict[str, Any]) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond("overloaded_error", "ok")
        text = api.run(lesson["ask"](api.async_client()))
    seen = [(c.status, c.retry_count) for c in api.calls]
    assert text == DEFAULT_TEXT and seen == [(529, 0), (200, 1)], (
        f"lesson 17: the async client's attempts on a 529 are now {seen}; the lesson shows "
        "a 529, then a retry that succeeds")
    assert 0.375 <= api.calls[1].time <= 0.5, (
        f"lesson 17: the async SDK's first retry wait is now {api.calls[1].time:.3f} s; the "
        "lesson shows 0.394 s (within the SDK's 0.375-0.5 s band)")


def test_asyncio_sleep_is_a_virtual_timer(lesson: dict[str, Any]) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        loop_time = api.run(lesson["an_hour"]())
    assert loop_time == api.clock.now() == 3600.0, (
        f"lesson 17: after asyncio.sleep(3600) the loop reads {loop_time} and the clock "
        f"{api.clock.now()}; the lesson says both 3600.0")


# -- cancellation -------------------------------------------------------------------------

def test_a_deadline_cancels_the_sdk_mid_request(lesson: dict[str, Any]) -> None:
    seen: list[str] = []
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Slow(30.0))
        ended = api.run(lesson["within"](5.0, lesson["noting"](
            lesson["ask"](api.async_client(max_retries=2)), seen)))
    assert (ended, seen, len(api.calls)) == ("TimeoutError at t=5.000 s", ["CancelledError"],
                                              1), (
        f"lesson 17: a 5 s asyncio.timeout on a 30 s answer now gives {ended!r}, the code "
        f"inside saw {seen}, after {len(api.calls)} attempt(s); the lesson says TimeoutError "
        "at 5 s, CancelledError inside, one attempt (no retry of a cancellation)")
    assert lesson["seen"] == ["CancelledError"]


def test_cancelled_error_is_not_an_exception_and_classify_says_cancelled() -> None:
    assert not issubclass(asyncio.CancelledError, Exception), (
        "lesson 17: asyncio.CancelledError is now an Exception; the lesson says it is only a "
        "BaseException, so `except Exception` lets it through")
    verdict = classify(asyncio.CancelledError())
    assert (verdict.category, verdict.retryable) == ("cancelled", False)
    assert str(verdict) == "cancelled (not retryable)"


def test_the_sdk_catches_exception_not_base_exception() -> None:
    import anthropic._base_client as base

    source = inspect.getsource(base.AsyncAPIClient._request)
    assert "except Exception" in source and "except BaseException" not in source, (
        "lesson 17: the SDK's async retry loop no longer catches just `Exception`; the lesson "
        "says a CancelledError passes through it")


def test_a_cancellation_in_the_sdk_s_retry_wait_ends_the_call(lesson: dict[str, Any]) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Outage(0, 60))
        ended = api.run(lesson["within"](1.0, lesson["ask"](api.async_client(max_retries=5))))
    times = [round(c.time, 3) for c in api.calls]
    assert ended == "TimeoutError at t=1.000 s" and times == [0.0, 0.394], (
        f"lesson 17: with a 1 s deadline in an outage the SDK now ends with {ended!r} after "
        f"attempts at {times}; the lesson says TimeoutError at 1 s after attempts at 0 and "
        "0.394 s")


def test_resilience_retry_lets_the_cancellation_through(lesson: dict[str, Any]) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Outage(0, 60))
        ended = api.run(lesson["within"](3.0, lesson["retrying_ask"](
            api.async_client(max_retries=0), api.clock)))
    times = [c.time for c in api.calls]
    assert ended == "TimeoutError at t=3.000 s", ended
    assert len(times) == 5 and max(times) < 3.0, (
        f"lesson 17: resilience.retry under a 3 s deadline now makes attempts at {times}; "
        "the lesson shows 5 attempts, the last before 3 s")
    assert len(api.clock.sleeps) == len(times), "it was cancelled mid-wait, not after it"


def test_a_loop_that_catches_base_exception_ignores_the_deadline(lesson: dict[str, Any]) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Slow(2.0))
        result = api.run(lesson["within"](1.0, lesson["stubborn"](api.async_client())))
    assert (result, api.clock.now(), len(api.calls)) == (DEFAULT_TEXT, 3.0, 2), (
        f"lesson 17: `stubborn` under a 1 s deadline now gives {result!r} at "
        f"t={api.clock.now()} after {len(api.calls)} attempts; the lesson says an answer at "
        "3 s after 2 attempts")
    # The same deadline around a loop that catches Exception ends it at 1 s.
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Slow(2.0))
        result = api.run(lesson["within"](1.0, lesson["ask"](api.async_client())))
    assert result == "TimeoutError at t=1.000 s" and len(api.calls) == 1


# -- bounded parallelism ------------------------------------------------------------------

def test_the_unbounded_gather(lesson: dict[str, Any]) -> None:
    results, calls, spans = lesson["runs"]["unbounded"]
    assert len(lesson["PROMPTS"]) == 100
    assert kinds(results) == {"answer": 60, "RateLimitError": 40}, (
        f"lesson 17: the unbounded gather of 100 now ends with {kinds(results)}; the lesson "
        "says 60 answers and 40 RateLimitErrors")
    assert (len(calls), sum(c.status == 429 for c in calls)) == (240, 180)
    assert max(end for _, end in spans) == 3.0
    instants = Counter(round(c.time, 3) for c in calls).most_common(3)
    assert instants == [(0.0, 100), (1.0, 80), (2.0, 60)], (
        f"lesson 17: the attempts per instant are now {instants}; the lesson says 100 at 0, "
        "80 at 1.000 and 60 at 2.000 (the SDK waits exactly the retry-after)")
    assert all(c.retry_count is not None and c.retry_count <= 2 for c in calls)


def test_a_thousand_at_once_still_get_60_answers(lesson: dict[str, Any]) -> None:
    prompts = [f"Question {i}" for i in range(1000)]
    results, _, _ = lesson["trial"](lesson["unbounded"], prompts)
    assert kinds(results) == {"answer": 60, "RateLimitError": 940}, (
        f"lesson 17: 1,000 calls at once now end with {kinds(results)}; the lesson's 'try "
        "it' says 60 answers and 940 failures")


@pytest.mark.parametrize("name", ["semaphore", "workers"])
def test_ten_at_a_time(lesson: dict[str, Any], name: str) -> None:
    results, calls, spans = lesson["runs"][name]
    assert kinds(results) == {"answer": 100}, kinds(results)
    assert (len(calls), sum(c.status == 429 for c in calls)) == (100, 0), (
        f"lesson 17: {name} now makes {len(calls)} attempts with "
        f"{sum(c.status == 429 for c in calls)} 429s; the lesson says 100 and none")
    assert max(end for _, end in spans) == 10.0
    assert max(lesson["in_flight"](spans)[1]) == 10
    assert results == [DEFAULT_TEXT] * 100


def test_semaphore_and_workers_agree(lesson: dict[str, Any]) -> None:
    assert lesson["runs"]["semaphore"][0] == lesson["runs"]["workers"][0]
    assert [c.time for c in lesson["runs"]["semaphore"][1]] == [
        c.time for c in lesson["runs"]["workers"][1]]


def test_forty_workers_overrun_the_limit(lesson: dict[str, Any]) -> None:
    workers = lesson["workers"]

    async def forty(client: Any, prompts: list[str], spans: list[Any]) -> list[Any]:
        return list(await workers(client, prompts, spans, count=40))

    results, calls, spans = lesson["trial"](forty)
    seen = (kinds(results), sum(c.status == 429 for c in calls), max(e for _, e in spans))
    assert seen == ({"answer": 96, "RateLimitError": 4}, 80, 5.0), (
        f"lesson 17: 40 workers now give (results, 429s, end) = {seen}; the lesson's 'try it' "
        "says 96 answers, 4 RateLimitErrors, 80 429s, done at t=5 s")


def test_the_plot_helpers(lesson: dict[str, Any]) -> None:
    _, calls, spans = lesson["runs"]["unbounded"]
    times, counts = lesson["in_flight"](spans)
    assert max(counts) == 100 and counts[-1] == 0
    assert dict(zip(times, counts, strict=True))[2.0] == 20  # the cliff at t=2
    done_at, answered = lesson["answers"](calls)
    assert answered[-1] == 60 and done_at[-2] == 3.0
    _, calls, spans = lesson["runs"]["semaphore"]
    assert lesson["answers"](calls)[1][-1] == 100
    assert set(lesson["in_flight"](spans)[1]) == {0, 10}, "no dip at a hand-over"


# -- one shared client --------------------------------------------------------------------

def test_with_options_shares_the_pool_and_a_new_client_does_not() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        client = api.async_client()
        assert client.with_options(max_retries=0)._client is client._client, (
            "lesson 17: with_options no longer shares the client's http client (its pool)")
        assert api.async_client()._client is not client._client
    real = anthropic.AsyncAnthropic(api_key="unused")
    assert real.with_options(timeout=5.0)._client is real._client
    assert anthropic.AsyncAnthropic(api_key="unused")._client is not real._client


def test_the_sdk_s_pool_limits() -> None:
    limits = (DEFAULT_CONNECTION_LIMITS.max_connections,
              DEFAULT_CONNECTION_LIMITS.max_keepalive_connections)
    assert limits == (1000, 100), (
        f"lesson 17: the SDK's pool limits are now {limits}; the lesson prints 1000 and 100")


def test_a_client_per_task(lesson: dict[str, Any]) -> None:
    assert (lesson["pools"], lesson["still_open"]) == (20, 20)


# -- the checkers' own parts ---------------------------------------------------------------

def test_peak_in_flight_and_greedy_finish() -> None:
    assert peak_in_flight([(0.0, 1.0), (1.0, 2.0)]) == 1  # a hand-over is not an overlap
    assert peak_in_flight([(0.0, 2.0), (1.0, 3.0), (1.5, 1.6)]) == 3
    assert peak_in_flight([]) == 0
    assert greedy_finish([3, 1, 4, 1, 5], 2) == 9.0  # 3 | 1, 4 | 1 | 5 from t=4
    assert greedy_finish([3, 1, 4, 1, 5], 1) == 14.0
    assert greedy_finish([3, 1, 4], 10) == 4.0
    assert greedy_finish([], 3) == 0.0


def test_echo_validates_and_answers() -> None:
    with pytest.raises(ValueError, match="latency"):
        Echo({"a": -1.0})
    with pytest.raises(TypeError, match="latency"):
        Echo({"a": "1"})  # type: ignore[dict-item]
    echo = Echo({"a": 2.0, "b": 1.0}, fail={"b"})

    async def both(client: anthropic.AsyncAnthropic) -> list[Any]:
        return list(await asyncio.gather(*(client.messages.create(
            model=api.model, max_tokens=8, messages=[{"role": "user", "content": p}])
            for p in ("a", "b", [{"type": "text", "text": "a"}])), return_exceptions=True))

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(echo)
        a, b, blocks = api.run(both(api.async_client(max_retries=0)))
    assert a.content[0].text == "Answer to a" and blocks.content[0].text == "Answer to a"
    assert isinstance(b, anthropic.BadRequestError)
    assert echo.spans == [(0.0, 2.0), (0.0, 1.0), (0.0, 2.0)] and api.clock.now() == 2.0


# -- the exercises' checkers reject plausible wrong answers --------------------------------

def _text(message: Any) -> str:
    return str(message.content[0].text)


async def _create(client: anthropic.AsyncAnthropic, model: str, prompt: str) -> Any:
    return await client.messages.create(model=model, max_tokens=64,
                                        messages=[{"role": "user", "content": prompt}])


async def all_at_once(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
    return [_text(m) for m in await asyncio.gather(*(_create(client, model, p)
                                                     for p in prompts))]


async def gate_per_task(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
    async def one(prompt: str) -> str:
        async with asyncio.Semaphore(limit):  # a new gate each time: no bound at all
            return _text(await _create(client, model, prompt))
    return list(await asyncio.gather(*(one(p) for p in prompts)))


def _gated(extra: int = 0, keep_errors: bool = False,
           swallow: bool = False, wrap: bool = False) -> Callable[..., Any]:
    async def fetch_all(client: Any, model: str, prompts: list[str], limit: int) -> list[Any]:
        gate = asyncio.Semaphore(limit + extra)

        async def one(prompt: str) -> Any:
            async with gate:
                try:
                    return _text(await _create(client, model, prompt))
                except anthropic.APIError as e:
                    if swallow:
                        return None
                    if wrap:
                        raise RuntimeError("a request failed") from e
                    raise
        return list(await asyncio.gather(*(one(p) for p in prompts),
                                         return_exceptions=keep_errors))
    return fetch_all


async def one_at_a_time(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
    return [_text(await _create(client, model, p)) for p in prompts]


async def batches(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
    results: list[str] = []
    for i in range(0, len(prompts), limit):
        results += await all_at_once(client, model, prompts[i:i + limit], limit)
    return results


async def arrival_order(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
    results: list[str] = []
    todo = iter(prompts)

    async def worker() -> None:
        for prompt in todo:
            results.append(_text(await _create(client, model, prompt)))
    await asyncio.gather(*(worker() for _ in range(limit)))
    return results


def not_async(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
    return []


@pytest.mark.parametrize(("wrong", "complaint"), [
    (all_at_once, "let at most `limit` through"),
    (gate_per_task, "let at most `limit` through"),
    (_gated(extra=1), "let at most `limit` through"),
    (one_at_a_time, "one request at a time"),
    (batches, "do not wait for a whole batch"),
    (arrival_order, "in the order they arrived"),
    (_gated(keep_errors=True), "the error was swallowed"),
    (_gated(swallow=True), "the error was swallowed"),
    (_gated(wrap=True), "raise the SDK's own error"),
    (not_async, "not a coroutine"),
], ids=["unbounded", "a gate per task", "one too many", "sequential", "batches",
        "arrival order", "return_exceptions", "None for an error", "wrapped error",
        "not async"])
def test_checker_17_1_rejects_wrong_fetchers(wrong: Any, complaint: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert check_fetch_all(wrong) is False
    assert complaint in capsys.readouterr().out


def test_checker_17_1_accepts_a_task_group_and_workers(
        capsys: pytest.CaptureFixture[str]) -> None:
    async def task_group(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
        gate = asyncio.Semaphore(limit)

        async def one(prompt: str) -> str:
            async with gate:
                return _text(await _create(client, model, prompt))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(p)) for p in prompts]
        return [t.result() for t in tasks]

    async def workers(client: Any, model: str, prompts: list[str], limit: int) -> list[str]:
        results = [""] * len(prompts)
        todo = iter(enumerate(prompts))

        async def worker() -> None:
            for i, prompt in todo:
                results[i] = _text(await _create(client, model, prompt))
        await asyncio.gather(*(worker() for _ in range(limit)))
        return results

    assert check_fetch_all(task_group) is True
    assert check_fetch_all(workers) is True
    assert capsys.readouterr().out.count(": pass.") == 2


def _asker(*, deadline_mode: str = "whole", catch: str = "api", wait: bool = True,
           classify_first: bool = True, extra: int = 0, end: str = "raise",
           on_cancel: str = "propagate") -> Callable[..., Any]:
    """Variants of the model answer, each wrong in one way."""

    async def ask_within(client: Any, model: str, prompt: str, attempts: int,
                         deadline: float) -> Any:
        loop = asyncio.get_running_loop()
        start, errors = loop.time(), []
        for attempt in range(attempts + extra):
            try:
                if deadline_mode == "per attempt":
                    async with asyncio.timeout(deadline):
                        return _text(await _create(client, model, prompt))
                return _text(await _create(client, model, prompt))
            except BaseException as e:
                if catch == "api" and not isinstance(e, anthropic.APIError):
                    raise
                if catch == "all but 4xx" and isinstance(e, anthropic.APIError) and \
                        not classify(e).retryable:
                    raise
                if catch == "all but 4xx" and loop.time() - start >= deadline:
                    raise TimeoutError("deadline") from e
                if catch == "api" and classify_first and not classify(e).retryable:
                    raise
                errors.append(e)
                if attempt == attempts + extra - 1:
                    break
                if deadline_mode == "between" and loop.time() - start > deadline:
                    raise TimeoutError("deadline") from e
                if wait:
                    await asyncio.sleep(0.5 * 2 ** attempt)
        if end == "none":
            return None
        if end == "wrap":
            raise RuntimeError("gave up") from errors[-1]
        raise errors[0] if end == "first" else errors[-1]

    async def whole(client: Any, model: str, prompt: str, attempts: int,
                    deadline: float) -> Any:
        try:
            async with asyncio.timeout(deadline):
                return await ask_within(client, model, prompt, attempts, deadline)
        except asyncio.CancelledError:
            if on_cancel == "timeout":
                raise TimeoutError("cancelled") from None
            raise

    return whole if deadline_mode == "whole" else ask_within


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_asker(deadline_mode="between"), "Stop it at the deadline, mid-request"),
    (_asker(deadline_mode="per attempt"), "The deadline is for the whole call"),
    (_asker(catch="all but 4xx"), "you retried a CancelledError"),
    (_asker(on_cancel="timeout"), "a cancelled task must end at once, cancelled"),
    (_asker(wait=False), "you retried at once"),
    (_asker(classify_first=False), "a bad request fails the same way every time"),
    (_asker(extra=1), "attempts=3 means 3 in all"),
    (_asker(extra=-1), "attempts=3 means 3 in all"),
    (_asker(end="none"), "re-raise the last error"),
    (_asker(end="wrap"), "re-raise the last error"),
    (_asker(end="first"), "re-raise the last error"),
], ids=["deadline between attempts", "deadline per attempt", "retries a cancellation",
        "cancellation to TimeoutError", "no wait", "retries a 400", "one attempt too many",
        "one attempt too few", "returns None", "wrapped error", "first error"])
def test_checker_17_2_rejects_wrong_retry_loops(wrong: Any, complaint: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert check_ask_within(wrong) is False
    assert complaint in capsys.readouterr().out


def test_checker_17_2_accepts_the_variants_that_are_right(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_ask_within(_asker()) is True
    assert "pass." in capsys.readouterr().out
