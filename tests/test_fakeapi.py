"""The simulated Claude API: faithful responses, the catalogue through the real SDK, the
bridge to respx, streams, live mode and the network guard."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time

import anthropic
import anthropic._base_client as sdk_base
import anyio
import httpx
import httpx2
import pytest
import respx

from resilience import FALLBACK_MODEL, MODEL, VirtualClock, classify
from resilience.catalogue import ERRORS, ErrorSpec
from resilience.testing import (
    FAKE_API_KEY,
    FakeClaude,
    LiveModeNotEnabled,
    UnmatchedRequestError,
    async_sdk_client_for,
    error,
    is_live,
    live_client,
    ok,
    outcome,
    sdk_client_for,
    sdk_on_clock,
    stream_error,
)
from resilience.testing.responses import message_body

HI = [{"role": "user", "content": "Hi"}]


def ask(client: anthropic.Anthropic, **kwargs: object) -> anthropic.types.Message:
    return client.messages.create(model=MODEL, max_tokens=64, messages=HI, **kwargs)


def raised(client: anthropic.Anthropic) -> BaseException:
    try:
        ask(client)
    except Exception as e:
        return e
    raise AssertionError("the request did not fail")


# The catalogue, end to end: fake response -> the SDK's exception -> classify.

SPECS = list(ERRORS.values())


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_each_catalogue_error_raises_its_sdk_class_and_classifies(spec: ErrorSpec) -> None:
    with FakeClaude() as api:
        api.respond(spec.name)
        e = raised(api.client(max_retries=0))
    assert type(e).__name__ == spec.sdk_class
    assert isinstance(e, getattr(anthropic, spec.sdk_class))
    assert isinstance(e, anthropic.APIStatusError) and e.status_code == spec.status
    assert e.request_id == "req_fake_000001"
    verdict = classify(e)
    assert (verdict.category, verdict.retryable, verdict.status) == (
        spec.category, spec.retryable, spec.status)
    assert verdict.request_id == "req_fake_000001"
    assert verdict.error_code == spec.error_code


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.proxy_html],
                         ids=[s.name for s in SPECS if not s.proxy_html])
def test_each_json_error_has_the_exact_body_and_headers(spec: ErrorSpec) -> None:
    with FakeClaude() as api:
        api.respond(spec.name)
        e = raised(api.client(max_retries=0))
    assert isinstance(e, anthropic.APIStatusError)
    assert e.body == spec.body("req_fake_000001")
    assert e.type == spec.error_type
    assert e.response.headers["content-type"] == "application/json"
    for name, value in spec.headers.items():
        assert e.response.headers[name] == value


def test_a_proxy_error_is_an_html_page() -> None:
    spec = next(s for s in SPECS if s.proxy_html)
    with FakeClaude() as api:
        api.respond(spec.name)
        e = raised(api.client(max_retries=0))
    assert isinstance(e, anthropic.InternalServerError)
    assert e.response.headers["content-type"].startswith("text/html")
    assert e.response.text == spec.message
    assert classify(e).error_type is None


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_sdk_retries_exactly_the_statuses_reference_md_lists(spec: ErrorSpec) -> None:
    sdk_retries = spec.status in (408, 409, 429) or spec.status >= 500
    with FakeClaude() as api:
        api.respond(spec.name, spec.name, spec.name)
        raised(api.client(max_retries=2))
    assert len(api.calls) == (3 if sdk_retries else 1)


def test_the_sdk_retries_a_spend_limit_that_cannot_succeed() -> None:
    # REFERENCE.md 1: retrying a spend limit cannot help, yet the SDK retries it.
    with FakeClaude() as api:
        api.respond("spend_limit_reached", "spend_limit_reached", "spend_limit_reached")
        e = raised(api.client(max_retries=2))
    assert isinstance(e, anthropic.RateLimitError) and len(api.calls) == 3
    assert classify(e).retryable is False


# Success, faithfully.


def test_success_is_a_valid_message_with_usage_and_a_request_id() -> None:
    with FakeClaude() as api:
        api.respond(ok("Bonjour"))
        raw = api.client().messages.with_raw_response.create(
            model=MODEL, max_tokens=64, messages=HI)
        message = raw.parse()
    assert isinstance(message, anthropic.types.Message)
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour"
    assert (message.role, message.model, message.stop_reason) == ("assistant", MODEL, "end_turn")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["request-id"] == "req_fake_000001"
    assert raw.headers["content-type"] == "application/json"


def test_the_queue_defaults_to_ok_and_reports_what_is_pending() -> None:
    with FakeClaude() as api:
        client = api.client(max_retries=0)
        assert ask(client).content[0].text  # nothing queued: success
        api.respond("overloaded_error", "ok", "api_error")
        assert api.pending == ("overloaded_error", "ok", "api_error")
        with pytest.raises(anthropic.OverloadedError):
            ask(client)
        assert api.pending == ("ok", "api_error")


def test_calls_record_time_status_retry_count_and_request_id() -> None:
    clock = VirtualClock(start=100.0)
    with FakeClaude(clock=clock) as api:
        api.respond("connection_error", "overloaded_error", "ok")
        ask(api.client())
    assert [c.status for c in api.calls] == [None, 529, 200]
    assert [c.retry_count for c in api.calls] == [0, 1, 2]
    assert [c.request_id for c in api.calls] == [f"req_fake_00000{i}" for i in (1, 2, 3)]
    assert [c.outcome for c in api.calls] == ["connection_error", "overloaded_error", "ok"]
    assert api.calls[0].time == 100.0 and api.clock is clock
    assert api.calls[0].path == "/v1/messages" and api.calls[0].method == "POST"
    assert str(api.calls[1]).startswith(f"t={api.calls[1].time:.3f}s retry 1 -> 529")


def test_calls_record_the_model_each_request_asked_for() -> None:
    with FakeClaude() as api:
        api.respond("overloaded_error")
        ask(api.client())
        reply = api.client().messages.create(model=FALLBACK_MODEL, max_tokens=8, messages=HI)
        api.handle(httpx2.Request("POST", "https://api.anthropic.com/v1/messages",
                                  json={"max_tokens": 8, "messages": HI}))  # no model
    assert [(c.model, c.status) for c in api.calls] == [
        (MODEL, 529), (MODEL, 200), (FALLBACK_MODEL, 200), (None, 200)]
    assert reply.model == FALLBACK_MODEL  # echoed, as the API does


def test_the_model_is_the_projects_current_model() -> None:
    assert FakeClaude().model == MODEL == FakeClaude.model


def test_headers_given_to_respond_reach_the_response() -> None:
    with FakeClaude() as api:
        api.respond("overloaded_error", headers={"x-should-retry": "false", "x-extra": "1"})
        e = raised(api.client())
    assert isinstance(e, anthropic.APIStatusError)
    assert e.response.headers["x-extra"] == "1"
    assert len(api.calls) == 1


def test_an_unknown_outcome_name_is_refused_when_queued() -> None:
    with FakeClaude() as api, pytest.raises(ValueError, match="stream_overloaded"):
        api.respond("ok", "overload")
    assert api.pending == ()


@pytest.mark.parametrize(("name", "label"), [
    ("stream_overloaded", "stream_overloaded_error"),
    ("stream_overloaded_error", "stream_overloaded_error"),
    ("stream_api", "stream_api_error"),
    ("rate_limit_error", "rate_limit_error"),
    ("timeout", "timeout"),
    ("connection_error", "connection_error"),
    ("ok", "ok"),
])
def test_outcome_names(name: str, label: str) -> None:
    assert outcome(name).label == label


def test_error_builds_the_retry_headers() -> None:
    built = error("rate_limit_error", retry_after=3, retry_after_ms=2500.5, should_retry=False)
    assert dict(built.headers) == {"retry-after": "3", "retry-after-ms": "2500.5",
                                   "x-should-retry": "false"}
    with pytest.raises(ValueError, match="catalogue"):
        error("no_such_error")


def test_error_can_say_its_own_message_in_the_catalogues_body() -> None:
    spec = ERRORS["rate_limit_error"]
    with FakeClaude() as api:
        api.respond(error("rate_limit_error", message="Slow down."), "rate_limit_error")
        client = api.client(max_retries=0)
        told, stock = raised(client), raised(client)
    assert isinstance(told, anthropic.RateLimitError)
    assert isinstance(stock, anthropic.RateLimitError)
    assert told.body == {**spec.body("req_fake_000001"),
                         "error": {"type": "rate_limit_error", "message": "Slow down."}}
    assert stock.body == spec.body("req_fake_000002")  # the catalogue's example by default
    assert told.response.headers["retry-after"] == spec.headers["retry-after"]


# Custom responses and exceptions, for full control.


def test_any_httpx_response_can_be_an_outcome() -> None:
    teapot = httpx.Response(418, json={"type": "error", "error": {"type": "teapot_error",
                                                                   "message": "short"}})
    with FakeClaude() as api:
        api.respond(teapot)
        e = raised(api.client())
    assert isinstance(e, anthropic.APIStatusError) and e.status_code == 418
    assert e.type == "teapot_error" and e.request_id == "req_fake_000001"
    assert len(api.calls) == 1 and api.calls[0].outcome == "custom"


@pytest.mark.parametrize(("raise_", "expected"), [
    (httpx.ReadTimeout, anthropic.APITimeoutError),
    (httpx2.ReadTimeout("slow"), anthropic.APITimeoutError),
    (httpx.ConnectError, anthropic.APIConnectionError),
])
def test_exceptions_as_outcomes_become_the_sdk_errors_they_would_be(
        raise_: object, expected: type[Exception]) -> None:
    with FakeClaude() as api:
        api.respond(raise_)
        e = raised(api.client(max_retries=0))
    assert type(e) is expected


def test_a_side_effect_function_answers_with_the_request_in_hand() -> None:
    def echo_model(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json=message_body("msg_1", body["model"], "echo", 1))

    with FakeClaude() as api:
        api.respond(echo_model)
        assert ask(api.client()).content[0].text == "echo"


# Streams.


def test_a_stream_has_every_event_from_message_start_to_message_stop() -> None:
    with FakeClaude() as api:
        events = [event.type for event in ask(api.client(), stream=True)]
    assert events == ["message_start", "content_block_start", "content_block_delta",
                      "content_block_delta", "content_block_delta", "content_block_stop",
                      "message_delta", "message_stop"]
    assert api.calls[0].stream is True


def test_the_stream_helper_assembles_the_final_message() -> None:
    with FakeClaude() as api:
        api.respond(ok("one two three four", chunks=4))
        with api.client().messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
    assert len(pieces) == 4
    assert "".join(pieces) == final.content[0].text == "one two three four"
    assert final.usage.output_tokens > 0


def test_an_error_frame_after_200_raises_while_iterating_and_is_not_retried() -> None:
    with FakeClaude() as api:
        api.respond("stream_overloaded", "ok")
        stream = ask(api.client(max_retries=5), stream=True)  # the 200 arrives: no error yet
        seen = []
        with pytest.raises(anthropic.APIStatusError) as info:
            for event in stream:
                seen.append(event.type)
    e = info.value
    assert type(e) is anthropic.APIStatusError  # not OverloadedError: status 200
    assert (e.status_code, e.type) == (200, "overloaded_error")
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert len(api.calls) == 1 and api.calls[0].status == 200
    assert api.pending == ("ok",)
    verdict = classify(e)
    assert (verdict.category, verdict.retryable, verdict.status) == ("overloaded", True, 200)


def test_stream_error_on_a_plain_request_is_the_http_error() -> None:
    with FakeClaude() as api:
        api.respond(stream_error("api_error", after_chunks=2))
        e = raised(api.client(max_retries=0))
    assert isinstance(e, anthropic.InternalServerError) and e.status_code == 500


def test_an_error_frame_in_an_async_stream() -> None:
    async def consume(api: FakeClaude) -> list[str]:
        client = api.async_client()
        seen: list[str] = []
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            async for text in stream.text_stream:
                seen.append(text)
        return seen

    with FakeClaude() as api:
        api.respond(stream_error(after_chunks=2))
        with pytest.raises(anthropic.APIStatusError) as info:
            asyncio.run(consume(api))
    assert (info.value.status_code, info.value.type) == (200, "overloaded_error")


# The bridge: ordinary respx routes answer the real SDK.

MESSAGE = message_body("msg_route", MODEL, "from a route", 3)
OVERLOADED = ERRORS["overloaded_error"].body("req_route")


def test_respx_routes_answer_the_sdk_and_record_their_calls() -> None:
    router = respx.Router(base_url="https://api.anthropic.com")
    route = router.post("/v1/messages").mock(side_effect=[
        httpx.Response(529, json=OVERLOADED), httpx.Response(200, json=MESSAGE)])
    with FakeClaude():  # only for the virtual clock under the SDK's retry sleep
        message = ask(sdk_client_for(router))
    assert message.content[0].text == "from a route"
    assert route.call_count == 2
    assert [c.request.headers["x-stainless-retry-count"] for c in route.calls] == ["0", "1"]
    router.assert_all_called()


def test_an_unmatched_request_fails_at_once_naming_it() -> None:
    router = respx.Router(base_url="https://api.anthropic.com")
    router.get("/v1/models").respond(200, json={"data": []})
    started = time.perf_counter()
    with pytest.raises(UnmatchedRequestError, match=r"POST https://api\.anthropic\.com/v1/messages"):
        ask(sdk_client_for(router, max_retries=5))  # no FakeClaude: a retry would really sleep
    assert time.perf_counter() - started < 0.4  # the SDK's first retry sleep is >= 0.375 s
    assert router.calls.call_count == 0


def test_an_unmatched_request_fails_at_once_in_async_too() -> None:
    router = respx.Router(base_url="https://api.anthropic.com")
    client = async_sdk_client_for(router, max_retries=5)
    with pytest.raises(UnmatchedRequestError, match="No route matched POST"):
        asyncio.run(client.messages.create(model=MODEL, max_tokens=8, messages=HI))


def test_the_fake_refuses_what_it_does_not_simulate() -> None:
    unmatched = pytest.raises(UnmatchedRequestError, match=r"GET https://api\.anthropic\.com/v1/")
    with FakeClaude() as api, unmatched:
        api.client(max_retries=5).models.list()
    assert [(c.outcome, c.status, c.method) for c in api.calls] == [("unmatched", None, "GET")]


def test_routes_on_api_router_answer_before_the_script() -> None:
    with FakeClaude() as api:
        api.respond("ok")
        route = api.router.post("/v1/messages").mock(side_effect=[
            httpx.Response(529, json=OVERLOADED), None])  # None: let the fake answer
        message = ask(api.client())
    assert route.call_count == 1  # respx counts only the calls a route answered
    assert [(c.outcome, c.status) for c in api.calls] == [("route", 529), ("ok", 200)]
    assert message.content[0].text
    assert api.calls[0].request_id == "req_fake_000001"  # added to the route's answer


def test_other_endpoints_can_be_routed() -> None:
    with FakeClaude() as api:
        api.router.post("/v1/messages/count_tokens").respond(200, json={"input_tokens": 7})
        count = api.client().messages.count_tokens(model=MODEL, messages=HI)
    assert count.input_tokens == 7


def test_a_route_raising_an_httpx_timeout_becomes_an_sdk_timeout() -> None:
    router = respx.Router(base_url="https://api.anthropic.com")
    router.post("/v1/messages").mock(side_effect=httpx.ReadTimeout)
    with pytest.raises(anthropic.APITimeoutError):
        ask(sdk_client_for(router, max_retries=0))


def test_the_fake_clients_never_use_a_key_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-secret")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://elsewhere.example")
    with FakeClaude() as api:
        route = api.router.post("/v1/messages").respond(200, json=MESSAGE)
        ask(api.client())
    assert route.calls.last.request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert str(route.calls.last.request.url) == "https://api.anthropic.com/v1/messages"


# The context: the SDK sleeps on the clock only inside it, and everything is restored.


def test_the_sdk_modules_names_are_restored_even_after_an_error() -> None:
    before = (sdk_base.time, sdk_base.anyio, sdk_base.random)
    assert before == (time, anyio, random.random)
    with pytest.raises(KeyError), FakeClaude():
        assert sdk_base.time is not time and sdk_base.time.time is time.time
        raise KeyError("boom")
    assert (sdk_base.time, sdk_base.anyio, sdk_base.random) == before


def test_nested_blocks_restore_in_turn() -> None:
    outer, inner = VirtualClock(), VirtualClock()
    with sdk_on_clock(outer, random.Random(1)):
        with sdk_on_clock(inner, random.Random(2)):
            sdk_base.time.sleep(3)
        sdk_base.time.sleep(5)
    assert (inner.now(), outer.now()) == (3, 5)
    assert sdk_base.time is time


def test_the_fake_must_be_used_inside_its_block() -> None:
    api = FakeClaude()
    with pytest.raises(RuntimeError, match="inside its block"):
        api.client()
    with api:
        client = api.client(max_retries=5)
    started = time.perf_counter()
    with pytest.raises(UnmatchedRequestError, match="has ended"):
        ask(client)
    assert time.perf_counter() - started < 0.4


# Live mode and the network guard.

SECRET = "sk-ant-" + "api03-this-is-a-secret-value"  # built, so no scanner mistakes it


@pytest.mark.parametrize("env", [{}, {"ANTHROPIC_API_KEY": SECRET},
                                 {"RESILIENCE_LIVE": "1"},
                                 {"RESILIENCE_LIVE": "yes", "ANTHROPIC_API_KEY": SECRET}])
def test_live_mode_needs_both_the_key_and_the_opt_in(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("RESILIENCE_LIVE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_live() is False
    with pytest.raises(LiveModeNotEnabled, match="RESILIENCE_LIVE=1") as info:
        live_client()
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_live_mode_gives_a_real_client_when_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("RESILIENCE_LIVE", "1")
    assert is_live()
    client = live_client(max_retries=0)  # built, never called: no test touches the network
    assert isinstance(client, anthropic.Anthropic) and SECRET not in repr(client)


def test_the_network_is_blocked_for_every_test() -> None:
    with pytest.raises(anthropic.AnthropicError, match="must not use the network"):
        socket.create_connection(("api.anthropic.com", 443))
    with pytest.raises(anthropic.AnthropicError, match="must not use the network"):
        socket.getaddrinfo("localhost", 80)
    with socket.socket() as s, pytest.raises(anthropic.AnthropicError):
        s.connect(("127.0.0.1", 9))


def test_a_real_client_without_the_fake_fails_at_once_unretried() -> None:
    started = time.perf_counter()
    with pytest.raises(anthropic.AnthropicError, match="must not use the network") as info:
        ask(anthropic.Anthropic(api_key="not-a-key", max_retries=2))
    assert not isinstance(info.value, anthropic.APIConnectionError)  # so never retried
    assert time.perf_counter() - started < 0.4


def test_raised_returns_the_sdks_own_exception_or_none() -> None:
    with FakeClaude() as api:
        billing = api.raised("billing_error")
        assert type(billing).__name__ == "PaymentRequiredError"
        assert len(api.calls) == 1  # no SDK retries unless asked
        overloaded = api.raised("overloaded_error", "overloaded_error", "overloaded_error",
                                max_retries=2)
        assert isinstance(overloaded, anthropic.OverloadedError)
        assert [c.retry_count for c in api.calls[1:]] == [0, 1, 2]
        assert api.raised("ok") is None
