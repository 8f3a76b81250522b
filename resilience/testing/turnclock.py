"""Many threads on virtual time: :class:`TurnClock`, for tests and simulations.

Test tooling, not production code: it runs each simulated request in a thread of its own
and lets one run at a time, in virtual-time order.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..clock import VirtualClock

__all__ = ["TurnClock"]

T = TypeVar("T")


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

        Raises:
            BaseException: the first ``SystemExit``, ``KeyboardInterrupt`` or other
                ``BaseException`` that is not an ``Exception`` raised by a ``handle``
                (by request number), re-raised here once every request is done: it asks
                the program to stop, it is not a request's result.
        """
        results: dict[int, tuple[T | Exception, float]] = {}
        stops: dict[int, BaseException] = {}

        def job(i: int, start: float) -> None:
            try:
                results[i] = (handle(i), self._now - start)
            except Exception as e:  # a failed request is a result too
                results[i] = (e, self._now - start)
            except BaseException as e:  # SystemExit, KeyboardInterrupt: for the caller
                stops[i] = e
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
        if stops:
            raise stops[min(stops)]
        return [results[i] for i in range(len(arrivals))]
