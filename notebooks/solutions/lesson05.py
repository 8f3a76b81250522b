"""Model answers for lesson 05, "What the SDK already does"."""

from __future__ import annotations

import random
from typing import Any

from resilience import backoff, retry


def sdk_retries(status: int, should_retry: bool | None) -> bool:
    """The SDK's rule: the header decides if present; else 408, 409, 429 and >= 500."""
    if should_retry is not None:
        return should_retry
    return status in (408, 409, 429) or status >= 500


def ask(api: Any, rng: random.Random) -> Any:
    """One layer: the SDK does not retry (max_retries=0); resilience.retry does, 6 tries."""
    client = api.client(max_retries=0)
    create = retry(attempts=6, deadline=60.0, backoff=backoff.equal_jitter(1.0, 30.0),
                   clock=api.clock, rng=rng)(client.messages.create)
    return create(model=api.model, max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
