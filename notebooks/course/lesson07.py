"""Checkers for lesson 07, "The thundering herd".

Both run a herd of clients through the simulated API (:class:`resilience.testing.FakeClaude`,
the real ``AsyncAnthropic`` with ``max_retries=0``, all on one virtual clock) and judge it on
the peak attempts per second the server saw and on the clients served.

* ``wait(n, retry_after, u)``: how long a client waits before retry ``n`` (0 first) after a
  429 whose ``retry-after`` is ``retry_after`` seconds (None after a 529). Judged on a
  herd of 100 clients that all send at once to a server taking 5 requests per second
  (see :func:`rate_limited_herd`): never before ``retry-after``, everyone served, in at
  most 600 requests.
* ``worker_rng(worker_id, seed)``: each worker's random source for its jitter. Judged on
  repeatability (same arguments, same draws) and on a herd of 100 workers with
  ``resilience.retry`` and full jitter after a 10 s outage (see :func:`outage_herd`).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from course import exercise
from resilience import backoff, retry

__all__ = ["CHECKS", "HerdRun", "check_wait", "check_worker_rng", "outage_herd",
           "rate_limited_herd"]

CAPACITY = 10.0
"""Requests per second the simulated API serves in both herds (a burst of 10)."""
PEAK_LIMIT = 3.0
"""The most attempts per second the outage herd (07.2) may send, in multiples of the
capacity."""
HERD, HERD_CAPACITY = 100, 5.0
"""The rate-limited herd (07.1): 100 clients at once, a server taking 5 requests/s."""
CALLS_LIMIT = 6 * HERD
"""The most requests the rate-limited herd may send: 6 per client."""
_HI = [{"role": "user", "content": "Hi"}]


@dataclass(frozen=True, slots=True)
class HerdRun:
    """What a herd did: requests, clients served, the peak attempts per second from second
    ``start`` on, and the waits shorter than the server's ``retry-after``."""

    calls: int
    served: int
    peak: int
    rude: int


def _run(clients: int, outage: float, capacity: float,
         client: Callable[[Any, Any, int], Coroutine[Any, Any, bool]], start: int) -> HerdRun:
    """Run ``client(api, sdk_client, i)`` for every ``i`` against an outage and a limit."""
    from resilience.testing import FakeClaude, Outage, RateLimited

    with FakeClaude(seed=0) as api:
        api.scenario(Outage(0.0, outage), RateLimited(60 * capacity, burst=capacity))
        sdk = api.async_client(max_retries=0)

        async def main() -> list[bool]:
            return await asyncio.gather(*(client(api, sdk, i) for i in range(clients)))

        served = sum(api.run(main()))
        per_second = Counter(int(call.time) for call in api.calls if call.time >= start)
        return HerdRun(len(api.calls), served, max(per_second.values(), default=0), 0)


def rate_limited_herd(wait: Callable[[int, float | None, float], float],
                      clients: int = HERD, capacity: float = HERD_CAPACITY,
                      attempts: int = 10) -> HerdRun:
    """``clients`` clients send at t = 0 to a server taking ``capacity`` requests/s (429
    beyond, with ``retry-after`` in whole seconds); each waits ``wait(n, retry_after, u)``
    before retry ``n``, ``u`` from its own ``random.Random(i)``. The peak counts from
    second 1 on. A wait shorter than ``retry-after`` ends the run at once (``rude`` 1)."""
    import anthropic

    rude = 0

    async def client(api: Any, sdk: Any, i: int) -> bool:
        nonlocal rude
        rng = random.Random(i)
        for n in range(attempts):
            try:
                await sdk.messages.create(model=api.model, max_tokens=16, messages=_HI)
                return True
            except anthropic.APIStatusError as e:
                if n == attempts - 1:
                    return False
                header = e.response.headers.get("retry-after")
                retry_after = None if header is None else float(header)
                seconds = wait(n, retry_after, rng.random())
                if not isinstance(seconds, int | float) or isinstance(seconds, bool) \
                        or not 0 <= seconds < math.inf:
                    raise TypeError(f"wait({n}, {retry_after}, u) returned {seconds!r}; "
                                    "expected a number of seconds >= 0") from None
                if retry_after is not None and seconds < retry_after:
                    rude += 1
                    raise _Rude from None
                await api.clock.asleep(seconds)
        return False

    try:
        run = _run(clients, 0.0, capacity, client, start=1)
    except _Rude:
        return HerdRun(0, 0, 0, rude)
    return HerdRun(run.calls, run.served, run.peak, rude)


class _Rude(Exception):
    """A client waited less than the server's retry-after: the verdict is in."""


def outage_herd(worker_rng: Callable[[int, int], Any], clients: int = 100, seed: int = 0,
                outage: float = 10.0, attempts: int = 10) -> HerdRun:
    """``clients`` workers, each ``resilience.retry(backoff=full_jitter(), rng=worker_rng(i,
    seed))``, send at t = 0 into a ``outage`` s outage (529s), then 10 requests/s. The peak
    counts from the end of the outage on."""
    import anthropic

    async def client(api: Any, sdk: Any, i: int) -> bool:
        @retry(attempts=attempts, deadline=None, backoff=backoff.full_jitter(),
               clock=api.clock, rng=worker_rng(i, seed))
        async def ask() -> Any:
            return await sdk.messages.create(model=api.model, max_tokens=16, messages=_HI)

        try:
            await ask()
        except anthropic.APIStatusError:
            return False
        return True

    return _run(clients, outage, CAPACITY, client, start=math.ceil(outage))


@exercise("07.1", "retry-after as a floor, with jitter under it")
def check_wait(solution: Callable[..., Any]) -> None:
    """Never before ``retry-after``; 100 clients at 5/s all served, in at most 600
    requests."""
    for n, retry_after in ((0, 1.0), (3, 2.0), (6, 1.0), (2, None)):
        seconds = solution(n, retry_after, 0.5)
        assert isinstance(seconds, int | float) and not isinstance(seconds, bool), (
            f"wait({n}, {retry_after}, 0.5) returned {seconds!r}; expected seconds.")
    herd = rate_limited_herd(solution)
    assert herd.rude == 0, (
        "one of your waits was shorter than the server's retry-after. The server's word "
        "is a floor: wait at least retry_after seconds.")
    story = (f"{HERD} clients at once, {HERD_CAPACITY:g} requests/s: {herd.served} served "
             f"with {herd.calls} requests, at most {herd.peak} attempts in one second after "
             "the first")
    assert herd.served == HERD, (
        f"{story}. Clients that wait exactly retry-after (or the same time) come back "
        f"together, and all but {HERD_CAPACITY:g} are turned away again: put a jittered "
        "backoff under the floor, e.g. max(retry_after, u * min(30, 0.5 * 2**n)).")
    assert herd.calls <= CALLS_LIMIT, (
        f"{story}; keep it to {CALLS_LIMIT} requests (6 per client): spread the retries "
        "wider, so fewer are turned away.")


@exercise("07.2", "every worker its own random source")
def check_worker_rng(solution: Callable[..., Any]) -> None:
    """Repeatable per (worker, seed), different across seeds, and a herd of 100 workers
    after a 10 s outage is served with at most 30 attempts per second."""
    first = solution(3, 0)
    assert callable(getattr(first, "random", None)), (
        f"worker_rng(3, 0) returned {first!r}; expected a random source such as "
        "random.Random(...).")
    draws = [first.random() for _ in range(5)]
    again = solution(3, 0)
    assert [again.random() for _ in range(5)] == draws, (
        "worker_rng(3, 0) gave different draws on a second call: seed it, so a run "
        "(and a failing test) repeats exactly.")
    other = solution(3, 1)
    assert [other.random() for _ in range(5)] != draws, (
        "worker_rng(3, 0) and worker_rng(3, 1) draw the same numbers: the seed must "
        "change the draws, or no run can differ from another.")
    herd = outage_herd(solution)
    story = (f"100 workers after a 10 s outage: {herd.served} served, {herd.calls} requests, "
             f"at most {herd.peak} attempts in one second after the outage (the server "
             f"takes {CAPACITY:g})")
    assert herd.peak <= PEAK_LIMIT * CAPACITY and herd.served == 100, (
        f"{story}. Workers whose random sources draw the same numbers jitter the same way "
        "and stay in lockstep: give each worker its own seed, from worker_id and seed "
        "together (e.g. random.Random(f\"{seed}-{worker_id}\")).")


CHECKS = {"wait": check_wait, "worker_rng": check_worker_rng}
