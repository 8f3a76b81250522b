"""The lab's command line: ``python -m resilience <experiment> [options]`` prints CSV.

Examples::

    python -m resilience brooker2015 --clients 10,20,30 --runs 100 --seed 0
    python -m resilience herd --clients 1000 --strategies exponential,full_jitter --seed 0
    python -m resilience herd --clients 1000 --timeline --seed 0
    python -m resilience amplification --layers 3 --attempts 4 --seed 0
    python -m resilience openloop --failure-rates 0,0.5,1 --seed 0
    python -m resilience budgets --failure-rates 0,0.5,1 --seed 0

Bad arguments exit with status 2 and say which argument and what is allowed; so do sizes
too big for this machine (the message names the limit and the memory available).

The CSV goes to stdout, nothing else. A run that lasts more than a second shows a progress
bar (tqdm) on stderr when stderr is a terminal; ``--progress`` shows it anyway (from the
start) and ``--no-progress`` never.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """A parser of comma-separated strategy names, each one of ``allowed``; at least one."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        if not names:
            raise argparse.ArgumentTypeError(
                f"expected at least one strategy, from {', '.join(allowed)}")
        for name in names:
            if name not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown strategy {name!r}; choose from {', '.join(allowed)}")
        return names
    return parse


def _parser() -> argparse.ArgumentParser:
    from .brooker2015 import STRATEGIES as BROOKER_STRATEGIES
    from .herd import STRATEGIES as HERD_STRATEGIES

    parser = argparse.ArgumentParser(
        prog="python -m resilience",
        description="Run a simulation-lab experiment and print its results as CSV.")
    sub = parser.add_subparsers(dest="experiment", required=True, metavar="experiment")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: for runs over a second, "
                             "when stderr is a terminal)")

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    p = add("brooker2015", help="Brooker (2015) OCC contention: calls and time",
                       description="Brooker (2015) jitter study. Prints "
                                   "clients,strategy,calls,time_ms.")
    p.add_argument("--clients", type=_list(int), default=tuple(range(10, 200, 10)),
                   help="comma-separated numbers of clients (default 10,20,...,190)")
    p.add_argument("--runs", type=int, default=100, help="runs per point (default 100)")
    p.add_argument("--strategies", type=_names(BROOKER_STRATEGIES), default=None,
                   help="comma-separated strategies (default: all five: "
                        "none,exponential,full_jitter,equal_jitter,decorrelated_jitter)")
    p.add_argument("--seed", type=int, required=True)

    p = add("herd", help="a thundering herd: 529 outage then 429s",
                       description="Clients send at once into an outage, then a token bucket.")
    p.add_argument("--clients", type=_list(int), default=(1000,))
    p.add_argument("--strategies", type=_names(HERD_STRATEGIES), default=None,
                   help="comma-separated strategies (default: all but none)")
    p.add_argument("--capacity", type=float, default=50.0, help="requests/s after the outage")
    p.add_argument("--outage", type=float, default=30.0, help="seconds of 529s from t=0")
    p.add_argument("--max-attempts", type=int, default=10)
    p.add_argument("--timeline", action="store_true",
                   help="print attempts per second (strategy,clients,second,attempts)")
    p.add_argument("--seed", type=int, required=True)

    p = add("amplification", help="retries at every layer vs one layer vs a budget")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--attempts", type=int, default=4)
    p.add_argument("--failure-rate", type=float, default=1.0)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--seed", type=int, required=True)

    p = add("openloop", help="Brooker (2022): open vs closed loop, backoff or not")
    p.add_argument("--failure-rates", type=_list(float),
                   default=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, required=True)

    p = add("budgets", help="retries vs token bucket vs breaker vs throttle")
    p.add_argument("--failure-rates", type=_list(float),
                   default=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--seed", type=int, required=True)
    return parser


@contextmanager
def _progress(args: argparse.Namespace, total: int) -> Iterator[Callable[[int], object]]:
    """A progress bar's ``update`` on stderr (or a no-op): forced with ``--progress``, off
    with ``--no-progress``, else shown after a second when stderr is a terminal."""
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    if not show:
        yield lambda _n: None
        return
    from tqdm import tqdm  # the lab extra only

    with tqdm(total=total, file=sys.stderr, desc=args.experiment, unit="point",
              delay=0.0 if args.progress else 1.0, leave=bool(args.progress)) as bar:
        yield bar.update


def _run(args: argparse.Namespace) -> str:
    from resilience import lab

    rows: Sequence[Any]
    if args.experiment == "brooker2015":
        with _progress(args, len(args.clients)) as progress:
            rows = lab.brooker2015(args.clients, args.runs, args.seed,
                                   args.strategies or lab.BROOKER_STRATEGIES,
                                   progress=progress)
        return lab.to_csv(rows, {"calls": 1, "time_ms": 1})
    if args.experiment == "herd":
        strategies = args.strategies or lab.HERD_STRATEGIES
        with _progress(args, len(args.clients) * len(strategies)) as progress:
            results = lab.herd_sweep(args.clients, strategies, args.seed,
                                     capacity=args.capacity, outage=args.outage,
                                     max_attempts=args.max_attempts, progress=progress)
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
        with _progress(args, len(args.failure_rates)) as progress:
            rows = lab.openloop(args.failure_rates, args.seed, seconds=args.seconds,
                                progress=progress)
        return lab.to_csv(rows, {"failure_rate": 2}, default_decimals=1)
    with _progress(args, len(args.failure_rates) * len(lab.BUDGET_POLICIES)) as progress:
        rows = lab.budgets(args.failure_rates, args.seed, requests=args.requests,
                           progress=progress)
    return lab.to_csv(rows, {"failure_rate": 2}, default_decimals=4)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the experiment, print CSV; exit status 2 on bad arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        text = _run(args)
    except ValueError as e:
        text = str(e)
        if not text.startswith(f"{args.experiment}:"):
            text = f"{args.experiment}: {text}"
        parser.error(text)  # exits with status 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
