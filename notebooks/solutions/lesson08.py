"""Model answers for lesson 08, "Circuit breakers"."""

from __future__ import annotations

from collections.abc import Sequence

import anthropic


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


def is_failure(e: BaseException) -> bool:
    """Count server errors (5xx but 501; 529 too) and network failures; never a 4xx.

    A 429 is your own quota running out (the API answered it at once), not a sick service.
    """
    if isinstance(e, anthropic.APIConnectionError):  # APITimeoutError is a subclass
        return True
    if isinstance(e, anthropic.APIStatusError):
        return e.status_code >= 500 and e.status_code != 501
    return False
