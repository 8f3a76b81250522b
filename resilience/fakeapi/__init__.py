"""A simulated Claude API that answers the real anthropic SDK, in virtual time, with no key.

::

    from resilience import VirtualClock
    from resilience.fakeapi import FakeClaude

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
fails for the wrong reason. :mod:`resilience.fakeapi.bridge` explains and fixes it: routes on
``api.router`` (or on your own ``respx.Router`` with :func:`sdk_client_for`) answer the SDK,
and a request no route matches raises :class:`UnmatchedRequestError` at once, unretried.

Modules: :mod:`~resilience.fakeapi.server` (``FakeClaude``), :mod:`~.outcomes` (what one
request gets), :mod:`~.scenarios` (failure rates, outages, rate limits, latency, per model),
:mod:`~.responses` (the API's exact shapes), :mod:`~.bridge` (SDK <-> respx),
:mod:`~.sdktime` (the SDK's sleeps on the virtual clock), :mod:`~.live` (real calls, opt-in).
"""

from .bridge import FAKE_API_KEY, UnmatchedRequestError, async_sdk_client_for, sdk_client_for
from .live import LiveModeNotEnabled, is_live, live_client
from .outcomes import Outcome, connection_error, error, ok, outcome, stream_error, timeout
from .responses import VIRTUAL_EPOCH
from .scenarios import FailureRates, ForModel, Outage, RateLimited, Scenario, Slow
from .sdktime import sdk_on_clock
from .server import Call, FakeClaude

__all__ = [
    "FAKE_API_KEY",
    "VIRTUAL_EPOCH",
    "Call",
    "FailureRates",
    "FakeClaude",
    "ForModel",
    "LiveModeNotEnabled",
    "Outage",
    "Outcome",
    "RateLimited",
    "Scenario",
    "Slow",
    "UnmatchedRequestError",
    "async_sdk_client_for",
    "connection_error",
    "error",
    "is_live",
    "live_client",
    "ok",
    "outcome",
    "sdk_client_for",
    "sdk_on_clock",
    "stream_error",
    "timeout",
]
