"""Model answers for lesson 00, "Start here"."""

from __future__ import annotations

import contextlib

import anthropic

from resilience import VirtualClock
from resilience.testing import FakeClaude


def describe(e: anthropic.APIStatusError) -> tuple[int, str | None, str | None]:
    """The status, ``error.type`` and request id of an API error."""
    return e.status_code, e.type, e.request_id


def attempts_made(outcomes: list[str], max_retries: int) -> int:
    """How many HTTP attempts one ``messages.create`` call makes against ``outcomes``."""
    with FakeClaude(clock=VirtualClock()) as api:
        api.respond(*outcomes)
        with contextlib.suppress(anthropic.APIError):  # the call may end in an error
            api.client(max_retries=max_retries).messages.create(
                model=api.model, max_tokens=64,
                messages=[{"role": "user", "content": "Hello, Claude"}])
        return len(api.calls)
