"""Model answers for lesson 15, "Long requests and streams"."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from resilience.clock import Clock


def watch(client: anthropic.Anthropic, model: str, messages: list[dict[str, Any]],
          clock: Clock, deadline: float, silence: float) -> str:
    """Stream an answer; ``TimeoutError`` after ``deadline`` s in all (checked at every
    event) or after ``silence`` s without a byte (the read timeout)."""
    start = clock.now()  # before create(): the SDK's own retries count too
    pieces: list[str] = []
    try:
        with client.messages.create(model=model, max_tokens=1024, messages=messages,
                                    stream=True,
                                    timeout=httpx2.Timeout(deadline, connect=5.0,
                                                           read=silence)) as stream:
            for event in stream:
                if clock.now() - start > deadline:
                    raise TimeoutError(f"no complete answer within {deadline:g} s")
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    pieces.append(event.delta.text)
    except (httpx2.ReadTimeout, anthropic.APITimeoutError) as e:
        raise TimeoutError(f"the answer went silent for over {silence:g} s") from e
    return "".join(pieces)


def collect(client: anthropic.Anthropic, model: str, messages: list[dict[str, Any]],
            restarts: int) -> str:
    """Read a stream to the end; start again after a drop or a mid-stream overload, at
    most ``restarts`` times, then re-raise the last error."""
    for attempt in range(restarts + 1):
        pieces: list[str] = []  # a restart starts the text afresh
        try:
            for event in client.messages.create(model=model, max_tokens=1024,
                                                messages=messages, stream=True):
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    pieces.append(event.delta.text)
            return "".join(pieces)
        except anthropic.APIStatusError as e:
            if e.type != "overloaded_error" or attempt == restarts:
                raise
        except httpx2.TransportError:
            if attempt == restarts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
