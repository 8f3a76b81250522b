"""Limits on retrying as a whole: a retry budget and client-side adaptive throttling.

Per-request limits (3 attempts) still let retries triple the load on a server that is
down. These two objects are shared by all the calls of a client and keep the extra load
small whatever happens.

* :class:`RetryBudget`, a token bucket in the spirit of gRPC retry throttling and Finagle's
  ``RetryBudget``: every request deposits ``ratio`` tokens, every retry spends ``cost``.
  Under a total outage retries level off at about ``ratio / cost`` of the requests.
* :class:`AdaptiveThrottle`, Google SRE's client-side throttling: reject a request locally
  with probability ``max(0, (requests - k * accepts) / (requests + 1))`` over a window.
"""

from __future__ import annotations

import random
import threading
from collections import deque

from .clock import Clock, SystemClock

__all__ = ["AdaptiveThrottle", "RetryBudget"]


class RetryBudget:
    """A token bucket that allows retries up to a ratio of requests, plus a reserve.

    The bucket starts full at ``capacity``. Each first attempt adds ``ratio`` tokens (never
    above ``capacity``); each retry needs ``cost`` tokens and is refused if fewer are left.
    Under total failure with ``R`` requests it allows ``capacity / cost + ratio * R / cost``
    retries, so the load tends to ``1 + ratio / cost`` times the requests (1.1x by default).

    Share one budget between all calls to a service and between threads (a lock guards the
    tokens).

    Args:
        capacity: tokens when full, and the burst of retries allowed at once (> 0).
        ratio: tokens each request deposits (0 <= ratio <= capacity).
        cost: tokens a retry spends (> 0).
    """

    __slots__ = ("_lock", "_tokens", "capacity", "cost", "denied", "granted", "ratio")

    def __init__(self, capacity: float = 10.0, ratio: float = 0.1, cost: float = 1.0) -> None:
        if not 0 < capacity < float("inf"):
            raise ValueError(f"capacity must be a finite number > 0, got {capacity!r}")
        if not 0 <= ratio <= capacity:
            raise ValueError(f"ratio must be between 0 and capacity ({capacity}), got {ratio!r}")
        if not 0 < cost < float("inf"):
            raise ValueError(f"cost must be a finite number > 0, got {cost!r}")
        self.capacity = float(capacity)
        self.ratio = float(ratio)
        self.cost = float(cost)
        self._tokens = self.capacity
        self._lock = threading.Lock()
        self.granted = 0
        self.denied = 0

    @property
    def tokens(self) -> float:
        """The tokens in the bucket now."""
        return self._tokens

    def deposit(self) -> None:
        """Record one request (a first attempt): add ``ratio`` tokens, up to ``capacity``."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        """Spend ``cost`` tokens for one retry if the bucket holds them; say whether it did."""
        with self._lock:
            if self._tokens >= self.cost:
                self._tokens -= self.cost
                self.granted += 1
                return True
            self.denied += 1
            return False

    def __repr__(self) -> str:
        return (f"RetryBudget(capacity={self.capacity}, ratio={self.ratio}, cost={self.cost}, "
                f"tokens={self._tokens:.2f})")


class AdaptiveThrottle:
    """Google SRE client-side adaptive throttling ("Handling Overload").

    Counts ``requests`` (everything the application asked for) and ``accepts`` (requests
    the backend answered without an overload error) over the last ``window`` seconds, and
    rejects a new request locally with probability::

        p = max(0, (requests - k * accepts) / (requests + 1))

    With ``k = 2`` a backend that can accept ``C`` requests sees about ``2 C``.

    Args:
        k: the multiplier (>= 1; 2 is typical, lower is more aggressive).
        window: the sliding window in seconds (> 0; the SRE book uses 2 minutes).
        clock: where time comes from.
        bucket: the width of the counting buckets in seconds (0 < bucket <= window).
    """

    __slots__ = ("_buckets", "_lock", "bucket", "clock", "k", "window")

    def __init__(self, k: float = 2.0, window: float = 120.0, clock: Clock | None = None,
                 bucket: float = 1.0) -> None:
        if not 1.0 <= k < float("inf"):
            raise ValueError(f"k must be a finite number >= 1, got {k!r}")
        if not 0 < window < float("inf"):
            raise ValueError(f"window must be a finite number of seconds > 0, got {window!r}")
        if not 0 < bucket <= window:
            raise ValueError(f"bucket must be > 0 and <= window ({window}), got {bucket!r}")
        self.k = float(k)
        self.window = float(window)
        self.bucket = float(bucket)
        self.clock: Clock = clock if clock is not None else SystemClock()
        # Each entry: [bucket index, requests, accepts]
        self._buckets: deque[list[int]] = deque()
        self._lock = threading.Lock()

    def _current(self) -> list[int]:
        index = int(self.clock.now() // self.bucket)
        oldest = index - int(self.window // self.bucket)
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append([index, 0, 0])
        return self._buckets[-1]

    def counts(self) -> tuple[int, int]:
        """``(requests, accepts)`` over the window."""
        with self._lock:
            self._current()
            return (sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets))

    def reject_probability(self) -> float:
        """``max(0, (requests - k * accepts) / (requests + 1))`` over the window."""
        requests, accepts = self.counts()
        return max(0.0, (requests - self.k * accepts) / (requests + 1))

    def allow(self, rng: random.Random) -> bool:
        """Count one request and decide whether to send it (True) or reject it locally."""
        p = self.reject_probability()
        with self._lock:
            self._current()[1] += 1
        return rng.random() >= p

    def record_accept(self) -> None:
        """Count one request the backend accepted."""
        with self._lock:
            self._current()[2] += 1
