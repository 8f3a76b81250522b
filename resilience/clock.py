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

from . import _check

__all__ = ["Clock", "SystemClock", "VirtualClock"]

_INF = float("inf")


def _duration(name: str, seconds: float) -> float:
    """``seconds`` if it is a finite number >= 0; else TypeError or ValueError naming it."""
    kind = type(seconds)
    if (kind is float or kind is int) and 0.0 <= seconds < _INF:
        return seconds
    return _check.positive_number(name, seconds, allow_zero=True, unit="seconds")


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
    exact for one task waiting at a time (a retry loop, an SDK client). For many tasks that
    wait concurrently, run them on an event loop whose time is this clock
    (:class:`resilience.testing.VirtualTimeLoop`, or ``FakeClaude.run``): there ``asleep``
    becomes a timer on the loop, so the tasks wake in virtual-time order. For many threads,
    use :class:`resilience.testing.TurnClock`.

    Args:
        start: the time at which the clock starts, in seconds.
    """

    __slots__ = ("_lock", "_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = _check.number("start", start, unit="seconds")
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (finite, >= 0) without recording a sleep."""
        seconds = _duration("seconds", seconds)
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record a sleep of ``seconds`` (finite, >= 0) and move time forward by it, at once."""
        seconds = _duration("sleep length", seconds)
        with self._lock:
            self._now += seconds
            self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then give other tasks one turn of the event loop.

        On an event loop whose ``clock`` is this clock (a virtual-time loop), the sleep is
        recorded and becomes a timer on the loop instead, so concurrent tasks interleave in
        exact virtual-time order.
        """
        if getattr(asyncio.get_running_loop(), "clock", None) is self:
            seconds = _duration("sleep length", seconds)
            with self._lock:
                self.sleeps.append(seconds)
            await asyncio.sleep(seconds)
            return
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"
