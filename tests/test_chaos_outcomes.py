"""Transport faults mid-body through the real SDK: a dropped connection, a stalled stream.

A connection that closes mid-body: the 200 and the first events arrive, then the transport
fails. While you iterate a stream the SDK raises the raw ``httpx2.RemoteProtocolError`` (not an
``anthropic.APIError``, never retried); a plain request reads its body inside the SDK's retry
loop, so it becomes ``APIConnectionError`` and is retried.
"""

from __future__ import annotations

import asyncio
import json
import socket

import anthropic
import httpx2
import pytest

from resilience import MODEL, VirtualClock
from resilience.testing import FakeClaude, dropped_stream, outcome
from resilience.testing.outcomes import DroppedStream, Exchange, StalledStream, stalled_stream
from resilience.testing.responses import DEFAULT_TEXT, DROPPED_MESSAGE

HI = [{"role": "user", "content": "Hi"}]


def test_the_name_and_the_constructor_give_the_same_outcome() -> None:
    named = outcome("stream_dropped")
    assert isinstance(named, DroppedStream) and named.label == "stream_dropped"
    assert named == dropped_stream() == DroppedStream(1)
    assert dropped_stream(after_chunks=2).after_chunks == 2


@pytest.mark.parametrize("bad", [-1, -5])
def test_a_negative_chunk_count_is_a_value_error_naming_it(bad: int) -> None:
    with pytest.raises(ValueError, match="after_chunks must be >= 0"):
        dropped_stream(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True, None])
def test_a_chunk_count_that_is_not_an_int_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="after_chunks"):
        dropped_stream(bad)  # type: ignore[arg-type]


def test_iterating_create_stream_raises_the_raw_transport_error_after_the_first_events() -> None:
    with FakeClaude() as api:
        api.respond("stream_dropped", "ok")
        stream = api.client(max_retries=5).messages.create(
            model=MODEL, max_tokens=64, messages=HI, stream=True)  # the 200: no error yet
        seen: list[str] = []
        with pytest.raises(httpx2.RemoteProtocolError, match="peer closed connection") as info:
            for event in stream:
                seen.append(event.type)
    assert not isinstance(info.value, anthropic.APIError)  # `except APIError` misses it
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert [(c.status, c.outcome) for c in api.calls] == [(200, "stream_dropped")]
    assert api.pending == ("ok",)  # the SDK did not retry (max_retries=5 notwithstanding)


@pytest.mark.parametrize("after_chunks", [0, 1, 2])
def test_the_stream_helper_raises_it_with_the_text_so_far(after_chunks: int) -> None:
    with FakeClaude() as api:
        api.respond(dropped_stream(after_chunks))
        pieces: list[str] = []
        client = api.client()
        with (pytest.raises(httpx2.RemoteProtocolError),
              client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream):
            for text in stream.text_stream:
                pieces.append(text)
    assert len(pieces) == after_chunks
    assert DEFAULT_TEXT.startswith("".join(pieces)) and "".join(pieces) != DEFAULT_TEXT
    assert len(api.calls) == 1


def test_more_chunks_than_the_reply_has_sends_all_text_but_no_message_stop() -> None:
    with FakeClaude() as api:
        api.respond(dropped_stream(10))
        seen: list[str] = []
        with pytest.raises(httpx2.RemoteProtocolError):
            for event in api.client().messages.create(model=MODEL, max_tokens=64,
                                                      messages=HI, stream=True):
                seen.append(event.type)
    assert seen.count("content_block_delta") == 3
    assert "message_stop" not in seen and "content_block_stop" not in seen


def test_an_async_stream_raises_it_too() -> None:
    async def main(api: FakeClaude) -> list[str]:
        pieces: list[str] = []
        async with api.async_client().messages.stream(model=MODEL, max_tokens=64,
                                                      messages=HI) as stream:
            async for text in stream.text_stream:
                pieces.append(text)
        return pieces

    with FakeClaude() as api:
        api.respond("stream_dropped")
        with pytest.raises(httpx2.RemoteProtocolError, match="peer closed"):
            asyncio.run(main(api))
    assert [c.outcome for c in api.calls] == ["stream_dropped"]


def test_a_plain_request_sees_a_connection_error_and_the_sdk_retries_it() -> None:
    with FakeClaude() as api:
        api.respond("stream_dropped", "ok")
        message = api.client().messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert message.content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
    assert [(c.retry_count, c.status, c.outcome) for c in api.calls] == [
        (0, 200, "stream_dropped"), (1, 200, "ok")]
    assert api.calls[1].time > 0  # the SDK backed off (on the virtual clock) before retrying


def test_a_plain_request_that_keeps_dropping_ends_in_api_connection_error() -> None:
    with FakeClaude() as api:
        api.respond("stream_dropped", "stream_dropped")
        with pytest.raises(anthropic.APIConnectionError) as info:
            api.client(max_retries=1).messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert not isinstance(info.value, anthropic.APITimeoutError)
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert str(info.value.__cause__) == DROPPED_MESSAGE
    assert len(api.calls) == 2


def test_the_plain_body_promises_the_whole_message_and_sends_half() -> None:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages",
                             json={"model": MODEL, "max_tokens": 64, "messages": HI})
    exchange = Exchange(request, 1, "req_x", 0.0, VirtualClock(),
                        {"model": MODEL, "max_tokens": 64, "messages": HI})
    response = dropped_stream().answer(exchange)
    assert (response.status_code, response.headers["request-id"]) == (200, "req_x")
    assert response.headers["content-type"] == "application/json"
    promised = int(response.headers["content-length"])
    received = b""
    with pytest.raises(httpx2.RemoteProtocolError):
        for part in response.iter_raw():
            received += part
    assert 0 < len(received) < promised
    assert json.loads(_complete(received, exchange))["content"][0]["text"] == DEFAULT_TEXT


def _complete(start: bytes, exchange: Exchange) -> bytes:
    """The whole body the dropped one began (the same Message as an ``ok`` reply)."""
    whole = outcome("ok").answer(exchange).content
    assert whole.startswith(start)
    return whole


# A stalled stream: silence mid-body; the read timeout decides whether it ends in a timeout.


def test_stalled_by_name_is_silent_for_good() -> None:
    named = outcome("stream_stalled")
    assert isinstance(named, StalledStream) and named.label == "stream_stalled"
    assert named == stalled_stream() == StalledStream(None, 1)


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_a_stall_length_out_of_range_is_a_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="seconds must be"):
        stalled_stream(bad)


def test_a_stall_past_the_read_timeout_raises_read_timeout_while_iterating() -> None:
    with FakeClaude() as api:
        api.respond(stalled_stream(after_chunks=2), "ok")
        client = api.client(timeout=5.0, max_retries=3)
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
        seen: list[str] = []
        with pytest.raises(httpx2.ReadTimeout) as info:
            for event in stream:
                seen.append(event.type)
    assert not isinstance(info.value, anthropic.APIError)
    assert seen.count("content_block_delta") == 2
    assert api.clock.now() == pytest.approx(5.0)  # the read timeout, on the virtual clock
    assert api.pending == ("ok",)  # not retried


def test_a_stall_shorter_than_the_read_timeout_is_slow_but_complete() -> None:
    with FakeClaude() as api:
        api.respond(stalled_stream(2.5))
        client = api.client(timeout=5.0)
        with client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            text = "".join(stream.text_stream)
    assert text == DEFAULT_TEXT
    assert api.clock.now() == pytest.approx(2.5)
    assert [(c.status, c.outcome) for c in api.calls] == [(200, "stream_stalled")]


def test_a_plain_request_that_stalls_times_out_and_is_retried() -> None:
    with FakeClaude() as api:
        api.respond("stream_stalled", "ok")
        message = api.client(timeout=3.0).messages.create(model=MODEL, max_tokens=64,
                                                          messages=HI)
    assert message.content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
    assert [c.outcome for c in api.calls] == ["stream_stalled", "ok"]
    assert api.calls[1].time >= 3.0  # the stall cost the whole read timeout


def test_a_plain_request_that_keeps_stalling_raises_api_timeout_error() -> None:
    with FakeClaude() as api:
        api.respond("stream_stalled")
        with pytest.raises(anthropic.APITimeoutError):
            api.client(timeout=3.0, max_retries=0).messages.create(model=MODEL, max_tokens=64,
                                                                   messages=HI)


def test_without_the_loopback_mark_even_127_0_0_1_is_blocked() -> None:
    with pytest.raises(anthropic.AnthropicError, match="must not use the network"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.01)
    with pytest.raises(anthropic.AnthropicError, match="must not use the network"):
        socket.getaddrinfo("127.0.0.1", 9)
