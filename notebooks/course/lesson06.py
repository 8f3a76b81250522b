"""Checkers for lesson 06, "Backoff and jitter".

* ``GuideFixed``: a backoff strategy class (``base``, ``cap`` and ``next_delay(n, previous,
  u)``) that fixes the guide's formula. The checker plugs it into the real
  :func:`resilience.retry` and runs a crowd of 200 clients through an outage (see
  :func:`crowd`), judged on calls and time against full jitter with the same base and cap.
* ``call_with_backoff(call, strategy, attempts, clock, rng)``: a retry loop that uses a
  strategy's ``next_delay`` correctly (``n`` from 0, ``previous`` from ``base``, one draw
  per wait), run against the simulated API and judged on its exact waits and calls.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from course import exercise
from resilience import VirtualClock, backoff, retry
from resilience.ratelimit import TokenBucket

__all__ = ["CHECKS", "CrowdResult", "check_call_with_backoff", "check_guide_fixed", "crowd"]

BASE, CAP = 1.0, 60.0
"""The guide's base and cap, in seconds."""
CLIENTS, OUTAGE, CAPACITY, ATTEMPTS = 200, 10.0, 5.0, 20
"""The crowd of exercise 06.1: 200 clients, a 10 s outage, then 5 requests/s; 20 attempts."""
MORE_CALLS, MORE_TIME = 1.25, 1.5
"""How much worse than full jitter a strategy may do: 25 % more calls, 50 % more time."""


class Overloaded(Exception):
    """The crowd's server is full (a 529 in the real API)."""


@dataclass(frozen=True, slots=True)
class CrowdResult:
    """What a crowd did: calls the server got, clients served, when the last was served."""

    calls: int
    served: int
    last_s: float


def crowd(strategy: Any, clients: int = CLIENTS, outage: float = OUTAGE,
          capacity: float = CAPACITY, attempts: int = ATTEMPTS) -> CrowdResult:
    """Run ``clients`` clients with ``resilience.retry(backoff=strategy)`` through an outage.

    Every client sends at t = 0 on one virtual clock. The server answers ``Overloaded``
    until ``outage`` seconds, then takes ``capacity`` requests per second (a token bucket
    of ``capacity`` tokens) and answers ``Overloaded`` to the rest. Client ``i`` draws its
    jitter from ``random.Random(i)``; it gives up after ``attempts`` attempts.
    """
    from resilience.testing.aio import run

    clock = VirtualClock()
    server = TokenBucket(capacity, capacity, start=outage)
    calls = 0
    served: list[float] = []

    async def send() -> None:
        nonlocal calls
        calls += 1
        now = clock.now()
        if now < outage or server.take(now) != 0.0:
            raise Overloaded

    async def client(i: int) -> None:
        ask = retry(attempts=attempts, deadline=None, backoff=strategy, clock=clock,
                    rng=random.Random(i), retry_on=Overloaded)(send)
        try:
            await ask()
        except Overloaded:
            return
        served.append(clock.now())

    async def main() -> None:
        await asyncio.gather(*(client(i) for i in range(clients)))

    run(main(), clock=clock)
    return CrowdResult(calls, len(served), max(served, default=math.nan))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@exercise("06.1", "the guide's backoff, fixed")
def check_guide_fixed(solution: Callable[..., Any]) -> None:
    """``solution()`` is a strategy with waits in [0, 60] s that spreads a crowd as well as
    full jitter: every client served, at most 25 % more calls and 50 % more time."""
    strategy = solution()
    assert callable(getattr(strategy, "next_delay", None)) and _number(
        getattr(strategy, "base", None)), (
        f"GuideFixed() gave {strategy!r}; expected an object with `base` (1.0) and a "
        "method next_delay(n, previous, u).")
    previous = float(strategy.base)
    for n in range(40):
        for u in (0.0, 0.3, 0.7, 0.999):
            d = strategy.next_delay(n, previous, u)
            assert _number(d) and 0.0 <= d <= CAP, (
                f"next_delay({n}, {previous:g}, {u}) returned {d!r}; every wait must be a "
                f"number of seconds from 0 to the cap, {CAP:g} s.")
    spread = [strategy.next_delay(5, previous, u) for u in (0.0, 0.999)]
    assert spread[0] != spread[1], (
        f"before retry 5 every client waits {spread[0]:g} s whatever u is: that is no "
        "jitter at all, and clients that failed together retry together.")
    mine, full = crowd(strategy), crowd(backoff.full_jitter(BASE, CAP))
    story = (f"your crowd: {mine.served} of {CLIENTS} served, {mine.calls} calls, the last "
             f"at {mine.last_s:.1f} s; full jitter: {full.served} served, {full.calls} calls, "
             f"the last at {full.last_s:.1f} s")
    assert mine.served == CLIENTS, f"{story}. Some clients ran out of attempts."
    assert mine.calls <= MORE_CALLS * full.calls, (
        f"{story}. Too many calls: the clients keep colliding. Make the jitter scale with "
        "the wait (a random share of min(cap, base * 2**n)), not a fixed 0 to 1 s.")
    assert mine.last_s <= MORE_TIME * full.last_s, (
        f"{story}. Too slow: spread the waits wider, from near 0 up to the exponential "
        "wait, so the crowd thins out early.")


# -- 06.2: a retry loop that calls the strategy correctly ------------------------------------

def _expected_waits(strategy: backoff.Backoff, waits: int, seed: int) -> list[float]:
    rng, previous, out = random.Random(seed), strategy.base, []
    for n in range(waits):
        previous = float(strategy.next_delay(n, previous, rng.random()))
        out.append(previous)
    return out


def _loop(solution: Callable[..., Any], strategy: backoff.Backoff, attempts: int,
          outcomes: list[str], seed: int = 7) -> tuple[Any, list[float], list[int | None]]:
    """Run the learner's loop against the simulated API: (result or error, waits, statuses)."""
    from resilience.testing import FakeClaude

    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*outcomes)
        client = api.client(max_retries=0)

        def call() -> Any:
            return client.messages.create(model=api.model, max_tokens=64,
                                          messages=[{"role": "user", "content": "Hi"}])

        try:
            result = solution(call, strategy, attempts, clock, random.Random(seed))
        except NotImplementedError:
            raise
        except Exception as e:  # what the learner's loop raised is part of the answer
            result = e
        return result, list(clock.sleeps), [c.status for c in api.calls]


@exercise("06.2", "a retry loop that uses a strategy")
def check_call_with_backoff(solution: Callable[..., Any]) -> None:
    """Exact waits (``n`` from 0, ``previous`` from base, one draw each), no wait after the
    last attempt, the last error re-raised, a 400 never retried."""
    decorrelated = backoff.decorrelated_jitter(0.5, 30.0)
    clock = VirtualClock()
    got = solution(lambda: "answer", decorrelated, 3, clock, random.Random(0))
    assert got == "answer" and not clock.sleeps, (
        f"when call() succeeds at once you returned {got!r} after {len(clock.sleeps)} "
        "waits; return its result, with no wait.")

    import anthropic  # the simulated API needs the SDK: import it once the loop runs

    got, waits, statuses = _loop(solution, decorrelated, 6, ["overloaded_error"] * 4 + ["ok"])
    if isinstance(got, BaseException):
        raise AssertionError(f"four 529s then a success, 6 attempts allowed: your loop raised "
                             f"{type(got).__name__} after {len(statuses)} calls; expected the "
                             "message.")
    assert statuses == [529] * 4 + [200], (
        f"four 529s then a success: the server saw {statuses}; expected 5 calls.")
    assert isinstance(got, anthropic.types.Message), (
        f"you returned {got!r}; return what call() returned.")
    expected = _expected_waits(decorrelated, 4, 7)
    assert len(waits) == 4 and all(math.isclose(w, e) for w, e in zip(waits, expected,
                                                                      strict=True)), (
        f"with decorrelated jitter your waits were {[round(w, 3) for w in waits]}; expected "
        f"{[round(e, 3) for e in expected]}: n starts at 0, previous starts at "
        "strategy.base and is then the last delay, one rng.random() per wait, "
        "clock.sleep(delay).")

    full = backoff.full_jitter(0.5, 30.0)
    got, waits, statuses = _loop(solution, full, 3, ["overloaded_error"] * 5)
    assert len(statuses) == 3, (
        f"attempts=3 and the API keeps failing: you made {len(statuses)} calls; make 3.")
    assert len(waits) == 2, (
        f"attempts=3: you waited {len(waits)} times; wait between attempts only, never "
        "after the last one.")
    expected = _expected_waits(full, 2, 7)
    assert all(math.isclose(w, e) for w, e in zip(waits, expected, strict=True)), (
        f"with full jitter your waits were {[round(w, 3) for w in waits]}; expected "
        f"{[round(e, 3) for e in expected]}: the wait before the first retry is "
        "next_delay(0, ...), then next_delay(1, ...).")
    assert isinstance(got, anthropic.APIStatusError) and got.status_code == 529, (
        f"when the attempts run out you {_ended(got)}; re-raise the last error as it is.")

    got, waits, statuses = _loop(solution, full, 5, ["invalid_request_error", "ok"])
    assert statuses == [400] and not waits, (
        f"a 400 led to {len(statuses)} calls and {len(waits)} waits; a bad request fails the "
        "same way every time: re-raise it at once (resilience.classify(e).retryable).")
    assert isinstance(got, anthropic.BadRequestError), (
        f"after a 400 you {_ended(got)}; re-raise the BadRequestError.")


def _ended(got: Any) -> str:
    if isinstance(got, BaseException):
        return f"raised {type(got).__name__}"
    return f"returned {got!r}"


CHECKS = {"GuideFixed": check_guide_fixed, "call_with_backoff": check_call_with_backoff}
