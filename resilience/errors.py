"""The ground floor: exceptions and state names that several modules share.

This module imports nothing from the package, so every other module may import it without
an import cycle (the breaker raises :class:`CircuitOpenError`; the classifier recognises it).
"""

from __future__ import annotations

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitOpenError"]

CLOSED = "closed"
"""The breaker's normal state: calls go through and failures are counted."""
OPEN = "open"
"""The breaker's tripped state: calls fail at once with :class:`CircuitOpenError`."""
HALF_OPEN = "half_open"
"""The breaker's trial state: a few calls test whether the service is back."""


class CircuitOpenError(Exception):
    """Raised instead of calling the service while the circuit is open (or half-open and
    already running its trial calls).

    Attributes:
        name: the breaker's name.
        state: ``open`` or ``half_open``.
        retry_in: seconds until the breaker will admit a trial call (0.0 when half-open).
    """

    def __init__(self, name: str, state: str, retry_in: float) -> None:
        self.name = name
        self.state = state
        self.retry_in = retry_in
        if state == OPEN:
            text = f"circuit '{name}' is open: the next trial call is allowed in {retry_in:.1f} s"
        else:
            text = f"circuit '{name}' is half-open and its trial calls are in flight"
        super().__init__(text)
