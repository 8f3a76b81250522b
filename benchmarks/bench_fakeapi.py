"""Benchmark the simulated Claude API against a bare ``httpx2.MockTransport``.

Run: ``python benchmarks/bench_fakeapi.py``. Prints:

1. 1,000 SDK calls with retries (20 % of attempts answer 529, ``max_retries=2``), through
   ``FakeClaude`` and through a bare ``httpx2.MockTransport`` handler that returns canned
   responses with the same seeded failure pattern: calls per second for each, and the
   fake's overhead per attempt. Both run the SDK's retry sleeps on a virtual clock, so only
   the transport differs.
2. The wall time of a scripted scenario: ten 529s, then success, with ``max_retries=10``.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable

import anthropic
import httpx2

from resilience import MODEL, VirtualClock
from resilience.catalogue import ERRORS
from resilience.testing import FailureRates, FakeClaude, sdk_on_clock
from resilience.testing.responses import message_body

CALLS = 1_000
FAILURE_RATE = 0.2
HI = [{"role": "user", "content": "Hi"}]


def make_calls(client: anthropic.Anthropic, n: int) -> int:
    """``n`` calls; how many ended in an error after the SDK's retries."""
    failed = 0
    for _ in range(n):
        try:
            client.messages.create(model=MODEL, max_tokens=16, messages=HI)
        except anthropic.APIStatusError:
            failed += 1
    return failed


def through_the_fake(seed: int) -> tuple[float, int]:
    """Seconds for ``CALLS`` calls through ``FakeClaude``, and the attempts made."""
    with FakeClaude(seed=seed) as api:
        api.scenario(FailureRates({"overloaded_error": FAILURE_RATE}))
        client = api.client(max_retries=2)
        started = time.perf_counter()
        make_calls(client, CALLS)
        return time.perf_counter() - started, len(api.calls)


def bare_handler(seed: int) -> Callable[[httpx2.Request], httpx2.Response]:
    """A minimal handler: canned bytes, the same seeded 20 % of 529s."""
    rng = random.Random(seed)
    ok = json.dumps(message_body("msg_1", MODEL, "Hello.", 3)).encode()
    overloaded = json.dumps(ERRORS["overloaded_error"].body("req_1")).encode()
    headers = {"content-type": "application/json", "request-id": "req_1"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if rng.random() < FAILURE_RATE:
            return httpx2.Response(529, headers=headers, content=overloaded)
        return httpx2.Response(200, headers=headers, content=ok)

    return handler


def through_a_bare_transport(seed: int) -> float:
    """Seconds for ``CALLS`` calls through a bare ``httpx2.MockTransport``."""
    transport = httpx2.MockTransport(bare_handler(seed))
    client = anthropic.Anthropic(api_key="not-a-key", max_retries=2,
                                 http_client=httpx2.Client(transport=transport))
    with sdk_on_clock(VirtualClock(), random.Random(seed)):
        started = time.perf_counter()
        make_calls(client, CALLS)
        return time.perf_counter() - started


def ten_overloads_then_success() -> tuple[float, float]:
    """Wall seconds and virtual seconds of ten 529s then success, ``max_retries=10``."""
    with FakeClaude() as api:
        api.respond(*["overloaded_error"] * 10, "ok")
        started = time.perf_counter()
        api.client(max_retries=10).messages.create(model=MODEL, max_tokens=16, messages=HI)
        wall = time.perf_counter() - started
    assert [c.status for c in api.calls] == [529] * 10 + [200]
    return wall, api.clock.now()


def main() -> None:
    through_the_fake(0)  # warm up imports and caches
    through_a_bare_transport(0)
    fake_runs = [through_the_fake(seed) for seed in range(1, 6)]
    bare_runs = [through_a_bare_transport(seed) for seed in range(1, 6)]
    fake = statistics.median(seconds for seconds, _ in fake_runs)
    bare = statistics.median(bare_runs)
    attempts = statistics.median(n for _, n in fake_runs)
    print(f"{CALLS} SDK calls, {FAILURE_RATE:.0%} of attempts 529, max_retries=2 "
          f"(~{attempts:.0f} attempts; median of 5 runs)")
    print(f"  FakeClaude:               {CALLS / fake:8.0f} calls/s  "
          f"({fake / attempts * 1e6:5.0f} us per attempt)")
    print(f"  bare httpx2.MockTransport:{CALLS / bare:8.0f} calls/s  "
          f"({bare / attempts * 1e6:5.0f} us per attempt)")
    print(f"  overhead of the fake:     {fake / bare:8.2f}x  "
          f"(+{(fake - bare) / attempts * 1e6:.0f} us per attempt)")
    runs = [ten_overloads_then_success() for _ in range(5)]
    wall = statistics.median(w for w, _ in runs)
    print(f"ten 529s then success, max_retries=10: {wall * 1e3:.1f} ms wall "
          f"for {runs[0][1]:.1f} s of virtual backoff")


if __name__ == "__main__":
    main()
