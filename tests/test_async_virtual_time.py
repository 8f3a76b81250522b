"""Many async clients on one virtual clock: the VirtualTimeLoop and the herd with the real SDK."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections import Counter, defaultdict

import anthropic
import pytest

from resilience import VirtualClock
from resilience.testing import (
    FakeClaude,
    Outage,
    RateLimited,
    Slow,
    VirtualTimeLoop,
    aio,
    sdk_on_clock,
)
from resilience.testing.outcomes import Exchange, Outcome

HI = [{"role": "user", "content": "Hi"}]


# The loop itself.


def test_a_thousand_tasks_wake_in_exact_time_order_without_real_sleeping() -> None:
    rng = random.Random(7)
    delays = [rng.choice([rng.uniform(0, 600), float(rng.randint(0, 60))]) for _ in range(1000)]
    woke: list[tuple[float, int]] = []

    async def task(i: int) -> None:
        await asyncio.sleep(delays[i])
        woke.append((asyncio.get_running_loop().time(), i))

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(1000)))

    clock = VirtualClock()
    started = time.perf_counter()
    aio.run(main(), clock=clock)
    assert time.perf_counter() - started < 5.0  # 600 virtual seconds took no real wait
    assert [delays[i] for _, i in woke] == sorted(delays)  # in time order
    assert all(t == pytest.approx(delays[i], abs=1e-9) and t >= delays[i] for t, i in woke)
    assert clock.now() == pytest.approx(max(delays), abs=1e-9)
    first = [i for _, i in woke]
    woke.clear()
    aio.run(main(), clock=VirtualClock())
    assert [i for _, i in woke] == first  # ties too come out in the same order every run


def test_loop_time_is_the_clock_and_timeouts_fire_on_virtual_time() -> None:
    clock = VirtualClock(start=100.0)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        assert loop.time() == clock.now() == 100.0
        try:
            await asyncio.wait_for(asyncio.Event().wait(), timeout=30)
        except TimeoutError:
            return f"timed out at {loop.time():g}"
        return "never"

    assert aio.run(main(), clock=clock) == "timed out at 130"


def test_to_thread_runs_inline_in_the_loops_thread_and_takes_no_virtual_time() -> None:
    clock = VirtualClock()

    def work() -> int:
        return threading.get_ident()

    def boom() -> None:
        raise ValueError("in the worker")

    async def main() -> None:
        await asyncio.sleep(1)
        assert await asyncio.to_thread(work) == threading.get_ident()
        assert asyncio.get_running_loop().time() == 1.0
        with pytest.raises(ValueError, match="in the worker"):
            await asyncio.to_thread(boom)

    aio.run(main(), clock=clock)
    assert clock.now() == 1.0


def test_a_deadlock_raises_instead_of_hanging() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nobody will ever set it

    with pytest.raises(RuntimeError, match="no timer is due"):
        aio.run(main(), stall_timeout=0.01)


def test_another_thread_can_wake_a_waiting_loop() -> None:
    waiting = threading.Event()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def wake() -> None:
            waiting.wait(5)
            loop.call_soon_threadsafe(future.set_result, 42)

        threading.Thread(target=wake, daemon=True).start()
        loop.call_soon(waiting.set)
        return await future

    assert aio.run(main()) == 42


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"clock": 5}, TypeError, "clock must be a VirtualClock"),
    ({"stall_timeout": 0}, ValueError, "stall_timeout"),
    ({"stall_timeout": float("inf")}, ValueError, "stall_timeout"),
])
def test_the_loop_checks_its_settings(kwargs: dict[str, object], error: type[Exception],
                                      match: str) -> None:
    with pytest.raises(error, match=match):
        VirtualTimeLoop(**kwargs)  # type: ignore[arg-type]


def test_run_wants_a_coroutine() -> None:
    with pytest.raises(TypeError, match="coroutine"):
        aio.run(lambda: None)  # type: ignore[arg-type]


# The SDK on the loop.


class _Recorder:
    """A scenario that notes which client sent each attempt, and when; 529 before ``until``."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.seen: dict[str, list[float]] = defaultdict(list)

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        now = exchange.clock.now()
        self.seen[exchange.request.headers["x-client"]].append(now)
        return Outage(0, self.until).decide(exchange, rng)


async def _ask(api: FakeClaude, name: str, **options: object) -> str:
    client = api.async_client(default_headers={"x-client": name}, **options)
    try:
        await client.messages.create(model=api.model, max_tokens=16, messages=HI)
    except anthropic.APIStatusError as e:
        return str(e.status_code)
    return "ok"


def _gather(api: FakeClaude, n: int, **options: object) -> list[str]:
    async def main() -> list[str]:
        return await asyncio.gather(*(_ask(api, f"c{i}", **options) for i in range(n)))

    return api.run(main())


def test_each_client_follows_the_sdks_own_schedule_from_time_zero() -> None:
    recorder = _Recorder(until=20.0)
    with FakeClaude(seed=3) as api:
        api.scenario(recorder)
        results = _gather(api, 50, max_retries=8)
    assert results == ["ok"] * 50
    assert set(recorder.seen) == {f"c{i}" for i in range(50)}
    for times in recorder.seen.values():
        assert times[0] == 0.0  # every client starts at 0, none waits for the others' sleeps
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for n, gap in enumerate(gaps):  # the SDK: min(0.5 * 2**n, 8) s, jittered to 75-100 %
            nominal = min(0.5 * 2**n, 8.0)
            assert 0.75 * nominal - 1e-9 <= gap <= nominal + 1e-9, (n, gap)
        assert times[-1] >= 20.0 > times[-2]  # succeeded on its first try after the outage
    assert [c.time for c in api.calls] == sorted(c.time for c in api.calls)
    assert len(api.clock.sleeps) == len(api.calls) - 50  # one SDK sleep per retry, recorded


def test_a_slow_answer_delays_only_its_own_request() -> None:
    with FakeClaude(seed=0) as api:
        api.scenario(Slow(2.0))
        assert _gather(api, 10) == ["ok"] * 10
    assert api.clock.now() == 2.0  # ten 2 s answers side by side, not 20 s in a row
    assert [c.time for c in api.calls] == [0.0] * 10


def test_a_timeout_delays_only_its_own_request_and_is_retried() -> None:
    with FakeClaude(seed=0) as api:
        api.respond("timeout")  # the first request to arrive hangs for its read timeout
        assert _gather(api, 3, timeout=5.0, max_retries=1) == ["ok"] * 3
    by_status = Counter((c.time, c.status) for c in api.calls)
    assert by_status[(0.0, None)] == 1 and by_status[(0.0, 200)] == 2
    retry = [c for c in api.calls if c.retry_count == 1]
    assert len(retry) == 1 and 5.0 + 0.375 <= retry[0].time <= 5.5


def test_a_loop_on_another_clock_is_refused() -> None:
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error")

        async def main() -> str:
            return await _ask(api, "c0", max_retries=1)

        with pytest.raises(RuntimeError, match="another clock"):
            aio.run(main(), clock=VirtualClock())


def test_a_plain_event_loop_still_sleeps_one_task_on_the_clock() -> None:
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error", "ok")
        assert asyncio.run(_ask(api, "c0", max_retries=1)) == "ok"
    assert api.clock.sleeps == [api.calls[1].time] and 0.375 <= api.calls[1].time <= 0.5


def test_sdk_on_clock_alone_runs_the_sdks_async_sleep_on_the_loop() -> None:
    clock = VirtualClock()

    async def main() -> list[float]:
        import anthropic._base_client as sdk_base
        order: list[float] = []

        async def nap(seconds: float) -> None:
            await sdk_base.anyio.sleep(seconds)
            order.append(clock.now())

        await asyncio.gather(nap(3), nap(1), nap(2))
        return order

    with sdk_on_clock(clock, random.Random(0)):
        assert aio.run(main(), clock=clock) == [1, 2, 3]
    assert clock.sleeps == [3, 1, 2]


# The thundering herd with the real SDK.


def _herd(seed: int, clients: int = 1000) -> tuple[list[str], FakeClaude]:
    with FakeClaude(seed=seed) as api:
        api.scenario(Outage(0, 30), RateLimited(requests_per_minute=3000, burst=50))
        results = _gather(api, clients, max_retries=9)
    return results, api


@pytest.fixture(scope="module")
def small_herd() -> tuple[list[str], FakeClaude]:
    """200 clients, seed 0 (shared by the tests that need a herd but not 1,000 clients)."""
    return _herd(seed=0, clients=200)


def test_a_thousand_real_sdk_clients_through_an_outage_then_a_rate_limit() -> None:
    results, api = _herd(seed=0)
    calls = api.calls
    served = [c for c in calls if c.status == 200]
    per_client = Counter(c.retry_count for c in calls)
    assert per_client[0] == 1000  # every client tried at once...
    assert max(per_client) == 9 and len(calls) <= 10_000  # ...and at most 10 times
    assert results.count("ok") == len(served) and set(results) <= {"ok", "529", "429"}
    assert all(c.status == 529 for c in calls if c.time < 30)
    assert all(c.status in (200, 429) for c in calls if c.time >= 30)
    assert min(c.time for c in served) >= 30
    # the bucket: 50 tokens at t = 30, then 50 a second
    times = sorted(c.time for c in served)
    assert all(k + 1 <= 50 + 50 * (t - 30) + 1e-6 for k, t in enumerate(times))
    assert 300 <= len(served) <= 500  # most clients give up: 7 or 8 tries went to the outage
    assert [c.time for c in calls] == sorted(c.time for c in calls)
    spread = Counter(int(c.time) for c in calls)
    assert spread[0] == 2000 and spread[1] == 1000  # retry 0 at 0, retry 1 within 0.5 s
    assert 36 <= max(c.time for c in calls) <= 45


def test_the_same_seed_repeats_a_herd_exactly(small_herd: tuple[list[str], FakeClaude]) -> None:
    results, api = small_herd
    again, api2 = _herd(seed=0, clients=200)
    assert again == results
    assert [(c.time, c.status, c.retry_count) for c in api2.calls] == [
        (c.time, c.status, c.retry_count) for c in api.calls]
    _, other = _herd(seed=1, clients=20)
    assert [c.time for c in other.calls][20:30] != [c.time for c in api.calls][20:30]


def test_the_herd_plot_draws_the_sdk_beside_the_lab_model(
        small_herd: tuple[list[str], FakeClaude]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from resilience.lab.herd import herd
    from resilience.lab.plots import plot_herd_vs_model

    _, api = small_herd
    model = herd(200, "sdk_default", 0, capacity=50.0, outage=30.0, max_attempts=10)
    fig = plot_herd_vs_model(api.calls, model)
    load_ax, served_ax = fig.axes
    assert sum(load_ax.lines[0].get_ydata()) == len(api.calls)
    assert list(load_ax.lines[1].get_ydata()) == list(model.timeline)
    assert served_ax.lines[0].get_ydata()[-1] == sum(c.status == 200 for c in api.calls)
    assert served_ax.lines[1].get_ydata()[-1] == model.served
    with pytest.raises(ValueError, match="calls"):
        plot_herd_vs_model([], model)


def test_the_async_retry_decorator_interleaves_exactly_on_the_loops_clock() -> None:
    from resilience import backoff, retry

    clock = VirtualClock()
    finished: list[tuple[str, float]] = []

    def client(name: str, base: float) -> object:
        tries = itertools.count()

        @retry(attempts=3, deadline=None, backoff=backoff.exponential(base, 60.0), clock=clock,
               rng=random.Random(0))
        async def call() -> None:
            if next(tries) < 2:
                raise ConnectionError("down")
            finished.append((name, clock.now()))

        return call()

    async def main() -> None:
        await asyncio.gather(client("slow", 3.0), client("fast", 1.0), client("mid", 2.0))

    aio.run(main(), clock=clock)
    # Each waits base + 2 * base after its two failures, all from t = 0, on one clock.
    assert finished == [("fast", 3.0), ("mid", 6.0), ("slow", 9.0)]
    assert sorted(clock.sleeps) == [1.0, 2.0, 2.0, 3.0, 4.0, 6.0]


def test_run_inside_a_running_loop_runs_the_virtual_loop_in_a_worker_thread() -> None:
    clock = VirtualClock()

    async def sleeper() -> float:
        await asyncio.sleep(5.0)
        return asyncio.get_running_loop().time()

    async def outer() -> float:  # as in a Jupyter cell, a loop already runs in this thread
        return aio.run(sleeper(), clock=clock)

    assert asyncio.run(outer()) == 5.0
    assert clock.now() == 5.0
