"""A token bucket: a rate limit with bursts, on any clock's time.

The bucket holds at most ``capacity`` tokens and refills continuously at ``rate`` tokens a
second; each request takes one. It is how the Claude API limits requests, so the simulated
API (:class:`resilience.testing.RateLimited`) and the lab's thundering herd
(:mod:`resilience.lab.herd`) both use this class as their server, and it is how a client can
pace itself below a limit before it is told to::

    bucket = TokenBucket(rate=50 / 60, capacity=5)
    wait = bucket.take(clock.now())     # 0.0: go ahead; else seconds until a token is free

Tokens after a refill: ``min(capacity, tokens + (now - last) * rate)``. A refill can land a
hair under a whole token in floating point (ten refills of 0.1 make 0.9999999999999998), so
a count within :data:`TOLERANCE` of a whole token counts as one.
"""

from __future__ import annotations

from . import _check

__all__ = ["TOLERANCE", "TokenBucket"]

TOLERANCE = 1e-9
"""Token counts this close below a whole token count as that token (float refill error)."""


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` banked; it starts full.

    Not locked: share one between threads only behind your own lock (the simulations that
    use it handle one request at a time).

    Args:
        rate: tokens added per second (> 0).
        capacity: the most tokens the bucket holds, the largest burst (>= 1).
        start: the time (finite) at which it is full; None to start counting at the first
            request.
    """

    __slots__ = ("_tokens", "_updated", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, start: float | None = None) -> None:
        self.rate = _check.positive_number("rate", rate, unit="tokens per second")
        self.capacity = _check.number("capacity", capacity, minimum=1.0, unit="tokens")
        self._tokens = self.capacity
        self._updated = None if start is None else _check.number("start", start,
                                                                 unit="seconds")

    @property
    def tokens(self) -> float:
        """The tokens in the bucket as of the last :meth:`take` or :meth:`refill`."""
        return self._tokens

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update: ``(now - last) * rate``, capped."""
        if self._updated is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def take(self, now: float, amount: float = 1.0) -> float:
        """Take ``amount`` tokens at ``now`` and return 0.0, or take none and return the wait.

        The wait is exact: ``(amount - tokens) / rate`` seconds. A request takes one token;
        a token limit (input or output tokens a minute) takes as many as the request uses.

        Raises:
            ValueError: ``amount`` is not in ``(0, capacity]`` (more could never be taken).
        """
        if amount != 1.0:
            amount = _check.positive_number("amount", amount, unit="tokens")
            if amount > self.capacity:
                raise ValueError(f"amount must be at most the capacity ({self.capacity:g} "
                                 f"tokens), got {amount!r}")
        self.refill(now)
        if self._tokens >= amount - TOLERANCE:
            self._tokens = max(0.0, self._tokens - amount)
            return 0.0
        return (amount - self._tokens) / self.rate

    def full_in(self) -> float:
        """Seconds from the last update until the bucket is full again."""
        return (self.capacity - self._tokens) / self.rate

    def __repr__(self) -> str:
        return (f"TokenBucket(rate={self.rate!r}, capacity={self.capacity!r}, "
                f"tokens={self._tokens:.3f})")
