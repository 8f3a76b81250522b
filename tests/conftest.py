"""Shared test settings and fixtures.

Hypothesis runs without per-example deadlines (see the profile below). No test touches the
network: the autouse fixture below makes every socket connection and every DNS look-up in
the test process raise :class:`NetworkBlockedError` at once. (Notebook kernels run in
processes of their own and are not affected.)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from hypothesis import settings

# Property tests judge behaviour, never speed: no per-example deadline (a loaded CI machine
# must not turn a slow example into a failure), and no example database left in the repo.
settings.register_profile("resilience", deadline=None, database=None)
settings.load_profile("resilience")


class NetworkBlockedError(anthropic.AnthropicError):
    """A test tried to use the network.

    An ``anthropic.AnthropicError`` that is not an ``APIConnectionError``: the SDK neither
    wraps nor retries it, so a test that forgot the simulated API fails at once and loudly,
    and cannot pass by expecting a connection error.
    """


def _refuse(*args: Any, **kwargs: Any) -> Any:
    target = next((arg for arg in args if not isinstance(arg, socket.socket)), None)
    raise NetworkBlockedError(f"tests must not use the network (tried {target!r}); "
                              "use resilience.testing.FakeClaude")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make connecting a socket and resolving a name raise, for every test."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    yield
