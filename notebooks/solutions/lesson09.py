"""Model answers for lesson 09, "Circuit breakers in practice"."""

from __future__ import annotations

from typing import Any

import anthropic

from resilience import CircuitBreaker


def is_failure(e: BaseException) -> bool:
    """Count server errors (5xx but 501; 529 too) and network failures; never a 4xx.

    A 429 is your own quota running out (the API answered it at once), not a sick service.
    """
    if isinstance(e, anthropic.APIConnectionError):  # APITimeoutError is a subclass
        return True
    if isinstance(e, anthropic.APIStatusError):
        return e.status_code >= 500 and e.status_code != 501
    return False


def guarded(api: Any, breaker: CircuitBreaker) -> Any:
    """Wrap the call, not the attempts: the SDK retries inside, the breaker sees the request."""
    return breaker(api.client().messages.create)
