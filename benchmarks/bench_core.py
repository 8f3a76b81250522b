"""Happy-path overhead of resilience.retry and CircuitBreaker against their peers.

Measures, in one run and interleaved (round-robin, so a busy moment hurts everyone alike):

* a bare call, a plain try/except, ``resilience.retry``, tenacity's ``@retry`` and
  stamina's ``@retry`` around a function that succeeds first time;
* ``CircuitBreaker.call`` against ``pybreaker.CircuitBreaker.call``.

Prints ns per call (overhead = time minus the bare call) and the ratios. Usage::

    python benchmarks/bench_core.py [--rounds 7] [--number 100000]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

import pybreaker
import stamina
import tenacity

import resilience


def ok(x: int) -> int:
    return x


def plain_try(x: int) -> int:
    try:
        return ok(x)
    except Exception:
        raise


CANDIDATES: dict[str, Callable[[int], int]] = {
    "bare call": ok,
    "try/except": plain_try,
    "resilience.retry": resilience.retry(attempts=3, deadline=30.0)(ok),
    "tenacity.retry": tenacity.retry(stop=tenacity.stop_after_attempt(3),
                                     wait=tenacity.wait_random_exponential(max=30))(ok),
    "stamina.retry": stamina.retry(on=Exception, attempts=3)(ok),
}

_ours = resilience.CircuitBreaker()
_theirs = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
BREAKERS: dict[str, Callable[[int], int]] = {
    "bare call": ok,
    "resilience.CircuitBreaker": lambda x: _ours.call(ok, x),
    "pybreaker.CircuitBreaker": lambda x: _theirs.call(ok, x),
}


def measure(candidates: dict[str, Callable[[int], int]], rounds: int,
            number: int) -> dict[str, float]:
    """Median ns per call over ``rounds`` interleaved rounds of ``number`` calls."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            seconds = timeit.timeit(lambda fn=fn: fn(1), number=number)
            samples[name].append(seconds / number * 1e9)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, results: dict[str, float], ours: str) -> None:
    bare = results["bare call"]
    print(f"\n{title}")
    print(f"{'':28}{'ns/call':>10}{'overhead ns':>14}{'overhead vs ours':>18}")
    mine = results[ours] - bare
    for name, ns in results.items():
        overhead = ns - bare
        ratio = "" if name == "bare call" else f"{overhead / mine:>17.1f}x"
        print(f"{name:28}{ns:>10.0f}{overhead:>14.0f}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args()
    report("Retry decorators, success on the first try",
           measure(CANDIDATES, args.rounds, args.number), "resilience.retry")
    report("Circuit breakers, closed, success",
           measure(BREAKERS, args.rounds, args.number), "resilience.CircuitBreaker")


if __name__ == "__main__":
    main()
