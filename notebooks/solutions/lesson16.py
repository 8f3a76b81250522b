"""Model answers for lesson 16, "Tool use and agent loops"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
from course.lesson16 import CONTINUE, TOOLS, Refused


def agent(client: anthropic.Anthropic, model: str, messages: list[Any],
          tools: dict[str, Callable[..., Any]], done: dict[str, Any]) -> str:
    """Run the agent loop from wherever ``messages`` stops; run each tool_use id once."""
    while True:
        last = messages[-1]
        if last["role"] == "user":  # the model's turn: the SDK retries this one request
            message = client.messages.create(model=model, max_tokens=1024, tools=TOOLS,
                                             messages=messages)
            if message.stop_reason != "tool_use":
                return "".join(b.text for b in message.content if b.type == "text")
            last = {"role": "assistant", "content": message.content}
            messages.append(last)  # in the transcript before any tool runs
        results = []
        for block in last["content"]:
            if block.type == "tool_use":
                if block.id not in done:
                    done[block.id] = tools[block.name](**block.input)  # only once it returns
                results.append({"type": "tool_result", "tool_use_id": block.id,
                                "content": done[block.id]})
        messages.append({"role": "user", "content": results})


def finish(client: anthropic.Anthropic, model: str, messages: list[Any], limit: int) -> str:
    """One whole answer: continue after max_tokens, resend a paused turn, stop on a
    refusal; at most ``limit`` requests."""
    messages, pieces = list(messages), []
    for _ in range(limit):
        message = client.messages.create(model=model, max_tokens=1024, messages=messages)
        pieces += [b.text for b in message.content if b.type == "text"]
        if message.stop_reason == "refusal":
            raise Refused("the model declined to answer")
        if message.stop_reason == "pause_turn":
            messages.append({"role": "assistant", "content": message.content})
        elif message.stop_reason == "max_tokens":
            messages += [{"role": "assistant", "content": message.content},
                         {"role": "user", "content": CONTINUE}]
        else:
            return "".join(pieces)
    raise RuntimeError(f"no finished answer after {limit} requests")
