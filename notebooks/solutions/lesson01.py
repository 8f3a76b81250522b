"""Model answers for lesson 01, "The error catalogue"."""

from __future__ import annotations

import anthropic

from resilience import classify


def should_retry(status: int) -> bool:
    """Retry 408, 409, 429 and every status >= 500 except 501."""
    return status in (408, 409, 429) or (status >= 500 and status != 501)


def action_for(e: anthropic.APIStatusError) -> str:
    """One action per exception: the most specific class is tested first."""
    if isinstance(e, anthropic.OverloadedError):
        return "overloaded"
    if isinstance(e, anthropic.InternalServerError):
        return "server_error"
    if classify(e).category == "spend_limit":
        return "spend_limit"
    if isinstance(e, anthropic.RateLimitError):
        return "rate_limit"
    return "fix_request"
