"""Model answers for lesson 03, "Rate limits"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

PREFIX = "anthropic-ratelimit-requests-"


def parse_ratelimit(headers: Mapping[str, str], now: float) -> tuple[int, int, float]:
    """``(limit, remaining, seconds until reset)`` from a response's headers; ``now`` is
    Unix time in seconds."""
    reset = datetime.fromisoformat(headers[PREFIX + "reset"].replace("Z", "+00:00"))
    return (int(headers[PREFIX + "limit"]), int(headers[PREFIX + "remaining"]),
            reset.timestamp() - now)


def wait_before_next(headers: Mapping[str, str], now: float) -> float:
    """Go at once while requests remain; with none left, wait for one to come back."""
    limit, remaining, _ = parse_ratelimit(headers, now)
    return 0.0 if remaining > 0 else 60 / limit
