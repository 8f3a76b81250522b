"""Model answers for lesson 11, "Streaming errors"."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

_RETRYABLE_IN_STREAM = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error",
                        "conflict_error"}


def is_retryable(exc: anthropic.APIStatusError) -> bool:
    """Never a spend limit; inside a 200 stream, decide by ``exc.type``; else retry 408,
    409, 429 and >= 500 (but 501)."""
    if (exc.error_code or "").endswith("spend_limit_reached"):
        return False
    status = exc.status_code
    if status == 200:
        return exc.type in _RETRYABLE_IN_STREAM
    return status in (408, 409, 429) or (status >= 500 and status != 501)


def answer_or_partial(client: anthropic.Anthropic, model: str,
                      messages: list[dict[str, Any]]) -> tuple[str, bool]:
    """Stream an answer: ``(text, True)``, or ``(partial, False)`` after a mid-stream error
    or a dropped connection."""
    pieces: list[str] = []
    try:
        for event in client.messages.create(model=model, max_tokens=256, messages=messages,
                                            stream=True):
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                pieces.append(event.delta.text)
    except (anthropic.APIStatusError, httpx2.TransportError):  # an error frame, or a drop
        if not pieces:
            raise
        return "".join(pieces), False
    return "".join(pieces), True
