"""Checking an experiment's parameters: every bad value fails early, with its name and range.

Each check returns the value (converted) so a function can write
``clients = whole_number("clients", clients, minimum=1)`` and then trust it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["choices", "fraction", "positive_number", "seed_value", "whole_number"]


def whole_number(name: str, value: object, *, minimum: int = 0,
                 maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value!r}")
    return value


def positive_number(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    ok = math.isfinite(number) and (number >= 0 if allow_zero else number > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def fraction(name: str, value: object) -> float:
    """``value`` as a float in ``[0, 1]`` (a probability or a failure rate)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return number


def seed_value(seed: object) -> int:
    """``seed`` as an int >= 0 (NumPy and :mod:`random` both accept it)."""
    return whole_number("seed", seed, minimum=0)


def choices(name: str, values: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """``values`` as a non-empty tuple of names, each one of ``allowed``, without repeats."""
    if isinstance(values, str):
        values = (values,)
    picked = tuple(values)
    known = tuple(allowed)
    if not picked:
        raise ValueError(f"{name} must name at least one of {', '.join(known)}")
    for value in picked:
        if value not in known:
            raise ValueError(f"{name}: unknown {value!r}; choose from {', '.join(known)}")
    if len(set(picked)) != len(picked):
        raise ValueError(f"{name} must not repeat a name, got {picked!r}")
    return picked
