"""The bridge between the anthropic SDK (which sends through ``httpx2``) and ``respx``.

The pitfall
-----------
The anthropic SDK (1.0 and later) sends its requests through ``httpx2``/``httpcore2``, while
``respx`` patches only ``httpx``/``httpcore``. A test written the usual way, ::

    with respx.mock:
        respx.post("https://api.anthropic.com/v1/messages").mock(...)
        anthropic.Anthropic().messages.create(...)      # NOT intercepted

is not intercepted at all: the request goes to the network, fails, becomes an
``APIConnectionError``, and the SDK retries it with real sleeps. The mistake hides as a
slow, flaky "connection error".

The fix used here: give the SDK an ``httpx2.Client`` whose transport is an
``httpx2.MockTransport``. Its handler converts each ``httpx2`` request into an ``httpx``
request, lets an ordinary ``respx.Router`` answer it, and converts the answer back. You
write ordinary respx routes; the real SDK receives their answers::

    router = respx.Router(base_url="https://api.anthropic.com")
    route = router.post("/v1/messages").mock(side_effect=[httpx.Response(529), ok])
    client = sdk_client_for(router)
    client.messages.create(...)          # answered by the route, retried by the SDK
    assert route.call_count == 2

Two more details the bridge takes care of:

* A request that no route matches raises :class:`UnmatchedRequestError` at once, naming
  the request. It derives from ``anthropic.AnthropicError``: the SDK wraps every other
  exception from its transport in ``APIConnectionError`` and retries it, which would turn
  a test mistake back into slow retries.
* ``httpx`` errors raised by routes (``side_effect=httpx.ReadTimeout``) are re-raised as
  their ``httpx2`` twins: the SDK recognises only ``httpx2.TimeoutException`` as a timeout
  (an ``httpx.ReadTimeout`` would surface as ``APIConnectionError``, not
  ``APITimeoutError``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import httpx
import httpx2
import respx
from respx.models import AllMockedAssertionError

__all__ = [
    "API_URL",
    "FAKE_API_KEY",
    "UnmatchedRequestError",
    "answer_from_router",
    "answer_from_router_async",
    "async_client_with_handler",
    "async_sdk_client_for",
    "client_with_handler",
    "sdk_client_for",
    "to_httpx2_error",
    "to_httpx2_response",
    "to_httpx_request",
]

API_URL = "https://api.anthropic.com"
"""The base URL the simulated clients use (set explicitly: ``ANTHROPIC_BASE_URL`` is ignored)."""

FAKE_API_KEY = "fake-key-for-the-simulated-api-not-a-real-key"
"""The key simulated clients send: explicit, so the SDK never reads a real one from the
environment."""


class UnmatchedRequestError(anthropic.AnthropicError, AssertionError):
    """No route answered a request: a mistake in the test or lesson, reported at once.

    An ``anthropic.AnthropicError`` that is neither an ``APIStatusError`` nor an
    ``APIConnectionError``, so the SDK neither wraps nor retries it.
    """


def to_httpx_request(request: httpx2.Request) -> httpx.Request:
    """The same request as an ``httpx.Request``, which respx routes can match."""
    return httpx.Request(
        request.method,
        str(request.url),
        headers=request.headers.multi_items(),
        content=request.content,
        extensions=dict(request.extensions),
    )


def to_httpx2_response(response: httpx.Response | httpx2.Response,
                       request: httpx2.Request) -> httpx2.Response:
    """A fresh ``httpx2.Response`` with the status, headers and body of ``response``.

    The body must already be read (respx reads in-memory bodies when it resolves a route).
    """
    return httpx2.Response(
        response.status_code,
        headers=response.headers.multi_items(),
        content=response.content,
        request=request,
    )


def to_httpx2_error(error: BaseException, request: httpx2.Request) -> BaseException:
    """The ``httpx2`` twin of an ``httpx`` transport error; any other error unchanged.

    ``httpx.ReadTimeout`` becomes ``httpx2.ReadTimeout`` (so the SDK raises
    ``APITimeoutError``), ``httpx.ConnectError`` becomes ``httpx2.ConnectError``, and so on.
    """
    if not isinstance(error, httpx.TransportError):
        return error
    twin = getattr(httpx2, type(error).__name__, None)
    if not (isinstance(twin, type) and issubclass(twin, httpx2.TransportError)):
        twin = httpx2.TransportError
    return twin(str(error) or type(error).__name__, request=request)


def _unmatched(request: httpx2.Request) -> UnmatchedRequestError:
    return UnmatchedRequestError(
        f"No route matched {request.method} {request.url}: add a route for it "
        "(e.g. router.post('/v1/messages').mock(...)). Not retried."
    )


def answer_from_router(router: respx.Router, request: httpx2.Request) -> httpx2.Response | None:
    """Let ``router`` answer ``request``; None if no route matches it.

    Args:
        router: a ``respx.Router`` built with ``assert_all_mocked=True`` (the default).
        request: the SDK's request.

    Returns:
        The route's response as an ``httpx2.Response``, or None when no route matched.

    Raises:
        Whatever the route's side effect raises (``httpx`` transport errors as their
        ``httpx2`` twins).
    """
    try:
        response = router.handler(to_httpx_request(request))
        response.read()
    except AllMockedAssertionError:
        return None
    except httpx.TransportError as error:
        raise to_httpx2_error(error, request) from error
    return to_httpx2_response(response, request)


async def answer_from_router_async(router: respx.Router,
                                   request: httpx2.Request) -> httpx2.Response | None:
    """Like :func:`answer_from_router`, awaiting async side effects."""
    try:
        response = await router.async_handler(to_httpx_request(request))
        await response.aread()
    except AllMockedAssertionError:
        return None
    except httpx.TransportError as error:
        raise to_httpx2_error(error, request) from error
    return to_httpx2_response(response, request)


def sdk_client_for(router: respx.Router, **kwargs: Any) -> anthropic.Anthropic:
    """A real ``anthropic.Anthropic`` client whose every request ``router`` answers.

    The SDK's own retries still happen, with real sleeps unless you are inside
    ``FakeClaude`` (which moves them to a virtual clock): pass ``max_retries=0`` to turn
    them off. An unmatched request raises :class:`UnmatchedRequestError` at once.

    Args:
        router: an ordinary ``respx.Router`` holding your routes.
        **kwargs: passed to ``anthropic.Anthropic`` (``max_retries``, ``timeout``, ...).

    Returns:
        The client. Example: ``sdk_client_for(router, max_retries=0).messages.create(...)``.
    """

    def handler(request: httpx2.Request) -> httpx2.Response:
        response = answer_from_router(router, request)
        if response is None:
            raise _unmatched(request)
        return response

    return client_with_handler(handler, **kwargs)


def async_sdk_client_for(router: respx.Router, **kwargs: Any) -> anthropic.AsyncAnthropic:
    """Like :func:`sdk_client_for`, for ``anthropic.AsyncAnthropic``."""

    async def handler(request: httpx2.Request) -> httpx2.Response:
        response = await answer_from_router_async(router, request)
        if response is None:
            raise _unmatched(request)
        return response

    return async_client_with_handler(handler, **kwargs)


def client_with_handler(handler: Callable[[httpx2.Request], httpx2.Response],
                        **kwargs: Any) -> anthropic.Anthropic:
    """A real SDK client whose transport is ``httpx2.MockTransport(handler)``.

    The client gets :data:`FAKE_API_KEY` and :data:`API_URL` unless ``kwargs`` say
    otherwise, so it never reads a key or a base URL from the environment.
    """
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(**_fake_defaults(kwargs),
                               http_client=httpx2.Client(transport=transport))


def async_client_with_handler(
        handler: Callable[[httpx2.Request], Awaitable[httpx2.Response]],
        **kwargs: Any) -> anthropic.AsyncAnthropic:
    """Like :func:`client_with_handler`, for ``anthropic.AsyncAnthropic``."""
    transport = httpx2.MockTransport(handler)  # type: ignore[arg-type]
    return anthropic.AsyncAnthropic(**_fake_defaults(kwargs),
                                    http_client=httpx2.AsyncClient(transport=transport))


def _fake_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "http_client" in kwargs:
        raise TypeError("the simulated client brings its own http_client; do not pass one")
    return {"api_key": FAKE_API_KEY, "base_url": API_URL, **kwargs}
