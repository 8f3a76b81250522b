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

import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable

from . import _check
from .clock import Clock, SystemClock

__all__ = ["DENIED", "GRANTED", "AdaptiveThrottle", "BudgetListener", "RetryBudget"]

GRANTED = "granted"
"""The event a :class:`RetryBudget` listener gets when a retry is paid for."""
DENIED = "denied"
"""The event a :class:`RetryBudget` listener gets when a retry is refused."""

BudgetListener = Callable[["RetryBudget", str], object]
"""``listener(budget, event)``, called after each :meth:`RetryBudget.try_spend` with
``event`` :data:`GRANTED` or :data:`DENIED`."""

_log = logging.getLogger(__name__)


class RetryBudget:
    """A token bucket that allows retries up to a ratio of requests, plus a reserve.

    The bucket starts full at ``capacity``. Each first attempt adds ``ratio`` tokens (never
    above ``capacity``); each retry needs ``cost`` tokens and is refused if fewer are left.
    Under total failure with ``R`` requests it allows ``capacity / cost + ratio * R / cost``
    retries, so the load tends to ``1 + ratio / cost`` times the requests (1.1x by default).

    Share one budget between all calls to a service and between threads (a lock guards the
    tokens).

    Listeners feed metrics and dashboards: each is called as ``listener(budget, event)``
    after every :meth:`try_spend`, outside the lock, with ``event`` :data:`GRANTED` or
    :data:`DENIED` (``budget.tokens`` is then the balance after that decision, or a later
    one under concurrency). A deposit calls no listener, and with no listeners a retry
    costs one truth test more. A listener that raises is logged (logger
    ``resilience.budget``) and the rest still run: the tokens, the counters and the
    answer of :meth:`try_spend` stay as they were decided.

    Args:
        capacity: tokens when full, and the burst of retries allowed at once (> 0).
        ratio: tokens each request deposits (0 <= ratio <= capacity).
        cost: tokens a retry spends (> 0).
        listeners: callables ``listener(budget, event)``, called in order.

    Raises:
        TypeError: a setting of the wrong type, named (``listeners[0] must be callable``).
        ValueError: a setting out of range, named with its range.

    Attributes:
        granted: retries paid for so far.
        denied: retries refused so far.
        listeners: the listeners (a list: append to it to add one).
    """

    __slots__ = ("_lock", "_tokens", "capacity", "cost", "denied", "granted", "listeners",
                 "ratio")

    def __init__(self, capacity: float = 10.0, ratio: float = 0.1, cost: float = 1.0, *,
                 listeners: Iterable[BudgetListener] = ()) -> None:
        self.capacity = _check.positive_number("capacity", capacity)
        self.ratio = _check.number("ratio", ratio, minimum=0.0)
        if self.ratio > self.capacity:
            raise ValueError(f"ratio must be between 0 and capacity ({self.capacity:g}), "
                             f"got {ratio!r}")
        self.cost = _check.positive_number("cost", cost)
        self.listeners: list[BudgetListener] = _check.functions("listeners", listeners)
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
            granted = self._tokens >= self.cost
            if granted:
                self._tokens -= self.cost
                self.granted += 1
            else:
                self.denied += 1
        if self.listeners:
            self._notify(GRANTED if granted else DENIED)
        return granted

    def _notify(self, event: str) -> None:
        """Call every listener with ``event``; log and skip one that raises."""
        for listener in self.listeners:
            try:
                listener(self, event)
            except Exception:
                _log.exception("retry budget: listener %r raised on %s; ignored", listener,
                               event)

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

    The counts live in buckets of ``bucket`` seconds, at most :attr:`MAX_BUCKETS` of them
    (a finer ``bucket`` is widened to ``window / MAX_BUCKETS``), with running totals: each
    call does a bounded amount of work and the memory stays bounded, whatever the load.

    Args:
        k: the multiplier (>= 1; 2 is typical, lower is more aggressive).
        window: the sliding window in seconds (> 0; the SRE book uses 2 minutes).
        clock: where time comes from.
        bucket: the width of the counting buckets in seconds (0 < bucket <= window).

    Attributes:
        bucket: the bucket width in use: ``max(bucket, window / MAX_BUCKETS)``.
    """

    MAX_BUCKETS = 1024
    """The most buckets kept: the window's resolution is at worst ``window / 1024``."""

    __slots__ = ("_accepts", "_buckets", "_lock", "_requests", "bucket", "clock", "k",
                 "window")

    def __init__(self, k: float = 2.0, window: float = 120.0, clock: Clock | None = None,
                 bucket: float = 1.0) -> None:
        self.k = _check.number("k", k, minimum=1.0)
        self.window = _check.positive_number("window", window, unit="seconds")
        bucket = _check.positive_number("bucket", bucket, unit="seconds")
        if bucket > self.window:
            raise ValueError(f"bucket must be > 0 and <= window ({self.window:g} s), "
                             f"got {bucket!r}")
        self.bucket = max(bucket, self.window / self.MAX_BUCKETS)
        self.clock: Clock = SystemClock() if clock is None else _check.clock_like("clock", clock)
        # Each entry: [bucket index, requests, accepts]; the totals are over all entries.
        self._buckets: deque[list[int]] = deque()
        self._requests = 0
        self._accepts = 0
        self._lock = threading.Lock()

    def _expire(self) -> int:
        """Drop buckets that left the window; return the current bucket's index."""
        index = int(self.clock.now() // self.bucket)
        oldest = index - int(self.window // self.bucket)
        buckets = self._buckets
        while buckets and buckets[0][0] <= oldest:
            _, requests, accepts = buckets.popleft()
            self._requests -= requests
            self._accepts -= accepts
        return index

    def _current(self) -> list[int]:
        index = self._expire()
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append([index, 0, 0])
        return self._buckets[-1]

    def counts(self) -> tuple[int, int]:
        """``(requests, accepts)`` over the window."""
        with self._lock:
            self._expire()
            return self._requests, self._accepts

    def reject_probability(self) -> float:
        """``max(0, (requests - k * accepts) / (requests + 1))`` over the window."""
        requests, accepts = self.counts()
        return max(0.0, (requests - self.k * accepts) / (requests + 1))

    def allow(self, rng: random.Random) -> bool:
        """Count one request and decide whether to send it (True) or reject it locally."""
        p = self.reject_probability()
        with self._lock:
            self._current()[1] += 1
            self._requests += 1
        return rng.random() >= p

    def record_accept(self) -> None:
        """Count one request the backend accepted."""
        with self._lock:
            self._current()[2] += 1
            self._accepts += 1
