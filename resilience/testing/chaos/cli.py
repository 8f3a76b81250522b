"""``python -m resilience chaos``: run the chaos server from a shell.

::

    python -m resilience chaos --port 8080 --profile bad-day --seed 0
    python -m resilience chaos --port 0 --profile outage --outage-length 5
    python -m resilience chaos --profile calm --faults authentication_error=0.5

It prints one line with its URL (``--port 0`` picks a free port and prints it), serves until
Ctrl-C, and then exits with status 0. Bad arguments exit with status 2 and say which
argument and what is allowed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .profiles import PROFILES, Settings
from .server import serve

__all__ = ["main"]


def _faults(text: str) -> dict[str, float]:
    """``NAME=P,NAME=P`` -> {NAME: P}."""
    faults: dict[str, float] = {}
    for part in (item.strip() for item in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            faults[name.strip()] = float(value) if sep else float("nan")
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected NAME=PROBABILITY") from None
        if not sep:
            raise argparse.ArgumentTypeError(f"{part!r}: expected NAME=PROBABILITY")
    return faults


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m resilience chaos",
        description="The Claude API on loopback, failing on purpose. Point an app at it "
                    "with ANTHROPIC_BASE_URL; GET /_chaos/log lists every attempt, "
                    "POST /_chaos/reset starts over. No API key is needed or read.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=0,
                        help="port to bind (default 0: a free port, printed at start)")
    parser.add_argument("--profile", choices=PROFILES, default="calm",
                        help="calm, bad-day (~30%% mixed faults), outage (529s, then "
                             "recovery) or rate-limited (default calm)")
    parser.add_argument("--seed", type=int, default=0, help="seeds every draw (default 0)")
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate,
                        help="bad-day: probability of a fault, 0-1 (default 0.3)")
    parser.add_argument("--faults", type=_faults, default={},
                        help="extra faults for any profile: NAME=P,NAME=P, e.g. "
                             "overloaded_error=0.1,stream_dropped=0.05")
    parser.add_argument("--outage-start", type=float, default=defaults.outage_start,
                        help="outage: seconds after start (default 0)")
    parser.add_argument("--outage-length", type=float, default=defaults.outage_length,
                        help="outage: seconds it lasts (default 20)")
    parser.add_argument("--outage-error", default=defaults.outage_error,
                        help="outage: the error meanwhile (default overloaded_error)")
    parser.add_argument("--rpm", type=float, default=None,
                        help="requests per minute (default 60 for rate-limited, else "
                             "unlimited)")
    parser.add_argument("--burst", type=float, default=None,
                        help="token bucket size (default 10 for rate-limited, else rpm)")
    parser.add_argument("--slow", type=float, default=defaults.slow,
                        help="seconds a slow first byte comes late (default 0.25)")
    parser.add_argument("--hang", type=float, default=defaults.hang,
                        help="seconds a hung or stalled request stays silent when the "
                             "client declares no read timeout (default 10)")
    parser.add_argument("--retry-after-ms", type=float, default=None,
                        help="add retry-after-ms: MS to every error reply (SDKs then wait "
                             "MS instead of their own backoff: for tests of retry logic)")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """The :class:`Settings` the parsed arguments ask for (ValueError/TypeError if invalid)."""
    return Settings(profile=args.profile, seed=args.seed, fault_rate=args.fault_rate,
                    faults=args.faults, outage_start=args.outage_start,
                    outage_length=args.outage_length, outage_error=args.outage_error,
                    rpm=args.rpm, burst=args.burst, slow=args.slow, hang=args.hang,
                    retry_after_ms=args.retry_after_ms)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chaos server until Ctrl-C; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in [0, 65535], got {args.port}")

    def announce(url: str) -> None:
        print(f"Chaos server (profile {settings.profile}, seed {settings.seed}) on {url} "
              f"- log at {url}/_chaos/log - Ctrl-C stops it", flush=True)

    # SIGTERM stops it as cleanly as Ctrl-C (uvicorn re-raises either once it has stopped).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(settings, host=args.host, port=args.port, announce=announce)
    except OSError as e:
        print(f"chaos: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once it has stopped
        pass
    return 0

