"""Tidy results: one frozen dataclass per row, and CSV text with a fixed number of decimals.

Every experiment returns a tuple of rows (one observation per row, one variable per field),
which a notebook turns into a table, a plot or CSV without any reshaping. Fixed decimals keep
the CSV identical from run to run, so tests and notebooks can compare it to the digit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["to_csv"]


def to_csv(rows: Sequence[Any], decimals: Mapping[str, int] | None = None,
           default_decimals: int = 3) -> str:
    """Rows of one dataclass type as CSV text (header line, then one line per row).

    Args:
        rows: dataclass instances of a single type; fields whose values are tuples (such as
            a timeline) are left out.
        decimals: decimals per float field; other float fields get ``default_decimals``.
        default_decimals: decimals for float fields not named in ``decimals``.
    """
    if not rows:
        raise ValueError("rows must hold at least one result")
    decimals = dict(decimals or {})
    names = [f.name for f in dataclasses.fields(rows[0])
             if not isinstance(getattr(rows[0], f.name), tuple)]
    lines = [",".join(names)]
    for row in rows:
        cells = []
        for name in names:
            value = getattr(row, name)
            if isinstance(value, float):
                cells.append(f"{value:.{decimals.get(name, default_decimals)}f}")
            else:
                cells.append(str(value))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
