"""Model answers for lesson 17, "Async and concurrency"."""

from __future__ import annotations

import asyncio

import anthropic

from resilience import classify


async def fetch_all(client: anthropic.AsyncAnthropic, model: str, prompts: list[str],
                    limit: int) -> list[str]:
    """One answer per prompt, in the order of ``prompts``, with at most ``limit`` requests
    in flight; the first error propagates."""
    gate = asyncio.Semaphore(limit)

    async def one(prompt: str) -> str:
        async with gate:  # at most `limit` callers past this point
            message = await client.messages.create(
                model=model, max_tokens=64, messages=[{"role": "user", "content": prompt}])
        block = message.content[0]
        assert block.type == "text"
        return block.text

    return list(await asyncio.gather(*(one(prompt) for prompt in prompts)))


async def ask_within(client: anthropic.AsyncAnthropic, model: str, prompt: str,
                     attempts: int, deadline: float) -> str:
    """Ask with at most ``attempts`` attempts and waits of 0.5 s, 1 s, 2 s, ... (8 s at
    most) before retries; ``TimeoutError`` once ``deadline`` seconds have passed, even
    mid-attempt. A ``CancelledError`` is not an ``Exception``: it passes through at once."""
    async with asyncio.timeout(deadline):  # one deadline for the whole call
        for attempt in range(attempts):
            try:
                message = await client.messages.create(
                    model=model, max_tokens=256, messages=[{"role": "user", "content": prompt}])
            except anthropic.APIError as e:
                if not classify(e).retryable or attempt == attempts - 1:
                    raise
                await asyncio.sleep(min(0.5 * 2 ** attempt, 8.0))
                continue
            block = message.content[0]
            assert block.type == "text"
            return block.text
    raise AssertionError("unreachable: attempts >= 1")  # pragma: no cover
