"""The chaos server on loopback, through the real SDK: endpoints, every fault, profiles, the
log, malformed requests, the network guard and the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anthropic
import httpx2
import pytest

from resilience import MODEL, VirtualClock
from resilience.__main__ import main
from resilience.catalogue import ERRORS, ErrorSpec
from resilience.testing import FakeClaude, sdk_on_clock
from resilience.testing.chaos import BAD_DAY_MIX, PROFILES, ChaosServer, Settings
from resilience.testing.responses import DEFAULT_TEXT
from resilience.testing.scenarios import Slow

HI = [{"role": "user", "content": "Hi"}]
ROOT = Path(__file__).resolve().parent.parent
SECRET = "fake-secret-key-that-must-never-appear-anywhere"

pytestmark = pytest.mark.loopback


@pytest.fixture(scope="module")
def calm() -> Iterator[ChaosServer]:
    with ChaosServer(Settings()) as server:
        yield server


@pytest.fixture
def chaos(calm: ChaosServer) -> ChaosServer:
    calm.reset()
    return calm


OPEN: list[anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every SDK client a test opened (no socket left for the garbage collector)."""
    yield
    while OPEN:
        OPEN.pop().close()


def client(server: ChaosServer, **options: object) -> anthropic.Anthropic:
    options = {"api_key": SECRET, "max_retries": 0, **options}
    sdk = anthropic.Anthropic(base_url=server.url, **options)  # type: ignore[arg-type]
    OPEN.append(sdk)
    return sdk


def ask(server: ChaosServer, **options: object) -> anthropic.types.Message:
    return client(server, **options).messages.create(model=MODEL, max_tokens=64, messages=HI)


def failure_of(server: ChaosServer, *, stream: bool = False, **options: object) -> BaseException:
    sdk = client(server, **options)
    try:
        if stream:
            with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as events:
                events.get_final_message()
        else:
            sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
    except Exception as e:
        return e
    raise AssertionError("the request succeeded")


def only(name: str, **settings: object) -> ChaosServer:
    return ChaosServer(Settings(faults={name: 1.0}, **settings))  # type: ignore[arg-type]


# The network guard: loopback tests reach 127.0.0.1 and nothing else.


def test_a_loopback_test_still_cannot_reach_any_other_address() -> None:
    with pytest.raises(anthropic.AnthropicError, match="must not use the network"):
        socket.create_connection(("10.255.255.1", 80), timeout=0.01)
    with pytest.raises(anthropic.AnthropicError, match="must not use the network"):
        socket.getaddrinfo("localhost", 80)
    with socket.socket() as sock, pytest.raises(anthropic.AnthropicError):
        sock.connect(("192.0.2.1", 80))


def test_the_guard_allows_loopback_here(chaos: ChaosServer) -> None:
    host, port = chaos.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5):
        pass


# Endpoints: JSON, SSE for the stream helpers, count_tokens, headers.


def test_a_json_message_with_request_id_and_rate_limit_headers(chaos: ChaosServer) -> None:
    raw = client(chaos).messages.with_raw_response.create(model=MODEL, max_tokens=64,
                                                           messages=HI)
    message = raw.parse()
    assert message.content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
    assert message.model == MODEL and message.stop_reason == "end_turn"
    assert raw.headers["request-id"] == message._request_id == "req_chaos_000001"
    assert int(raw.headers["anthropic-ratelimit-requests-limit"]) > 0
    assert int(raw.headers["anthropic-ratelimit-requests-remaining"]) >= 0
    assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_a_stream_has_every_event_and_the_helper_assembles_it(chaos: ChaosServer) -> None:
    sdk = client(chaos)
    events = [event.type for event in sdk.messages.create(model=MODEL, max_tokens=64,
                                                          messages=HI, stream=True)]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 3 and "".join(pieces) == DEFAULT_TEXT
    assert final.content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
    assert [(e.stream, e.status) for e in chaos.log.entries()] == [(True, 200), (True, 200)]


def test_count_tokens(chaos: ChaosServer) -> None:
    counted = client(chaos).messages.count_tokens(model=MODEL, messages=HI)
    assert counted.input_tokens == math.ceil(len(json.dumps(HI)) / 4)
    assert chaos.log.entries()[0].path == "/v1/messages/count_tokens"


def test_async_clients_work_too(chaos: ChaosServer) -> None:
    async def streamed() -> str:
        async with anthropic.AsyncAnthropic(base_url=chaos.url, api_key=SECRET) as sdk:
            stream = sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI)
            async with stream as events:
                return await events.get_final_text()

    assert asyncio.run(streamed()) == DEFAULT_TEXT


# Every catalogue error: its SDK class, exact body and headers.

SPECS = list(ERRORS.values())


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_catalogue_error_arrives_exactly(spec: ErrorSpec) -> None:
    with only(spec.name) as server:
        e = failure_of(server)
        entry = server.log.entries()[-1]
    assert type(e).__name__ == spec.sdk_class
    assert isinstance(e, anthropic.APIStatusError) and e.status_code == spec.status
    assert e.request_id == entry.request_id and entry.status == spec.status
    assert entry.outcome == spec.name
    for name, value in spec.headers.items():
        assert e.response.headers[name] == value
    if spec.proxy_html:
        assert e.response.headers["content-type"].startswith("text/html")
        assert e.response.text == spec.message
    else:
        assert e.response.json() == spec.body(entry.request_id)


# Transport faults, played on a real connection.


def test_overloaded_after_a_200_is_an_api_status_error_with_status_200() -> None:
    with only("stream_overloaded") as server:
        e = failure_of(server, stream=True, max_retries=3)
        entries = server.log.entries()
    assert isinstance(e, anthropic.APIStatusError) and e.status_code == 200
    assert e.type == "overloaded_error"
    assert [(x.status, x.outcome) for x in entries] == [(200, "stream_overloaded_error")]


@pytest.mark.parametrize("helper", [False, True], ids=["create_stream", "stream_helper"])
def test_a_connection_dropped_mid_stream_raises_the_raw_transport_error(helper: bool) -> None:
    with only("stream_dropped") as server:
        sdk = client(server, max_retries=3)
        seen: list[str] = []
        with pytest.raises(httpx2.RemoteProtocolError, match="peer closed") as info:
            if helper:
                with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
                    seen.extend(stream.text_stream)
            else:
                seen.extend(e.type for e in sdk.messages.create(
                    model=MODEL, max_tokens=64, messages=HI, stream=True))
        entries = server.log.entries()
    assert not isinstance(info.value, anthropic.APIError)
    assert seen == (["Hello from t"] if helper else
                    ["message_start", "content_block_start", "content_block_delta"])
    assert [(x.status, x.outcome, x.retry_count) for x in entries] == [
        (200, "stream_dropped", 0)]  # never retried


def test_a_plain_request_whose_body_drops_is_a_retried_connection_error() -> None:
    with only("stream_dropped") as server, sdk_on_clock(VirtualClock(), random.Random(0)):
        e = failure_of(server, max_retries=2)
        entries = server.log.entries()
    assert type(e) is anthropic.APIConnectionError
    assert isinstance(e.__cause__, httpx2.RemoteProtocolError)
    assert [x.retry_count for x in entries] == [0, 1, 2]


def test_a_connection_error_sends_no_status_and_is_retried() -> None:
    with only("connection_error") as server, sdk_on_clock(VirtualClock(), random.Random(0)):
        e = failure_of(server, max_retries=1)
        entries = server.log.entries()
    assert type(e) is anthropic.APIConnectionError
    assert [(x.status, x.outcome, x.retry_count) for x in entries] == [
        (None, "connection_error", 0), (None, "connection_error", 1)]


def test_a_hung_request_costs_the_client_its_read_timeout() -> None:
    with only("timeout") as server:
        started = time.perf_counter()
        e = failure_of(server, timeout=0.2)
        waited = time.perf_counter() - started
        entry = server.log.entries()[0]
    assert type(e) is anthropic.APITimeoutError
    assert 0.2 <= waited < 2.0
    assert (entry.status, entry.outcome, entry.delay) == (None, "timeout", pytest.approx(0.2))


def test_a_stalled_stream_raises_read_timeout_while_iterating() -> None:
    with only("stream_stalled") as server:
        e = failure_of(server, stream=True, timeout=0.2, max_retries=2)
        entries = server.log.entries()
    assert type(e) is httpx2.ReadTimeout
    assert [(x.status, x.outcome) for x in entries] == [(200, "stream_stalled")]


def test_a_slow_first_byte_is_waited_for_really() -> None:
    with ChaosServer(scenarios=[Slow(0.15)]) as server:
        started = time.perf_counter()
        message = ask(server, timeout=5.0)
        waited = time.perf_counter() - started
        entry = server.log.entries()[0]
    assert message.content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
    assert waited >= 0.15 and entry.delay == pytest.approx(0.15)


def test_a_first_byte_slower_than_the_read_timeout_is_a_timeout() -> None:
    with ChaosServer(scenarios=[Slow(5.0)]) as server:
        e = failure_of(server, timeout=0.2)
        entry = server.log.entries()[0]
    assert type(e) is anthropic.APITimeoutError
    assert entry.outcome == "timeout" and entry.delay == pytest.approx(0.2)


# Profiles.


def test_the_profiles_are_the_pinned_four() -> None:
    assert PROFILES == ("calm", "bad-day", "outage", "rate-limited")
    assert math.isclose(sum(BAD_DAY_MIX.values()), 0.95)


def test_bad_day_is_about_30_percent_faults_through_fake_claude_too() -> None:
    # The profile's scenarios are FakeClaude's own: measure them on virtual time.
    with FakeClaude(seed=1) as api:
        api.scenario(*Settings(profile="bad-day", seed=1).scenarios())
        sdk = api.client(max_retries=0, timeout=1.0)
        for _ in range(1000):
            with contextlib.suppress(anthropic.APIError):
                sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
    faults = sum(call.outcome != "ok" for call in api.calls) / len(api.calls)
    assert 0.25 < faults < 0.33  # 0.95 x 0.3 named faults; slow answers are "ok" here
    assert {c.outcome for c in api.calls} >= {"overloaded_error", "stream_dropped",
                                              "bad_gateway", "timeout", "rate_limit_error"}


def test_outage_answers_529_then_recovers_in_real_time() -> None:
    settings = Settings(profile="outage", outage_length=0.3)
    with ChaosServer(settings) as server:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                ask(server)
                break
            except anthropic.OverloadedError:
                continue
        entries = server.log.entries()
    assert entries[0].status == 529 and entries[-1].status == 200
    assert all(e.status == 529 for e in entries[:-1])
    assert entries[-1].time >= 0.3 > entries[-2].time


def test_rate_limited_answers_429_with_an_accurate_retry_after() -> None:
    with ChaosServer(Settings(profile="rate-limited", rpm=60, burst=2)) as server:
        ask(server)
        ask(server)
        e = failure_of(server)
    assert isinstance(e, anthropic.RateLimitError)
    assert e.response.headers["retry-after"] == "1"  # 60 per minute: a token a second
    assert e.response.headers["anthropic-ratelimit-requests-limit"] == "60"
    assert e.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "60 requests per minute" in e.message


@pytest.mark.parametrize(("settings", "message"), [
    ({"profile": "stormy"}, "profile must be one of calm, bad-day, outage, rate-limited"),
    ({"fault_rate": 1.5}, r"fault_rate must be in \[0, 1\]"),
    ({"faults": {"nonsense": 0.1}}, "unknown outcome 'nonsense'"),
    ({"faults": {"api_error": 0.9}, "profile": "bad-day"}, "add up to"),
    ({"rpm": 0}, "rpm must be > 0"),
    ({"burst": 0.5}, "burst must be >= 1"),
    ({"slow": -1}, "slow must be >= 0"),
    ({"hang": 0}, "hang must be > 0"),
])
def test_invalid_settings_name_the_setting(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="seed"):
        Settings(seed="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="slow"):
        Settings(slow="fast")  # type: ignore[arg-type]


# Malformed requests: the API's 400 shape, never a crash.


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"max_tokens": 5, "messages": HI}).encode(), "model: field required"),
    (json.dumps({"model": "m", "messages": HI}).encode(), "max_tokens"),
    (json.dumps({"model": "m", "max_tokens": 0, "messages": HI}).encode(), "max_tokens"),
    (json.dumps({"model": "m", "max_tokens": 5, "messages": []}).encode(), "messages"),
    (json.dumps({"model": "m", "max_tokens": 5,
                 "messages": [{"role": "robot", "content": "x"}]}).encode(), "role"),
    (json.dumps({"model": "m", "max_tokens": 5, "messages": HI, "stream": "yes"}).encode(),
     "stream"),
])
def test_a_malformed_request_gets_the_api_400(chaos: ChaosServer, body: bytes,
                                              message: str) -> None:
    with httpx2.Client(base_url=chaos.url) as http:
        response = http.post("/v1/messages", content=body,
                             headers={"content-type": "application/json"})
        assert http.post("/v1/messages", json={"model": "m", "max_tokens": 5,
                                               "messages": HI}).status_code == 200
    error = response.json()
    assert response.status_code == 400
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]


def test_an_unknown_path_gets_the_api_404_shape(chaos: ChaosServer) -> None:
    response = httpx2.get(chaos.url + "/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


# The log.


def test_the_log_has_one_entry_per_attempt_in_order_with_pinned_fields() -> None:
    with only("overloaded_error") as server, sdk_on_clock(VirtualClock(), random.Random(0)):
        failure_of(server, max_retries=2)
        with httpx2.Client(base_url=server.url) as http:
            entries = http.get("/_chaos/log").json()
            assert http.post("/_chaos/reset").status_code == 200
            after_reset = http.get("/_chaos/log").json()
    assert [e["retry_count"] for e in entries] == [0, 1, 2]
    assert [e["number"] for e in entries] == [1, 2, 3]
    for entry in entries:
        assert {"request_id", "retry_count", "status", "outcome", "stream"} <= entry.keys()
        assert (entry["status"], entry["outcome"], entry["stream"]) == (
            529, "overloaded_error", False)
    assert len({e["request_id"] for e in entries}) == 3
    assert after_reset == []


def test_the_key_is_never_logged_nor_seen(chaos: ChaosServer) -> None:
    ask(chaos)
    client(chaos).messages.count_tokens(model=MODEL, messages=HI)
    text = httpx2.get(chaos.url + "/_chaos/log").text
    assert SECRET not in text and "x-api-key" not in text
    assert len(json.loads(text)) == 2


def test_a_tag_header_is_logged(chaos: ChaosServer) -> None:
    client(chaos).messages.create(model=MODEL, max_tokens=64, messages=HI,
                                  extra_headers={"x-chaos-tag": "call-7"})
    assert chaos.log.entries()[0].tag == "call-7"


# The command line, as a user runs it.


def test_the_command_line_prints_its_url_serves_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "resilience", "chaos", "--port", "0", "--profile", "bad-day",
         "--seed", "3"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found is not None, f"no URL in {line!r}"
        assert int(found.group(1)) > 0 and "bad-day" in line
        log = httpx2.get(found.group(0) + "/_chaos/log")
        assert log.status_code == 200 and log.json() == []
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == "" and "Traceback" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--fault-rate", "2", "--profile", "bad-day"], "fault_rate must be in [0, 1]"),
    (["--profile", "stormy"], "invalid choice: 'stormy'"),
    (["--faults", "overloaded_error"], "expected NAME=PROBABILITY"),
    (["--faults", "nonsense=0.1"], "unknown outcome 'nonsense'"),
    (["--port", "70000"], "--port must be in [0, 65535]"),
])
def test_the_command_line_rejects_bad_arguments_with_status_2(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["chaos", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_other_commands_still_go_to_the_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["amplification", "--layers", "2", "--attempts", "2", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("policy,layers,attempts")


# Settings at run time, headers, the socket.


def test_reset_with_settings_starts_from_the_start_up_settings(chaos: ChaosServer) -> None:
    with httpx2.Client(base_url=chaos.url) as http:
        changed = http.post("/_chaos/reset", json={"faults": {"billing_error": 1.0},
                                                   "retry_after_ms": 3})
        assert changed.json()["settings"]["faults"] == {"billing_error": 1.0}
        e = failure_of(chaos)
        assert isinstance(e, anthropic.PaymentRequiredError)
        assert e.response.headers["retry-after-ms"] == "3"
        again = http.post("/_chaos/reset", json={"retry_after_ms": 5}).json()["settings"]
        assert again["faults"] == {} and again["retry_after_ms"] == 5  # not stacked
        bad = http.post("/_chaos/reset", json={"fault_rate": 2})
        unknown = http.post("/_chaos/reset", json={"colour": "red"})
        kept = http.post("/_chaos/reset").json()["settings"]
    assert bad.status_code == 400 and "fault_rate must be in [0, 1]" in bad.text
    assert unknown.status_code == 400 and "unknown settings ['colour']" in unknown.text
    assert kept["retry_after_ms"] == 5  # an empty body keeps the settings
    chaos.reset(Settings())
    assert ask(chaos).content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]


def test_rate_limit_reset_dates_are_on_the_real_calendar(chaos: ChaosServer) -> None:
    raw = client(chaos).messages.with_raw_response.create(model=MODEL, max_tokens=64,
                                                           messages=HI)
    reset = datetime.strptime(raw.headers["anthropic-ratelimit-requests-reset"],
                              "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((reset - datetime.now(UTC)).total_seconds()) < 120


def test_replies_are_not_held_back_by_nagle(chaos: ChaosServer) -> None:
    # Without TCP_NODELAY each reply (headers, then body) waited ~40 ms for a delayed ACK.
    host, port = chaos.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /_chaos/log HTTP/1.1\r\nhost: chaos\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        transport = chaos.app.connections[sock.getsockname()[:2]]
        assert transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY)
