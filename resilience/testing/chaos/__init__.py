"""The chaos server: the Claude API on loopback, failing on purpose, for any app in any language.

Start it from a shell and point your app at it with ``ANTHROPIC_BASE_URL``::

    python -m resilience chaos --port 8080 --profile bad-day --seed 0
    ANTHROPIC_BASE_URL=http://127.0.0.1:8080 ANTHROPIC_API_KEY=unused python my_app.py
    curl -s http://127.0.0.1:8080/_chaos/log      # one entry per attempt your app made

or run it inside a Python test::

    from resilience.testing.chaos import ChaosServer, Settings

    with ChaosServer(Settings(profile="outage", outage_length=1.0)) as chaos:
        client = anthropic.Anthropic(base_url=chaos.url, api_key="unused")
        ...
        assert all(entry.retry_count is not None for entry in chaos.log.entries())

The faults are ``FakeClaude``'s own outcome and scenario objects (one source of truth);
see :mod:`.profiles` for the profiles, :mod:`.server` for how a fault is played out on a
real connection, :mod:`.log` for the log, and :mod:`.cli` for the command line.
"""

from __future__ import annotations

from .log import ChaosLog, Entry
from .profiles import BAD_DAY_MIX, PROFILES, Settings
from .server import ChaosApp, ChaosServer, RequestClock, serve

__all__ = [
    "BAD_DAY_MIX",
    "PROFILES",
    "ChaosApp",
    "ChaosLog",
    "ChaosServer",
    "Entry",
    "RequestClock",
    "Settings",
    "serve",
]
