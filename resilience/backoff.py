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
none               ``0`` (retry at once; the baseline of Brooker's study)
=================  ==============================================================

The exponent is capped: ``2**n`` is computed only up to the first ``n`` at which
``base * 2**n`` reaches ``cap`` (the result is ``cap`` from there on), so retry 5,000 is as
cheap and as finite as retry 5, and :meth:`Backoff.delays` really is infinite.

Look a strategy up by name with :func:`by_name` (``NAMES`` lists them, ``none`` included):
the retry decorator, the lab, the lessons and the command line all build theirs that way.

Formulas from Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015),
and the ``anthropic`` SDK's ``_calculate_retry_timeout``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import _check

__all__ = [
    "NAMES",
    "Backoff",
    "Strategy",
    "by_name",
    "decorrelated_jitter",
    "equal_jitter",
    "exponential",
    "full_jitter",
    "no_backoff",
    "sdk_default",
]

NAMES = ("none", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter",
         "sdk_default")
"""Every strategy :func:`by_name` knows, ``none`` (no wait) first."""

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
        kind: one of :data:`NAMES`.
        base: the first un-jittered delay in seconds (> 0).
        cap: the largest delay in seconds (>= base).
    """

    kind: str
    base: float
    cap: float
    _top: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        _check.instance("kind", self.kind, str, "a strategy name (str)")
        if self.kind not in NAMES:
            raise ValueError(f"kind must be one of {', '.join(NAMES)}, got {self.kind!r}")
        base = _check.positive_number("base", self.base, unit="seconds")
        cap = _check.number("cap", self.cap, minimum=base, unit="seconds")
        # The first n with base * 2**n >= cap: from there on the delay is the cap.
        # With base = mb * 2**eb and cap = mc * 2**ec (frexp, m in [0.5, 1)), that is
        # ec - eb, plus one when mb < mc; no power is computed, so nothing can overflow.
        (mb, eb), (mc, ec) = math.frexp(base), math.frexp(cap)
        object.__setattr__(self, "_top", max(0, ec - eb + (mb < mc)))

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
        if kind == "none":
            return u * 0.0
        if isinstance(n, int):
            x = self.cap if n >= self._top else min(self.cap, math.ldexp(self.base, n))
        else:  # an array: cap the exponent element-wise, then the delay
            x = _at_most(self.base * 2.0 ** _at_most(n, self._top), self.cap)
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


def no_backoff(base: float = 0.5, cap: float = 30.0) -> Backoff:
    """No wait at all: retry at once (``none``, the baseline of Brooker's study).

    ``base`` only seeds ``previous`` for callers that track it; the delay is always 0.
    """
    return Backoff("none", base, cap)


_BUILDERS = {"none": no_backoff, "exponential": exponential, "full_jitter": full_jitter,
             "equal_jitter": equal_jitter, "decorrelated_jitter": decorrelated_jitter}


def by_name(name: str, base: float | None = None, cap: float | None = None) -> Backoff:
    """The strategy called ``name`` (one of :data:`NAMES`), with this ``base`` and ``cap``.

    ``base`` and ``cap`` default to each strategy's own (0.5 s and 30 s). ``sdk_default``
    is the SDK's fixed schedule (0.5 s, 8 s): give it neither.

    >>> by_name("full_jitter", base=0.005, cap=2.0)
    Backoff(kind='full_jitter', base=0.005, cap=2.0)

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: an unknown name, a base or cap out of range, or a base or cap for
            ``sdk_default``.
    """
    _check.instance("name", name, str, "a strategy name (str)")
    if name == "sdk_default":
        if base is not None or cap is not None:
            raise ValueError("sdk_default is the SDK's fixed schedule (base 0.5 s, cap 8 s): "
                             f"pass no base or cap, got base={base!r}, cap={cap!r}")
        return sdk_default()
    build = _BUILDERS.get(name)
    if build is None:
        raise ValueError(f"name must be one of {', '.join(NAMES)}, got {name!r}")
    if base is None and cap is None:
        return build()
    if base is None:
        return build(cap=cap)  # type: ignore[arg-type]
    if cap is None:
        return build(base)
    return build(base, cap)
