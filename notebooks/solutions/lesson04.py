"""Model answers for lesson 04, "Overloaded and server errors"."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import anthropic

from resilience import VirtualClock, backoff, retry

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Connection errors and timeouts, 408, 409, 429, and every status >= 500 but 501."""
    if isinstance(exc, anthropic.APIConnectionError):  # APITimeoutError is one too
        return True
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        return status in (408, 409, 429) or (status >= 500 and status != 501)
    return False


def patient(fn: Callable[[], T], clock: VirtualClock, rng: random.Random) -> Callable[[], T]:
    """Up to 12 attempts, full jitter from 2 s up to 30 s, within 120 s."""
    wrap: Any = retry(attempts=12, deadline=120.0, backoff=backoff.full_jitter(2.0, 30.0),
                      clock=clock, rng=rng)
    return wrap(fn)  # type: ignore[no-any-return]
