"""Shared test settings and fixtures.

Hypothesis runs without per-example deadlines (see the profile below). No test touches the
network: the autouse fixture below makes every socket connection and every DNS look-up in
the test process raise :class:`NetworkBlockedError` at once. (Notebook kernels run in
processes of their own and are not affected.)

One exception: a test marked ``@pytest.mark.loopback`` may connect to ``127.0.0.1`` (the
chaos server's tests talk HTTP to it on loopback). Every other address stays blocked for it
too, and only the literal ``127.0.0.1`` resolves (not ``localhost``, not any name).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
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


LOOPBACK = "127.0.0.1"
"""The one address a ``loopback`` test may reach."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"loopback: the test may connect to {LOOPBACK} (and nowhere else)")


def _host(address: object) -> object:
    return address[0] if isinstance(address, tuple) and address else address


def _loopback_only(original: Callable[..., Any], *, method: bool) -> Callable[..., Any]:
    """``original``, for the loopback address only; anything else is refused as usual."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        # connect(sock, address); create_connection(address, ...); getaddrinfo(host, ...)
        positional = args[1:] if method else args
        target = positional[0] if positional else kwargs.get("address", kwargs.get("host"))
        if _host(target) in (LOOPBACK, LOOPBACK.encode()):
            return original(*args, **kwargs)
        return _refuse(*args, **kwargs)

    return guarded


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make connecting a socket and resolving a name raise, for every test (a ``loopback``
    test may still reach 127.0.0.1)."""
    loopback = request.node.get_closest_marker("loopback") is not None
    for owner, name, method in ((socket.socket, "connect", True),
                                (socket.socket, "connect_ex", True),
                                (socket, "create_connection", False),
                                (socket, "getaddrinfo", False)):
        blocked = (_loopback_only(getattr(owner, name), method=method) if loopback
                   else _refuse)
        monkeypatch.setattr(owner, name, blocked)
    yield
