"""Every factual claim lesson 04 ("Overloaded and server errors") makes, checked against the
installed SDK through the simulated API.

Where a fact comes from the lesson's own code (its ``raised``, the guide's list and
``listed_retry``, ``sdk_error_for``, ``one_user`` and the thirty users it ran) the tests run
that code (``tests/lesson_code.py``), not a copy of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from lesson_code import run_lesson

from resilience import VirtualClock, backoff, classify, retry
from resilience.testing import FakeClaude, Outage, Slow

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped)."""
    return run_lesson("04_overloaded_and_server_errors")


@pytest.fixture
def raised(lesson: dict[str, Any]) -> Callable[[object], anthropic.APIError]:
    """The lesson's ``raised``, which must end in an error."""
    def call(outcome: object) -> anthropic.APIError:
        e = lesson["raised"](outcome)
        assert isinstance(e, anthropic.APIError), f"{outcome}: no error raised"
        return e

    return call


@pytest.mark.parametrize(("name", "status", "cls", "error_type"), [
    ("api_error", 500, anthropic.InternalServerError, "api_error"),
    ("bad_gateway", 502, anthropic.InternalServerError, None),
    ("service_unavailable", 503, anthropic.ServiceUnavailableError, "api_error"),
    ("timeout_error", 504, anthropic.GatewayTimeoutError, "timeout_error"),
    ("overloaded_error", 529, anthropic.OverloadedError, "overloaded_error"),
])
def test_each_server_error_as_the_sdk_raises_it(
        raised: Callable[[object], anthropic.APIError], name: str, status: int, cls: type,
        error_type: str | None) -> None:
    e = raised(name)
    assert type(e) is cls and isinstance(e, anthropic.APIStatusError)
    assert (e.status_code, e.type) == (status, error_type)
    assert isinstance(e, anthropic.InternalServerError)  # every server error is one
    assert classify(e).retryable


def test_a_502_from_a_proxy_is_html_and_still_classified(
        raised: Callable[[object], anthropic.APIError]) -> None:
    e = raised("bad_gateway")
    assert e.body == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert str(classify(e)) == "bad_gateway 502 (retryable)"


def test_overloaded_is_an_internal_server_error() -> None:
    assert [c.__name__ for c in anthropic.OverloadedError.__mro__[:4]] == [
        "OverloadedError", "InternalServerError", "APIStatusError", "APIError"]
    assert issubclass(anthropic.GatewayTimeoutError, anthropic.InternalServerError)


@pytest.mark.parametrize(("first", "cls"), [("timeout_error", anthropic.GatewayTimeoutError),
                                            ("connection_error", anthropic.APIConnectionError)])
def test_a_listed_retry_gives_up_at_once_on_504_and_connection_errors(
        lesson: dict[str, Any], first: str, cls: type) -> None:
    assert lesson["LISTED"] == {429, 500, 502, 503, 529}  # the popular guide's list
    with FakeClaude(seed=0) as api:
        api.respond(first, "ok")
        client = api.client(max_retries=0)
        with pytest.raises(cls):
            lesson["listed_retry"](lambda: client.messages.create(model=api.model, max_tokens=64,
                                                        messages=MESSAGES))
    assert len(api.calls) == 1 and api.pending == ("ok",)


def test_the_list_misses_four_statuses_that_classify_retries(lesson: dict[str, Any]) -> None:
    statuses = [500, 502, 503, 504, 520, 522, 524, 529]
    assert all(classify(s).retryable for s in statuses)
    assert [s for s in statuses if s not in lesson["LISTED"]] == [504, 520, 522, 524]
    assert not classify(501).retryable


def test_timeouts_are_connection_errors_and_a_hung_request_costs_600_s(
        raised: Callable[[object], anthropic.APIError]) -> None:
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


def test_a_hung_request_on_the_default_client_costs_three_read_timeouts_plus_backoff(
        lesson: dict[str, Any]) -> None:
    timeout, retries = anthropic.DEFAULT_TIMEOUT, anthropic.DEFAULT_MAX_RETRIES
    assert (timeout.read, timeout.connect, retries) == (600.0, 5.0, 2), (
        f"lesson 04: the SDK's defaults are now read={timeout.read} s, "
        f"connect={timeout.connect} s, {retries} retries; the lesson says 600 s, 5 s, 2")
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond("timeout", "timeout", "timeout", "ok")
        with pytest.raises(anthropic.APITimeoutError):
            api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
    took = api.clock.now()
    backoffs = took - 3 * 600.0
    assert len(api.calls) == 3 and api.pending == ("ok",)
    assert 0.375 + 0.75 <= backoffs <= 0.5 + 1.0, (
        f"lesson 04: a hung request now costs {took:.1f} s on the default client; the lesson "
        "says 3 x 600 s plus two short backoffs")
    assert lesson["hung"] == pytest.approx(took, abs=1e-9)
    assert round(lesson["hung"] / 60) == 30, "lesson 04 says a hung request costs 30 minutes"


def test_a_slow_answer_trips_a_5_s_timeout_and_the_sdk_retries_it() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Slow(30))
        with pytest.raises(anthropic.APITimeoutError):
            api.client(timeout=5.0).messages.create(model=api.model, max_tokens=64,
                                                    messages=MESSAGES)
    assert f"{api.clock.now():.2f}" == "16.20"
    assert [(f"{c.time:.3f}", c.retry_count, c.status) for c in api.calls] == [
        ("0.000", 0, None), ("5.394", 1, None), ("11.205", 2, None)]


def test_only_an_httpx2_timeout_becomes_an_api_timeout_error(lesson: dict[str, Any]) -> None:
    sdk_error_for = lesson["sdk_error_for"]   # the name of the SDK error it raised, or None
    assert sdk_error_for(httpx.ReadTimeout("slow")) == "APIConnectionError"
    assert sdk_error_for(httpx2.ReadTimeout("slow")) == "APITimeoutError"


def test_thirty_users_ride_out_the_outage(lesson: dict[str, Any]) -> None:
    users = lesson["users"]                   # as the lesson ran them
    assert list(users) == list(range(0, 60, 2))
    attempts = [c for calls, _ in users.values() for c in calls]
    assert all(ok for _, ok in users.values())
    assert (len(attempts), sum(c.status == 529 for c in attempts)) == (114, 84)
    start, (calls, _) = max(users.items(), key=lambda item: item[1][0][-1].time - item[0])
    assert (start, len(calls), f"{calls[-1].time:.1f}") == (12, 9, "61.5")
    assert all(c.time < 90 + start for start, (calls, _) in users.items() for c in calls)


def test_with_five_attempts_the_early_users_give_up(lesson: dict[str, Any]) -> None:
    gave_up = [s for s in range(0, 60, 2) if not lesson["one_user"](s, attempts=5)[1]]
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


# -- the exercises' checkers reject plausible wrong answers ---------------------------

def test_checker_04_1_rejects_retrying_every_internal_server_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson04 import check_is_retryable

    def by_class(exc: BaseException) -> bool:  # HTTPNotImplementedError (501) is one too
        return isinstance(exc, anthropic.InternalServerError | anthropic.RateLimitError
                          | anthropic.ConflictError | anthropic.APIConnectionError)

    assert issubclass(anthropic.HTTPNotImplementedError, anthropic.InternalServerError)
    assert check_is_retryable(by_class) is False
    assert "501 Not Implemented" in capsys.readouterr().out


def _defaults(fn: Any, clock: VirtualClock, rng: random.Random) -> Any:
    return retry(attempts=12, clock=clock, rng=rng)(fn)


def _no_jitter(fn: Any, clock: VirtualClock, rng: random.Random) -> Any:
    return retry(attempts=12, deadline=120.0, backoff=backoff.exponential(2.0, 30.0),
                 clock=clock, rng=rng)(fn)


def _no_deadline(fn: Any, clock: VirtualClock, rng: random.Random) -> Any:
    return retry(attempts=12, deadline=None, backoff=backoff.full_jitter(2.0, 30.0),
                 clock=clock, rng=rng)(fn)


def _fixed_seed(fn: Any, clock: VirtualClock, rng: random.Random) -> Any:
    return retry(attempts=12, deadline=120.0, backoff=backoff.full_jitter(2.0, 30.0),
                 clock=clock, rng=random.Random(0))(fn)


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_defaults, "keep trying for longer"),
    (_no_jitter, "lockstep"),
    (_fixed_seed, "lockstep"),
    (_no_deadline, "set a deadline"),
])
def test_checker_04_2_needs_a_deadline_jitter_and_enough_patience(
        wrong: Any, complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson04 import check_patient

    assert check_patient(wrong) is False
    assert complaint in capsys.readouterr().out
