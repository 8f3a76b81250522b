"""Time as a parameter: a real clock for production, a virtual one for tests and lessons.

Everything in ``resilience`` that waits or reads the time takes a ``clock``. In production
that is :class:`SystemClock` (monotonic time, real sleeps). In tests, notebooks and
simulations it is :class:`VirtualClock`, whose ``sleep`` moves time forward at once: a
retry schedule of minutes runs in microseconds, and every timestamp repeats exactly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

__all__ = ["Clock", "SystemClock", "TurnClock", "VirtualClock"]

T = TypeVar("T")


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
    that wait concurrently, use the simulation lab, which orders events properly.

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


class TurnClock(VirtualClock):
    """Virtual time for many threads at once: each waits its turn, in time order.

    :class:`VirtualClock` is exact for one caller at a time. To simulate many concurrent
    requests (each with its own retries, through the real SDK and the real
    :func:`resilience.retry`), :meth:`run` starts each request in a thread of its own, and
    the threads take turns: only one runs at any moment. When it sleeps, the clock books
    its wake-up, moves time to the earliest booked event and hands the turn to that thread
    (or starts the next request). Ties go first come, first served, so a run repeats
    exactly.

    Everything a request does must either finish or sleep on this clock; a thread that
    blocks on anything else for ``stall_timeout`` real seconds makes the run fail loudly
    instead of hanging. Coroutines are not supported (``asleep`` raises): use threads.

    Args:
        start: the time at which the clock starts, in seconds.
        stall_timeout: real seconds a turn may take before the run is declared stuck (> 0).
    """

    __slots__ = ("_events", "_idle", "_sequence", "_turns", "stall_timeout")

    def __init__(self, start: float = 0.0, stall_timeout: float = 30.0) -> None:
        super().__init__(start)
        if not 0 < stall_timeout < float("inf"):
            raise ValueError(f"stall_timeout must be a finite number of seconds > 0, "
                             f"got {stall_timeout!r}")
        self.stall_timeout = stall_timeout
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._idle = threading.Event()
        self._turns = 0

    def _book(self, at: float, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._events, (at, next(self._sequence), action))

    def _pass_turn(self) -> None:
        """Move time to the earliest booked event and run it; with none left, the run ends."""
        with self._lock:
            self._turns += 1
            if not self._events:
                self._idle.set()
                return
            at, _, action = heapq.heappop(self._events)
            self._now = max(self._now, at)
        action()

    def sleep(self, seconds: float) -> None:
        """Book a wake-up ``seconds`` from now, hand the turn on, and wait for it to return."""
        if not seconds >= 0:
            raise ValueError(f"sleep length must be >= 0 seconds, got {seconds!r}")
        wake = threading.Event()
        with self._lock:
            self.sleeps.append(seconds)
        self._book(self._now + seconds, wake.set)
        self._pass_turn()
        if not wake.wait(self.stall_timeout):
            raise RuntimeError(f"TurnClock: no turn came back within {self.stall_timeout} s; "
                               "is a thread blocked on something other than this clock?")

    async def asleep(self, seconds: float) -> None:
        """Not supported: a TurnClock schedules threads, not coroutines."""
        raise RuntimeError("TurnClock schedules threads; use VirtualClock for a coroutine")

    def run(self, handle: Callable[[int], T],
            arrivals: Sequence[float]) -> list[tuple[T | Exception, float]]:
        """Start ``handle(i)`` at virtual time ``arrivals[i]``, each in its own thread.

        Returns, per request in order, what ``handle`` returned (or the exception it
        raised) and its latency in virtual seconds. Returns when every request is done.
        """
        results: dict[int, tuple[T | Exception, float]] = {}

        def job(i: int, start: float) -> None:
            try:
                results[i] = (handle(i), self._now - start)
            except Exception as e:  # a failed request is a result too
                results[i] = (e, self._now - start)
            finally:
                self._pass_turn()

        def starter(i: int, start: float) -> Callable[[], None]:
            return lambda: threading.Thread(target=job, args=(i, start), daemon=True).start()

        self._idle.clear()
        for i, at in enumerate(arrivals):
            if not at >= self._now:
                raise ValueError(f"arrivals[{i}] = {at!r} is before now ({self._now!r})")
            self._book(float(at), starter(i, float(at)))
        self._pass_turn()
        turns = -1
        while not self._idle.wait(self.stall_timeout):
            if self._turns == turns:
                raise RuntimeError(f"TurnClock.run: no progress for {self.stall_timeout} s")
            turns = self._turns
        return [results[i] for i in range(len(arrivals))]
