"""The series behind every retry-load formula in the lab, written once.

``1 + x + x**2 + ... + x**r``: the expected calls of one request that makes up to ``r + 1``
attempts, stopping at the first success, when each attempt fails independently with
probability ``x``. Attempt ``k + 1`` happens only if the first ``k`` all failed
(probability ``x**k``), and the expected count is the sum of those probabilities.

Used by :func:`~resilience.lab.expected_load` (plain retries), :mod:`.openloop` (its
expected call rate) and :func:`~resilience.lab.expected_calls` (layer by layer).
"""

from __future__ import annotations

from .._check import fraction, whole_number

__all__ = ["geometric_series"]


def geometric_series(x: float, r: int) -> float:
    """``1 + x + x**2 + ... + x**r`` for ``x`` in [0, 1] and ``r >= 0``.

    Summed term by term, so ``x = 1`` gives exactly ``r + 1`` and small cases are exact
    (``geometric_series(0.5, 3) == 1.875``); the closed form ``(1 - x**(r+1)) / (1 - x)``
    would lose digits as ``x`` nears 1.
    """
    x = fraction("x", x)
    r = whole_number("r", r, minimum=0)
    return sum(x**k for k in range(r + 1))
