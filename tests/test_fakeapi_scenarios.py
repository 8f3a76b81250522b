"""Scenarios on the virtual clock: failure rates, outages, a rate-limited server, latency,
scenarios for one model."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import datetime

import anthropic
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from resilience import FALLBACK_MODEL, MODEL, VirtualClock, classify
from resilience.testing import (
    FailureRates,
    FakeClaude,
    ForModel,
    Outage,
    RateLimited,
    Scenario,
    Slow,
)
from resilience.testing.responses import VIRTUAL_EPOCH, rfc3339

HI = [{"role": "user", "content": "Hi"}]


def send(client: anthropic.Anthropic) -> int:
    """One request; its final status (0 for no answer)."""
    try:
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)
    except anthropic.APIStatusError as e:
        return e.status_code
    except anthropic.APIConnectionError:
        return 0
    return 200


# Failure rates.


def test_failure_rates_are_met() -> None:
    rates = FailureRates({"overloaded_error": 0.2, "rate_limit_error": 0.05})
    rng = random.Random(1)
    labels = Counter(getattr(rates.decide(None, rng), "label", "ok")  # type: ignore[arg-type]
                     for _ in range(20_000))
    # Binomial(20000, p): 5 standard deviations either side.
    assert abs(labels["overloaded_error"] - 4000) < 5 * math.sqrt(20_000 * 0.2 * 0.8)
    assert abs(labels["rate_limit_error"] - 1000) < 5 * math.sqrt(20_000 * 0.05 * 0.95)
    assert set(labels) == {"ok", "overloaded_error", "rate_limit_error"}


def test_failure_rates_through_the_sdk_repeat_with_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with FakeClaude(seed=seed) as api:
            api.scenario(FailureRates({"overloaded_error": 0.3, "rate_limit_error": 0.1}))
            client = api.client(max_retries=0)
            return [send(client) for _ in range(100)]

    first = statuses(1)
    assert first == statuses(1) and first != statuses(2)
    assert set(first) == {200, 429, 529}


def test_failure_rates_accept_any_outcome_name() -> None:
    with FakeClaude() as api:
        api.scenario(FailureRates({"connection_error": 1.0}))
        assert send(api.client(max_retries=1)) == 0
    assert [c.outcome for c in api.calls] == ["connection_error"] * 2


@pytest.mark.parametrize("rates", [{"overloaded_error": 0.7, "api_error": 0.4},
                                   {"overloaded_error": -0.1}, {"no_such_error": 0.1}])
def test_bad_failure_rates_are_refused(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FailureRates(rates)


def test_the_script_comes_before_the_scenarios() -> None:
    with FakeClaude() as api:
        api.scenario(FailureRates({"overloaded_error": 1.0}))
        api.respond("ok")
        client = api.client(max_retries=0)
        assert [send(client), send(client)] == [200, 529]


# Outages.


def test_an_outage_fails_every_request_inside_its_window() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(Outage(start=10, end=40))
        client = api.client(max_retries=0)
        seen = {}
        for t in range(0, 50, 5):
            clock.advance(t - clock.now())
            seen[t] = send(client)
    assert seen == {t: 529 if 10 <= t < 40 else 200 for t in range(0, 50, 5)}


def test_the_sdk_retries_cannot_outlast_a_long_outage_but_a_short_one_they_can() -> None:
    with FakeClaude() as api:
        api.scenario(Outage(start=0, end=30, error="api_error"))
        assert send(api.client(max_retries=2)) == 500   # about 1.5 s of retries
        assert send(api.client(max_retries=8)) == 200   # ... ~0.4+0.8+...+8: past 30 s


def test_an_outage_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError):
        Outage(start=5, end=1)


# A rate-limited server.


def test_a_rate_limited_server_paces_with_accurate_headers() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(RateLimited(requests_per_minute=60))
        client = api.client(max_retries=0)
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=HI)
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "60"
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == "59"
        assert raw.headers["anthropic-ratelimit-requests-reset"] == "2026-01-01T00:00:01Z"
        assert [send(client) for _ in range(59)] == [200] * 59
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    headers = info.value.response.headers
    assert headers["retry-after"] == "1"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"] == "2026-01-01T00:01:00Z"
    assert classify(info.value).retry_after == 1.0


def test_the_sdk_honours_the_rate_limiters_retry_after() -> None:
    with FakeClaude() as api:
        api.scenario(RateLimited(requests_per_minute=50, burst=1))
        client = api.client(max_retries=2)
        assert [send(client), send(client)] == [200, 200]
    assert [c.status for c in api.calls] == [200, 429, 200]
    assert api.calls[2].time - api.calls[1].time == 2.0  # 1.2 s per token, rounded up


@settings(max_examples=40, deadline=None)
@example(rpm=2, burst=1, elapsed=8.0)  # float rounding once made retry-after 1 s too long
@given(rpm=st.integers(1, 600), burst=st.integers(1, 5), elapsed=st.floats(0, 30))
def test_retry_after_is_the_least_whole_wait_that_succeeds(rpm: int, burst: int,
                                                           elapsed: float) -> None:
    def after_emptying(wait: float | None) -> tuple[int, str | None]:
        """Empty the bucket, let ``elapsed`` pass, ask; then wait ``wait`` and ask again."""
        clock = VirtualClock()
        with FakeClaude(clock=clock) as api:
            api.scenario(RateLimited(requests_per_minute=rpm, burst=burst))
            client = api.client(max_retries=0)
            for _ in range(burst):
                assert send(client) == 200
            clock.advance(elapsed)
            status, retry_after = answer(client)
            if wait is None or status == 200:
                return status, retry_after
            clock.advance(wait)
            return answer(client)

    status, retry_after = after_emptying(None)
    if status == 200:  # the bucket refilled during `elapsed`
        return
    assert status == 429 and retry_after is not None
    wait = int(retry_after)
    assert wait >= 1
    assert after_emptying(wait)[0] == 200, "retry-after was too short"
    if wait > 1:
        assert after_emptying(wait - 1)[0] == 429, "retry-after was longer than needed"


def answer(client: anthropic.Anthropic) -> tuple[int, str | None]:
    """The status of one request and its retry-after header."""
    try:
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    except anthropic.APIStatusError as e:
        return e.status_code, e.response.headers.get("retry-after")
    return 200, None


def test_rfc3339_dates_are_on_the_virtual_calendar() -> None:
    assert rfc3339(0) == "2026-01-01T00:00:00Z"
    assert rfc3339(3600.2) == "2026-01-01T01:00:01Z"
    assert datetime.fromisoformat(rfc3339(86400)) - VIRTUAL_EPOCH == (
        datetime.fromisoformat("2026-01-02T00:00:00+00:00") - VIRTUAL_EPOCH)


# Slow answers.


def test_a_slow_answer_takes_virtual_time() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(Slow(seconds=2.5))
        client = api.client(max_retries=0)
        assert [send(client), send(client)] == [200, 200]
    assert [c.time for c in api.calls] == [0.0, 2.5] and clock.now() == 5.0


def test_an_answer_slower_than_the_read_timeout_times_out() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(Slow(seconds=30))
        with pytest.raises(anthropic.APITimeoutError):
            api.client(timeout=10, max_retries=1).messages.create(
                model=MODEL, max_tokens=8, messages=HI)
    assert [(c.outcome, c.status) for c in api.calls] == [("timeout", None)] * 2
    assert 20.375 <= clock.now() <= 20.5  # two timeouts and one backoff


def test_a_longer_timeout_lets_the_slow_answer_through() -> None:
    with FakeClaude() as api:
        api.scenario(Slow(seconds=30))
        assert send(api.client(timeout=60, max_retries=0)) == 200


def test_slow_with_a_probability_is_seeded() -> None:
    def times(seed: int) -> list[float]:
        with FakeClaude(seed=seed) as api:
            api.scenario(Slow(seconds=1.0, probability=0.3))
            client = api.client(max_retries=0)
            for _ in range(100):
                send(client)
            return [c.time for c in api.calls]

    assert times(4) == times(4) and times(4) != times(5)
    assert 10 < times(4)[-1] < 50  # about 0.3 s a request over 100 requests


def test_scenarios_compose_in_order() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(Slow(seconds=1.0), Outage(start=0.5, end=2.5))
        client = api.client(max_retries=0)
        assert [send(client) for _ in range(3)] == [529, 529, 200]  # the outage sees t=1,2,3


# Scenarios for one model.


def send_to(client: anthropic.Anthropic, model: str) -> int:
    """One request for ``model``; its final status (0 for no answer)."""
    try:
        client.messages.create(model=model, max_tokens=16, messages=HI)
    except anthropic.APIStatusError as e:
        return e.status_code
    return 200


def test_for_model_fails_only_the_named_models_requests() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(ForModel(MODEL, Outage(start=10, end=20)))
        client = api.client(max_retries=0)
        seen = []
        for t in (0, 10, 15, 20):
            clock.advance(t - clock.now())
            seen.append((send_to(client, MODEL), send_to(client, FALLBACK_MODEL)))
    assert seen == [(200, 200), (529, 200), (529, 200), (200, 200)]
    assert [(c.model, c.status) for c in api.calls[2:4]] == [(MODEL, 529),
                                                             (FALLBACK_MODEL, 200)]


def test_for_model_runs_its_scenarios_in_order_and_the_first_outcome_wins() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock) as api:
        api.scenario(ForModel(MODEL, Slow(1.0), Outage(start=0.5, end=2.5, error="api_error"),
                              FailureRates({"overloaded_error": 1.0})))
        client = api.client(max_retries=0)
        got = [send_to(client, MODEL) for _ in range(3)] + [send_to(client, FALLBACK_MODEL)]
    assert got == [500, 500, 529, 200]  # Slow moves the clock first; the outage beats rates
    assert clock.now() == 3.0  # the other model's request was not slowed


def test_for_model_composes_with_other_scenarios() -> None:
    with FakeClaude() as api:
        api.scenario(ForModel(MODEL, Outage(0, math.inf)),
                     ForModel(FALLBACK_MODEL, Outage(0, math.inf, error="api_error")),
                     FailureRates({"rate_limit_error": 1.0}))
        client = api.client(max_retries=0)
        assert [send_to(client, MODEL), send_to(client, FALLBACK_MODEL),
                send_to(client, "claude-other")] == [529, 500, 429]


def test_for_model_leaves_other_models_draws_alone() -> None:
    def statuses(*scenarios: Scenario) -> list[int]:
        with FakeClaude(seed=3) as api:
            api.scenario(*scenarios)
            client = api.client(max_retries=0)
            return [send_to(client, model) for model in [MODEL, FALLBACK_MODEL] * 50]

    rates = FailureRates({"overloaded_error": 0.5})
    only_main = statuses(ForModel(MODEL, rates))
    assert set(only_main[1::2]) == {200}
    assert only_main[::2] == statuses(rates)[:50]  # the same draws, one per main request


def test_for_model_is_a_scenario_with_a_readable_repr() -> None:
    scenario: Scenario = ForModel(MODEL, Outage(100, 140))
    assert repr(scenario) == (f"ForModel({MODEL!r}, "
                              "Outage(start=100, end=140, error='overloaded_error'))")
    assert not hasattr(scenario, "__dict__")  # slotted


@pytest.mark.parametrize(("args", "match"), [
    (("", Outage(0, 1)), "model"),
    ((None, Outage(0, 1)), "model"),
    ((MODEL,), "scenarios"),
    ((MODEL, Outage(0, 1), "overloaded_error"), "scenarios"),
])
def test_for_model_refuses_bad_arguments(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ForModel(*args)  # type: ignore[arg-type]


# The rate limiter's message.


@pytest.mark.parametrize(("rpm", "limit"), [(6, "6"), (50, "50"), (0.5, "0.5")])
def test_a_rate_limiters_429_names_its_own_limit(rpm: float, limit: str) -> None:
    with FakeClaude() as api:
        api.scenario(RateLimited(requests_per_minute=rpm, burst=1))
        client = api.client(max_retries=0)
        assert send(client) == 200
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    body = info.value.body
    assert isinstance(body, dict)
    assert body["error"] == {
        "type": "rate_limit_error",
        "message": "This request would exceed the rate limit for your organization of "
                   f"{limit} requests per minute."}
    assert set(body) == {"type", "error", "request_id"}
