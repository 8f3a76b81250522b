"""Benchmark the chaos server on loopback, and time the soak.

Run: ``python benchmarks/bench_chaos.py``. Prints:

1. Server throughput in requests per second at the ``calm`` profile, the server started as
   a user starts it (``python -m resilience chaos --port 0``, its own process): plain
   ``httpx2`` async clients (16 requests at once) for JSON replies and for whole SSE
   streams; then the real SDK, one sync client, one call at a time. Each is the best of
   three interleaved runs. Client and server share the machine's
   2 cores, so the server's own capacity is also given: 1 / (server CPU seconds per
   request), read from ``/proc`` (Linux), the rate one core of server could sustain.
2. The soak's wall time (``tests/test_chaos_soak.py``: 2,000 SDK calls at ``bad-day``, sync
   and async, streaming and not, server in-process) and what it met.

Figures depend on the machine and its load; run it alone for numbers worth comparing.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx2

from resilience import MODEL

ROOT = Path(__file__).resolve().parent.parent
HI = [{"role": "user", "content": "Hi"}]
BODY = {"model": MODEL, "max_tokens": 64, "messages": HI}
CONCURRENCY = 16


@contextmanager
def chaos_process(*args: str) -> Iterator[tuple[str, int]]:
    """``python -m resilience chaos --port 0 ARGS`` in its own process; yields URL and pid."""
    process = subprocess.Popen([sys.executable, "-m", "resilience", "chaos", "--port", "0",
                                *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        if found is None:
            raise RuntimeError("the chaos server printed no URL")
        yield found.group(0), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Callable[[], float], requests: int) -> tuple[float, float]:
    """``run()``'s requests/s, and the server's capacity: requests per server CPU second."""
    before = cpu_seconds(pid)
    rate = run()
    return rate, requests / max(cpu_seconds(pid) - before, 1e-9)


async def _hammer(url: str, requests: int, stream: bool) -> float:
    """Requests per second for ``requests`` POSTs, ``CONCURRENCY`` at a time."""
    body = {**BODY, "stream": True} if stream else BODY
    limits = httpx2.Limits(max_connections=CONCURRENCY)
    async with httpx2.AsyncClient(base_url=url, limits=limits) as http:
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                response = await http.post("/v1/messages", json=body)
                assert response.status_code == 200
                assert response.content.endswith(b"message_stop\"}\n\n") if stream else True

        await worker_round(http, body)  # warm the connections up
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return requests / (time.perf_counter() - started)


async def worker_round(http: httpx2.AsyncClient, body: dict[str, object]) -> None:
    await asyncio.gather(*(http.post("/v1/messages", json=body) for _ in range(CONCURRENCY)))


def sdk_calls_per_second(url: str, calls: int) -> float:
    with anthropic.Anthropic(base_url=url, api_key="unused") as client:
        client.messages.create(model=MODEL, max_tokens=64, messages=HI)
        started = time.perf_counter()
        for _ in range(calls):
            client.messages.create(model=MODEL, max_tokens=64, messages=HI)
        return calls / (time.perf_counter() - started)


def main() -> None:
    runs: dict[str, Callable[[str], float]] = {
        "JSON replies": lambda url: asyncio.run(_hammer(url, 2000, stream=False)),
        "SSE streams": lambda url: asyncio.run(_hammer(url, 2000, stream=True)),
        "real SDK, sync": lambda url: sdk_calls_per_second(url, 500),
    }
    sizes = {"JSON replies": 2000, "SSE streams": 2000, "real SDK, sync": 500}
    best: dict[str, tuple[float, float]] = {name: (0.0, 0.0) for name in runs}
    with chaos_process("--profile", "calm") as (url, pid):
        for _ in range(3):  # interleaved, so a burst of load elsewhere hits all three
            for name, run in runs.items():
                rate, capacity = measured(pid, lambda run=run: run(url), sizes[name])
                best[name] = (max(best[name][0], rate), max(best[name][1], capacity))
    print("Chaos server on loopback (calm, its own process), best of 3:")
    print(f"  {'':16} {'measured':>12} {'server capacity':>22}")
    for name, (rate, capacity) in best.items():
        unit = "calls/s" if "SDK" in name else "requests/s"
        print(f"  {name:16} {rate:8,.0f} {unit:<10} {capacity:8,.0f} per CPU second")

    sys.path.insert(0, str(ROOT / "tests"))
    from test_chaos_soak import run_soak

    started = time.perf_counter()
    soak = run_soak()
    wall = time.perf_counter() - started
    outcomes = Counter(entry.outcome for entry in soak.entries)
    faults = 1 - outcomes["ok"] / len(soak.entries)
    failed = sum(result.error is not None for result in soak.results)
    print(f"Soak: {len(soak.results):,} calls, {len(soak.entries):,} attempts "
          f"({faults:.0%} faults), {failed} calls failed after retries: {wall:.1f} s wall")


if __name__ == "__main__":
    main()
