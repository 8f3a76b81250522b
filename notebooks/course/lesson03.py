"""Checkers for lesson 03, "Rate limits".

* ``parse_ratelimit(headers, now)``: the ``anthropic-ratelimit-requests-*`` headers as
  ``(limit, remaining, seconds until reset)``.
* ``wait_before_next(headers, now)``: how long to wait before the next request, given the
  headers of the last answer; run against the ``RateLimited`` scenario of the simulated API,
  it must produce no 429 and still keep up with the limit.

``now`` is Unix time in seconds. In the simulated API, virtual time ``t`` is the calendar
moment ``VIRTUAL_EPOCH + t`` (the reset dates are written on that calendar).

``parse_ratelimit`` is run with the process's local timezone set to zones west and east of
UTC (POSIX ``TZ`` strings, which need no timezone database), so an answer that reads the
reset date as a naive datetime (local time) fails on every machine, not only off UTC.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from anthropic.types import MessageParam

from course import exercise

__all__ = ["CHECKS", "check_parse_ratelimit", "check_wait_before_next"]

_PREFIX = "anthropic-ratelimit-requests-"
_MESSAGES: list[MessageParam] = [{"role": "user", "content": "Hi"}]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _epoch() -> float:
    from resilience.testing import VIRTUAL_EPOCH

    return VIRTUAL_EPOCH.timestamp()


def _headers(limit: int, remaining: int, reset: str) -> dict[str, str]:
    return {f"{_PREFIX}limit": str(limit), f"{_PREFIX}remaining": str(remaining),
            f"{_PREFIX}reset": reset, "request-id": "req_example", "retry-after": "7"}


def _expected(headers: Mapping[str, str], now: float) -> tuple[int, int, float]:
    reset = datetime.fromisoformat(headers[f"{_PREFIX}reset"].replace("Z", "+00:00"))
    return (int(headers[f"{_PREFIX}limit"]), int(headers[f"{_PREFIX}remaining"]),
            reset.timestamp() - now)


_ZONES = ("EST+5EDT,M3.2.0,M11.1.0", "IST-5:30")
"""Local timezones to check ``parse_ratelimit`` under: US Eastern (with its summer time) and
India (UTC+5:30), as POSIX ``TZ`` strings."""


@contextlib.contextmanager
def _local_timezone(zone: str | None) -> Iterator[None]:
    """Run the block with the process's local timezone set to ``zone`` (None: unchanged).

    Where ``time.tzset`` does not exist (Windows), the block runs in the machine's own zone.
    """
    if zone is None or not hasattr(time, "tzset"):
        yield
        return
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@exercise("03.1", "read the rate-limit headers")
def check_parse_ratelimit(solution: Callable[..., Any]) -> None:
    """``solution(headers, now)`` returns ``(limit, remaining, reset_in)``, whatever the
    local timezone."""
    epoch = _epoch()
    cases: list[tuple[Any, float]] = [
        (_headers(50, 49, "2026-01-01T00:00:02Z"), epoch + 0.8),
        (_headers(50, 0, "2026-01-01T00:01:00Z"), epoch),
        (_headers(4000, 3125, "2026-03-14T15:09:27Z"), epoch + 6_275_000.5),
        (_headers(1000, 7, "2026-01-01T00:00:10+00:00"), epoch + 4.25),
        (_headers(1000, 7, "2026-07-01T12:00:00Z"), epoch + 15_638_000.0),
    ]
    cases.append(_real_headers())
    for zone in (None, *_ZONES):
        with _local_timezone(zone):
            _check_cases(solution, cases, zone)


def _check_cases(solution: Callable[..., Any], cases: list[tuple[Any, float]],
                 zone: str | None) -> None:
    here = "your machine's timezone" if zone is None else f"the timezone {zone.split(',')[0]}"
    where = (f" (run in {here}: a date without a zone, a naive datetime, is read as local "
             "time; make it aware of UTC)")
    for headers, now in cases:
        got = solution(headers, now)
        limit, remaining, reset_in = _expected(headers, now)
        call = f"parse_ratelimit(headers with reset {headers[_PREFIX + 'reset']}, now)"
        assert isinstance(got, tuple) and len(got) == 3, (
            f"{call} returned {got!r}; expected a tuple (limit, remaining, reset_in).")
        assert got[0] == limit and got[1] == remaining and not isinstance(got[0], str), (
            f"{call} gave limit={got[0]!r}, remaining={got[1]!r}; expected the integers "
            f"{limit} and {remaining}.")
        assert _number(got[2]) and math.isclose(got[2], reset_in, abs_tol=1e-6), (
            f"{call} gave reset_in={got[2]!r}; expected {reset_in:.3f} s: the reset date as "
            f"Unix seconds, minus now{where}.")


def _real_headers() -> tuple[Any, float]:
    """The headers of a real SDK response from the simulated API, 12.5 s in."""
    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, RateLimited

    clock = VirtualClock(12.5)
    with FakeClaude(clock=clock, seed=3) as api:
        api.scenario(RateLimited(requests_per_minute=30, burst=4))
        raw = api.client(max_retries=0).messages.with_raw_response.create(
            model=api.model, max_tokens=16, messages=_MESSAGES)
    return raw.headers, _epoch() + clock.now()


def _paced_run(solution: Callable[..., Any], rpm: int, burst: int, jobs: int,
               latency: float) -> float:
    """Send ``jobs`` requests one after another, waiting as ``solution`` says; return the
    virtual time taken. Raises AssertionError at the first 429."""
    import anthropic

    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, RateLimited, Slow

    clock = VirtualClock()
    epoch = _epoch()
    with FakeClaude(clock=clock, seed=0) as api:
        api.scenario(Slow(latency), RateLimited(requests_per_minute=rpm, burst=burst))
        create = api.client(max_retries=0).messages.with_raw_response.create
        for job in range(jobs):
            try:
                raw = create(model=api.model, max_tokens=16, messages=_MESSAGES)
            except anthropic.RateLimitError:
                raise AssertionError(
                    f"with a limit of {rpm} requests per minute (burst {burst}), request "
                    f"{job + 1} of {jobs} got a 429 at t={api.calls[-1].time:.2f} s. Wait "
                    "longer when remaining is 0.") from None
            wait = solution(raw.headers, epoch + clock.now())
            assert _number(wait) and wait >= 0, (
                f"wait_before_next(...) returned {wait!r}; expected seconds >= 0.")
            clock.sleep(float(wait))
    return clock.now()


@exercise("03.2", "pace on the headers")
def check_wait_before_next(solution: Callable[..., Any]) -> None:
    """No 429 against ``RateLimited``, and no slower than 1.5x a perfect pacer (+2 s)."""
    for rpm, burst, jobs, latency in [(60, 10, 30, 0.25), (120, 5, 20, 0.1)]:
        took = _paced_run(solution, rpm, burst, jobs, latency)
        best = max(jobs * latency, (jobs - burst) * 60 / rpm)
        assert took <= 1.5 * best + 2, (
            f"no 429s, but {jobs} requests at {rpm} per minute took {took:.1f} s; a paced "
            f"client needs about {best:.1f} s. Wait only when remaining is 0, and only "
            "about as long as one request's share of the limit (60 / limit seconds).")


CHECKS = {"parse_ratelimit": check_parse_ratelimit, "wait_before_next": check_wait_before_next}
