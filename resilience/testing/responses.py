"""Faithful Claude API responses: Message bodies, error bodies and SSE streams.

Every response the simulated API sends is built here, in the exact shapes of the real API:

* a success is a ``Message`` (``id``, ``type: message``, ``role``, ``model``, text
  ``content``, ``stop_reason``, ``usage``), which the SDK parses into
  ``anthropic.types.Message``;
* an error carries the body ``{"type": "error", "error": {"type", "message",
  "details"?}, "request_id"}`` taken from :data:`resilience.catalogue.ERRORS` (this module
  writes no error table of its own); a proxy's error is an HTML page;
* a stream is ``text/event-stream``: ``message_start``, ``content_block_start``,
  ``content_block_delta`` ..., ``content_block_stop``, ``message_delta``, ``message_stop``;
  a stream that fails after its 200 ends with an ``event: error`` frame instead;
* a connection dropped mid-body is a 200 whose body yields its first bytes, then raises
  ``httpx2.RemoteProtocolError`` while the client reads it (:func:`dropped_response`).

Every response has a ``request-id`` header. Rate-limit reset times are RFC 3339 strings on a
fixed virtual calendar (:data:`VIRTUAL_EPOCH` is clock time 0), so outputs repeat exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

from ..catalogue import ErrorSpec

__all__ = [
    "DEFAULT_TEXT",
    "DROPPED_MESSAGE",
    "VIRTUAL_EPOCH",
    "dropped_response",
    "error_event",
    "error_response",
    "estimate_tokens",
    "interrupted_response",
    "message_body",
    "message_response",
    "rfc3339",
    "sse_frames",
    "stream_events",
    "stream_response",
]

DEFAULT_TEXT = "Hello from the simulated Claude API."
"""The reply text of an ``"ok"`` outcome unless another is given."""

VIRTUAL_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
"""The calendar date of virtual clock time 0, for headers that carry a date."""

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_HTML = "text/html"


def rfc3339(seconds: float) -> str:
    """The RFC 3339 date of virtual time ``seconds`` (rounded up to a whole second).

    >>> rfc3339(61.2)
    '2026-01-01T00:01:02Z'
    """
    moment = VIRTUAL_EPOCH + timedelta(seconds=math.ceil(seconds))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters a token, at least one), stable across runs."""
    return max(1, math.ceil(len(text) / 4))


def message_body(message_id: str, model: str, text: str, input_tokens: int) -> dict[str, Any]:
    """A complete ``Message`` with one text block, as a non-streaming request receives it.

    Args:
        message_id: the ``id`` (``msg_...``).
        model: the model id, echoed from the request as the API does.
        text: the reply text.
        input_tokens: ``usage.input_tokens``.

    Returns:
        The decoded JSON body.
    """
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _usage(input_tokens, estimate_tokens(text)),
    }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def message_response(body: Mapping[str, Any], request_id: str) -> httpx2.Response:
    """A 200 response carrying a ``Message`` body."""
    return _json_response(200, body, request_id)


def error_response(spec: ErrorSpec, request_id: str) -> httpx2.Response:
    """The error response for a catalogue entry: its status, headers and exact body.

    A proxy's error (``spec.proxy_html``) is an HTML page, not JSON, as a real proxy sends it.
    """
    if spec.proxy_html:
        headers = {"content-type": _HTML, "request-id": request_id, **spec.headers}
        return httpx2.Response(spec.status, headers=headers, content=spec.message.encode())
    return _json_response(spec.status, spec.body(request_id), request_id, spec.headers)


def _json_response(status: int, body: Mapping[str, Any], request_id: str,
                   extra: Mapping[str, str] | None = None) -> httpx2.Response:
    headers = {"content-type": _JSON, "request-id": request_id, **(extra or {})}
    return httpx2.Response(status, headers=headers, content=json.dumps(body).encode())


def stream_events(body: Mapping[str, Any], chunks: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events that stream a ``Message`` body, its text cut into ``chunks`` deltas.

    Args:
        body: a body from :func:`message_body`.
        chunks: how many ``content_block_delta`` events carry the text (at least 1).

    Returns:
        ``(event name, data)`` pairs, from ``message_start`` to ``message_stop``.
    """
    text = body["content"][0]["text"]
    usage = body["usage"]
    start = {**body, "content": [], "stop_reason": None,
             "usage": _usage(usage["input_tokens"], 1)}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    for piece in _split(text, chunks):
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": piece}}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
                           "usage": {"output_tokens": usage["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def _split(text: str, parts: int) -> list[str]:
    """``text`` cut into ``parts`` pieces of near-equal length that join back to it."""
    parts = max(1, min(parts, len(text)))
    size = math.ceil(len(text) / parts) if text else 1
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def error_event(spec: ErrorSpec) -> tuple[str, dict[str, Any]]:
    """The ``event: error`` frame that ends a stream which failed after its 200.

    The shape is the API's documented one: ``{"type": "error", "error": {"type", "message"}}``.
    """
    error: dict[str, Any] = {"type": spec.error_type, "message": spec.message}
    if spec.error_code is not None:
        error["details"] = {"error_code": spec.error_code}
    return "error", {"type": "error", "error": error}


def sse_frames(events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[bytes]:
    """One ``event: NAME\\ndata: JSON\\n\\n`` frame per event, as the API sends them."""
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


def stream_response(events: Iterable[tuple[str, Mapping[str, Any]]],
                    request_id: str) -> httpx2.Response:
    """A 200 ``text/event-stream`` response carrying ``events``, one SSE frame each."""
    return httpx2.Response(200, headers=_stream_headers(request_id),
                           content=b"".join(sse_frames(events)))


def _stream_headers(request_id: str) -> dict[str, str]:
    return {"content-type": _SSE, "request-id": request_id, "cache-control": "no-cache"}


DROPPED_MESSAGE = ("[simulated] peer closed connection without sending complete message body "
                   "(incomplete chunked read)")
"""The transport error's message for a dropped connection (httpcore's own wording)."""


class _InterruptedBody(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A body that yields ``before``, calls ``interruption`` (which may raise), then ``after``.

    Readable from a sync client (``__iter__``) and an async one (``__aiter__``).
    """

    def __init__(self, before: Sequence[bytes], interruption: Callable[[], None],
                 after: Sequence[bytes]) -> None:
        self._before = tuple(before)
        self._interruption = interruption
        self._after = tuple(after)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._before
        self._interruption()
        yield from self._after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._before:
            yield part
        self._interruption()
        for part in self._after:
            yield part


def interrupted_response(before: Sequence[bytes], interruption: Callable[[], None],
                         after: Sequence[bytes] = (), *, request_id: str, stream: bool,
                         full_length: int | None = None) -> httpx2.Response:
    """A 200 whose body arrives as ``before``, then ``interruption()``, then ``after``.

    The interruption is where the transport misbehaves: it raises an ``httpx2`` transport
    error (the connection drops, the read times out) or lets time pass (a stall) and
    returns. The status and headers arrive first, as from a real server.

    Args:
        before: the bytes that arrive before the interruption.
        interruption: called once the client has read ``before``.
        after: the bytes that arrive after it, if it returns.
        request_id: the ``request-id`` header.
        stream: True for an SSE response (``text/event-stream``), False for JSON.
        full_length: a ``content-length`` header that promises the whole body (JSON only).
    """
    headers = _stream_headers(request_id) if stream else {"content-type": _JSON,
                                                         "request-id": request_id}
    if full_length is not None and not stream:
        headers["content-length"] = str(full_length)
    return httpx2.Response(200, headers=headers,
                           stream=_InterruptedBody(before, interruption, after))


def dropped_response(parts: Sequence[bytes], request_id: str, *, stream: bool,
                     request: httpx2.Request | None = None,
                     full_length: int | None = None) -> httpx2.Response:
    """A 200 whose connection drops after ``parts``: reading the body raises.

    The headers arrive (status 200, ``request-id``); the client then reads ``parts`` and
    gets ``httpx2.RemoteProtocolError`` where the rest should be, exactly as from a server
    that closed the connection mid-body. The anthropic SDK does not wrap the error while you
    iterate a stream (it is *not* an ``anthropic.APIError``); for a request that did not
    stream, the SDK reads the whole body inside its retry loop, so it raises
    ``APIConnectionError`` and retries like any other connection failure.

    Args:
        parts: the bytes that arrive before the drop (SSE frames, or the start of a JSON body).
        request_id: the ``request-id`` header.
        stream: True for an SSE response (``text/event-stream``), False for JSON.
        request: the request, attached to the error as httpx2 does.
        full_length: a ``content-length`` that promises the whole body (JSON only).
    """

    def drop() -> None:
        raise httpx2.RemoteProtocolError(DROPPED_MESSAGE, request=request)

    return interrupted_response(parts, drop, request_id=request_id, stream=stream,
                                full_length=full_length)
