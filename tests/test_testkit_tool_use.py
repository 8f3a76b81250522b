"""The test kit answers with tool calls and every stop reason, through the real SDK.

``ok(..., stop_reason=..., content=[...])`` and ``tool_use(name, input)`` build 200s that
are not finished answers; the SDK must parse them (plain and streamed) into the same
``Message`` the real API's would give, and the kit must refuse what the API never sends.
"""

from __future__ import annotations

import typing
from typing import Any

import anthropic
import pytest

from resilience.testing import FakeClaude, ok, tool_use
from resilience.testing.outcomes import STOP_REASONS, Reply
from resilience.testing.responses import DEFAULT_TEXT

HI: list[Any] = [{"role": "user", "content": "Hi"}]
TWO_CALLS = [{"type": "tool_use", "name": "charge_card", "input": {"cents": 4200}},
             {"type": "tool_use", "name": "send_receipt", "input": {"to": "ana@example.com"},
              "id": "toolu_mine"}]


def ask(api: FakeClaude, *outcomes: object, stream: bool = False) -> list[anthropic.types.Message]:
    """Answer one request per outcome, plainly or as a stream; return the final messages."""
    api.respond(*outcomes)
    client, messages = api.client(max_retries=0), []
    for _ in outcomes:
        if stream:
            with client.messages.stream(model=api.model, max_tokens=64, messages=HI) as s:
                messages.append(s.get_final_message())
        else:
            messages.append(client.messages.create(model=api.model, max_tokens=64,
                                                   messages=HI))
    return messages


def test_the_stop_reasons_are_the_sdk_s() -> None:
    assert set(STOP_REASONS) == set(typing.get_args(anthropic.types.StopReason))
    assert {"end_turn", "max_tokens", "tool_use", "pause_turn", "refusal"} <= set(STOP_REASONS)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("reason", ["max_tokens", "refusal", "pause_turn", "stop_sequence"])
def test_ok_with_a_stop_reason_is_a_200_with_that_reason(reason: str, stream: bool) -> None:
    with FakeClaude(seed=0) as api:
        (message,) = ask(api, ok("The answer is", stop_reason=reason), stream=stream)
    assert message.stop_reason == reason
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "The answer is")]
    assert [(c.status, c.outcome) for c in api.calls] == [(200, reason)]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_plain_ok_is_unchanged(stream: bool) -> None:
    with FakeClaude(seed=0) as api:
        (message,) = ask(api, "ok", stream=stream)
    assert (message.stop_reason, message.content[0].text) == ("end_turn", DEFAULT_TEXT)
    assert len(message.content) == 1 and api.calls[0].outcome == "ok"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_tool_use_gives_a_tool_use_block_with_a_new_id_per_request(stream: bool) -> None:
    call = tool_use("send_email", {"to": "ana@example.com", "n": [1, 2]})
    with FakeClaude(seed=0) as api:
        first, second = ask(api, call, call, stream=stream)
    for number, message in enumerate((first, second), start=1):
        assert message.stop_reason == "tool_use"
        (block,) = message.content
        assert isinstance(block, anthropic.types.ToolUseBlock)
        assert (block.id, block.name, block.input) == (
            f"toolu_fake_{number:06d}_0", "send_email", {"to": "ana@example.com", "n": [1, 2]})
    assert [c.outcome for c in api.calls] == ["tool_use", "tool_use"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_text_and_several_tool_calls_in_one_turn(stream: bool) -> None:
    with FakeClaude(seed=0) as api:
        (message,) = ask(api, ok("Paying now.", stop_reason="tool_use", content=TWO_CALLS),
                         stream=stream)
    text, charge, receipt = message.content
    assert (text.type, getattr(text, "text", None)) == ("text", "Paying now.")
    assert (charge.type, getattr(charge, "id", None), getattr(charge, "input", None)) == (
        "tool_use", "toolu_fake_000001_1", {"cents": 4200})
    assert (getattr(receipt, "id", None), getattr(receipt, "name", None)) == (
        "toolu_mine", "send_receipt")


def test_a_given_id_is_kept_and_an_empty_text_is_left_out() -> None:
    with FakeClaude(seed=0) as api:
        (message,) = ask(api, tool_use("charge_card", {"cents": 1}, id="toolu_fixed"))
    assert [(b.type, getattr(b, "id", None)) for b in message.content] == [
        ("tool_use", "toolu_fixed")]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_paused_server_tool_turn(stream: bool) -> None:
    paused = ok("Searching.", stop_reason="pause_turn",
                content=[{"type": "server_tool_use", "name": "web_search",
                          "input": {"query": "status page"}}])
    with FakeClaude(seed=0) as api:
        (message,) = ask(api, paused, stream=stream)
    assert message.stop_reason == "pause_turn"
    assert [(b.type, getattr(b, "id", None)) for b in message.content] == [
        ("text", None), ("server_tool_use", "srvtoolu_fake_000001_1")]


def test_a_reply_can_be_sent_back_as_the_next_turn() -> None:
    with FakeClaude(seed=0) as api:
        (message,) = ask(api, tool_use("send_email", {"to": "ana@example.com"}))
        history = [*HI, {"role": "assistant", "content": message.content},
                   {"role": "user", "content": [{"type": "tool_result",
                                                 "tool_use_id": message.content[0].id,
                                                 "content": "sent"}]}]
        api.client().messages.create(model=api.model, max_tokens=64, messages=history)
    assert [c.outcome for c in api.calls] == ["tool_use", "ok"]


def test_with_headers_keeps_the_stop_reason_and_content() -> None:
    reply = ok("x", stop_reason="tool_use", content=TWO_CALLS).with_headers({"a": "b"})
    assert isinstance(reply, Reply)
    assert (reply.stop_reason, len(reply.content), dict(reply.headers)) == (
        "tool_use", 2, {"a": "b"})


def test_the_content_given_cannot_be_changed_afterwards() -> None:
    block: dict[str, Any] = {"type": "tool_use", "name": "a", "input": {}}
    reply = ok("", stop_reason="tool_use", content=[block])
    block["name"] = "b"
    assert reply.content[0]["name"] == "a"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"stop_reason": "done"}, ValueError, "stop_reason must be one of"),
    ({"stop_reason": "tool_use"}, ValueError, "needs at least one tool_use block"),
    ({"content": [{"type": "image"}]}, ValueError, "type is one of"),
    ({"content": ["a tool"]}, TypeError, "must be a dict"),
    ({"content": [{"type": "text", "text": 3}]}, TypeError, "str 'text'"),
    ({"content": [{"type": "tool_use", "input": {}}]}, TypeError, "str 'name'"),
    ({"content": [{"type": "tool_use", "name": "a", "input": "x"}]}, TypeError, "dict 'input'"),
    ({"content": [{"type": "tool_use", "name": "a", "input": {}, "id": 7}]}, TypeError,
     "'id' must be a str"),
])
def test_what_the_api_never_sends_is_refused(kwargs: dict[str, Any], error: type[Exception],
                                             match: str) -> None:
    with pytest.raises(error, match=match):
        ok("x", **kwargs)
