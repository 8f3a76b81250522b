"""Model answers for lesson 18, "Token-based limits"."""

from __future__ import annotations

from collections.abc import Callable, Mapping

PREFIX = "anthropic-ratelimit-"


def wait_for_tokens(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    """Seconds until every limit has room: the longest of ``max(0, need - remaining) /
    (limit / 60)`` over requests (need 1), input tokens and output tokens (``max_tokens``)."""
    waits = [0.0]
    for kind, need in (("requests", 1), ("input-tokens", input_tokens),
                       ("output-tokens", max_tokens)):
        limit = int(headers[f"{PREFIX}{kind}-limit"])
        remaining = int(headers[f"{PREFIX}{kind}-remaining"])
        waits.append(max(0, need - remaining) / (limit / 60))
    return max(waits)


class _Bucket:
    """``per_minute / 60`` tokens a second, at most a minute's worth; it starts full."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60
        self.capacity = self.tokens = float(per_minute)
        self.updated: float | None = None

    def refill(self, now: float) -> None:
        if self.updated is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, need: float) -> float:
        return max(0.0, (need - self.tokens) / self.rate)


def make_pacer(input_tokens_per_minute: float,
               output_tokens_per_minute: float) -> Callable[[float, int, int], float]:
    """A pacer with one bucket per limit, fed by the counted input tokens and max_tokens."""
    buckets = (_Bucket(input_tokens_per_minute), _Bucket(output_tokens_per_minute))

    def wait(now: float, input_tokens: int, max_tokens: int) -> float:
        for bucket in buckets:
            bucket.refill(now)
        needs = (input_tokens, max_tokens)
        pause = max(bucket.wait(need) for bucket, need in zip(buckets, needs, strict=True))
        for bucket, need in zip(buckets, needs, strict=True):
            bucket.refill(now + pause)  # the request goes out after the pause
            bucket.tokens -= need
        return pause

    return wait
