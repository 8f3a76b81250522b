"""Model answers for lesson 10, "Fallbacks and graceful degradation"."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from resilience import Fallback


def remembering(step: Callable[[str], str],
                cache: MutableMapping[str, str]) -> Callable[[str], str]:
    """A step that saves every answer of ``step`` in ``cache``; exceptions pass through."""

    def remembered(prompt: str) -> str:
        answer = step(prompt)
        cache[prompt] = answer
        return answer

    return remembered


def model_chain(client: Any, models: Sequence[str], static_text: str) -> Fallback[str]:
    """One step per model id (named by it), then a static message."""

    def asking(model: str) -> Callable[[str], str]:
        def ask(prompt: str) -> str:
            reply = client.messages.create(model=model, max_tokens=256,
                                           messages=[{"role": "user", "content": prompt}])
            return reply.content[0].text

        return ask

    steps: list[tuple[str, Callable[[str], str]]] = [(m, asking(m)) for m in models]
    steps.append(("static", lambda prompt: static_text))
    return Fallback(steps)
