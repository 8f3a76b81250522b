"""Model answers for lesson 02, "Errors you fix, not retry"."""

from __future__ import annotations

from typing import Any

import anthropic

from resilience import classify


def log_fields(e: anthropic.APIStatusError) -> dict[str, Any]:
    """The fields worth logging: enough to find the request again, and no secret."""
    return {"request_id": e.request_id, "status": e.status_code, "error_type": e.type,
            "error_code": e.error_code, "sdk_class": type(e).__name__}


def user_message(e: anthropic.APIStatusError) -> str:
    """The category's advice and the request id to quote."""
    verdict = classify(e)
    return f"{verdict.advice} (reference: {verdict.request_id})"
