"""CircuitBreaker: the state machine, what it counts, and its behaviour under concurrency."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sdk_responses import error_body, sdk_error

from resilience import CircuitBreaker, CircuitOpenError, VirtualClock


def fail(exc: BaseException) -> Any:
    raise exc


def down() -> None:
    raise TimeoutError("down")


def trip(breaker: CircuitBreaker, n: int | None = None) -> None:
    for _ in range(n if n is not None else breaker.failure_threshold or 1):
        with pytest.raises(TimeoutError):
            breaker.call(down)


def test_opens_after_threshold_consecutive_failures_and_rejects_fast() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10.0, clock=clock)
    trip(breaker, 2)
    assert breaker.state == "closed"
    trip(breaker, 1)
    assert breaker.state == "open"
    clock.advance(4.0)
    calls = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(calls.append, 1)
    assert calls == []
    assert info.value.retry_in == 6.0
    assert str(info.value) == "circuit 'claude' is open: the next trial call is allowed in 6.0 s"


def test_a_success_forgets_earlier_failures() -> None:
    """The seed article's breaker never forgets: 4 failures a day trip it on day 2."""
    breaker = CircuitBreaker(failure_threshold=3, clock=VirtualClock())
    for _ in range(5):
        trip(breaker, 2)
        assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state == "closed"
    assert breaker.consecutive_failures == 0


def test_caller_errors_neither_trip_nor_count_as_success() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=VirtualClock())
    bad = sdk_error(400, error_body("invalid_request_error"))
    unauthorised = sdk_error(401, error_body("authentication_error"))
    trip(breaker, 1)
    for exc in (bad, unauthorised, bad, bad):
        with pytest.raises(type(exc)):
            breaker.call(fail, exc)
    assert breaker.consecutive_failures == 1  # not reset by the 400s
    trip(breaker, 1)
    assert breaker.state == "open"


def test_overloads_count_and_a_429_is_neutral() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=VirtualClock())
    overloaded = sdk_error(529, error_body("overloaded_error"))
    limited = sdk_error(429, error_body("rate_limit_error"))
    for exc in (overloaded, limited, limited, limited):
        with pytest.raises(type(exc)):
            breaker.call(fail, exc)
    assert (breaker.state, breaker.consecutive_failures) == ("closed", 1)  # 429: your quota
    with pytest.raises(type(overloaded)):
        breaker.call(fail, overloaded)
    assert breaker.state == "open"


def test_half_open_trial_success_closes_and_failure_reopens() -> None:
    clock = VirtualClock()
    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0, clock=clock,
                             listeners=[lambda b, old, new: seen.append((old, new))])
    trip(breaker)
    clock.advance(5.0)
    assert breaker.state == "half_open"
    trip(breaker, 1)
    assert breaker.state == "open"
    clock.advance(4.9)
    assert breaker.state == "open"
    clock.advance(0.1)
    assert breaker.call(lambda: 42) == 42
    assert breaker.state == "closed"
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "open"),
                    ("open", "half_open"), ("half_open", "closed")]
    assert [s for _, s in breaker.history] == ["closed", "open", "half_open", "open",
                                               "half_open", "closed"]
    assert [t for t, _ in breaker.history] == [0.0, 0.0, 5.0, 5.0, 10.0, 10.0]


def test_failure_rate_trip_over_a_window_with_minimum_calls() -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate_threshold=0.5,
                             window_size=10, minimum_calls=6, clock=VirtualClock())
    for _ in range(2):
        breaker.call(lambda: None)
        trip(breaker, 1)
    assert breaker.state == "closed"  # 2 of 4 failed, but fewer than 6 calls
    breaker.call(lambda: None)
    assert breaker.state == "closed"  # 2 of 5
    trip(breaker, 1)
    assert breaker.state == "open"  # 3 of 6 = 50 %


def test_decorator_and_context_manager_forms() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)

    @breaker
    def flaky(x: int) -> int:
        if x < 0:
            raise TimeoutError
        return x * 2

    assert flaky(2) == 4
    with pytest.raises(TimeoutError):
        flaky(-1)
    with pytest.raises(TimeoutError), breaker:
        raise TimeoutError
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError), breaker:
        pass


def test_async_call_decorator_and_context_manager() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=1.0, clock=clock)

    async def ok() -> str:
        await asyncio.sleep(0)
        return "ok"

    @breaker
    async def broken() -> None:
        raise TimeoutError

    async def scenario() -> list[str]:
        out = [await breaker.call(ok)]
        with pytest.raises(TimeoutError):
            await broken()
        with pytest.raises(TimeoutError):
            async with breaker:
                raise TimeoutError
        out.append(breaker.state)
        with pytest.raises(CircuitOpenError):
            await breaker.call(ok)
        clock.advance(1.0)
        async with breaker:
            out.append(breaker.state)
        out.append(breaker.state)
        return out

    assert asyncio.run(scenario()) == ["ok", "open", "half_open", "closed"]


def test_cancellation_is_neutral() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=VirtualClock())
    with pytest.raises(KeyboardInterrupt):
        breaker.call(fail, KeyboardInterrupt())
    assert breaker.state == "closed"


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"failure_threshold": 0}, "failure_threshold must be an int >= 1"),
    ({"recovery_timeout": 0}, "recovery_timeout must be a finite number of seconds > 0"),
    ({"recovery_timeout": float("nan")}, "recovery_timeout"),
    ({"recovery_timeout": float("inf")}, "recovery_timeout"),
    ({"half_open_max_calls": 0}, "half_open_max_calls must be an int >= 1"),
    ({"failure_rate_threshold": 1.5}, "failure_rate_threshold must be a finite number > 0 "
                                      "and <= 1"),
    ({"failure_rate_threshold": 0}, "failure_rate_threshold"),
    ({"window_size": 0}, "window_size"),
    ({"minimum_calls": 500}, "minimum_calls must be an int >= 1 and <= 100"),
    ({"failure_threshold": None}, "cannot both be None"),
])
def test_bad_settings_raise_value_error(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        CircuitBreaker(**kwargs)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"failure_threshold": 2.5}, "failure_threshold must be an int"),
    ({"recovery_timeout": "30"}, "recovery_timeout must be a number of seconds"),
    ({"is_failure": 5}, "is_failure must be callable"),
    ({"listeners": [5]}, r"listeners\[0\] must be callable"),
    ({"listeners": 5}, "listeners must be a list of callables"),
    ({"clock": 5}, "clock must be a clock"),
    ({"name": 5}, "name must be a str"),
])
def test_bad_types_raise_type_error_naming_the_argument(kwargs: dict[str, Any],
                                                        needle: str) -> None:
    # Regression (issue 9, bug 8): is_failure=5 and listeners=[5] were accepted, and failed
    # only later, inside a call.
    with pytest.raises(TypeError, match=needle):
        CircuitBreaker(**kwargs)


# -- concurrency -------------------------------------------------------------------------

def test_calls_are_not_serialised_by_the_lock() -> None:
    """Eight threads inside the protected call at the same time (pybreaker allows one).

    This test really blocks: it proves the lock is not held around the call. It waits on a
    barrier, not a sleep, and times out after 5 s only if the calls were serialised.
    """
    breaker = CircuitBreaker(clock=VirtualClock())
    barrier = threading.Barrier(8, timeout=5)
    results: list[int] = []

    def meet() -> int:
        return barrier.wait()

    threads = [threading.Thread(target=lambda: results.append(breaker.call(meet)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(8))


def test_many_threads_lose_no_counts() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=None, failure_rate_threshold=1.0,
                             window_size=100_000, minimum_calls=100_000, clock=clock)
    n_threads, per_thread = 8, 500

    def worker(i: int) -> None:
        for j in range(per_thread):
            if (i + j) % 2:
                with pytest.raises(TimeoutError):
                    breaker.call(down)
            else:
                breaker.call(lambda: None)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(breaker._window) == n_threads * per_thread
    assert sum(breaker._window) == n_threads * per_thread // 2


def test_half_open_admits_exactly_the_allowed_trials_across_threads() -> None:
    """The trials block inside the call (on an event, not a sleep) so all threads race."""
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=3,
                             clock=clock)
    trip(breaker)
    clock.advance(1.0)
    release = threading.Event()
    admitted, rejected = [], []
    lock = threading.Lock()

    def trial() -> None:
        with lock:
            admitted.append(1)
        assert release.wait(5)

    def worker() -> None:
        try:
            breaker.call(trial)
        except CircuitOpenError:
            with lock:
                rejected.append(1)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(admitted) + len(rejected) < 20 and len(rejected) < 17 \
            and time.monotonic() < deadline:
        threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join()
    assert (len(admitted), len(rejected)) == (3, 17)
    assert breaker.state == "closed"


def test_asyncio_half_open_admits_exactly_the_allowed_trials() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=2,
                             clock=clock)
    trip(breaker)
    clock.advance(1.0)

    async def scenario() -> tuple[int, int]:
        gate = asyncio.Event()

        async def trial() -> None:
            await gate.wait()

        async def one() -> bool:
            try:
                await breaker.call(trial)
            except CircuitOpenError:
                return False
            return True

        tasks = [asyncio.create_task(one()) for _ in range(10)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks)
        return sum(results), len(results) - sum(results)

    assert asyncio.run(scenario()) == (2, 8)


# -- against a reference model ------------------------------------------------------------

class BreakerModel(RuleBasedStateMachine):
    """Random sequences of calls, outcomes and waits; the breaker must match a tiny model."""

    THRESHOLD = 3
    TIMEOUT = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.breaker = CircuitBreaker(failure_threshold=self.THRESHOLD,
                                      recovery_timeout=self.TIMEOUT, clock=self.clock)
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0

    def _expected_state(self) -> str:
        if self.state == "open" and self.clock.now() - self.opened_at >= self.TIMEOUT:
            self.state = "half_open"
        return self.state

    @rule(seconds=st.floats(min_value=0, max_value=15))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(outcome=st.sampled_from(["ok", "timeout", "bad_request"]))
    def call(self, outcome: str) -> None:
        state = self._expected_state()
        exc = {"ok": None, "timeout": TimeoutError(), "bad_request": ValueError()}[outcome]
        if state == "open":
            with pytest.raises(CircuitOpenError):
                self.breaker.call(lambda: None)
            return
        if exc is None:
            self.breaker.call(lambda: None)
            self.state, self.failures = "closed", 0
            return
        with pytest.raises(type(exc)):
            self.breaker.call(fail, exc)
        if outcome == "timeout":
            self.failures += 1
            if state == "half_open" or self.failures >= self.THRESHOLD:
                self.state, self.opened_at, self.failures = "open", self.clock.now(), 0

    @invariant()
    def same_state(self) -> None:
        assert self.breaker.state == self._expected_state()


BreakerModel.TestCase.settings = settings(max_examples=100, stateful_step_count=40,
                                          deadline=None)
TestBreakerAgainstModel = BreakerModel.TestCase
