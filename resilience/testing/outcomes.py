"""Outcomes: what the simulated API does with one request.

:meth:`FakeClaude.respond <resilience.testing.FakeClaude.respond>` queues outcomes, one per
request. Name them with a string, or build one with a constructor when you need options:

=========================  ==========================================================
string                     constructor
=========================  ==========================================================
``"ok"``                   :func:`ok` (a ``Message``, or a full stream when streaming;
                           any ``stop_reason``, extra ``content`` blocks)
(none)                     :func:`tool_use`: a ``Message`` that calls a tool
``"overloaded_error"``...  :func:`error` with any name from ``resilience.catalogue.ERRORS``
``"spend_limit_reached"``  (a 429 with ``error_code: enforced_spend_limit_reached``)
``"stream_overloaded"``    :func:`stream_error`: a 200 stream that ends in ``event: error``
``"stream_dropped"``       :func:`dropped_stream`: a 200 whose connection drops mid-body
``"stream_stalled"``       :func:`stalled_stream`: a 200 that goes silent mid-body
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, get_args

import anthropic
import httpx
import httpx2

from ..catalogue import ERRORS
from ..clock import VirtualClock
from . import responses
from .bridge import to_httpx2_error, to_httpx2_response, to_httpx_request

__all__ = [
    "STOP_REASONS",
    "ConnectionFailure",
    "Custom",
    "DroppedStream",
    "Exchange",
    "Failure",
    "InvalidOutcomeError",
    "Outcome",
    "Reply",
    "StalledStream",
    "StreamFailure",
    "Timeout",
    "connection_error",
    "dropped_stream",
    "error",
    "ok",
    "outcome",
    "stalled_stream",
    "stream_error",
    "timeout",
    "tool_use",
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


STOP_REASONS: tuple[str, ...] = tuple(get_args(anthropic.types.StopReason))
"""The ``stop_reason`` values the installed SDK can parse (``end_turn``, ``tool_use``, ...)."""

_BLOCK_TYPES = ("text", "tool_use", "server_tool_use")


@dataclass(frozen=True, slots=True)
class Reply(Outcome):
    """Success: a ``Message`` with ``text``, or a complete stream of it when streaming.

    A 200 is not always a finished answer: ``stop_reason`` says why the model stopped
    (``"max_tokens"``: cut short; ``"refusal"``: declined; ``"pause_turn"``: a paused turn
    to send back; ``"tool_use"``: it calls the tools in ``content``). ``content`` adds
    blocks after the text block: ``{"type": "tool_use", "name": ..., "input": {...}}`` (an
    ``id`` is made up when missing: ``toolu_fake_<request number>_<block index>``, so a
    turn sent again gets new ids, as from the real model), ``"server_tool_use"`` alike
    (``srvtoolu_fake_...``), or ``{"type": "text", "text": ...}``. With ``content``, an
    empty ``text`` is left out. A stream carries every block: text as ``text_delta``
    events, a tool's input as one ``input_json_delta``.

    Attributes:
        text: the reply text.
        chunks: how many text deltas a stream carries (for the first text block).
        stop_reason: one of :data:`STOP_REASONS`.
        content: extra content blocks, after the text block.
    """

    text: str = responses.DEFAULT_TEXT
    chunks: int = 3
    headers: Mapping[str, str] = field(default_factory=dict)
    stop_reason: str = "end_turn"
    content: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {', '.join(STOP_REASONS)}; "
                             f"got {self.stop_reason!r}")
        for block in self.content:
            _check_block(block)
        if self.stop_reason == "tool_use" and not any(
                block["type"] == "tool_use" for block in self.content):
            raise ValueError("content: stop_reason 'tool_use' needs at least one tool_use "
                             "block (the API sends one with every tool_use stop)")

    @property
    def label(self) -> str:  # type: ignore[override]
        """``"ok"`` for a finished answer, else the stop reason (``"tool_use"``, ...)."""
        return "ok" if self.stop_reason == "end_turn" else self.stop_reason

    def answer(self, exchange: Exchange) -> httpx2.Response:
        body = _reply_body(exchange, self.text)
        if self.stop_reason != "end_turn" or self.content:
            blocks = [] if self.content and not self.text else [{"type": "text",
                                                                  "text": self.text}]
            blocks += [_with_id(block, exchange.number, i)
                       for i, block in enumerate(self.content, start=len(blocks))]
            body = {**body, "content": blocks, "stop_reason": self.stop_reason}
        if exchange.stream:
            events = (responses.stream_events(body, self.chunks) if len(body["content"]) == 1
                      and body["content"][0]["type"] == "text"
                      else _stream_events(body, self.chunks))
            return responses.stream_response(events, exchange.request_id)
        return responses.message_response(body, exchange.request_id)


def _check_block(block: Mapping[str, Any]) -> None:
    if not isinstance(block, Mapping):
        raise TypeError(f"content: each block must be a dict, got {block!r}")
    if block.get("type") not in _BLOCK_TYPES:
        raise ValueError(f"content: each block is a dict whose type is one of "
                         f"{', '.join(_BLOCK_TYPES)}; got {block!r}")
    if block["type"] == "text":
        if not isinstance(block.get("text"), str):
            raise TypeError(f"content: a text block needs a str 'text', got {block!r}")
        return
    if not isinstance(block.get("name"), str) or not block["name"]:
        raise TypeError(f"content: a {block['type']} block needs a str 'name', got {block!r}")
    if not isinstance(block.get("input"), Mapping):
        raise TypeError(f"content: a {block['type']} block needs a dict 'input', "
                        f"got {block!r}")
    if "id" in block and not isinstance(block["id"], str):
        raise TypeError(f"content: a block's 'id' must be a str, got {block!r}")


def _with_id(block: Mapping[str, Any], number: int, index: int) -> dict[str, Any]:
    """The block as sent, with a made-up id for a tool call that has none."""
    sent = dict(block)
    if block["type"] != "text":
        prefix = "toolu" if block["type"] == "tool_use" else "srvtoolu"
        sent["id"] = block.get("id") or f"{prefix}_fake_{number:06d}_{index}"
        sent["input"] = dict(block["input"])
    return sent


def _stream_events(body: Mapping[str, Any], chunks: int) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of a ``Message`` with several blocks (text and tool calls)."""
    first = responses.stream_events({**body, "content": [{"type": "text", "text": ""}]}, 1)
    events = first[:1]  # message_start
    for index, block in enumerate(body["content"]):
        start: dict[str, Any]
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece}
                      for piece in _pieces(block["text"], chunks if index == 0 else 1)]
        else:
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": delta}) for delta in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events + first[-2:]  # message_delta (with the stop reason), message_stop


def _pieces(text: str, chunks: int) -> Iterable[str]:
    """The text deltas of one block, as :func:`responses.stream_events` cuts them."""
    events = responses.stream_events(
        {"content": [{"type": "text", "text": text}], "stop_reason": None,
         "usage": {"input_tokens": 0, "output_tokens": 0}}, chunks)
    return [e[1]["delta"]["text"] for e in events if e[0] == "content_block_delta"]


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
class DroppedStream(Outcome):
    """A 200 whose connection drops mid-body: reading it raises ``httpx2.RemoteProtocolError``.

    For a streaming request the status and headers arrive, then ``message_start``,
    ``content_block_start`` and ``after_chunks`` text deltas, then the connection closes
    without ``message_stop``. The SDK raises the raw ``httpx2.RemoteProtocolError`` from
    the iteration (``create(stream=True)`` and ``messages.stream(...)`` alike): it is not
    an ``anthropic.APIError``, so ``except anthropic.APIError`` misses it, and the SDK
    never retries it (its retries end when the 200 arrives).

    A request that did not stream gets the same drop in its JSON body: a 200 with a
    ``content-length`` for the whole ``Message``, then only its first half. The SDK reads
    a plain response's body inside its retry loop, so it raises ``APIConnectionError``
    (caused by the ``RemoteProtocolError``) and retries it like a connection failure. That
    is what a real server closing the connection mid-body does to the SDK.

    The attempt is recorded with status 200: the server did answer 200 before the drop.

    Attributes:
        after_chunks: text deltas sent before the drop (>= 0; the reply has 3 in all, so
            3 or more sends every delta and drops before the closing events).
    """

    after_chunks: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    label = "stream_dropped"

    def __post_init__(self) -> None:
        _check_chunks(self.after_chunks)

    def answer(self, exchange: Exchange) -> httpx2.Response:
        before, _, whole = _cut(exchange, self.after_chunks)
        return responses.dropped_response(before, exchange.request_id, stream=exchange.stream,
                                          request=exchange.request,
                                          full_length=None if exchange.stream else whole)


def _check_chunks(after_chunks: int) -> None:
    if isinstance(after_chunks, bool) or not isinstance(after_chunks, int):
        raise TypeError(f"after_chunks must be an int, got {after_chunks!r}")
    if after_chunks < 0:
        raise ValueError(f"after_chunks must be >= 0, got {after_chunks}")


def _cut(exchange: Exchange, after_chunks: int) -> tuple[list[bytes], list[bytes], int]:
    """A successful reply's body cut in two where a transport fault strikes.

    A stream is cut after ``message_start``, ``content_block_start`` and ``after_chunks``
    text deltas (at most all of them: the closing events always come after the cut); a JSON
    body is cut in half. Returns the parts before and after the cut, and the whole length.
    """
    body = _reply_body(exchange, responses.DEFAULT_TEXT)
    if exchange.stream:
        frames = responses.sse_frames(responses.stream_events(body))
        cut = min(2 + after_chunks, len(frames) - 3)
        return frames[:cut], frames[cut:], sum(map(len, frames))
    whole = json.dumps(body).encode()
    half = len(whole) // 2
    return [whole[:half]], [whole[half:]], len(whole)


@dataclass(frozen=True, slots=True)
class StalledStream(Outcome):
    """A 200 that goes silent mid-body for ``seconds``, then resumes or times out.

    The status, headers and the first events arrive (``message_start``,
    ``content_block_start``, ``after_chunks`` text deltas; half the JSON body for a plain
    request), then nothing for ``seconds``. The client's read timeout bounds the silence
    between two reads, not the whole request:

    * ``seconds`` longer than the request's read timeout (or None: silent for good): the
      clock moves on by the read timeout and the read fails with ``httpx2.ReadTimeout``.
      Iterating a stream raises it raw (not an ``anthropic.APIError``, never retried); a
      plain request raises ``APITimeoutError`` and the SDK retries it.
    * otherwise the clock moves on by ``seconds`` and the rest of the reply arrives: slow,
      but a success.

    A request without a read timeout waits for good: with ``seconds`` None the simulation
    then ends the wait at once with the same ``ReadTimeout``.

    Attributes:
        seconds: the length of the silence (>= 0), or None for a stall that never ends.
        after_chunks: text deltas sent before the silence (>= 0).
    """

    seconds: float | None = None
    after_chunks: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    label = "stream_stalled"

    def __post_init__(self) -> None:
        if self.seconds is not None and not 0 <= self.seconds < float("inf"):
            raise ValueError(f"seconds must be a finite number >= 0 or None, "
                             f"got {self.seconds!r}")
        _check_chunks(self.after_chunks)

    def answer(self, exchange: Exchange) -> httpx2.Response:
        before, after, whole = _cut(exchange, self.after_chunks)
        limit = exchange.read_timeout

        def stall() -> None:
            silence = float("inf") if self.seconds is None else self.seconds
            if limit is not None and silence > limit:
                exchange.clock.advance(limit)
                raise httpx2.ReadTimeout(f"[simulated] the stream stalled for over {limit:g} s",
                                         request=exchange.request)
            if self.seconds is None:
                raise httpx2.ReadTimeout("[simulated] the stream stalled for good",
                                         request=exchange.request)
            exchange.clock.advance(self.seconds)

        return responses.interrupted_response(before, stall, after,
                                              request_id=exchange.request_id,
                                              stream=exchange.stream,
                                              full_length=None if exchange.stream else whole)


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

    def __post_init__(self) -> None:
        after = self.after
        if after is None:
            return
        if isinstance(after, bool) or not isinstance(after, int | float):
            raise TypeError(f"after must be a number of seconds or None, got {after!r}")
        if not 0 <= after < float("inf"):
            raise ValueError(f"after must be a finite number of seconds >= 0, got {after!r}")

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
        raise InvalidOutcomeError(
            f"the side effect {self.value!r} answered {exchange.request.method} "
            f"{exchange.request.url} with {value!r}, not an httpx.Response: fix the test "
            "(not retried)")


class InvalidOutcomeError(anthropic.AnthropicError, TypeError):
    """A side effect that answered with something other than a response: a test mistake.

    Raised from the transport as an ``anthropic.AnthropicError`` that is neither an
    ``APIStatusError`` nor an ``APIConnectionError``, so the SDK neither wraps nor retries
    it: the mistake surfaces at once instead of as a slow, retried "connection error".
    """


def _instantiate(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, httpx.HTTPError | httpx2.HTTPError):  # these need a message
        return cls(f"[simulated] {cls.__name__}")
    return cls()


def _check_error_name(name: str) -> None:
    if name not in ERRORS:
        raise ValueError(f"unknown error {name!r}; the catalogue has: {', '.join(ERRORS)}")


# The constructors learners call.


def ok(text: str = responses.DEFAULT_TEXT, *, chunks: int = 3,
       headers: Mapping[str, str] | None = None, stop_reason: str = "end_turn",
       content: Iterable[Mapping[str, Any]] = ()) -> Reply:
    """Success with ``text`` (streamed in ``chunks`` deltas when the request streams).

    Args:
        text: the text block (left out when empty and ``content`` has blocks).
        chunks: text deltas in a stream.
        headers: extra response headers.
        stop_reason: why the model stopped, one of :data:`STOP_REASONS`: a 200 that is
            not a finished answer, e.g. ``ok("The answer is", stop_reason="max_tokens")``.
        content: blocks after the text (see :class:`Reply`), e.g. two tool calls in one
            turn: ``ok("", stop_reason="tool_use", content=[{"type": "tool_use", "name":
            "charge_card", "input": {"cents": 4200}}, {"type": "tool_use", ...}])``.
    """
    blocks = tuple(MappingProxyType(dict(block)) if isinstance(block, Mapping) else block
                   for block in content)
    return Reply(text, chunks, MappingProxyType(dict(headers or {})), stop_reason, blocks)


def tool_use(name: str, input: Mapping[str, Any], *, id: str | None = None,
             text: str = "") -> Reply:
    """A ``Message`` that calls one tool: ``stop_reason`` ``"tool_use"`` and a ``tool_use``
    block (after ``text``, if any).

    Args:
        name: the tool's name.
        input: its arguments.
        id: the block's id (default: ``toolu_fake_<request number>_<index>``, new for
            every request, as the real model makes a new id each time it calls a tool).
        text: text before the call, e.g. ``"I'll send it now."``.

    Example: ``api.respond(tool_use("send_email", {"to": "ana@example.com"}), ok("Sent."))``.
    """
    block: dict[str, Any] = {"type": "tool_use", "name": name, "input": input}
    if id is not None:
        block["id"] = id
    return ok(text, stop_reason="tool_use", content=[block])


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


def dropped_stream(after_chunks: int = 1) -> Outcome:
    """A 200 whose connection drops after ``after_chunks`` text deltas (see
    :class:`DroppedStream`): iterating the stream raises ``httpx2.RemoteProtocolError``."""
    return DroppedStream(after_chunks)


def stalled_stream(seconds: float | None = None, *, after_chunks: int = 1) -> Outcome:
    """A 200 that goes silent for ``seconds`` after ``after_chunks`` text deltas (see
    :class:`StalledStream`); None, or longer than the read timeout, ends in a timeout."""
    return StalledStream(seconds, after_chunks)


def timeout(after: float | None = None) -> Timeout:
    """No answer within ``after`` seconds (default: the request's read timeout)."""
    return Timeout(after)


def connection_error() -> ConnectionFailure:
    """A connection that fails before any answer (the SDK raises ``APIConnectionError``)."""
    return ConnectionFailure()


_NAMED: Mapping[str, Callable[[], Outcome]] = MappingProxyType(
    {"ok": Reply, "timeout": Timeout, "connection_error": ConnectionFailure,
     "stream_dropped": DroppedStream, "stream_stalled": StalledStream}
)


def outcome(value: object) -> Outcome:
    """Turn anything :meth:`FakeClaude.respond` accepts into an :class:`Outcome`.

    Args:
        value: an :class:`Outcome`; a name (``"ok"``, ``"timeout"``,
            ``"connection_error"``, ``"stream_dropped"``, ``"stream_stalled"``, a catalogue
            error name, or ``"stream_"`` followed by one, with or without its ``_error``
            suffix: ``"stream_overloaded"``); or a response, exception or side effect for
            :class:`Custom`.

    Raises:
        ValueError: for a name that means nothing.
        TypeError: for anything else that cannot answer a request (``None``, a number, a
            class that is not an exception, ...).
    """
    if isinstance(value, Outcome):
        return value
    if isinstance(value, str):
        return _named(value)
    if isinstance(value, type):
        if issubclass(value, BaseException):
            return Custom(value)
    elif isinstance(value, httpx.Response | httpx2.Response | BaseException) or callable(value):
        return Custom(value)
    raise TypeError(
        f"cannot answer a request with {value!r}: give an outcome name (e.g. 'ok', "
        "'overloaded_error'), an Outcome (error(...), timeout(...)), an httpx.Response, an "
        "exception, or a function of the request that returns an httpx.Response")


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
        f"unknown outcome {name!r}: use 'ok', 'timeout', 'connection_error', "
        f"'stream_dropped', 'stream_stalled', an error name "
        f"({', '.join(ERRORS)}), or 'stream_' + an error name (e.g. 'stream_overloaded')"
    )
