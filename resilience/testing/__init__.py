"""The test kit: a simulated Claude API for your own tests, on virtual time, with no key.

Test tooling, not production code. Install it with ``pip install resilient-claude[testing]``;
it needs ``anthropic`` and ``respx``, and it patches SDK internals (the SDK's retry sleeps
and jitter, inside a ``with FakeClaude()`` block only; see :mod:`~.sdktime`). Apps import
the library (``import resilience``), never this, in production code.

With the kit installed, pytest gains a ``fake_claude`` fixture (:mod:`~.pytest_plugin`): a
:class:`FakeClaude` on a fresh :class:`~resilience.VirtualClock`, seed 0, closed after the test.

::

    from resilience import VirtualClock
    from resilience.testing import FakeClaude

    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.respond("overloaded_error", "ok")        # a 529, then success
        api.client().messages.create(model=api.model, max_tokens=64,
                                     messages=[{"role": "user", "content": "Hi"}])
    [call.status for call in api.calls]               # [529, 200]
    api.calls[1].time                                 # ~0.4: the SDK's own backoff, virtual

The clients are the real SDK's: its real exceptions, its real retry schedule (0.5 s doubling
to 8 s, jittered to 75-100 %, ``retry-after`` honored), its real ``x-stainless-retry-count``.
Only the network is replaced, and the SDK's sleeps run on the virtual clock.

Why a bridge is needed (a pitfall worth knowing)
------------------------------------------------
The anthropic SDK sends through ``httpx2``, and ``respx`` patches only ``httpx``: a plain
``respx.mock`` does not intercept the SDK at all. The request goes to the network, turns
into ``APIConnectionError``, and the SDK retries it with real sleeps, so the test is slow and
fails for the wrong reason. :mod:`resilience.testing.bridge` explains and fixes it: routes on
``api.router`` (or on your own ``respx.Router`` with :func:`sdk_client_for`) answer the SDK,
and a request no route matches raises :class:`UnmatchedRequestError` at once, unretried.

Modules: :mod:`~resilience.testing.fake` (``FakeClaude``), :mod:`~.outcomes` (what one
request gets), :mod:`~.scenarios` (failure rates, outages, rate limits, latency, per model),
:mod:`~.responses` (the API's exact shapes), :mod:`~.bridge` (SDK <-> respx),
:mod:`~.sdktime` (the SDK's sleeps on the virtual clock), :mod:`~.live` (real calls, opt-in),
:mod:`~.turnclock` (many threads on virtual time), :mod:`~.aio` (many coroutines on virtual
time: ``FakeClaude.run`` and :class:`VirtualTimeLoop`).

Names are imported on first use, so ``import resilience.testing`` itself is cheap (the pytest
plugin imports it in every test run of a project that installs the kit).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .aio import VirtualTimeLoop
    from .batches import FakeBatches
    from .bridge import (
        FAKE_API_KEY,
        UnmatchedRequestError,
        async_sdk_client_for,
        sdk_client_for,
    )
    from .fake import Call, FakeClaude
    from .live import LiveModeNotEnabled, is_live, live_client
    from .outcomes import (
        InvalidOutcomeError,
        Outcome,
        connection_error,
        dropped_stream,
        error,
        ok,
        outcome,
        stalled_stream,
        stream_error,
        timeout,
        tool_use,
    )
    from .responses import VIRTUAL_EPOCH
    from .scenarios import FailureRates, ForModel, Outage, RateLimited, Scenario, Slow
    from .sdktime import sdk_on_clock
    from .turnclock import TurnClock

_HOMES = {
    "VirtualTimeLoop": "aio",
    "FakeBatches": "batches",
    "FAKE_API_KEY": "bridge", "UnmatchedRequestError": "bridge",
    "async_sdk_client_for": "bridge", "sdk_client_for": "bridge",
    "Call": "fake", "FakeClaude": "fake",
    "LiveModeNotEnabled": "live", "is_live": "live", "live_client": "live",
    "InvalidOutcomeError": "outcomes",
    "Outcome": "outcomes", "connection_error": "outcomes", "dropped_stream": "outcomes",
    "stalled_stream": "outcomes",
    "error": "outcomes",
    "ok": "outcomes", "outcome": "outcomes", "stream_error": "outcomes",
    "timeout": "outcomes", "tool_use": "outcomes",
    "VIRTUAL_EPOCH": "responses",
    "FailureRates": "scenarios", "ForModel": "scenarios", "Outage": "scenarios",
    "RateLimited": "scenarios", "Scenario": "scenarios", "Slow": "scenarios",
    "sdk_on_clock": "sdktime",
    "TurnClock": "turnclock",
}

__all__ = [
    "FAKE_API_KEY",
    "VIRTUAL_EPOCH",
    "Call",
    "FailureRates",
    "FakeBatches",
    "FakeClaude",
    "ForModel",
    "InvalidOutcomeError",
    "LiveModeNotEnabled",
    "Outage",
    "Outcome",
    "RateLimited",
    "Scenario",
    "Slow",
    "TurnClock",
    "UnmatchedRequestError",
    "VirtualTimeLoop",
    "async_sdk_client_for",
    "connection_error",
    "dropped_stream",
    "error",
    "is_live",
    "live_client",
    "ok",
    "outcome",
    "sdk_client_for",
    "sdk_on_clock",
    "stalled_stream",
    "stream_error",
    "timeout",
    "tool_use",
]


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'resilience.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
