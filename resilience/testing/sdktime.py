"""Run the SDK's own retry sleeps and jitter on a virtual clock, without touching globals.

The anthropic SDK waits between retries with ``time.sleep`` (sync) and ``anyio.sleep``
(async), and draws its jitter from ``random()``, all looked up as names of the module
``anthropic._base_client`` (checked on anthropic 2.14.0). :func:`sdk_on_clock` replaces
those three names in that one module, for the duration of a ``with`` block:

* ``time`` by a stand-in whose ``sleep`` is ``clock.sleep`` and whose every other
  attribute is the real ``time`` module's (``time.time()`` still parses HTTP-date
  ``retry-after`` values);
* ``anyio`` by a stand-in whose ``sleep`` is ``clock.asleep``;
* ``random`` by ``rng.random``, so the jitter repeats from a seed.

The real ``time.sleep``, ``anyio.sleep`` and ``random.random`` stay untouched for every
other module. While the block runs, every SDK client in the process sleeps on the clock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic._base_client as sdk_base
import anyio

from ..clock import VirtualClock

__all__ = ["sdk_on_clock"]


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



@contextmanager
def sdk_on_clock(clock: VirtualClock, rng: random.Random) -> Iterator[None]:
    """Within the block, the SDK's retry sleeps run on ``clock`` and its jitter on ``rng``.

    Blocks may nest; each restores what it found, even when an exception leaves it.

    Args:
        clock: the virtual clock whose ``sleep``/``asleep`` replace the real ones.
        rng: the random generator the SDK's jitter draws from.
    """
    replacements = {
        "time": _WithVirtualSleep(time, clock.sleep),
        "anyio": _WithVirtualSleep(anyio, clock.asleep),
        "random": rng.random,
    }
    missing = [name for name in replacements if not hasattr(sdk_base, name)]
    if missing:  # a future SDK that renamed them would otherwise sleep for real
        raise RuntimeError(f"anthropic._base_client no longer has {missing}: update sdktime")
    saved = {name: getattr(sdk_base, name) for name in replacements}
    for name, value in replacements.items():
        setattr(sdk_base, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(sdk_base, name, value)
