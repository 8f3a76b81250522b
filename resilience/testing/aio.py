"""Many coroutines on one virtual clock: an asyncio event loop whose time is virtual.

Test tooling, not production code. :class:`VirtualClock.asleep
<resilience.VirtualClock.asleep>` is exact for one task at a time: it moves the shared clock
by each sleep. A thousand clients sleeping different amounts at once need an event loop that
orders their wake-ups. :class:`VirtualTimeLoop` is that loop:

* its ``time()`` is ``clock.now()``, so ``asyncio.sleep``, ``call_later``, timeouts and
  ``anyio.sleep`` (the SDK's retry sleep) all become timers on the virtual clock;
* it never waits for real: when no callback is ready it moves the clock to the earliest
  timer and runs it. Timers that fall due at the same time run in a fixed order (asyncio's
  timer heap), so a seeded run repeats exactly;
* ``run_in_executor`` (and so ``asyncio.to_thread``) runs the function at once in the
  loop's own thread: real threads would finish in a random real-time order.

Inside a ``FakeClaude`` block, run your coroutines with :meth:`FakeClaude.run
<resilience.testing.FakeClaude.run>` (or :func:`run` with the fake's clock)::

    async def one(i: int) -> None:
        client = api.async_client(max_retries=9)
        await client.messages.create(model=api.model, max_tokens=64, messages=HI)

    async def herd() -> None:
        await asyncio.gather(*(one(i) for i in range(1000)), return_exceptions=True)

    with FakeClaude(seed=0) as api:
        api.scenario(Outage(0, 30))
        api.run(herd())               # 1,000 clients, their retries in virtual time order

Work in other threads does not hold virtual time back. A loop where every task waits and
no timer is due waits ``stall_timeout`` real seconds for a thread to wake it
(``call_soon_threadsafe``), then raises ``RuntimeError`` rather than hang.
The idea is looptime's (a PyPI package that fast-forwards a loop's time in tests); this small
loop needs no extra dependency, reads its time from the :class:`~resilience.VirtualClock`
that ``FakeClaude`` shares, and runs executor work inline so runs repeat exactly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import selectors
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple, Unpack

from ..clock import VirtualClock

__all__ = ["VirtualTimeLoop", "run"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _FastForward(selectors.DefaultSelector):
    """A selector that reports ready I/O at once and otherwise moves time to the next timer."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only another thread can wake the loop
            stall = self._loop.stall_timeout
            events = super().select(stall)
            if not events:
                raise RuntimeError(
                    f"VirtualTimeLoop: every task is waiting, no timer is due and no thread "
                    f"woke the loop for {stall:g} real seconds: a deadlock?")
            return events
        self._loop.fast_forward()
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time; see the module docstring.

    Args:
        clock: the clock the loop reads and moves (a new ``VirtualClock()`` if None).
        stall_timeout: real seconds to wait for another thread when no timer is due (> 0).

    Attributes:
        clock: the virtual clock; ``loop.time() == clock.now()`` at all times.
        stall_timeout: as given.
    """

    def __new__(cls, clock: VirtualClock | None = None, *,
                stall_timeout: float = 10.0) -> VirtualTimeLoop:
        # checked here, not in __init__: a half-built loop would complain when collected
        if clock is not None and not isinstance(clock, VirtualClock):
            raise TypeError(f"clock must be a VirtualClock, got {clock!r}")
        if isinstance(stall_timeout, bool) or not isinstance(stall_timeout, int | float):
            raise TypeError(f"stall_timeout must be a number of seconds, got {stall_timeout!r}")
        if not 0 < stall_timeout < math.inf:
            raise ValueError(f"stall_timeout must be a finite number of seconds > 0, "
                             f"got {stall_timeout!r}")
        return super().__new__(cls)

    def __init__(self, clock: VirtualClock | None = None, *, stall_timeout: float = 10.0) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        self.stall_timeout = stall_timeout
        super().__init__(_FastForward(self))

    def time(self) -> float:
        """The virtual time: ``clock.now()``."""
        return self.clock.now()

    def fast_forward(self) -> None:
        """Move the clock to the earliest timer (nothing else is ready to run).

        The clock lands on the timer's time exactly (or one float step past it), so the
        task it wakes reads the time it asked for.
        """
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled", [])
        pending = [handle.when() for handle in scheduled[:1] if not handle.cancelled()]
        if not pending:
            return
        now, when = self.clock.now(), pending[0]
        if when <= now:
            return
        step = when - now
        while now + step < when:  # float rounding: never land before the timer
            step = math.nextafter(step, math.inf)
        self.clock.advance(step)

    def run_in_executor(self, executor: Executor | None, func: Callable[[Unpack[Ts]], T],
                        *args: *Ts) -> asyncio.Future[T]:
        """Run ``func(*args)`` now, in this thread, and return its finished future.

        Deterministic where a thread pool is not; no virtual time passes.
        """
        self._check_closed()  # type: ignore[attr-defined]
        future: asyncio.Future[T] = self.create_future()
        try:
            future.set_result(func(*args))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:  # the awaiting task gets it, as from a thread
            future.set_exception(e)
        return future

    def __repr__(self) -> str:
        return f"<VirtualTimeLoop clock={self.clock!r} running={self.is_running()}>"


def run(main: Coroutine[Any, Any, T], *, clock: VirtualClock | None = None,
        stall_timeout: float = 10.0) -> T:
    """``asyncio.run(main)`` on a :class:`VirtualTimeLoop`: its sleeps take no real time.

    Args:
        main: the coroutine to run to completion.
        clock: the loop's clock (a new ``VirtualClock()`` if None). Pass a ``FakeClaude``'s
            clock (or call :meth:`FakeClaude.run <resilience.testing.FakeClaude.run>`) so the
            fake and the SDK's sleeps read the same time.
        stall_timeout: see :class:`VirtualTimeLoop`.

    Returns:
        What ``main`` returns.

    Called where an event loop already runs in this thread (a Jupyter cell, an async test),
    it runs ``main`` on its own virtual-time loop in a worker thread and waits for it: the
    caller's loop is blocked meanwhile, which is harmless since no real time passes.
    """
    if not asyncio.iscoroutine(main):
        raise TypeError(f"main must be a coroutine, got {main!r}")

    def go() -> T:
        with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(
                clock, stall_timeout=stall_timeout)) as runner:
            return runner.run(main)

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual case
        return go()
    with concurrent.futures.ThreadPoolExecutor(1, "resilience-virtual-loop") as pool:
        return pool.submit(go).result()
