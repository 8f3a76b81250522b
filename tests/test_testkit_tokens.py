"""Token-based limits in the test kit: ``RateLimited``'s input and output token buckets, their
headers and exact ``retry-after``, and ``count_tokens`` answered by ``FakeClaude``."""

from __future__ import annotations

import json
import math
from typing import Any

import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience import MODEL, VirtualClock
from resilience.testing import FakeClaude, RateLimited
from resilience.testing.responses import estimate_tokens, rfc3339

HI: list[Any] = [{"role": "user", "content": "Hi"}]
PREFIX = "anthropic-ratelimit-"


def message_of(error: anthropic.APIStatusError) -> str:
    """The body's ``error.message``."""
    body = error.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict)
    return str(body["error"]["message"])


def prompt(chars: int) -> list[Any]:
    return [{"role": "user", "content": "x" * chars}]


def tokens_of(messages: list[Any]) -> int:
    return estimate_tokens(json.dumps(messages))


def send(client: anthropic.Anthropic, messages: list[Any], max_tokens: int) -> Any:
    """The raw response of one request, or the RateLimitError it raised."""
    try:
        return client.messages.with_raw_response.create(model=MODEL, max_tokens=max_tokens,
                                                        messages=messages)
    except anthropic.RateLimitError as e:
        return e


def ratelimit_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith(PREFIX)}


# -- count_tokens ----------------------------------------------------------------------

def test_count_tokens_matches_the_reply_s_usage() -> None:
    messages = prompt(403)
    with FakeClaude(seed=0) as api:
        client = api.client(max_retries=0)
        counted = client.messages.count_tokens(model=api.model, messages=messages)
        message = client.messages.create(model=api.model, max_tokens=16, messages=messages)
    assert counted.input_tokens == message.usage.input_tokens == tokens_of(messages)
    assert [(c.path, c.status, c.outcome) for c in api.calls] == [
        ("/v1/messages/count_tokens", 200, "ok"), ("/v1/messages", 200, "ok")]
    assert api.calls[0].request_id == "req_fake_000001"


def test_count_tokens_uses_neither_the_script_nor_the_scenarios() -> None:
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error")
        api.scenario(RateLimited(1, burst=1))
        client = api.client(max_retries=0)
        for _ in range(3):
            assert client.messages.count_tokens(model=api.model, messages=HI).input_tokens == (
                tokens_of(HI))
        assert api.pending == ("overloaded_error",)


def test_count_tokens_without_messages_is_the_api_s_400() -> None:
    with FakeClaude(seed=0) as api, pytest.raises(anthropic.BadRequestError) as caught:
        api.client(max_retries=0).messages.count_tokens(model=api.model, messages=[])
    assert caught.value.type == "invalid_request_error"
    assert "messages" in caught.value.message
    assert [(c.path, c.status, c.outcome) for c in api.calls] == [
        ("/v1/messages/count_tokens", 400, "invalid_request_error")]


def test_a_route_still_answers_count_tokens_first() -> None:
    with FakeClaude(seed=0) as api:
        api.router.post("/v1/messages/count_tokens").respond(200, json={"input_tokens": 7})
        assert api.client().messages.count_tokens(model=api.model, messages=HI).input_tokens == 7


def test_count_tokens_from_an_async_client() -> None:
    with FakeClaude(seed=0) as api:
        async def main() -> int:
            counted = await api.async_client().messages.count_tokens(model=api.model,
                                                                     messages=prompt(80))
            return counted.input_tokens
        assert api.run(main()) == tokens_of(prompt(80))


# -- RateLimited: input and output tokens per minute ----------------------------------

def test_input_tokens_run_out_before_requests_do() -> None:
    messages = prompt(4000)  # ~1,000 tokens a request
    need = tokens_of(messages)
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(50, input_tokens_per_minute=3000))
        client = api.client(max_retries=0)
        answers = [send(client, messages, 16) for _ in range(3)]
        refused = send(client, messages, 16)
    assert need > 1000 and all(a.status_code == 200 for a in answers[:2])
    assert isinstance(answers[2], anthropic.RateLimitError)  # 3 * need > 3000
    assert isinstance(refused, anthropic.RateLimitError)
    headers = ratelimit_headers(refused.response)
    assert headers[PREFIX + "requests-remaining"] == "48"
    assert headers[PREFIX + "input-tokens-remaining"] == str(3000 - 2 * need)
    assert refused.response.headers["retry-after"] == str(math.ceil((3 * need - 3000) / 50))
    assert message_of(refused).endswith("of 3000 input tokens per minute.")


def test_output_tokens_count_max_tokens_not_the_reply() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(output_tokens_per_minute=8000))
        client = api.client(max_retries=0)
        first = send(client, HI, 4096)
        second = send(client, HI, 4096)
    assert first.parse().usage.output_tokens < 20
    assert first.headers[PREFIX + "output-tokens-remaining"] == "3904"
    assert isinstance(second, anthropic.RateLimitError)
    # 192 tokens short at 8000/60 a second: 1.44 s -> 2 s
    assert second.response.headers["retry-after"] == "2"
    assert "8000 output tokens per minute" in second.message


def test_the_headers_for_every_limit_and_the_tightest_as_tokens() -> None:
    with FakeClaude(clock=VirtualClock(12.0), seed=0) as api:
        api.scenario(RateLimited(60, burst=5, input_tokens_per_minute=600,
                                 output_tokens_per_minute=1200))
        headers = ratelimit_headers(send(api.client(max_retries=0), HI, 1000))
    need = tokens_of(HI)
    assert headers == {
        PREFIX + "requests-limit": "60", PREFIX + "requests-remaining": "4",
        PREFIX + "requests-reset": rfc3339(13.0),
        PREFIX + "input-tokens-limit": "600",
        PREFIX + "input-tokens-remaining": str(600 - need),
        PREFIX + "input-tokens-reset": rfc3339(12.0 + need / 10),
        PREFIX + "output-tokens-limit": "1200", PREFIX + "output-tokens-remaining": "200",
        PREFIX + "output-tokens-reset": rfc3339(12.0 + 50.0),
        PREFIX + "tokens-limit": "1200", PREFIX + "tokens-remaining": "200",
        PREFIX + "tokens-reset": rfc3339(62.0),
    }


def test_a_refused_request_takes_nothing_from_any_bucket() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(60, input_tokens_per_minute=6000,
                                 output_tokens_per_minute=1000))
        client = api.client(max_retries=0)
        assert send(client, HI, 900).status_code == 200
        refused = send(client, HI, 900)
    assert isinstance(refused, anthropic.RateLimitError)
    headers = ratelimit_headers(refused.response)
    assert headers[PREFIX + "requests-remaining"] == "59"
    assert headers[PREFIX + "input-tokens-remaining"] == str(6000 - tokens_of(HI))
    assert headers[PREFIX + "output-tokens-remaining"] == "100"


def test_retry_after_is_the_longest_wait_of_all_limits() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(6, burst=1, output_tokens_per_minute=600))
        client = api.client(max_retries=0)
        send(client, HI, 590)
        refused = send(client, HI, 590)  # requests: 10 s; output: 580 / 10 = 58 s
    assert refused.response.headers["retry-after"] == "58"
    assert "600 output tokens per minute" in refused.message


def test_the_sdk_waits_retry_after_and_the_retry_passes() -> None:
    messages = prompt(1600)  # 408 tokens: two fit in 1,000
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(input_tokens_per_minute=1000))
        client = api.client(max_retries=2)
        for _ in range(3):
            client.messages.create(model=MODEL, max_tokens=16, messages=messages)
    assert [c.status for c in api.calls] == [200, 200, 429, 200]
    assert api.calls[3].time == pytest.approx(
        api.calls[2].time + math.ceil((3 * tokens_of(messages) - 1000) / (1000 / 60)))


def test_a_request_larger_than_the_limit_is_never_retried() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(input_tokens_per_minute=100))
        with pytest.raises(anthropic.RateLimitError) as caught:
            api.client(max_retries=3).messages.create(model=MODEL, max_tokens=16,
                                                      messages=prompt(1000))
    assert len(api.calls) == 1
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "more than the rate limit" in caught.value.message


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
       outs=st.lists(st.integers(1, 1500), min_size=12, max_size=12),
       gaps=st.lists(st.floats(0, 20), min_size=12, max_size=12))
def test_retry_after_is_never_too_early_and_never_a_second_late(
        sizes: list[int], outs: list[int], gaps: list[float]) -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.scenario(RateLimited(30, burst=3, input_tokens_per_minute=2000,
                                 output_tokens_per_minute=1500))
        client = api.client(max_retries=0)
        for chars, out, gap in zip(sizes, outs, gaps, strict=False):
            clock.advance(gap)
            messages = prompt(chars)
            answer = send(client, messages, out)
            if not isinstance(answer, anthropic.RateLimitError):
                continue
            wait = int(answer.response.headers["retry-after"])
            if wait > 1:  # a second earlier is still too early
                clock.advance(wait - 1)
                assert isinstance(send(client, messages, out), anthropic.RateLimitError)
                clock.advance(1)
            else:
                clock.advance(wait)
            assert send(client, messages, out).status_code == 200


def test_requests_only_keeps_today_s_headers_and_repr() -> None:
    limited = RateLimited(6, burst=2)
    assert repr(limited) == "RateLimited(requests_per_minute=6, burst=2.0)"
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(limited)
        headers = ratelimit_headers(send(api.client(max_retries=0), HI, 64))
    assert sorted(headers) == [PREFIX + "requests-limit", PREFIX + "requests-remaining",
                               PREFIX + "requests-reset"]


def test_token_limits_only_send_no_request_headers() -> None:
    limited = RateLimited(input_tokens_per_minute=5000, output_tokens_per_minute=900)
    assert repr(limited) == ("RateLimited(input_tokens_per_minute=5000, "
                             "output_tokens_per_minute=900)")
    assert limited.rate == 0.0
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(limited)
        headers = ratelimit_headers(send(api.client(max_retries=0), HI, 64))
    assert not any("requests" in name for name in headers)
    assert headers[PREFIX + "tokens-limit"] == "900"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({}, ValueError, "needs a limit"),
    ({"input_tokens_per_minute": 0}, ValueError, "input_tokens_per_minute"),
    ({"output_tokens_per_minute": 0.5}, ValueError, "output_tokens_per_minute"),
    ({"output_tokens_per_minute": math.inf}, ValueError, "output_tokens_per_minute"),
    ({"burst": 5, "input_tokens_per_minute": 100}, ValueError, "burst"),
    ({"input_tokens_per_minute": "100"}, TypeError, "input_tokens_per_minute"),
    ({"requests_per_minute": True}, TypeError, "requests_per_minute"),
])
def test_invalid_settings(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        RateLimited(**kwargs)
