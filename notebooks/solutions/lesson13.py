"""Model answers for lesson 13, "Putting it together"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resilience import FALLBACK_MODEL, MODEL, Fallback, retry


def make_ask(api: Any, clock: Any) -> Callable[[str], str]:
    """One retry layer: ours, on a client with ``max_retries=0``."""
    client = api.client(max_retries=0)

    @retry(attempts=4, deadline=60.0, clock=clock)
    def ask(prompt: str) -> str:
        message = client.messages.create(model=api.model, max_tokens=256,
                                         messages=[{"role": "user", "content": prompt}])
        return str(message.content[0].text)

    return ask


def make_chain(api: Any, clock: Any) -> Fallback[str]:
    """Main model, smaller model, static message; 4xx errors surface."""
    client = api.client(max_retries=0)

    def ask(model: str, prompt: str) -> str:
        message = client.messages.create(model=model, max_tokens=256,
                                         messages=[{"role": "user", "content": prompt}])
        return str(message.content[0].text)

    return Fallback([("main", lambda p: ask(MODEL, p)),
                     ("small", lambda p: ask(FALLBACK_MODEL, p)),
                     ("static", lambda p: "Busy, try again soon.")])
