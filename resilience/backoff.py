"""Backoff strategies: how long to wait before retry number ``n``.

Each strategy is a small frozen object with one formula, :meth:`next_delay`, a pure function
of the retry number ``n`` (0 for the first retry), the previous delay and one uniform random
draw ``u`` in [0, 1). The retry loop, the simulation lab and the plots all call that same
method, so there is exactly one copy of each formula in the project.

``next_delay`` also accepts NumPy arrays for ``n``, ``previous`` and ``u`` (the lab computes
thousands of clients' delays in one call); this module itself never imports NumPy.

=================  ==============================================================
strategy           delay before retry ``n`` (``x = min(cap, base * 2**n)``)
=================  ==============================================================
exponential        ``x`` (no jitter: every client waits the same time)
full_jitter        ``u * x`` (uniform in [0, x))
equal_jitter       ``x/2 + u * x/2`` (uniform in [x/2, x))
decorrelated       ``min(cap, base + u * (3 * previous - base))``, ``previous`` starts at base
sdk_default        ``min(0.5 * 2**n, 8) * (1 - 0.25 * u)`` (the anthropic SDK's own)
=================  ==============================================================

Formulas from Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015),
and the ``anthropic`` SDK's ``_calculate_retry_timeout``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "Backoff",
    "Strategy",
    "decorrelated_jitter",
    "equal_jitter",
    "exponential",
    "full_jitter",
    "sdk_default",
]

_N = TypeVar("_N")


class Strategy(Protocol):
    """What the retry loop needs from a backoff strategy."""

    @property
    def base(self) -> float: ...

    def next_delay(self, n: Any, previous: Any, u: Any) -> Any: ...

    def delays(self, rng: random.Random) -> Iterator[float]: ...


def _at_most(x: _N, cap: float) -> _N:
    """``min(x, cap)`` for a float or, element-wise, for a NumPy array."""
    clip = getattr(x, "clip", None)
    if clip is not None:
        return clip(max=cap)  # type: ignore[no-any-return]
    return x if x < cap else cap  # type: ignore[operator,return-value]


@dataclass(frozen=True, slots=True)
class Backoff:
    """A capped exponential backoff with a jitter mode; build it with the functions below.

    Attributes:
        kind: one of ``exponential``, ``full_jitter``, ``equal_jitter``,
            ``decorrelated_jitter``, ``sdk_default``.
        base: the first un-jittered delay in seconds (> 0).
        cap: the largest delay in seconds (>= base).
    """

    kind: str
    base: float
    cap: float

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {self.kind!r}")
        if not (self.base > 0 and self.base < float("inf")):
            raise ValueError(f"base must be a finite number of seconds > 0, got {self.base!r}")
        if not (self.cap >= self.base and self.cap < float("inf")):
            raise ValueError(
                f"cap must be a finite number of seconds >= base ({self.base!r}), "
                f"got {self.cap!r}"
            )

    def next_delay(self, n: Any, previous: Any, u: Any) -> Any:
        """The delay before retry ``n`` (0 for the first retry), in seconds.

        Args:
            n: the retry number, from 0 (int or array of ints).
            previous: the previous delay (only decorrelated jitter reads it; pass ``base``
                for the first retry).
            u: a uniform draw in [0, 1) (float or array).
        """
        kind = self.kind
        if kind == "decorrelated_jitter":
            return _at_most(self.base + u * (3.0 * previous - self.base), self.cap)
        x = _at_most(self.base * 2.0**n, self.cap)
        if kind == "full_jitter":
            return u * x
        if kind == "equal_jitter":
            return x / 2.0 + u * (x / 2.0)
        if kind == "sdk_default":
            return x * (1.0 - 0.25 * u)
        return x  # exponential: u is drawn but unused, so every strategy eats one draw per delay

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The infinite sequence of delays, drawing one ``rng.random()`` per delay.

        The same seed gives the same delays: ``list(islice(s.delays(Random(7)), 5))``.
        """
        previous = self.base
        n = 0
        while True:
            previous = float(self.next_delay(n, previous, rng.random()))
            yield previous
            n += 1


_KINDS = frozenset({"exponential", "full_jitter", "equal_jitter", "decorrelated_jitter",
                    "sdk_default"})


def exponential(base: float = 0.5, cap: float = 30.0) -> Backoff:
    """No jitter: ``min(cap, base * 2**n)``. Clients that failed together retry together."""
    return Backoff("exponential", base, cap)


def full_jitter(base: float = 0.5, cap: float = 30.0) -> Backoff:
    """Full jitter: ``uniform(0, min(cap, base * 2**n))``. Least work in Brooker's study."""
    return Backoff("full_jitter", base, cap)


def equal_jitter(base: float = 0.5, cap: float = 30.0) -> Backoff:
    """Equal jitter: ``x/2 + uniform(0, x/2)`` with ``x = min(cap, base * 2**n)``."""
    return Backoff("equal_jitter", base, cap)


def decorrelated_jitter(base: float = 0.5, cap: float = 30.0) -> Backoff:
    """Decorrelated jitter: ``min(cap, uniform(base, 3 * previous))``, previous starts at base."""
    return Backoff("decorrelated_jitter", base, cap)


def sdk_default() -> Backoff:
    """The anthropic SDK's schedule: ``min(0.5 * 2**n, 8) * (1 - 0.25 * u)``.

    Jitter only shortens the delay, to 75-100 % of the base: 0.375-0.5 s, 0.75-1 s, ...
    Useful for comparison; the SDK applies it itself (when ``retry-after`` is absent).
    """
    return Backoff("sdk_default", 0.5, 8.0)
