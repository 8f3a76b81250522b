"""The lab's command line: ``python -m resilience <experiment> [options]`` prints CSV.

Examples::

    python -m resilience brooker2015 --clients 10,20,30 --runs 100 --seed 0
    python -m resilience herd --clients 1000 --strategies exponential,full_jitter --seed 0
    python -m resilience herd --clients 1000 --timeline --seed 0
    python -m resilience amplification --layers 3 --attempts 4 --seed 0
    python -m resilience openloop --failure-rates 0,0.5,1 --seed 0
    python -m resilience budgets --failure-rates 0,0.5,1 --seed 0

Bad arguments exit with status 2 and say which argument and what is allowed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _list(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected comma-separated values: {e}") from e
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return values
    return parse


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m resilience",
        description="Run a simulation-lab experiment and print its results as CSV.")
    sub = parser.add_subparsers(dest="experiment", required=True, metavar="experiment")

    p = sub.add_parser("brooker2015", help="Brooker (2015) OCC contention: calls and time",
                       description="Brooker (2015) jitter study. Prints "
                                   "clients,strategy,calls,time_ms.")
    p.add_argument("--clients", type=_list(int), default=tuple(range(10, 200, 10)),
                   help="comma-separated numbers of clients (default 10,20,...,190)")
    p.add_argument("--runs", type=int, default=100, help="runs per point (default 100)")
    p.add_argument("--strategies", type=_names, default=None,
                   help="comma-separated strategies (default: all five)")
    p.add_argument("--seed", type=int, required=True)

    p = sub.add_parser("herd", help="a thundering herd: 529 outage then 429s",
                       description="Clients send at once into an outage, then a token bucket.")
    p.add_argument("--clients", type=_list(int), default=(1000,))
    p.add_argument("--strategies", type=_names, default=None,
                   help="comma-separated strategies (default: all)")
    p.add_argument("--capacity", type=float, default=50.0, help="requests/s after the outage")
    p.add_argument("--outage", type=float, default=30.0, help="seconds of 529s from t=0")
    p.add_argument("--max-attempts", type=int, default=10)
    p.add_argument("--timeline", action="store_true",
                   help="print attempts per second (strategy,clients,second,attempts)")
    p.add_argument("--seed", type=int, required=True)

    p = sub.add_parser("amplification", help="retries at every layer vs one layer vs a budget")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--attempts", type=int, default=4)
    p.add_argument("--failure-rate", type=float, default=1.0)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--seed", type=int, required=True)

    p = sub.add_parser("openloop", help="Brooker (2022): open vs closed loop, backoff or not")
    p.add_argument("--failure-rates", type=_list(float),
                   default=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, required=True)

    p = sub.add_parser("budgets", help="retries vs token bucket vs breaker vs throttle")
    p.add_argument("--failure-rates", type=_list(float),
                   default=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--seed", type=int, required=True)
    return parser


def _run(args: argparse.Namespace) -> str:
    from resilience import lab

    if args.experiment == "brooker2015":
        rows = lab.brooker2015(args.clients, args.runs, args.seed,
                               args.strategies or lab.BROOKER_STRATEGIES)
        return lab.to_csv(rows, {"calls": 1, "time_ms": 1})
    if args.experiment == "herd":
        results = lab.herd_sweep(args.clients, args.strategies or lab.HERD_STRATEGIES, args.seed,
                                 capacity=args.capacity, outage=args.outage,
                                 max_attempts=args.max_attempts)
        if args.timeline:
            lines = ["strategy,clients,second,attempts"]
            lines += [f"{r.strategy},{r.clients},{s},{count}"
                      for r in results for s, count in enumerate(r.timeline)]
            return "\n".join(lines) + "\n"
        return lab.to_csv(results, {"capacity": 1, "outage_s": 1}, default_decimals=2)
    if args.experiment == "amplification":
        return lab.to_csv(lab.amplification(args.layers, args.attempts, args.failure_rate,
                                            args.requests, args.seed), default_decimals=3)
    if args.experiment == "openloop":
        return lab.to_csv(lab.openloop(args.failure_rates, args.seed, seconds=args.seconds),
                          {"failure_rate": 2}, default_decimals=1)
    return lab.to_csv(lab.budgets(args.failure_rates, args.seed, requests=args.requests),
                      {"failure_rate": 2}, default_decimals=4)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the experiment, print CSV; exit status 2 on bad arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        text = _run(args)
    except ValueError as e:
        parser.error(f"{args.experiment}: {e}")  # exits with status 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
