"""Outcomes: what the simulated API does with one request.

:meth:`FakeClaude.respond <resilience.testing.FakeClaude.respond>` queues outcomes, one per
request. Name them with a string, or build one with a constructor when you need options:

=========================  ==========================================================
string                     constructor
=========================  ==========================================================
``"ok"``                   :func:`ok` (a ``Message``, or a full stream when streaming)
``"overloaded_error"``...  :func:`error` with any name from ``resilience.catalogue.ERRORS``
``"spend_limit_reached"``  (a 429 with ``error_code: enforced_spend_limit_reached``)
``"stream_overloaded"``    :func:`stream_error`: a 200 stream that ends in ``event: error``
``"timeout"``              :func:`timeout`: no answer within the client's read timeout
``"connection_error"``     :func:`connection_error`: the connection fails, no status
=========================  ==========================================================

Any ``httpx.Response``, ``httpx2.Response``, exception or respx-style side effect (a
function of an ``httpx.Request`` returning an ``httpx.Response``) is an outcome too, for
full control. Every outcome takes extra ``headers``; :func:`error` has shortcuts for the
headers that steer the SDK's retries (``retry-after``, ``retry-after-ms``,
``x-should-retry``), and can replace the catalogue's example ``error.message``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import httpx
import httpx2

from ..catalogue import ERRORS
from ..clock import VirtualClock
from . import responses
from .bridge import to_httpx2_error, to_httpx2_response, to_httpx_request

__all__ = [
    "ConnectionFailure",
    "Custom",
    "Exchange",
    "Failure",
    "Outcome",
    "Reply",
    "StreamFailure",
    "Timeout",
    "connection_error",
    "error",
    "ok",
    "outcome",
    "stream_error",
    "timeout",
]

@dataclass(slots=True)
class Exchange:
    """One request as the simulated API sees it, while it decides the answer.

    Attributes:
        request: the SDK's request.
        number: 1 for the first request the fake received, 2 for the next, ...
        request_id: the ``request-id`` its response carries.
        arrived: the virtual time at which it arrived.
        clock: the virtual clock (scenarios move it to simulate latency).
        body: the decoded JSON body (empty if it was not JSON).
        headers: headers that scenarios add to the response (rate-limit headers).
    """

    request: httpx2.Request
    number: int
    request_id: str
    arrived: float
    clock: VirtualClock
    body: Mapping[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def stream(self) -> bool:
        """Whether the request asked for a stream (``stream: true``)."""
        return self.body.get("stream") is True

    @property
    def requested_model(self) -> str | None:
        """The body's ``model`` field, or None when it has none (or not a string)."""
        model = self.body.get("model")
        return model if isinstance(model, str) else None

    @property
    def model(self) -> str:
        """The model id to echo in the reply, as the API does (``"unknown-model"`` if none)."""
        model = self.requested_model
        return "unknown-model" if model is None else model

    @property
    def read_timeout(self) -> float | None:
        """The client's read timeout for this request in seconds (None: no timeout)."""
        timeouts = self.request.extensions.get("timeout") or {}
        value = timeouts.get("read")
        return None if value is None else float(value)

    @property
    def prompt(self) -> str:
        """The request's messages as one string, for a token estimate."""
        return json.dumps(self.body.get("messages", []))


class Outcome:
    """What the simulated API does with one request; see the subclasses.

    Attributes:
        label: a short name recorded in :attr:`Call.outcome <resilience.testing.Call>`.
        headers: extra headers for the response.
    """

    __slots__ = ()
    label: str
    headers: Mapping[str, str]

    def answer(self, exchange: Exchange) -> httpx2.Response:
        """The response to send, or raise an ``httpx2`` error for a failed transport."""
        raise NotImplementedError

    def with_headers(self, headers: Mapping[str, str]) -> Outcome:
        """A copy of this outcome that adds ``headers`` to its response."""
        return replace(self, headers={**self.headers, **headers})  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class Reply(Outcome):
    """Success: a ``Message`` with ``text``, or a complete stream of it when streaming.

    Attributes:
        text: the reply text.
        chunks: how many text deltas a stream carries.
    """

    text: str = responses.DEFAULT_TEXT
    chunks: int = 3
    headers: Mapping[str, str] = field(default_factory=dict)
    label = "ok"

    def answer(self, exchange: Exchange) -> httpx2.Response:
        body = _reply_body(exchange, self.text)
        if exchange.stream:
            events = responses.stream_events(body, self.chunks)
            return responses.stream_response(events, exchange.request_id)
        return responses.message_response(body, exchange.request_id)


def _reply_body(exchange: Exchange, text: str) -> dict[str, Any]:
    return responses.message_body(f"msg_fake_{exchange.number:06d}", exchange.model, text,
                                  responses.estimate_tokens(exchange.prompt))


@dataclass(frozen=True, slots=True)
class Failure(Outcome):
    """An HTTP error exactly as the catalogue describes it (status, headers, body).

    Attributes:
        name: a key of :data:`resilience.catalogue.ERRORS`.
        message: the body's ``error.message`` (None: the catalogue's example message).
    """

    name: str
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None

    def __post_init__(self) -> None:
        _check_error_name(self.name)

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.name

    def answer(self, exchange: Exchange) -> httpx2.Response:
        spec = ERRORS[self.name]
        if self.message is not None:
            spec = replace(spec, message=self.message)
        return responses.error_response(spec, exchange.request_id)


@dataclass(frozen=True, slots=True)
class StreamFailure(Outcome):
    """A stream that starts with 200, sends ``after_chunks`` text deltas, then an error frame.

    A request that did not ask for a stream gets the plain HTTP error instead (the API
    can only fail mid-stream on a stream).

    Attributes:
        name: a key of :data:`resilience.catalogue.ERRORS` (its ``error.type`` is sent).
        after_chunks: text deltas sent before the error.
    """

    name: str = "overloaded_error"
    after_chunks: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_error_name(self.name)

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"stream_{self.name}"

    def answer(self, exchange: Exchange) -> httpx2.Response:
        spec = ERRORS[self.name]
        if not exchange.stream:
            return responses.error_response(spec, exchange.request_id)
        events = responses.stream_events(_reply_body(exchange, responses.DEFAULT_TEXT))
        started = events[: 2 + self.after_chunks]  # message_start, content_block_start, deltas
        return responses.stream_response([*started, responses.error_event(spec)],
                                          exchange.request_id)


@dataclass(frozen=True, slots=True)
class Timeout(Outcome):
    """No answer in time: the virtual clock moves on by ``after``, then the read times out.

    Attributes:
        after: seconds the client waits before giving up; None means the request's own
            read timeout (the SDK's default is 600 s: a hung request really costs that).
    """

    after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    label = "timeout"

    def answer(self, exchange: Exchange) -> httpx2.Response:
        waited = self.after if self.after is not None else exchange.read_timeout or 0.0
        exchange.clock.advance(waited)
        raise httpx2.ReadTimeout(f"[simulated] no response within {waited:g} s",
                                 request=exchange.request)


@dataclass(frozen=True, slots=True)
class ConnectionFailure(Outcome):
    """The connection fails before any answer: no status, no headers."""

    headers: Mapping[str, str] = field(default_factory=dict)
    label = "connection_error"

    def answer(self, exchange: Exchange) -> httpx2.Response:
        raise httpx2.ConnectError("[simulated] connection failed", request=exchange.request)


@dataclass(frozen=True, slots=True)
class Custom(Outcome):
    """Full control: a response, an exception, or a respx-style side effect.

    Attributes:
        value: an ``httpx.Response`` or ``httpx2.Response`` (sent as it is); an exception
            instance or class (raised; ``httpx`` errors as their ``httpx2`` twins); or a
            function of an ``httpx.Request`` that returns an ``httpx.Response``.
        label: the name recorded for it in ``api.calls``.
    """

    value: object
    headers: Mapping[str, str] = field(default_factory=dict)
    label: str = "custom"

    def answer(self, exchange: Exchange) -> httpx2.Response:
        request = exchange.request
        value = self.value
        if isinstance(value, type) and issubclass(value, BaseException):
            value = _instantiate(value)
        if isinstance(value, BaseException):
            raise to_httpx2_error(value, request)
        if callable(value):
            value = value(to_httpx_request(request))
        if isinstance(value, httpx.Response | httpx2.Response):
            value.read()
            return to_httpx2_response(value, request)
        raise TypeError(f"a custom outcome must give an httpx response, got {value!r}")


def _instantiate(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, httpx.HTTPError | httpx2.HTTPError):  # these need a message
        return cls(f"[simulated] {cls.__name__}")
    return cls()


def _check_error_name(name: str) -> None:
    if name not in ERRORS:
        raise ValueError(f"unknown error {name!r}; the catalogue has: {', '.join(ERRORS)}")


# The constructors learners call.


def ok(text: str = responses.DEFAULT_TEXT, *, chunks: int = 3,
       headers: Mapping[str, str] | None = None) -> Reply:
    """Success with ``text`` (streamed in ``chunks`` deltas when the request streams)."""
    return Reply(text, chunks, MappingProxyType(dict(headers or {})))


def error(name: str, *, retry_after: float | None = None, retry_after_ms: float | None = None,
          should_retry: bool | None = None, headers: Mapping[str, str] | None = None,
          message: str | None = None) -> Failure:
    """A catalogue error, with the headers that steer the SDK's retries.

    The catalogue's own example headers and message come first (a ``rate_limit_error``
    carries ``retry-after: 5`` like the real API); the arguments here override them.

    Args:
        name: a key of :data:`resilience.catalogue.ERRORS`, e.g. ``"rate_limit_error"``,
            ``"spend_limit_reached"``.
        retry_after: the ``retry-after`` header, in seconds.
        retry_after_ms: the ``retry-after-ms`` header, in milliseconds (the SDK prefers it).
        should_retry: the ``x-should-retry`` header (``true``/``false`` override the SDK).
        headers: any other headers.
        message: the body's ``error.message``, instead of the catalogue's example (the rest
            of the body keeps the catalogue's shape).

    Returns:
        The outcome. Example: ``api.respond(error("rate_limit_error", retry_after=3), "ok")``.
    """
    extra = dict(headers or {})
    if retry_after is not None:
        extra["retry-after"] = _number(retry_after)
    if retry_after_ms is not None:
        extra["retry-after-ms"] = _number(retry_after_ms)
    if should_retry is not None:
        extra["x-should-retry"] = "true" if should_retry else "false"
    return Failure(name, MappingProxyType(extra), message)


def _number(value: float) -> str:
    """A header value without float noise: 3 -> '3', 2.5 -> '2.5'."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def stream_error(name: str = "overloaded_error", *, after_chunks: int = 1) -> StreamFailure:
    """A 200 stream that sends ``after_chunks`` text deltas, then ``event: error``."""
    return StreamFailure(name, after_chunks)


def timeout(after: float | None = None) -> Timeout:
    """No answer within ``after`` seconds (default: the request's read timeout)."""
    return Timeout(after)


def connection_error() -> ConnectionFailure:
    """A connection that fails before any answer (the SDK raises ``APIConnectionError``)."""
    return ConnectionFailure()


_NAMED: Mapping[str, Callable[[], Outcome]] = MappingProxyType(
    {"ok": Reply, "timeout": Timeout, "connection_error": ConnectionFailure}
)


def outcome(value: object) -> Outcome:
    """Turn anything :meth:`FakeClaude.respond` accepts into an :class:`Outcome`.

    Args:
        value: an :class:`Outcome`; a name (``"ok"``, ``"timeout"``,
            ``"connection_error"``, a catalogue error name, or ``"stream_"`` followed by one,
            with or without its ``_error`` suffix: ``"stream_overloaded"``); or a response,
            exception or side effect for :class:`Custom`.

    Raises:
        ValueError: for a name that means nothing.
    """
    if isinstance(value, Outcome):
        return value
    if isinstance(value, str):
        return _named(value)
    return Custom(value)


def _named(name: str) -> Outcome:
    if name in _NAMED:
        return _NAMED[name]()
    if name in ERRORS:
        return Failure(name)
    if name.startswith("stream_"):
        rest = name.removeprefix("stream_")
        for candidate in (rest, rest + "_error"):
            if candidate in ERRORS:
                return StreamFailure(candidate)
    raise ValueError(
        f"unknown outcome {name!r}: use 'ok', 'timeout', 'connection_error', an error name "
        f"({', '.join(ERRORS)}), or 'stream_' + an error name (e.g. 'stream_overloaded')"
    )
