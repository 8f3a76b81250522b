"""Live mode: a real client for the real API, only when the learner explicitly asks.

The course runs on the simulated API by default. To call the real API a learner must do
both of these:

* set ``ANTHROPIC_API_KEY`` (the SDK reads it from the environment), and
* opt in with ``RESILIENCE_LIVE=1`` (real calls cost money and are not repeatable).

The key is read by the SDK only: it is never printed, logged, or put into a message here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import anthropic

__all__ = ["LiveModeNotEnabled", "is_live", "live_client"]

_HOW = ("set ANTHROPIC_API_KEY and RESILIENCE_LIVE=1 in the environment to call the real "
        "API (it costs money); without them the course uses the simulated API")


class LiveModeNotEnabled(RuntimeError):
    """Raised by :func:`live_client` when the learner has not opted in to real calls."""


def is_live(environ: Mapping[str, str] | None = None) -> bool:
    """Whether live mode is on: ``RESILIENCE_LIVE=1`` and a non-empty ``ANTHROPIC_API_KEY``."""
    env = os.environ if environ is None else environ
    return env.get("RESILIENCE_LIVE") == "1" and bool(env.get("ANTHROPIC_API_KEY"))


def live_client(**kwargs: Any) -> anthropic.Anthropic:
    """A real ``anthropic.Anthropic`` client, if the learner opted in; otherwise refuse.

    Args:
        **kwargs: passed to ``anthropic.Anthropic`` (``max_retries``, ``timeout``, ...).

    Returns:
        The client, e.g. ``client = live_client() if is_live() else api.client()``.

    Raises:
        LiveModeNotEnabled: unless ``RESILIENCE_LIVE=1`` and ``ANTHROPIC_API_KEY`` are set;
            the message says what is missing, never the key.
    """
    missing = []
    if os.environ.get("RESILIENCE_LIVE") != "1":
        missing.append("RESILIENCE_LIVE=1")
    if not os.environ.get("ANTHROPIC_API_KEY"):
        missing.append("ANTHROPIC_API_KEY")
    if missing:
        raise LiveModeNotEnabled(f"live mode is off ({' and '.join(missing)} not set): {_HOW}")
    return anthropic.Anthropic(**kwargs)
