"""Model answers for lesson 08, "Circuit breakers"."""

from __future__ import annotations

from collections.abc import Sequence


def predict_states(events: Sequence[str], failure_threshold: int = 3,
                   recovery_timeout: float = 5.0) -> list[str]:
    """The breaker's state as each call arrives (one a second), without running a breaker."""
    state, opened_at, failures = "closed", 0.0, 0
    states = []
    for t, event in enumerate(events):
        if state == "open" and t - opened_at >= recovery_timeout:
            state = "half_open"
        states.append(state)
        if state == "open":
            continue  # rejected: the call never reaches the service
        failed = event == "fail"
        if state == "half_open":
            state = "open" if failed else "closed"
            opened_at, failures = t, 0
        elif failed:
            failures += 1
            if failures >= failure_threshold:
                state, opened_at = "open", t
        else:
            failures = 0
    return states


def closes_at(start: int, end: int, failure_threshold: int, recovery_timeout: int) -> int:
    """The time a breaker closes after the outage ``start <= t < end``, one call a second.

    It opens at ``opened = start + failure_threshold - 1`` and tries at ``opened + k * T``
    (k >= 1); the first trial at or after ``end`` succeeds:
    ``opened + max(1, ceil((end - opened) / T)) * T``.
    """
    opened = start + failure_threshold - 1
    trials = max(1, -(-(end - opened) // recovery_timeout))
    return opened + trials * recovery_timeout
