"""The SDK's own retry behaviour (REFERENCE.md 1), observed through the simulated API, sync
and async: which answers it retries, the header overrides, its delays, its retry counter."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import anthropic
import pytest

from resilience import MODEL, VirtualClock
from resilience.testing import FakeClaude, error, timeout

HI = [{"role": "user", "content": "Hi"}]
MODES = ["sync", "async"]


def call(api: FakeClaude, mode: str, **client_options: Any) -> object:
    """One ``messages.create`` through a sync or async client; the message or the exception."""
    try:
        if mode == "sync":
            return api.client(**client_options).messages.create(
                model=MODEL, max_tokens=64, messages=HI)
        client = api.async_client(**client_options)
        return asyncio.run(client.messages.create(model=MODEL, max_tokens=64, messages=HI))
    except anthropic.AnthropicError as e:
        return e


def gaps(api: FakeClaude) -> list[float]:
    """The virtual time between consecutive attempts."""
    times = [c.time for c in api.calls]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(5))
def test_the_default_schedule_is_half_a_second_doubling_jittered_down(mode: str,
                                                                       seed: int) -> None:
    with FakeClaude(seed=seed) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        assert isinstance(call(api, mode), anthropic.types.Message)
    first, second = gaps(api)
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0
    assert [c.retry_count for c in api.calls] == [0, 1, 2]


@pytest.mark.parametrize("mode", MODES)
def test_the_delay_doubles_up_to_eight_seconds(mode: str) -> None:
    with FakeClaude(seed=3) as api:
        api.respond(*["api_error"] * 8, "ok")
        call(api, mode, max_retries=8)
    for n, gap in enumerate(gaps(api)):
        base = min(0.5 * 2**n, 8.0)
        assert 0.75 * base <= gap <= base


@pytest.mark.parametrize("mode", MODES)
def test_two_retries_by_default_then_the_last_error(mode: str) -> None:
    with FakeClaude() as api:
        api.respond(*["overloaded_error"] * 5)
        result = call(api, mode)
    assert isinstance(result, anthropic.OverloadedError)
    assert [c.retry_count for c in api.calls] == [0, 1, 2]
    assert api.pending == ("overloaded_error", "overloaded_error")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "attempts"), [
    ("invalid_request_error", 1), ("authentication_error", 1), ("billing_error", 1),
    ("permission_error", 1), ("not_found_error", 1), ("request_too_large", 1),
    ("unprocessable_entity", 1), ("rate_limit_error", 3), ("api_error", 3),
    ("bad_gateway", 3), ("service_unavailable", 3), ("timeout_error", 3),
    ("overloaded_error", 3), ("timeout", 3), ("connection_error", 3),
])
def test_what_the_sdk_retries(mode: str, name: str, attempts: int) -> None:
    with FakeClaude() as api:
        api.respond(name, name, name)
        assert isinstance(call(api, mode, timeout=5), anthropic.APIError)
    assert len(api.calls) == attempts


@pytest.mark.parametrize("mode", MODES)
def test_x_should_retry_false_stops_a_retryable_error(mode: str) -> None:
    with FakeClaude() as api:
        api.respond(error("overloaded_error", should_retry=False), "ok")
        assert isinstance(call(api, mode), anthropic.OverloadedError)
    assert len(api.calls) == 1


@pytest.mark.parametrize("mode", MODES)
def test_x_should_retry_true_retries_a_non_retryable_error(mode: str) -> None:
    with FakeClaude() as api:
        api.respond(error("invalid_request_error", should_retry=True), "ok")
        assert isinstance(call(api, mode), anthropic.types.Message)
    assert [c.status for c in api.calls] == [400, 200]


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_ms_wins_over_retry_after(mode: str) -> None:
    with FakeClaude() as api:
        api.respond(error("rate_limit_error", retry_after=30, retry_after_ms=1500), "ok")
        call(api, mode)
    assert gaps(api) == [1.5]


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_120_really_waits_120_seconds(mode: str) -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.respond(error("overloaded_error", retry_after=120), "ok")
        call(api, mode)
    assert gaps(api) == [120.0] and clock.sleeps == [120.0]


def test_the_catalogue_rate_limit_carries_retry_after_5() -> None:
    with FakeClaude() as api:
        api.respond("rate_limit_error", "ok")
        call(api, "sync")
    assert gaps(api) == [5.0]


def test_retry_after_zero_falls_back_to_the_backoff() -> None:
    with FakeClaude() as api:
        api.respond(error("rate_limit_error", retry_after=0), "ok")
        call(api, "sync")
    assert 0.375 <= gaps(api)[0] <= 0.5


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_costs_the_clients_read_timeout(mode: str) -> None:
    with FakeClaude() as api:
        api.respond("timeout", timeout(after=2.5), "ok")
        assert isinstance(call(api, mode, timeout=10), anthropic.types.Message)
    first, second = gaps(api)
    assert 10.375 <= first <= 10.5 and 3.25 <= second <= 3.5


@pytest.mark.parametrize("mode", MODES)
def test_ten_overloads_then_success_with_max_retries_10(mode: str) -> None:
    with FakeClaude() as api:
        api.respond(*["overloaded_error"] * 10, "ok")
        assert isinstance(call(api, mode, max_retries=10), anthropic.types.Message)
    assert [c.retry_count for c in api.calls] == list(range(11))
    assert api.calls[-1].time > 40  # about a minute of virtual backoff, no real sleep


@pytest.mark.parametrize("mode", MODES)
def test_the_same_seed_gives_the_same_schedule(mode: str) -> None:
    def schedule(seed: int) -> list[float]:
        with FakeClaude(seed=seed) as api:
            api.respond(*["overloaded_error"] * 4, "ok")
            call(api, mode, max_retries=4)
        return gaps(api)

    assert schedule(7) == schedule(7)
    assert schedule(7) != schedule(8)


def test_with_options_max_retries_is_honoured() -> None:
    with FakeClaude() as api:
        api.respond(*["overloaded_error"] * 6)
        client = api.client().with_options(max_retries=4)
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert len(api.calls) == 5
