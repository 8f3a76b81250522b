"""Every factual claim lesson 08 ("Circuit breakers") makes, computed from the package and
the installed SDK (through the simulated API).

The lesson prints these numbers under strict nbval; these tests pin what its prose *says*
about them. ``NaiveBreaker`` and ``StandIn`` repeat the lesson's own code (a re-creation of
a guide's breaker, and a fast stand-in that raises copies of real SDK errors).
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections import Counter
from contextlib import suppress
from typing import Any

import anthropic
import pytest

from resilience import CircuitBreaker, CircuitOpenError, VirtualClock, classify
from resilience.fakeapi import FakeClaude, Outage

SEED = 0
PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]


def record(name: str) -> anthropic.APIStatusError:
    with FakeClaude(seed=SEED) as api:
        api.respond(name)
        try:
            api.client(max_retries=0).messages.create(model=api.model, max_tokens=64,
                                                      messages=PROMPT)
        except anthropic.APIStatusError as e:
            return e
    raise AssertionError("expected an error")


OVERLOADED, INVALID = record("overloaded_error"), record("invalid_request_error")


class NaiveOpen(Exception):
    pass


class NaiveBreaker:
    def __init__(self, failure_threshold: int = 5, recovery_timeout: float = 30.0, *,
                 clock: VirtualClock) -> None:
        self.threshold, self.timeout, self.clock = failure_threshold, recovery_timeout, clock
        self.failures, self.opened_at, self.state = 0, 0.0, "closed"
        self.history = [(clock.now(), "closed")]

    def _move(self, state: str) -> None:
        self.state = state
        self.history.append((self.clock.now(), state))
        if state == "open":
            self.opened_at = self.clock.now()

    def __enter__(self) -> None:
        if self.state == "open":
            if self.clock.now() - self.opened_at < self.timeout:
                raise NaiveOpen("circuit is open")
            self._move("half_open")

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None and self.state == "half_open":
            self.failures = 0
            self._move("closed")
        elif exc is not None:
            self.failures += 1
            if self.failures >= self.threshold and self.state != "open":
                self._move("open")

    def call(self, fn: Any, *args: Any) -> Any:
        with self:
            return fn(*args)


class StandIn:
    def __init__(self, clock: VirtualClock, error_rate: float = 0.0, down_until: float = 0.0,
                 seed: int = SEED) -> None:
        self.clock, self.error_rate, self.down_until = clock, error_rate, down_until
        self.rng, self.calls = random.Random(seed), 0

    def __call__(self, error: BaseException | None = None) -> str:
        self.calls += 1
        if error is not None:
            raise copy.copy(error)
        if self.clock.now() < self.down_until or self.rng.random() < self.error_rate:
            raise copy.copy(OVERLOADED)
        return "ok"


def opened(breaker: Any) -> int:
    return sum(state == "open" for _, state in breaker.history)


def ours() -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=VirtualClock())


# -- why stop calling -------------------------------------------------------------------

def test_one_request_during_an_outage_costs_three_calls_and_over_a_second() -> None:
    with FakeClaude(seed=SEED) as api:
        api.respond("overloaded_error", "overloaded_error", "overloaded_error")
        with pytest.raises(anthropic.OverloadedError) as caught:
            api.client().messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    assert caught.value.status_code == 529
    assert len(api.calls) == 3                      # DEFAULT_MAX_RETRIES = 2
    assert f"{api.clock.now():.2f}" == "1.20"
    assert api.clock.now() > 1.0


# -- the state machine on the simulated API ---------------------------------------------

def traffic(breaker: CircuitBreaker | None, clock: VirtualClock,
            seconds: int = 90) -> tuple[list[str], list[Any]]:
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(Outage(start=20, end=65))
        create = api.client(max_retries=0).messages.create
        call = create if breaker is None else breaker(create)
        seen = []
        for _ in range(seconds):
            try:
                call(model=api.model, max_tokens=64, messages=PROMPT)
                seen.append("ok")
            except CircuitOpenError:
                seen.append("rejected")
            except anthropic.APIStatusError:
                seen.append("failed")
            clock.advance(1.0)
    return seen, api.calls


def test_the_breaker_opens_at_24_s_and_closes_at_the_first_trial_after_the_outage() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=10.0, clock=clock)
    seen, calls = traffic(breaker, clock)
    assert Counter(seen) == {"ok": 36, "failed": 9, "rejected": 45}
    assert len(calls) == 45
    assert breaker.history == [(0.0, "closed"), (24.0, "open"),
                               (34.0, "half_open"), (34.0, "open"),
                               (44.0, "half_open"), (44.0, "open"),
                               (54.0, "half_open"), (54.0, "open"),
                               (64.0, "half_open"), (64.0, "open"),   # 1 s before the end
                               (74.0, "half_open"), (74.0, "closed")]  # 9 s after it
    _, without = traffic(None, VirtualClock())
    assert sum(c.status == 529 for c in without) == 45
    assert sum(c.status == 529 for c in calls) == 9


def test_circuit_open_error_says_when_the_next_trial_is() -> None:
    clock = VirtualClock()
    demo = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock)
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond("overloaded_error")
        create = demo(api.client(max_retries=0).messages.create)
        with pytest.raises(anthropic.OverloadedError):
            create(model=api.model, max_tokens=64, messages=PROMPT)
        clock.advance(4.0)
        with pytest.raises(CircuitOpenError) as caught:
            create(model=api.model, max_tokens=64, messages=PROMPT)
    assert len(api.calls) == 1
    e = caught.value
    assert str(e) == "circuit 'claude' is open: the next trial call is allowed in 6.0 s"
    assert e.retry_in == 6.0
    verdict = classify(e)
    assert (verdict.category, verdict.retryable, verdict.retry_after) == ("circuit_open",
                                                                          False, 6.0)


# -- the guide's three bugs ---------------------------------------------------------------

def test_the_recorded_errors_are_real_sdk_classes() -> None:
    assert (type(OVERLOADED).__name__, OVERLOADED.status_code) == ("OverloadedError", 529)
    assert (type(INVALID).__name__, INVALID.status_code) == ("BadRequestError", 400)
    assert classify(copy.copy(OVERLOADED)).retryable


def hour(breaker: Any, error_rate: float = 0.01, seconds: int = 3600) -> Counter[str]:
    service, seen = StandIn(breaker.clock, error_rate), Counter[str]()
    for _ in range(seconds):
        try:
            seen[breaker.call(service)] += 1
        except (CircuitOpenError, NaiveOpen):
            seen["rejected"] += 1
        except anthropic.APIStatusError:
            seen["failed"] += 1
        breaker.clock.advance(1.0)
    return seen


def test_bug_1_at_one_percent_errors_the_naive_breaker_opens_seven_times() -> None:
    naive, mine = NaiveBreaker(clock=VirtualClock()), ours()
    assert hour(naive) == {"ok": 3358, "failed": 39, "rejected": 203}
    assert opened(naive) == 7
    assert hour(mine) == {"ok": 3560, "failed": 40}
    assert opened(mine) == 0


def bad_user(breaker: Any, seconds: int = 300) -> Counter[str]:
    service, good = StandIn(breaker.clock), Counter[str]()
    for t in range(seconds):
        if 100 <= t < 110:
            with suppress(CircuitOpenError, NaiveOpen, anthropic.APIStatusError):
                breaker.call(service, INVALID)
        try:
            good[breaker.call(service)] += 1
        except (CircuitOpenError, NaiveOpen):
            good["rejected"] += 1
        breaker.clock.advance(1.0)
    return good


def test_bug_2_five_bad_requests_open_the_naive_breaker_for_30_s() -> None:
    naive, mine = NaiveBreaker(clock=VirtualClock()), ours()
    assert bad_user(naive) == {"ok": 270, "rejected": 30}
    assert naive.history[1] == (104.0, "open")      # the fifth 400
    assert bad_user(mine) == {"ok": 300}
    assert mine.is_failure(INVALID) is False and mine.is_failure(OVERLOADED) is True
    for name in ("authentication_error", "permission_error", "not_found_error"):
        assert mine.is_failure(record(name)) is False


async def caller(breaker: Any, service: StandIn) -> None:
    with suppress(CircuitOpenError, NaiveOpen, anthropic.APIStatusError), breaker:
        await asyncio.sleep(0)
        service()


async def crowd(breaker: Any, seconds: int = 150, callers: int = 20) -> list[int]:
    service, per_second = StandIn(breaker.clock, down_until=120.0), []
    for _ in range(seconds):
        before = service.calls
        await asyncio.gather(*(caller(breaker, service) for _ in range(callers)))
        per_second.append(service.calls - before)
        breaker.clock.advance(1.0)
    return per_second


def test_bug_3_the_naive_half_open_state_lets_all_20_callers_in() -> None:
    naive = asyncio.run(crowd(NaiveBreaker(clock=VirtualClock())))
    mine = asyncio.run(crowd(ours()))
    assert sum(naive[:120]) == 80 and sum(mine[:120]) == 23
    assert [naive[t] for t in (0, 30, 60, 90, 120)] == [20] * 5
    assert [mine[t] for t in (0, 30, 60, 90, 120)] == [20, 1, 1, 1, 1]


# -- in a row or as a rate --------------------------------------------------------------

def test_the_rate_table() -> None:
    def by_rate() -> CircuitBreaker:
        return CircuitBreaker(failure_threshold=None, failure_rate_threshold=0.5,
                              window_size=100, minimum_calls=20, recovery_timeout=30.0,
                              clock=VirtualClock())

    table = {}
    for rate in (0.01, 0.1, 0.3, 0.5):
        row = []
        for b in (NaiveBreaker(clock=VirtualClock()), ours(), by_rate()):
            rejected = hour(b, error_rate=rate)["rejected"]
            row.append((opened(b), rejected))
        table[rate] = row
    assert table == {0.01: [(7, 203), (0, 0), (0, 0)],
                     0.1: [(48, 1392), (0, 0), (0, 0)],
                     0.3: [(85, 2465), (5, 145), (0, 0)],      # "a few times at 30 %"
                     0.5: [(103, 2964), (51, 1472), (73, 2090)]}


def test_our_defaults() -> None:
    fresh = CircuitBreaker()
    assert (fresh.failure_threshold, fresh.recovery_timeout, fresh.half_open_max_calls,
            fresh.failure_rate_threshold) == (5, 30.0, 1, None)


# -- exercise hints -----------------------------------------------------------------------

def test_timeout_is_a_connection_error_and_529_is_a_server_error() -> None:
    assert issubclass(anthropic.APITimeoutError, anthropic.APIConnectionError)
    assert issubclass(anthropic.OverloadedError, anthropic.InternalServerError)
    assert OVERLOADED.status_code > 504            # a list that stops at 504 misses it


def test_the_breakers_default_is_failure_passes_exercise_08_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    from resilience.exercises.lesson08 import check_is_failure

    assert check_is_failure(lambda e: classify(e).retryable) is True   # "compare with ..."
    assert CircuitBreaker().is_failure(OVERLOADED) is True
    capsys.readouterr()
