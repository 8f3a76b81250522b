"""Every factual claim lesson 09 ("Circuit breakers in practice") makes, computed from the
package and the installed SDK (through the simulated API).

The lesson prints these numbers under strict nbval; these tests pin what its prose *says*
about them. They run the lesson's own code (``tests/lesson_code.py``): its breaker inside
the SDK (``met``), its re-creation of a guide's breaker (``NaiveBreaker``), its fast
``StandIn`` for the API and the simulations built on them, so a change to the lesson is a
change to what is tested.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import anthropic
import pytest
from lesson_code import run_lesson

from resilience import CircuitBreaker, VirtualClock, classify
from resilience.breaker import service_failure
from resilience.testing import FakeClaude

SEED = 0
PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped)."""
    return run_lesson("09_circuit_breakers_in_practice")


def recorded(name: str) -> anthropic.APIStatusError:
    """The SDK exception for a catalogue error ``name``, met as the lesson meets its own."""
    with FakeClaude(seed=SEED) as api:
        e = api.raised(name)
    assert isinstance(e, anthropic.APIStatusError), f"lesson 09: {name} raised nothing"
    return e


def opened(breaker: Any) -> int:
    return sum(state == "open" for _, state in breaker.history)


# -- the breaker inside the SDK -------------------------------------------------------------

def test_an_open_breaker_middleware_stops_the_sdks_retries(lesson: dict[str, Any]) -> None:
    met, inside = lesson["met"], lesson["inside"]
    assert [(name, attempts) for name, attempts, _ in met] == [
        ("CircuitOpenError", 3), ("CircuitOpenError", 3)], (
        f"lesson 09: two requests through BreakerMiddleware gave {met}, the lesson says "
        "CircuitOpenError after 3 HTTP attempts each time (the 4th never leaves)")
    assert lesson["retries_sent"] == [0, 1, 2], (
        f"lesson 09: the SDK sent retry counts {lesson['retries_sent']}, the lesson says "
        "[0, 1, 2]: one HTTP attempt per retry, each judged by the breaker")
    slept = sum(min(0.5 * 2**n, 8.0) * 0.75 for n in range(3))   # the SDK's shortest waits
    assert met[0][2] >= slept, (
        f"lesson 09: the first request took {met[0][2]:.2f} s, the lesson says the SDK "
        f"slept before its refused 4th attempt (at least {slept:.3f} s in all)")
    assert met[1][2] == 0.0, "lesson 09: a call the open breaker refuses took time"
    assert [state for _, state in inside.history] == ["closed", "open"]


def test_breaker_middleware_route_facts() -> None:
    """The table: each attempt counts (async too); a 429 does not; a mid-stream error is
    after the status line, so the middleware does not see it."""
    from resilience.middleware import BreakerMiddleware

    with FakeClaude(seed=SEED) as api:
        breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10.0, clock=api.clock)
        client = api.client(middleware=[BreakerMiddleware(breaker)], max_retries=3)
        api.respond("rate_limit_error", "rate_limit_error", "rate_limit_error", "ok")
        client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
        assert breaker.state == "closed", "lesson 09: BreakerMiddleware counted 429s"
        api.respond("stream_overloaded", "stream_overloaded", "stream_overloaded")
        for _ in range(3):
            with pytest.raises(anthropic.APIStatusError) as caught:
                for _ in client.messages.create(model=api.model, max_tokens=64,
                                                messages=PROMPT, stream=True):
                    pass
            assert caught.value.status_code == 200
        assert breaker.state == "closed", (
            "lesson 09: BreakerMiddleware now sees errors inside a 200 stream; the lesson "
            "says it judges each attempt by its status line only")

        async def three_529s() -> None:
            async_client = api.async_client(middleware=[BreakerMiddleware(breaker)],
                                            max_retries=2)
            api.respond("overloaded_error", "overloaded_error", "overloaded_error")
            with pytest.raises(anthropic.OverloadedError):
                await async_client.messages.create(model=api.model, max_tokens=64,
                                                   messages=PROMPT)

        asyncio.run(three_529s())
    assert breaker.state == "open", (
        "lesson 09: three 529s in one request through an async client's BreakerMiddleware "
        "did not open a breaker with failure_threshold=3")


# -- the guide's three bugs ---------------------------------------------------------------

def test_the_recorded_errors_are_real_sdk_classes(lesson: dict[str, Any]) -> None:
    got = {name: (type(lesson[name]).__name__, lesson[name].status_code)
           for name in ("OVERLOADED", "INVALID", "RATE_LIMITED")}
    expected = {"OVERLOADED": ("OverloadedError", 529), "INVALID": ("BadRequestError", 400),
                "RATE_LIMITED": ("RateLimitError", 429)}
    for name, (cls, status) in expected.items():
        assert got[name] == (cls, status), (
            f"lesson 09: the SDK now raises {got[name][0]} {got[name][1]} for {name}, the "
            f"lesson says {cls} {status}")
    assert classify(copy.copy(lesson["OVERLOADED"])).retryable


def test_bug_1_at_one_percent_errors_the_naive_breaker_opens_seven_times(
        lesson: dict[str, Any]) -> None:
    hour = lesson["hour"]
    naive, mine = lesson["NaiveBreaker"](clock=VirtualClock()), lesson["in_a_row"]()
    assert hour(naive) == {"ok": 3358, "failed": 39, "rejected": 203}
    assert opened(naive) == 7
    assert hour(mine) == {"ok": 3560, "failed": 40}
    assert opened(mine) == 0


def test_bug_2_five_bad_requests_open_the_naive_breaker_for_30_s(
        lesson: dict[str, Any]) -> None:
    bad_user = lesson["bad_user"]
    naive, mine = lesson["NaiveBreaker"](clock=VirtualClock()), lesson["in_a_row"]()
    assert bad_user(naive) == {"ok": 270, "rejected": 30}
    assert naive.history[1] == (104.0, "open")      # the fifth 400
    assert bad_user(mine) == {"ok": 300}
    assert mine.is_failure(lesson["INVALID"]) is False
    assert mine.is_failure(lesson["OVERLOADED"]) is True
    assert mine.is_failure(lesson["RATE_LIMITED"]) is False, (
        "lesson 09: the breaker's default counts a 429; the lesson says no 4xx counts")
    for name in ("authentication_error", "permission_error", "not_found_error",
                 "conflict_error", "spend_limit_reached"):
        assert mine.is_failure(recorded(name)) is False, f"lesson 09: a {name} counts"


def test_bug_3_the_naive_half_open_state_lets_all_20_callers_in(
        lesson: dict[str, Any]) -> None:
    naive, mine = lesson["bursts"]["naive"], lesson["bursts"]["resilience"]
    assert len(naive) == len(mine) == 150
    assert sum(naive[:120]) == 80 and sum(mine[:120]) == 23
    assert [naive[t] for t in (0, 30, 60, 90, 120)] == [20] * 5
    assert [mine[t] for t in (0, 30, 60, 90, 120)] == [20, 1, 1, 1, 1]
    assert lesson["ours"].half_open_max_calls == 1


# -- in a row or as a rate --------------------------------------------------------------

def test_the_rate_table(lesson: dict[str, Any]) -> None:
    header, *rows = lesson["lines"]     # what the lesson printed
    assert header.split() == ["errors", "naive", "5", "in", "a", "row", "50", "%", "of", "100"]
    table = {}
    for line in rows:
        rate, *cells = line.split()
        table[rate] = [tuple(int(n) for n in cell.split("/")) for cell in cells]
    assert table == {"1%": [(7, 203), (0, 0), (0, 0)],
                     "10%": [(48, 1392), (0, 0), (0, 0)],
                     "30%": [(85, 2465), (5, 145), (0, 0)],      # "a few times at 30 %"
                     "50%": [(103, 2964), (51, 1472), (73, 2090)]}
    by_rate = lesson["by_rate"]()
    assert (by_rate.failure_threshold, by_rate.failure_rate_threshold, by_rate.minimum_calls,
            by_rate.recovery_timeout) == (None, 0.5, 20, 30.0)


def test_our_defaults(lesson: dict[str, Any]) -> None:
    fresh = lesson["fresh"]
    assert (fresh.failure_threshold, fresh.recovery_timeout, fresh.half_open_max_calls,
            fresh.failure_rate_threshold) == (5, 30.0, 1, None)


# -- exercise hints -----------------------------------------------------------------------

def test_timeout_is_a_connection_error_and_529_is_a_server_error(
        lesson: dict[str, Any]) -> None:
    assert issubclass(anthropic.APITimeoutError, anthropic.APIConnectionError)
    assert issubclass(anthropic.OverloadedError, anthropic.InternalServerError)
    assert lesson["OVERLOADED"].status_code > 504  # a list that stops at 504 misses it


def test_the_breakers_default_is_failure_passes_exercise_09_1(
        lesson: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson09 import check_is_failure

    assert CircuitBreaker().is_failure is service_failure   # "the breaker's default"
    assert check_is_failure(service_failure) is True         # "compare with service_failure"
    assert CircuitBreaker().is_failure(lesson["OVERLOADED"]) is True
    capsys.readouterr()


def counts_429_too(e: BaseException) -> bool:
    """The old model answer: 408, 409, 429 and every 5xx count."""
    if isinstance(e, anthropic.APIConnectionError):
        return True
    if isinstance(e, anthropic.APIStatusError):
        return e.status_code in (408, 409, 429) or e.status_code >= 500
    return False


def every_server_error(e: BaseException) -> bool:
    """Right about 429, but counts a 501 (``InternalServerError`` covers every 5xx)."""
    return isinstance(e, anthropic.APIConnectionError | anthropic.InternalServerError)


@pytest.mark.parametrize(("wrong", "says"), [
    (counts_429_too, "is_failure(RateLimitError (429)) returned True, but a 429 is your own"),
    (lambda e: classify(e).retryable, "(429)) returned True, but a 429 is your own quota"),
    (lambda e: service_failure(e) or getattr(e, "status_code", 0) == 429, "(429)) returned"),
    (every_server_error, "is_failure(HTTPNotImplementedError (501)) returned True, but a 501"),
], ids=["408-409-429-or-5xx", "classify-retryable", "default-plus-429", "every-5xx"])
def test_exercise_09_1_rejects_an_answer_that_counts_429_or_501(
        wrong: Any, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson09 import check_is_failure

    assert check_is_failure(wrong) is False, "lesson 09: exercise 09.1 accepts a wrong answer"
    assert says in capsys.readouterr().out


def test_exercise_09_1_rejects_a_429_counter_inside_the_breaker(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Right on every single error but counting 429s in a breaker would still fail."""
    from course.lesson09 import check_is_failure

    past_the_single_checks = False

    def counts_429_only_in_a_breaker(e: BaseException) -> bool:
        nonlocal past_the_single_checks
        past_the_single_checks |= isinstance(e, ValueError)   # the last single check
        if past_the_single_checks and isinstance(e, anthropic.RateLimitError):
            return True
        return service_failure(e)

    assert check_is_failure(counts_429_only_in_a_breaker) is False
    assert "ten 429s opened the breaker" in capsys.readouterr().out


# -- exercise 09.2: count requests, not attempts --------------------------------------------

def test_the_model_answer_to_exercise_09_2_is_the_decorator_route(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The hint: wrap ``api.client().messages.create``; the table: one outcome per request."""
    from course.lesson09 import check_guarded

    assert check_guarded(lambda api, b: b(api.client().messages.create)) is True
    assert anthropic.DEFAULT_MAX_RETRIES == 2, (
        f"lesson 09: the SDK's default retries are now {anthropic.DEFAULT_MAX_RETRIES}; "
        "exercise 09.2 says 2 per request")
    capsys.readouterr()


def through_the_middleware(api: Any, breaker: Any) -> Any:
    from resilience.middleware import BreakerMiddleware

    return api.client(middleware=[BreakerMiddleware(breaker)]).messages.create


@pytest.mark.parametrize(("wrong", "says"), [
    (through_the_middleware, "after 1 failed request(s) the breaker is open"),
    (lambda api, b: b(api.client(max_retries=0).messages.create),
     "two 529s and then an answer raised OverloadedError"),
    (lambda api, b: api.client().messages.create, "after 3 failed request(s) the breaker is "
                                                   "closed"),
    (lambda api, b: b(api.client(max_retries=5).messages.create), "after 3 failed request(s)"),
    (lambda api, b: None, "return a function"),
], ids=["middleware", "no-sdk-retries", "no-breaker", "more-retries", "not-a-function"])
def test_exercise_09_2_rejects_plausible_wrong_answers(
        wrong: Any, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson09 import check_guarded

    assert check_guarded(wrong) is False, "lesson 09: exercise 09.2 accepts a wrong answer"
    assert says in capsys.readouterr().out
