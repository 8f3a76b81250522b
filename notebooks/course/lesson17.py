"""Checkers for lesson 17, "Async and concurrency", and the API they run the learner's code on.

Both checkers run the learner's ``async def`` on a virtual-time event loop
(:meth:`FakeClaude.run <resilience.testing.FakeClaude.run>`), through a real
``AsyncAnthropic`` client, so no real time passes.

* :class:`Echo`: a scenario that answers each prompt with its own text (``"Answer to
  <prompt>"``) after a latency of its own, fails the prompts it is told to, and records when
  each request was in flight (for counting concurrent requests).
* ``fetch_all(client, model, prompts, limit)``: one answer per prompt, in the order of
  ``prompts``; at most ``limit`` requests in flight, and ``limit`` of them whenever that many
  are left (a greedy schedule, not batches); an error raises (directly, or inside an
  ``ExceptionGroup``), never swallowed.
* ``ask_within(client, model, prompt, attempts, deadline)``: at most ``attempts`` attempts
  on a client with ``max_retries=0``, retrying only what ``classify`` calls retryable, with
  a wait before each retry; the last error re-raised as it is; ``TimeoutError`` once
  ``deadline`` seconds have passed, mid-attempt included; a cancelled task ends at once,
  cancelled (``CancelledError`` is never retried, swallowed or converted).
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import json
import random
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

import anthropic

from course import exercise
from resilience.clock import VirtualClock
from resilience.testing.outcomes import Exchange, Outcome, Reply, error

__all__ = ["CHECKS", "Echo", "check_ask_within", "check_fetch_all", "greedy_finish",
           "peak_in_flight"]


class Echo:
    """A scenario: each prompt answered with ``"Answer to <prompt>"`` after its own latency.

    Args:
        latency: prompt -> seconds the answer takes (prompts not listed answer at once).
        fail: prompts answered with ``failure`` (after their latency) instead.
        failure: a catalogue error name (default ``"invalid_request_error"``, a 400).

    Attributes:
        spans: ``(arrived, answered)`` virtual times of each request, in arrival order.
    """

    def __init__(self, latency: Mapping[str, float], fail: Iterable[str] = (),
                 failure: str = "invalid_request_error") -> None:
        for prompt, seconds in latency.items():
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise TypeError(f"latency must map prompts to seconds, got {prompt!r}: "
                                f"{seconds!r}")
            if not 0 <= seconds < float("inf"):
                raise ValueError(f"latency must be finite seconds >= 0, got {prompt!r}: "
                                 f"{seconds!r}")
        self.latency = dict(latency)
        self.fail = frozenset(fail)
        self.failure = error(failure)
        self.spans: list[tuple[float, float]] = []

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """Wait the prompt's latency (its own, on a virtual-time loop), then answer it."""
        prompt = _prompt(exchange)
        seconds = self.latency.get(prompt, 0.0)
        exchange.clock.advance(seconds)
        self.spans.append((exchange.arrived, exchange.arrived + seconds))
        return self.failure if prompt in self.fail else Reply(text=f"Answer to {prompt}")


def _prompt(exchange: Exchange) -> str:
    """The text of the request's last message: a plain string, or its text blocks joined."""
    messages = exchange.body.get("messages") or [{}]
    content = messages[-1].get("content", "") if isinstance(messages[-1], dict) else ""
    if isinstance(content, list) and all(
            isinstance(block, dict) and block.get("type") == "text" for block in content):
        return "".join(str(block.get("text", "")) for block in content)
    return content if isinstance(content, str) else json.dumps(content)


def peak_in_flight(spans: Iterable[tuple[float, float]]) -> int:
    """The most requests in flight at once; one that ends as another starts does not count."""
    events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def greedy_finish(latencies: Sequence[float], limit: int) -> float:
    """When the work ends if each request starts, in order, as soon as one of ``limit``
    places is free: what a ``Semaphore(limit)`` or ``limit`` workers achieve."""
    free = [0.0] * min(limit, len(latencies))
    for seconds in latencies:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free, default=0.0)


def _coroutine(made: object, name: str) -> Coroutine[Any, Any, Any]:
    if not inspect.iscoroutine(made):
        raise AssertionError(
            f"calling {name}(...) returned {type(made).__name__}, not a coroutine: write "
            f"`async def {name}(...)` and `await` the client's calls inside it.")
    return made


# -- 17.1 -------------------------------------------------------------------------------

_LATENCIES = (3.0, 1.0, 4.0, 1.0, 5.0, 2.0, 6.0, 2.0, 3.0, 5.0, 1.0, 4.0)
_HOUR = 3600.0


def _fetched(solution: Callable[..., Any], prompts: list[str], limit: int,
             latencies: Sequence[float], fail: Iterable[str] = ()) -> tuple[Any, float, Echo]:
    """Run ``fetch_all``: (result or error, virtual time it ended, the API's record)."""
    from resilience.testing import FakeClaude

    echo = Echo(dict(zip(prompts, latencies, strict=True)), fail)
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(echo)
        main = _coroutine(solution(api.async_client(), api.model, list(prompts), limit),
                          "fetch_all")
        try:
            result = api.run(asyncio.wait_for(main, _HOUR))
        except NotImplementedError:
            raise
        except Exception as e:  # what the learner's code raised is part of the answer
            result = e
        return result, api.clock.now(), echo


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


@exercise("17.1", "fetch them all, at most K at a time")
def check_fetch_all(solution: Callable[..., Any]) -> None:
    """At most ``limit`` in flight, kept busy; answers in input order; errors propagate."""
    prompts = [f"Question {i}" for i in range(len(_LATENCIES))]
    expected = [f"Answer to {p}" for p in prompts]
    got, ended, echo = _fetched(solution, prompts, 3, _LATENCIES)
    if isinstance(got, TimeoutError) and ended >= _HOUR:
        raise AssertionError("fetch_all was still running after an hour of virtual time.")
    if isinstance(got, BaseException):
        raise AssertionError(
            f"with 12 prompts, limit=3 and no failing request, fetch_all raised "
            f"{type(got).__name__}: {got}")
    peak = peak_in_flight(echo.spans)
    assert peak <= 3, (
        f"with limit=3 the API saw {peak} requests in flight at once; let at most `limit` "
        "through at a time (an asyncio.Semaphore(limit) around each call, or `limit` "
        "workers).")
    assert len(echo.spans) == len(prompts), (
        f"12 prompts should make 12 requests; the API saw {len(echo.spans)}.")
    if isinstance(got, list) and sorted(map(str, got)) == sorted(expected) and got != expected:
        raise AssertionError(
            "you returned the right answers in the order they arrived; return them in the "
            "order of `prompts` (gather keeps its arguments' order; workers can write to "
            "results[i]).")
    assert got == expected, (
        f"expected {expected[:2]} ... (one 'Answer to <prompt>' per prompt, in order); you "
        f"returned {got!r:.120}")
    best = greedy_finish(_LATENCIES, 3)
    if peak == 1:
        raise AssertionError(
            f"you sent one request at a time: the work took {ended:.0f} s; with 3 in flight "
            f"it takes {best:.0f} s.")
    assert ended <= best + 1e-6, (
        f"the work took {ended:.0f} s; keeping 3 requests in flight takes {best:.0f} s. Start "
        "the next prompt as soon as any request finishes: do not wait for a whole batch.")

    got, ended, echo = _fetched(solution, prompts[:5], 20, _LATENCIES[:5])
    assert got == expected[:5] and peak_in_flight(echo.spans) == 5, (
        f"with 5 prompts and limit=20 send all 5 at once; you had "
        f"{peak_in_flight(echo.spans)} in flight and returned {got!r:.120}")

    got, _, _ = _fetched(solution, [], 3, [])
    assert got == [], f"with no prompts return []; you returned {got!r:.80}"

    got, _, echo = _fetched(solution, prompts[:8], 3, _LATENCIES[:8], fail={"Question 5"})
    if not isinstance(got, BaseException):
        raise AssertionError(
            f"the request for 'Question 5' failed with a 400, and you returned {got!r:.100}: "
            "the error was swallowed. Let it propagate (gather's default, "
            "return_exceptions=False, raises it).")
    assert any(isinstance(leaf, anthropic.BadRequestError) for leaf in _leaves(got)), (
        f"the request for 'Question 5' failed with a 400 and you raised "
        f"{type(got).__name__}; raise the SDK's own error (anthropic.BadRequestError), or "
        "an ExceptionGroup holding it, not a new one.")


# -- 17.2 -------------------------------------------------------------------------------

_CANCELLED = object()


def _asked(solution: Callable[..., Any], *outcomes: object, scenarios: Sequence[Any] = (),
           attempts: int, deadline: float,
           cancel_at: float | None = None) -> tuple[Any, float, list[float]]:
    """Run ``ask_within`` as a task: (result, error or _CANCELLED; end time; attempt times)."""
    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(*outcomes)
        api.scenario(*scenarios)
        main = _coroutine(solution(api.async_client(max_retries=0), api.model, "Hi",
                                   attempts, deadline), "ask_within")

        async def go() -> tuple[asyncio.Task[Any], float]:
            loop = asyncio.get_running_loop()
            task = loop.create_task(main)
            if cancel_at is not None:
                loop.call_later(cancel_at, task.cancel)
            await asyncio.wait([task], timeout=_HOUR)
            if not task.done():
                raise AssertionError("ask_within was still running after an hour of "
                                     "virtual time.")
            return task, loop.time()

        task, ended = api.run(go())
        if task.cancelled():
            return _CANCELLED, ended, [call.time for call in api.calls]
        failure = task.exception()
        if isinstance(failure, NotImplementedError):
            raise failure
        return (task.result() if failure is None else failure), ended, [
            call.time for call in api.calls]


def _what(got: Any) -> str:
    if got is _CANCELLED:
        return "ended cancelled"
    if isinstance(got, BaseException):
        return f"raised {type(got).__name__}"
    return f"returned {got!r:.60}"


@exercise("17.2", "a retry loop that a cancellation can stop")
def check_ask_within(solution: Callable[..., Any]) -> None:
    """Retries overloads with waits; not a 400; the last error as it is; a whole-call
    deadline; a cancellation ends it at once."""
    from resilience.testing import Outage, Slow
    from resilience.testing.responses import DEFAULT_TEXT

    got, _, times = _asked(solution, "overloaded_error", "overloaded_error", "ok",
                           attempts=4, deadline=60.0)
    assert got == DEFAULT_TEXT and len(times) == 3, (
        f"with two 529s, then an answer (attempts=4), you {_what(got)} after {len(times)} "
        "attempt(s); retry what classify(e).retryable allows and return "
        "message.content[0].text.")
    assert all(b > a for a, b in itertools.pairwise(times)), (
        f"your attempts arrived at t={[round(t, 3) for t in times]}: you retried at once. "
        "Wait before each retry with `await asyncio.sleep(...)` (never time.sleep: it "
        "blocks every task).")

    got, _, times = _asked(solution, "invalid_request_error", "ok", attempts=4, deadline=60.0)
    assert len(times) == 1 and isinstance(got, anthropic.BadRequestError), (
        f"a 400 led you to make {len(times)} attempt(s) and you {_what(got)}; a bad request "
        "fails the same way every time: re-raise it at once (classify(e).retryable is "
        "False).")

    got, _, times = _asked(solution, "overloaded_error", "overloaded_error", "api_error", "ok",
                           attempts=3, deadline=60.0)
    assert len(times) == 3, (
        f"with attempts=3 and failures all along you made {len(times)} attempt(s); "
        "attempts=3 means 3 in all, the first included.")
    assert type(got) is anthropic.InternalServerError, (
        f"after 529, 529, 500 with attempts=3 you {_what(got)}; re-raise the last error "
        "(here the 500's InternalServerError) as it is: not the first, not a new or "
        "wrapped one, and never return instead.")

    got, ended, times = _asked(solution, scenarios=[Slow(100.0)], attempts=3, deadline=30.0)
    assert isinstance(got, TimeoutError) and ended <= 30.0 + 1e-6, (
        f"an answer that takes 100 s, with deadline=30: you {_what(got)} at t={ended:.0f} s. "
        "Stop it at the deadline, mid-request: `async with asyncio.timeout(deadline):` "
        "raises TimeoutError when it passes.")

    got, ended, times = _asked(solution, scenarios=[Slow(20.0), Outage(0, 1e9)], attempts=5,
                               deadline=30.0)
    assert isinstance(got, TimeoutError) and ended <= 30.0 + 1e-6, (
        f"with 529s that each take 20 s and deadline=30 you {_what(got)} at t={ended:.0f} s, "
        f"after attempts at t={[round(t, 1) for t in times]}. The deadline is for the whole "
        "call: one asyncio.timeout around the loop, not one per attempt.")

    got, ended, times = _asked(solution, scenarios=[Slow(10.0), Outage(0, 1e9)], attempts=10,
                               deadline=60.0, cancel_at=5.0)
    if len(times) > 1:
        raise AssertionError(
            f"the checker cancelled your task at t=5 s, mid-attempt, and you went on to "
            f"attempts at t={[round(t, 1) for t in times[1:]]}: you retried a CancelledError. "
            "Catch anthropic.APIError (or Exception), never BaseException or a bare except.")
    assert got is _CANCELLED and ended <= 5.0 + 1e-6, (
        f"the checker cancelled your task at t=5 s and it {_what(got)} at t={ended:.0f} s; "
        "a cancelled task must end at once, cancelled: let the CancelledError out as it is.")


CHECKS = {"fetch_all": check_fetch_all, "ask_within": check_ask_within}
