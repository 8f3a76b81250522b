"""Run the SDK's own retry sleeps and jitter on a virtual clock, without touching globals.

Test tooling: it patches SDK internals. The anthropic SDK waits between retries with
``time.sleep`` (sync) and ``anyio.sleep`` (async), and draws its jitter from ``random()``,
all looked up as names of the module ``anthropic._base_client`` (checked on anthropic
2.15.0). :func:`sdk_on_clock` replaces those three names in that one module, for the
duration of a ``with`` block:

* ``time`` by a stand-in whose ``sleep`` is ``clock.sleep`` and whose every other
  attribute is the real ``time`` module's (``time.time()`` still parses HTTP-date
  ``retry-after`` values);
* ``anyio`` by a stand-in whose ``sleep`` is a timer on the running
  :class:`~resilience.testing.aio.VirtualTimeLoop` (so many tasks wake in time order), or
  ``clock.asleep`` on any other event loop (exact for one task at a time);
* ``random`` by ``rng.random``, so the jitter repeats from a seed.

The real ``time.sleep``, ``anyio.sleep`` and ``random.random`` stay untouched for every
other module. While a block is open, every SDK client in the process sleeps on its clock.

Blocks may overlap and close in any order: the stand-ins are installed when the first
block opens and the SDK's own names are put back when the last one closes. While several
are open, the most recently opened one that is still open decides (its clock, its rng).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic._base_client as sdk_base
import anyio

from ..clock import VirtualClock
from .aio import VirtualTimeLoop

__all__ = ["sdk_on_clock"]

_NAMES = ("time", "anyio", "random")


class _WithVirtualSleep:
    """A module look-alike: the attributes given here, the real module's for the rest."""

    __slots__ = ("_module", "sleep")

    def __init__(self, module: Any, sleep: Callable[[float], Any]) -> None:
        self._module = module
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def __repr__(self) -> str:
        return f"<{self._module.__name__} with a virtual sleep>"


class _Binding:
    """One open block: the clock and rng it gives the SDK."""

    __slots__ = ("clock", "rng")

    def __init__(self, clock: VirtualClock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng


_lock = threading.Lock()
_open: list[_Binding] = []      # the open blocks, oldest first
_saved: dict[str, Any] = {}     # the SDK's own names while any block is open


def _current() -> _Binding:
    try:
        return _open[-1]
    except IndexError:  # a stand-in kept by someone after the last block closed
        raise RuntimeError("the SDK's sleep stand-in ran outside every sdk_on_clock block; "
                           "keep clients inside the FakeClaude block") from None


def _sleep(seconds: float) -> None:
    _current().clock.sleep(seconds)


async def _asleep(seconds: float) -> None:
    clock = _current().clock
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another async library: one task at a time, as before
        loop = None
    if not isinstance(loop, VirtualTimeLoop):
        await clock.asleep(seconds)
        return
    if loop.clock is not clock:
        raise RuntimeError("the event loop runs on another clock than the FakeClaude block: "
                           "run the coroutine with api.run(...) or VirtualTimeLoop(api.clock)")
    if not seconds >= 0:
        raise ValueError(f"sleep length must be >= 0 seconds, got {seconds!r}")
    clock.sleeps.append(seconds)
    await asyncio.sleep(seconds)  # a timer on the virtual loop


def _random() -> float:
    return _current().rng.random()


_STAND_INS: dict[str, Any] = {
    "time": _WithVirtualSleep(time, _sleep),
    "anyio": _WithVirtualSleep(anyio, _asleep),
    "random": _random,
}


@contextmanager
def sdk_on_clock(clock: VirtualClock, rng: random.Random) -> Iterator[None]:
    """Within the block, the SDK's retry sleeps run on ``clock`` and its jitter on ``rng``.

    Blocks may nest or overlap and close in any order; the SDK gets its own names back
    when the last open block closes, even when an exception leaves it.

    Args:
        clock: the virtual clock whose ``sleep``/``asleep`` replace the real ones.
        rng: the random generator the SDK's jitter draws from.
    """
    if not (callable(getattr(clock, "sleep", None)) and callable(getattr(clock, "asleep", None))):
        raise TypeError(f"clock must be a clock with sleep and asleep (a VirtualClock), "
                        f"got {clock!r}")
    if not callable(getattr(rng, "random", None)):
        raise TypeError(f"rng must be a random.Random, got {rng!r}")
    binding = _Binding(clock, rng)
    with _lock:
        if not _open:
            missing = [name for name in _NAMES if not hasattr(sdk_base, name)]
            if missing:  # a future SDK that renamed them would otherwise sleep for real
                raise RuntimeError(
                    f"anthropic._base_client no longer has {missing}: update sdktime")
            _saved.update({name: getattr(sdk_base, name) for name in _NAMES})
            for name in _NAMES:
                setattr(sdk_base, name, _STAND_INS[name])
        _open.append(binding)
    try:
        yield
    finally:
        with _lock:
            _open.remove(binding)
            if not _open:
                for name, value in _saved.items():
                    setattr(sdk_base, name, value)
                _saved.clear()
