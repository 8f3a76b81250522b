"""Time as a parameter: a real clock for production, a virtual one for tests and lessons.

Everything in ``resilience`` that waits or reads the time takes a ``clock``. In production
that is :class:`SystemClock` (monotonic time, real sleeps). In tests, notebooks and
simulations it is :class:`VirtualClock`, whose ``sleep`` moves time forward at once: a
retry schedule of minutes runs in microseconds, and every timestamp repeats exactly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What a clock offers: the time, and two ways to wait."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and real sleeps.

    A monotonic clock never jumps when the wall clock is set, so durations stay honest.
    """

    __slots__ = ()

    # Bound to the C functions directly: reading the time costs one call, no Python frame.
    now = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task with ``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock whose time moves only when someone sleeps or calls :meth:`advance`.

    ``sleep(s)`` returns at once, having moved the time forward by ``s``. Every sleep is
    recorded in :attr:`sleeps`, so a test or a plot can read the exact schedule a retry
    loop followed. Safe to share between threads (a lock guards the time).

    ``asleep`` does the same for coroutines and then yields once to the event loop. It is
    exact for one task waiting at a time (a retry loop, an SDK client); for many clients
    that wait concurrently, use :class:`resilience.testing.TurnClock` (threads) or the
    simulation lab, which order events properly.

    Args:
        start: the time at which the clock starts, in seconds.
    """

    __slots__ = ("_lock", "_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        if start != start or start in (float("inf"), float("-inf")):
            raise ValueError(f"start must be a finite number of seconds, got {start!r}")
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0) without recording a sleep."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record a sleep of ``seconds`` and move time forward by it, at once."""
        if not seconds >= 0:
            raise ValueError(f"sleep length must be >= 0 seconds, got {seconds!r}")
        with self._lock:
            self._now += seconds
            self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then give other tasks one turn of the event loop."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"
