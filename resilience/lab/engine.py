"""Discrete events on virtual time: the two engines behind the experiments.

A discrete-event simulation keeps a list of future events and repeatedly handles the
earliest one; handling an event may schedule later ones. Time jumps from event to event, so
a minute of retries costs as much as the events in it, never a real second.

* :class:`EventQueue` runs **one** simulation: a heap of ``(time, sequence, item)`` whose
  pops move a :class:`resilience.VirtualClock` forward. The clock is the same object the
  real :class:`~resilience.AdaptiveThrottle` and :class:`~resilience.CircuitBreaker` read, so
  those classes see simulated time. Ties are handled first-in, first-out.
* :class:`Lockstep` runs ``R`` **independent** simulations side by side with NumPy. Each run
  has ``K`` slots (one per client) holding that client's next event time (``inf`` = none).
  One step finds, in every run at once, the earliest event (an ``argmin`` per row); the
  caller handles all ``R`` of them with array operations and writes back the next times.
  Every run still sees its events in exact time order, so the result is the same as ``R``
  separate heap simulations; the Python overhead is paid once per step instead of once per
  event per run. This is what makes the full Brooker (2015) sweep take seconds, not minutes.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..clock import VirtualClock

__all__ = ["EventQueue", "Lockstep"]

T = TypeVar("T")


class EventQueue(Generic[T]):
    """A time-ordered queue of events for one simulation, driving a virtual clock.

    Args:
        clock: the clock to move forward as events are popped (a new one at 0 by default).
    """

    __slots__ = ("_heap", "_sequence", "clock")

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        self._heap: list[tuple[float, int, T]] = []
        self._sequence = itertools.count()

    def push(self, time: float, item: T) -> None:
        """Schedule ``item`` at ``time`` (not before the clock's current time)."""
        if time < self.clock.now():
            raise ValueError(f"cannot schedule at {time!r}, before now ({self.clock.now()!r})")
        heapq.heappush(self._heap, (time, next(self._sequence), item))

    def pop(self) -> tuple[float, T]:
        """Remove the earliest event, move the clock to its time, and return ``(time, item)``."""
        time, _, item = heapq.heappop(self._heap)
        self.clock.advance(time - self.clock.now())
        return time, item

    def __len__(self) -> int:
        return len(self._heap)


class Lockstep:
    """``R`` independent runs with ``K`` event slots each, advanced one event per run per step.

    Args:
        times: an ``(R, K)`` array of each slot's next event time; ``inf`` means no event.
            The array is used in place (not copied).

    Attributes:
        times: the ``(R, K)`` event times.
        runs: ``R``.
    """

    __slots__ = ("_flat", "_offsets", "runs", "times")

    def __init__(self, times: NDArray[np.float64]) -> None:
        if times.ndim != 2 or times.shape[0] < 1 or times.shape[1] < 1:
            raise ValueError(f"times must be a non-empty (runs, slots) array, got {times.shape}")
        self.times = times
        self.runs = times.shape[0]
        self._flat = times.reshape(-1)  # a view: writes go to ``times``
        self._offsets = np.arange(self.runs) * times.shape[1]

    def earliest(self) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The earliest event of every run: ``(flat slot index, time)``, one entry per run.

        A run with no events left reports time ``inf``. Index per-client arrays of shape
        ``(R, K)`` with the flat index through ``array.reshape(-1)``.
        """
        flat = self._offsets + self.times.argmin(axis=1)
        return flat, self._flat[flat]

    def schedule(self, flat: NDArray[np.intp], times: NDArray[np.float64]) -> None:
        """Set the next event time of the given slots (``inf`` for none)."""
        self._flat[flat] = times

    def finished(self) -> bool:
        """True when no run has an event left."""
        return bool(np.isinf(self.times).all())
