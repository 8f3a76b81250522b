"""Benchmarks for the simulation lab (not tests: run ``python benchmarks/bench_lab.py``).

Prints, from one run on this machine:

1. the full Brooker (2015) sweep with :mod:`resilience.lab` (N = 10..190 step 10, 100 runs,
   5 strategies; target <= 10 s);
2. the same OCC model written the usual way in SimPy (one process per client, a timeout per
   message), run on a subset and **extrapolated** to the full sweep by its share of write
   calls (the work both simulators do per event), and the ratio;
3. a 10,000-client thundering herd (target <= 1 s).

The SimPy model calls the same core strategies (``next_delay``) and the same server rule.
"""

from __future__ import annotations

import random
import sys
import time

import simpy

from resilience.lab import brooker2015, herd
from resilience.lab.brooker2015 import (
    MESSAGE_MEAN,
    MESSAGE_SD,
    STRATEGIES,
    brooker_strategy,
)

SWEEP = range(10, 200, 10)
RUNS = 100
SUBSET = (100,)      # N values simulated in SimPy
SUBSET_RUNS = 10


def simpy_occ(clients: int, name: str, rng: random.Random) -> tuple[int, float]:
    """One run of the OCC model in SimPy; returns (write calls, finish time in ms)."""
    env = simpy.Environment()
    sleep = brooker_strategy(name)
    row = {"version": 0, "calls": 0}
    finished: list[float] = []

    def message() -> float:
        return abs(rng.normalvariate(MESSAGE_MEAN, MESSAGE_SD))

    def client(env: simpy.Environment):  # type: ignore[no-untyped-def]
        retries, previous = 0, sleep.base
        yield env.timeout(message())                 # read request
        while True:
            seen = row["version"]                    # the server reads the row
            yield env.timeout(message() + message())  # read reply, write request
            row["calls"] += 1
            if row["version"] == seen:               # the server writes conditionally
                row["version"] += 1
                yield env.timeout(message())         # write reply
                finished.append(env.now)
                return
            retries += 1
            previous = float(sleep.next_delay(retries, previous, rng.random()))
            yield env.timeout(message() + previous + message())  # reply, sleep, read

    for _ in range(clients):
        env.process(client(env))
    env.run()
    return row["calls"], max(finished) * 1000.0


def main() -> int:
    start = time.perf_counter()
    rows = brooker2015(SWEEP, RUNS, seed=0)
    lab_seconds = time.perf_counter() - start
    total_calls = sum(r.calls for r in rows) * RUNS
    print(f"brooker2015 full sweep (N=10..190, {RUNS} runs, 5 strategies), resilience.lab: "
          f"{lab_seconds:.2f} s  [target <= 10 s]")

    rng = random.Random(0)
    start = time.perf_counter()
    subset_calls = 0
    for n in SUBSET:
        for name in STRATEGIES:
            for _ in range(SUBSET_RUNS):
                subset_calls += simpy_occ(n, name, rng)[0]
    simpy_subset = time.perf_counter() - start
    simpy_full = simpy_subset * total_calls / subset_calls
    print(f"SimPy, same model, N={','.join(map(str, SUBSET))} x {SUBSET_RUNS} runs x 5 "
          f"strategies: {simpy_subset:.2f} s for {subset_calls:,} write calls")
    print(f"SimPy extrapolated to the full sweep ({total_calls:,.0f} write calls): "
          f"~{simpy_full:.0f} s (extrapolated, not measured)")
    print(f"speed-up of resilience.lab over SimPy: ~{simpy_full / lab_seconds:.0f}x")

    for name in ("exponential", "full_jitter"):
        start = time.perf_counter()
        result = herd(10_000, name, seed=0)
        seconds = time.perf_counter() - start
        print(f"herd, 10,000 clients, {name}: {seconds:.3f} s  [target <= 1 s] "
              f"({result.attempts:,} attempts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
