"""Every factual claim lesson 03 ("Rate limits") makes, checked against the installed SDK.

The lesson computes these in its cells (strict nbval compares the printed numbers); these
tests pin what its prose *says* about them.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from resilience import ERRORS, VirtualClock
from resilience.testing import FakeClaude, RateLimited, Slow
from resilience.testing.responses import rfc3339

PREFIX = "anthropic-ratelimit-requests-"
MESSAGES = [{"role": "user", "content": "Hi"}]


def create(client: anthropic.Anthropic, model: str) -> object:
    return client.messages.with_raw_response.create(model=model, max_tokens=64,
                                                    messages=MESSAGES)


def test_a_429_carries_retry_after_and_the_ratelimit_headers_and_no_x_ratelimit() -> None:
    with FakeClaude(seed=0) as api:
        api.scenario(RateLimited(requests_per_minute=6, burst=2))
        client = api.client(max_retries=0)
        raws = [create(client, api.model) for _ in range(2)]
        assert [r.headers[PREFIX + "remaining"] for r in raws] == ["1", "0"]  # type: ignore[attr-defined]
        with pytest.raises(anthropic.RateLimitError) as info:
            create(client, api.model)
    e = info.value
    assert (e.status_code, e.type) == (429, "rate_limit_error")
    assert isinstance(e.body, dict)
    assert e.body["error"]["message"] == (  # "names the limit you went over"
        "This request would exceed the rate limit for your organization of "
        "6 requests per minute.")
    assert e.response.headers["retry-after"] == "10"  # one request per 10 s
    assert e.response.headers[PREFIX + "reset"] == "2026-01-01T00:00:20Z"
    headers = raws[-1].headers  # type: ignore[attr-defined]
    assert "x-ratelimit-remaining" not in headers and "x-ratelimit-reset" not in headers
    assert sorted(h for h in headers if "ratelimit" in h) == [
        PREFIX + "limit", PREFIX + "remaining", PREFIX + "reset"]


def test_the_sdk_ignores_remaining_zero_and_waits_exactly_retry_after() -> None:
    with FakeClaude(seed=0) as api:
        api.scenario(RateLimited(requests_per_minute=6, burst=2))
        client = api.client()  # default retries
        for _ in range(3):
            create(client, api.model)
    assert [(c.time, c.status, c.retry_count) for c in api.calls] == [
        (0.0, 200, 0), (0.0, 200, 0), (0.0, 429, 0), (10.0, 200, 1)]


def test_the_sdk_ignores_the_reset_date_without_retry_after() -> None:
    with FakeClaude(seed=0) as api:
        reply = httpx.Response(429, json=ERRORS["rate_limit_error"].body(), headers={
            PREFIX + "limit": "6", PREFIX + "remaining": "0", PREFIX + "reset": rfc3339(30)})
        api.respond(reply, "ok")
        create(api.client(), api.model)
    waited = api.calls[1].time - api.calls[0].time
    assert 0.375 <= waited <= 0.5  # its own backoff, nowhere near the 30 s reset


def run(paced: bool, burst: int = 10, jobs: int = 60) -> tuple[list[int | None], float]:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.scenario(Slow(0.25), RateLimited(requests_per_minute=60, burst=burst))
        client = api.client()
        for _ in range(jobs):
            headers = create(client, api.model).headers  # type: ignore[attr-defined]
            if paced and int(headers[PREFIX + "remaining"]) == 0:
                clock.sleep(60 / int(headers[PREFIX + "limit"]))
    return [c.status for c in api.calls], clock.now()


def test_pacing_sends_the_same_work_with_no_429s_in_about_the_same_time() -> None:
    naive, naive_time = run(paced=False)
    paced, paced_time = run(paced=True)
    assert (len(naive), naive.count(429), f"{naive_time:.2f}") == (89, 29, "51.25")
    assert (len(paced), paced.count(429), f"{paced_time:.2f}") == (60, 0, "52.00")


def test_with_a_full_minute_of_burst_nobody_waits_or_gets_a_429() -> None:
    naive, naive_time = run(paced=False, burst=60)
    paced, paced_time = run(paced=True, burst=60)
    assert naive.count(429) == 0 and paced.count(429) == 0
    assert naive_time == paced_time == 15.0


# -- checker 03.1 and the local timezone ----------------------------------------------

def _model_answer(name: str) -> Any:
    path = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "lesson03.py"
    spec = importlib.util.spec_from_file_location("solutions_lesson03_tz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def _naive(headers: Mapping[str, str], now: float) -> tuple[int, int, float]:
    """A wrong answer: the reset date as a naive datetime, which Python reads as local time."""
    prefix = "anthropic-ratelimit-requests-"
    reset = datetime.strptime(headers[prefix + "reset"][:19], "%Y-%m-%dT%H:%M:%S")
    return (int(headers[prefix + "limit"]), int(headers[prefix + "remaining"]),
            reset.timestamp() - now)


@pytest.fixture
def local_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the process's local timezone for one test; restored afterwards."""
    def set_zone(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "EST+5"])
def test_checker_03_1_passes_a_correct_answer_in_any_timezone(
        zone: str, local_timezone: Callable[[str], None],
        capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson03 import check_parse_ratelimit

    parse_ratelimit = _model_answer("parse_ratelimit")
    local_timezone(zone)
    assert check_parse_ratelimit(parse_ratelimit) is True, capsys.readouterr().out
    assert os.environ["TZ"] == zone  # the checker restored the zone it found


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_checker_03_1_fails_a_naive_datetime_answer_in_every_timezone(
        zone: str, local_timezone: Callable[[str], None],
        capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson03 import check_parse_ratelimit

    local_timezone(zone)
    assert check_parse_ratelimit(_naive) is False
    assert "naive datetime" in capsys.readouterr().out
    assert os.environ["TZ"] == zone
