"""Every factual claim lesson 04 ("Overloaded and server errors") makes, checked against the
installed SDK through the simulated API.
"""

from __future__ import annotations

import random
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from resilience import VirtualClock, backoff, classify, retry
from resilience.fakeapi import Call, FakeClaude, Outage, Slow

MESSAGES = [{"role": "user", "content": "Hi"}]
LISTED = {429, 500, 502, 503, 529}  # the popular guide's list


def raised(outcome: object, **options: Any) -> anthropic.APIError:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(outcome)
        with pytest.raises(anthropic.APIError) as info:
            api.client(max_retries=0, **options).messages.create(
                model=api.model, max_tokens=64, messages=MESSAGES)
    return info.value


@pytest.mark.parametrize(("name", "status", "cls", "error_type"), [
    ("api_error", 500, anthropic.InternalServerError, "api_error"),
    ("bad_gateway", 502, anthropic.InternalServerError, None),
    ("service_unavailable", 503, anthropic.ServiceUnavailableError, "api_error"),
    ("timeout_error", 504, anthropic.GatewayTimeoutError, "timeout_error"),
    ("overloaded_error", 529, anthropic.OverloadedError, "overloaded_error"),
])
def test_each_server_error_as_the_sdk_raises_it(name: str, status: int, cls: type,
                                                error_type: str | None) -> None:
    e = raised(name)
    assert type(e) is cls and isinstance(e, anthropic.APIStatusError)
    assert (e.status_code, e.type) == (status, error_type)
    assert isinstance(e, anthropic.InternalServerError)  # every server error is one
    assert classify(e).retryable


def test_a_502_from_a_proxy_is_html_and_still_classified() -> None:
    e = raised("bad_gateway")
    assert e.body == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert str(classify(e)) == "bad_gateway 502 (retryable)"


def test_overloaded_is_an_internal_server_error() -> None:
    assert [c.__name__ for c in anthropic.OverloadedError.__mro__[:4]] == [
        "OverloadedError", "InternalServerError", "APIStatusError", "APIError"]
    assert issubclass(anthropic.GatewayTimeoutError, anthropic.InternalServerError)


def listed_retry(fn: Any, attempts: int = 5) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except anthropic.APIStatusError as e:
            if e.status_code not in LISTED or attempt == attempts:
                raise
    return None  # pragma: no cover


@pytest.mark.parametrize(("first", "cls"), [("timeout_error", anthropic.GatewayTimeoutError),
                                            ("connection_error", anthropic.APIConnectionError)])
def test_a_listed_retry_gives_up_at_once_on_504_and_connection_errors(first: str,
                                                                      cls: type) -> None:
    with FakeClaude(seed=0) as api:
        api.respond(first, "ok")
        client = api.client(max_retries=0)
        with pytest.raises(cls):
            listed_retry(lambda: client.messages.create(model=api.model, max_tokens=64,
                                                        messages=MESSAGES))
    assert len(api.calls) == 1 and api.pending == ("ok",)


def test_the_list_misses_four_statuses_that_classify_retries() -> None:
    statuses = [500, 502, 503, 504, 520, 522, 524, 529]
    assert all(classify(s).retryable for s in statuses)
    assert [s for s in statuses if s not in LISTED] == [504, 520, 522, 524]
    assert not classify(501).retryable


def test_timeouts_are_connection_errors_and_a_hung_request_costs_600_s() -> None:
    assert issubclass(anthropic.APITimeoutError, anthropic.APIConnectionError)
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond("timeout")
        with pytest.raises(anthropic.APITimeoutError):
            api.client(max_retries=0).messages.create(model=api.model, max_tokens=64,
                                                      messages=MESSAGES)
    assert clock.now() == 600.0
    e = raised("connection_error")
    assert type(e) is anthropic.APIConnectionError and str(classify(e)) == \
        "connection (retryable)"


def test_a_slow_answer_trips_a_5_s_timeout_and_the_sdk_retries_it() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Slow(30))
        with pytest.raises(anthropic.APITimeoutError):
            api.client(timeout=5.0).messages.create(model=api.model, max_tokens=64,
                                                    messages=MESSAGES)
    assert f"{api.clock.now():.2f}" == "16.20"
    assert [(f"{c.time:.3f}", c.retry_count, c.status) for c in api.calls] == [
        ("0.000", 0, None), ("5.394", 1, None), ("11.205", 2, None)]


def sdk_error_for(error: Exception) -> type:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise error

    client = anthropic.Anthropic(api_key="test", max_retries=0, http_client=httpx2.Client(
        transport=httpx2.MockTransport(handler)))
    with pytest.raises(anthropic.APIConnectionError) as info:
        client.messages.create(model="m", max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    return type(info.value)


def test_only_an_httpx2_timeout_becomes_an_api_timeout_error() -> None:
    assert sdk_error_for(httpx.ReadTimeout("slow")) is anthropic.APIConnectionError
    assert sdk_error_for(httpx2.ReadTimeout("slow")) is anthropic.APITimeoutError


def one_user(start: int, attempts: int = 10) -> tuple[list[Call], bool]:
    with FakeClaude(clock=VirtualClock(start), seed=0) as api:
        api.scenario(Outage(start=10, end=40))
        ask = retry(attempts=attempts, deadline=90.0, backoff=backoff.full_jitter(1.0, 30.0),
                    clock=api.clock, rng=random.Random(start))(
            api.client(max_retries=0).messages.create)
        try:
            ask(model=api.model, max_tokens=64, messages=MESSAGES)
        except anthropic.OverloadedError:
            return api.calls, False
        return api.calls, True


def test_thirty_users_ride_out_the_outage() -> None:
    users = {start: one_user(start) for start in range(0, 60, 2)}
    attempts = [c for calls, _ in users.values() for c in calls]
    assert all(ok for _, ok in users.values())
    assert (len(attempts), sum(c.status == 529 for c in attempts)) == (114, 84)
    start, (calls, _) = max(users.items(), key=lambda item: item[1][0][-1].time - item[0])
    assert (start, len(calls), f"{calls[-1].time:.1f}") == (12, 9, "61.5")
    assert all(c.time < 90 + start for start, (calls, _) in users.items() for c in calls)


def test_with_five_attempts_the_early_users_give_up() -> None:
    gave_up = [s for s in range(0, 60, 2) if not one_user(s, attempts=5)[1]]
    assert gave_up and min(gave_up) == 10 and max(gave_up) < 40


def test_a_long_overload_exhausts_ten_attempts_with_progress() -> None:
    lines: list[str] = []
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Outage(start=0, end=3600))
        ask = retry(attempts=10, deadline=None, backoff=backoff.full_jitter(1.0, 30.0),
                    clock=api.clock, rng=random.Random(7),
                    on_retry=lambda a, d, v: lines.append(f"{a} {d:.1f} {v.category}"))(
            api.client(max_retries=0).messages.create)
        with pytest.raises(anthropic.OverloadedError) as info:
            ask(model=api.model, max_tokens=64, messages=MESSAGES)
    assert len(api.calls) == 10 and len(lines) == 9
    assert f"{api.clock.now():.1f}" == "41.4"
    assert lines[0] == "1 0.3 overloaded" and lines[-1] == "9 1.1 overloaded"
    assert info.value.__notes__[-1].endswith("gave up: no attempts left (10)")
