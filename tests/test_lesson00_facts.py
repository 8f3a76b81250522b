"""Every factual claim lesson 00 ("Start here") makes, checked against the installed SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, so neither can drift from the SDK unnoticed.
"""

from __future__ import annotations

import anthropic
import httpx
import httpx2
import pytest
import respx

from resilience import MODEL, VirtualClock
from resilience.testing import (
    FakeClaude,
    LiveModeNotEnabled,
    error,
    is_live,
    live_client,
    sdk_client_for,
)
from resilience.testing.responses import DEFAULT_TEXT

HELLO = [{"role": "user", "content": "Hello, Claude"}]


def one_error(name: str) -> anthropic.APIStatusError:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(name)
        with pytest.raises(anthropic.APIStatusError) as caught:
            api.client(max_retries=0).messages.create(model=MODEL, max_tokens=64,
                                                      messages=HELLO)
    return caught.value


def test_the_first_call_is_one_attempt_at_time_zero() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        reply = api.client().messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert reply.content[0].text == DEFAULT_TEXT
    assert (reply.model, reply.stop_reason) == (MODEL, "end_turn")
    assert [(c.time, c.retry_count, c.status, c.outcome) for c in api.calls] == [
        (0.0, 0, 200, "ok")]


def test_the_sdk_sends_through_httpx2() -> None:
    with FakeClaude(clock=VirtualClock()) as api:
        http_client = api.client()._client
    assert isinstance(http_client, httpx2.Client), (
        f"lesson 00: the SDK's HTTP client is now {type(http_client).__module__}."
        f"{type(http_client).__name__}; the lesson says an httpx2.Client")
    assert not isinstance(http_client, httpx.Client)


def test_plain_respx_mock_does_not_intercept_the_sdk() -> None:
    # In the notebook the request fails to connect (APIConnectionError); here the test
    # fixture blocks the network, which proves the request reached the real network stack.
    with respx.mock(base_url="http://127.0.0.1:9", assert_all_called=False) as mock:
        route = mock.post("/v1/messages").mock(return_value=httpx.Response(529))
        plain = anthropic.Anthropic(api_key="sk-not-a-real-key",
                                    base_url="http://127.0.0.1:9", max_retries=0)
        with pytest.raises(anthropic.AnthropicError) as caught:
            plain.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert not isinstance(caught.value, anthropic.APIStatusError)
    assert route.called is False


def test_the_same_route_answers_through_the_bridge() -> None:
    router = respx.Router(base_url="https://api.anthropic.com")
    route = router.post("/v1/messages").mock(return_value=httpx.Response(529))
    with pytest.raises(anthropic.OverloadedError) as caught:
        sdk_client_for(router, max_retries=0).messages.create(model=MODEL, max_tokens=64,
                                                              messages=HELLO)
    assert caught.value.status_code == 529 and route.called is True


def test_live_mode_is_opt_in_and_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_live({}) is False
    assert is_live({"ANTHROPIC_API_KEY": "sk-ant-secret"}) is False
    assert is_live({"ANTHROPIC_API_KEY": "sk-ant-secret", "RESILIENCE_LIVE": "1"}) is True
    monkeypatch.delenv("RESILIENCE_LIVE", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    with pytest.raises(LiveModeNotEnabled) as caught:
        live_client()
    assert "sk-ant-secret" not in str(caught.value)


def test_the_anatomy_of_a_529() -> None:
    err = one_error("overloaded_error")
    assert (err.status_code, err.type, err.api_message) == (529, "overloaded_error",
                                                            "Overloaded")
    assert err.request_id == err.response.headers["request-id"] == "req_fake_000001"
    assert err.response.headers.get("retry-after") is None
    assert err.body == {"type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                        "request_id": "req_fake_000001"}
    assert type(err) is anthropic.OverloadedError
    for cls in (anthropic.InternalServerError, anthropic.APIStatusError, anthropic.APIError):
        assert isinstance(err, cls), f"lesson 00: an OverloadedError is no longer a {cls}"


def sdk_retries(*outcomes: object, max_retries: int = 4) -> tuple[FakeClaude, VirtualClock]:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*outcomes)
        api.client(max_retries=max_retries).messages.create(model=MODEL, max_tokens=64,
                                                            messages=HELLO)
    return api, clock


def test_the_sdk_retries_529s_by_itself_about_doubling_its_wait() -> None:
    api, clock = sdk_retries(*["overloaded_error"] * 4, "ok")
    assert [f"{c.time:.3f}" for c in api.calls] == ["0.000", "0.394", "1.205", "2.995",
                                                   "6.736"]
    assert [c.retry_count for c in api.calls] == [0, 1, 2, 3, 4]
    assert [c.status for c in api.calls] == [529] * 4 + [200]
    assert [round(s, 3) for s in clock.sleeps] == [0.394, 0.811, 1.79, 3.741]
    for n, wait in enumerate(clock.sleeps):  # 0.5 s * 2**n, shortened by up to 25 %
        assert 0.75 * 0.5 * 2**n <= wait <= 0.5 * 2**n


def test_retry_after_makes_every_wait_exactly_that_long() -> None:
    _, clock = sdk_retries(*[error("overloaded_error", retry_after=3)] * 4, "ok")
    assert clock.sleeps == [3.0] * 4


def test_by_default_the_sdk_retries_a_529_twice_and_a_400_never() -> None:
    for name, attempts in [("overloaded_error", 3), ("invalid_request_error", 1)]:
        with FakeClaude(clock=VirtualClock()) as api:
            api.respond(*[name] * 5)
            with pytest.raises(anthropic.APIStatusError):
                api.client().messages.create(model=MODEL, max_tokens=64, messages=HELLO)
        assert len(api.calls) == attempts, name


def test_the_sdk_retries_a_connection_error_by_default() -> None:
    with FakeClaude(clock=VirtualClock()) as api:
        api.respond(*["connection_error"] * 3)
        with pytest.raises(anthropic.APIConnectionError):
            api.client().messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert [c.retry_count for c in api.calls] == [0, 1, 2]
