"""Checking arguments: one helper for the library and the lab, on the ground floor.

Every check fails early and names what was wrong:

* a wrong **type** raises :class:`TypeError` naming the argument and the type it needs
  (``deadline must be a number of seconds, got '5' (str)``);
* a wrong **value** raises :class:`ValueError` naming the setting and the allowed range
  (``deadline must be a finite number of seconds > 0, got -1.0``).

Each check returns the value, converted, so a caller writes
``clients = whole_number("clients", clients, minimum=1)`` and then trusts it. Bools are
never numbers here (``attempts=True`` is a mistake, not 1).

This module imports nothing from the package: every other module may use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = [
    "callable_or_none",
    "choices",
    "clock_like",
    "fraction",
    "function",
    "functions",
    "instance",
    "number",
    "positive_number",
    "rng_like",
    "seed_value",
    "whole_number",
]

_F = TypeVar("_F", bound=Callable[..., Any])

_INF = math.inf


def _shown(value: object) -> str:
    """``repr`` of a value with its type, for a TypeError message."""
    return f"{value!r} ({type(value).__name__})"


def _is_real(value: object) -> bool:
    kind = type(value)
    if kind is float or kind is int:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def whole_number(name: str, value: object, *, minimum: int = 0,
                 maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``.

    Raises:
        TypeError: ``value`` is not an integer (a float, a bool, a string...).
        ValueError: it is outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_shown(value)}")
    number_ = int(value)
    if number_ < minimum or (maximum is not None and number_ > maximum):
        upper = "" if maximum is None else f" and <= {maximum:,}"
        raise ValueError(f"{name} must be an int >= {minimum}{upper}, got {value!r}")
    return number_


def number(name: str, value: object, *, minimum: float = -_INF, maximum: float = _INF,
           above: bool = False, below: bool = False, unit: str = "",
           finite: bool = True) -> float:
    """``value`` as a float in a range; by default finite (no NaN, no infinity).

    Args:
        name: the argument's name, for the message.
        value: what was passed.
        minimum, maximum: the bounds.
        above: the lower bound is excluded (``value > minimum``).
        below: the upper bound is excluded (``value < maximum``).
        unit: what the number counts, for the message (``"seconds"``).
        finite: refuse infinities (NaN is always refused).

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: it is NaN, infinite (when ``finite``) or out of range.
    """
    what = f"a number of {unit}" if unit else "a number"
    if not _is_real(value):
        raise TypeError(f"{name} must be {what}, got {_shown(value)}")
    result = float(value)  # type: ignore[arg-type]
    low_ok = result > minimum if above else result >= minimum
    high_ok = result < maximum if below else result <= maximum
    if low_ok and high_ok and (math.isfinite(result) or (not finite and result == result)):
        return result
    parts = []
    if minimum != -_INF:
        parts.append(f"{'>' if above else '>='} {minimum:g}")
    if maximum != _INF:
        parts.append(f"{'<' if below else '<='} {maximum:g}")
    bounds = " and ".join(parts)
    kind = f"a finite {what[2:]}" if finite else what
    raise ValueError(f"{name} must be {kind}{' ' + bounds if bounds else ''}, got {value!r}")


def positive_number(name: str, value: object, *, allow_zero: bool = False,
                    unit: str = "") -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    return number(name, value, minimum=0.0, above=not allow_zero, unit=unit)


def fraction(name: str, value: object) -> float:
    """``value`` as a float in ``[0, 1]`` (a probability or a failure rate)."""
    return number(name, value, minimum=0.0, maximum=1.0)


def seed_value(seed: object) -> int:
    """``seed`` as an int >= 0 (NumPy and :mod:`random` both accept it)."""
    return whole_number("seed", seed, minimum=0)


def choices(name: str, values: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """``values`` as a non-empty tuple of names, each one of ``allowed``, without repeats."""
    if isinstance(values, str):
        values = (values,)
    try:
        picked = tuple(values)
    except TypeError:
        raise TypeError(f"{name} must be a name or an iterable of names, "
                        f"got {_shown(values)}") from None
    known = tuple(allowed)
    if not picked:
        raise ValueError(f"{name} must name at least one of {', '.join(known)}")
    for value in picked:
        if not isinstance(value, str):
            raise TypeError(f"{name} must hold names (str), got {_shown(value)}")
        if value not in known:
            raise ValueError(f"{name}: unknown {value!r}; choose from {', '.join(known)}")
    if len(set(picked)) != len(picked):
        raise ValueError(f"{name} must not repeat a name, got {picked!r}")
    return picked


def function(name: str, value: object) -> Callable[..., Any]:
    """``value`` if it is callable; else TypeError naming ``name``."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {_shown(value)}")
    return value


def functions(name: str, values: Iterable[_F]) -> list[_F]:
    """``values`` (listeners, hooks) as a new list, each callable; TypeError naming the
    bad one (``listeners[2]``), or the whole argument when it is not a list of them."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a list of callables, got {values!r}")
    try:
        checked = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a list of callables, got {values!r}") from None
    for i, value in enumerate(checked):
        function(f"{name}[{i}]", value)
    return checked


def callable_or_none(name: str, value: object) -> Callable[..., Any] | None:
    """``value`` if it is callable or None; else TypeError naming ``name``."""
    return None if value is None else function(name, value)


def instance(name: str, value: object, kind: type[Any] | tuple[type[Any], ...],
             what: str) -> Any:
    """``value`` if it is an instance of ``kind``; else TypeError saying it must be ``what``."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {what}, got {_shown(value)}")
    return value


def clock_like(name: str, value: object) -> Any:
    """``value`` if it offers a clock's ``now``, ``sleep`` and ``asleep`` methods."""
    if not all(callable(getattr(value, method, None)) for method in ("now", "sleep", "asleep")):
        raise TypeError(f"{name} must be a clock with now(), sleep() and asleep() "
                        f"(SystemClock, VirtualClock...), got {_shown(value)}")
    return value


def rng_like(name: str, value: object) -> Any:
    """``value`` if it has a ``random()`` method (``random.Random`` and its kin)."""
    if not callable(getattr(value, "random", None)):
        raise TypeError(f"{name} must be a random source with a random() method "
                        f"(random.Random(seed)), got {_shown(value)}")
    return value
