"""Every factual claim lesson 02 ("Errors you fix, not retry") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, so neither can drift from the SDK unnoticed. Where a fact comes from the
lesson's own code (its ``one_call``, its list of fixable errors, the guide-style retry loop)
the tests run that code (``tests/lesson_code.py``), not a copy of it.
"""

from __future__ import annotations

import json
import random
from typing import Any

import anthropic
import pytest
from anthropic._data.deprecated_models import DEPRECATED_MODELS
from lesson_code import run_lesson

from resilience import ERRORS, MODEL, VirtualClock, classify, retry
from resilience.testing import FAKE_API_KEY, Call, FakeClaude, error


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped)."""
    return run_lesson("02_errors_you_fix")


def one_call(lesson: dict[str, Any], *outcomes: object, model: str = MODEL,
             max_retries: int = 2) -> tuple[anthropic.APIStatusError, list[Call], float]:
    """The lesson's ``one_call``, which must end in an error."""
    err, calls, seconds = lesson["one_call"](*outcomes, model=model, max_retries=max_retries)
    assert isinstance(err, anthropic.APIStatusError), f"{outcomes}: no error raised"
    return err, calls, seconds


def test_the_sdk_and_classify_never_retry_the_seven(lesson: dict[str, Any]) -> None:
    for name in lesson["FIXABLE"]:
        err, calls, _ = one_call(lesson, *[name] * 3)
        assert len(calls) == 1, name
        assert not classify(err).retryable, name
        assert err.status_code == ERRORS[name].status, name


def test_the_seven_statuses(lesson: dict[str, Any]) -> None:
    assert [ERRORS[n].status for n in lesson["FIXABLE"]] == [400, 401, 402, 403, 404, 413, 422]
    assert "32 MB" in ERRORS["request_too_large"].advice


def test_the_retired_id_is_unknown_to_the_sdk_and_the_courses_id_is_current(
        lesson: dict[str, Any]) -> None:
    retired, known = lesson["RETIRED"], lesson["known"]
    assert retired == ERRORS["not_found_error"].message.removeprefix("model: ")
    assert retired not in known and retired not in DEPRECATED_MODELS
    assert MODEL in known and MODEL not in DEPRECATED_MODELS
    err, calls, _ = one_call(lesson, "not_found_error", model=retired)
    assert (type(err).__name__, err.status_code, len(calls)) == ("NotFoundError", 404, 1)
    assert retired in (err.api_message or "")


def test_the_sdk_retries_a_spend_limit_twice_by_default(lesson: dict[str, Any]) -> None:
    err, calls, seconds = one_call(lesson, *["spend_limit_reached"] * 3)
    assert type(err).__name__ == "EnforcedSpendLimitReachedError"
    assert isinstance(err, anthropic.RateLimitError)
    assert err.error_code == "enforced_spend_limit_reached"
    assert [c.status for c in calls] == [429] * 3
    assert f"{seconds:.3f}" == "1.205"
    assert str(classify(err)) == "spend_limit 429 (not retryable)"


def test_a_spend_limit_you_set_is_a_400_the_sdk_does_not_retry(lesson: dict[str, Any]) -> None:
    err, calls, seconds = one_call(lesson, *["workspace_spend_limit"] * 3)
    assert (type(err).__name__, err.status_code, err.type, err.error_code) == (
        "BadRequestError", 400, "invalid_request_error", None), (
        f"lesson 02: a spend limit you set now raises {type(err).__name__} {err.status_code}; "
        "the lesson says a plain BadRequestError 400 with no error_code")
    assert (len(calls), seconds) == (1, 0.0), "lesson 02: the SDK now retries a 400"
    assert (err.api_message or "").startswith("You have reached your specified")
    assert str(classify(err)) == "spend_limit 400 (not retryable)"
    assert classify(err).advice != classify(one_call(lesson, "invalid_request_error")[0]).advice


def test_the_tier_cap_429_carries_no_retry_after(lesson: dict[str, Any]) -> None:
    err, _, _ = one_call(lesson, "spend_limit_reached", max_retries=0)
    assert "retry-after" not in err.response.headers
    assert "retry-after-ms" not in err.response.headers
    assert classify(err).retry_after is None


def test_x_should_retry_false_stops_the_sdk(lesson: dict[str, Any]) -> None:
    _, calls, seconds = one_call(lesson, *[error("spend_limit_reached", should_retry=False)] * 3)
    assert (len(calls), seconds) == (1, 0.0)


def test_resilience_retry_with_max_retries_0_sends_one_attempt(lesson: dict[str, Any]) -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*["spend_limit_reached"] * 3)
        ask = retry(attempts=4, clock=clock, rng=random.Random(7))(
            api.client(max_retries=0).messages.create)
        with pytest.raises(anthropic.RateLimitError):
            ask(model=MODEL, max_tokens=64, messages=lesson["HELLO"])
    assert (len(api.calls), clock.now()) == (1, 0.0)
    assert lesson["ours"] == (1, 0.0)              # what the lesson's run counted


@pytest.mark.parametrize(("tries", "attempts"), [(5, 15), (3, 9)])
def test_a_loop_stacked_on_the_sdk_multiplies_its_attempts(lesson: dict[str, Any], tries: int,
                                                           attempts: int) -> None:
    guide_style_retry = lesson["guide_style_retry"]
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*["spend_limit_reached"] * attempts)
        client = api.client()
        with pytest.raises(anthropic.RateLimitError):
            guide_style_retry(lambda: client.messages.create(
                model=MODEL, max_tokens=64, messages=lesson["HELLO"]), clock, tries)
    assert len(api.calls) == attempts
    if tries == 5:
        assert f"{clock.now():.3f}" == "21.543"
        count, seconds = lesson["stacked"]          # the lesson's own run, with tries=5
        assert (count, f"{seconds:.3f}") == (15, "21.543")


def test_idempotency_key_is_a_type_error_before_any_request(lesson: dict[str, Any]) -> None:
    with FakeClaude(clock=VirtualClock()) as api, pytest.raises(TypeError,
                                                                 match="idempotency_key"):
        api.client().messages.create(model=MODEL, max_tokens=64, messages=lesson["HELLO"],
                                     idempotency_key="order-42")  # type: ignore[call-arg]
    assert api.calls == []


def test_the_key_is_in_the_request_but_not_in_the_message_or_body(
        lesson: dict[str, Any]) -> None:
    err, _, _ = one_call(lesson, "billing_error")
    assert FAKE_API_KEY not in str(err)
    assert FAKE_API_KEY not in json.dumps(err.body)
    assert err.request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert lesson["record"] == {"request_id": "req_fake_000001", "status": 402,
                                "error_type": "billing_error", "error_code": None,
                                "sdk_class": "PaymentRequiredError"}


def test_a_spend_limit_and_a_rate_limit_share_429_but_not_their_advice(
        lesson: dict[str, Any]) -> None:
    spend, _, _ = one_call(lesson, "spend_limit_reached", max_retries=0)
    rate, _, _ = one_call(lesson, "rate_limit_error", max_retries=0)
    assert spend.status_code == rate.status_code == 429
    assert classify(spend).advice != classify(rate).advice


def test_checker_02_2_rejects_advice_looked_up_by_status(
        capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson02 import check_user_message

    from resilience.catalogue import ADVICE, category_for_status

    def by_status(e: anthropic.APIStatusError) -> str:
        return f"{ADVICE[category_for_status(e.status_code)]} (reference: {e.request_id})"

    assert check_user_message(by_status) is False
    assert "workspace_spend_limit" in capsys.readouterr().out


def test_an_ordinary_call_sends_no_idempotency_header(lesson: dict[str, Any]) -> None:
    err, _, _ = one_call(lesson, "billing_error", max_retries=0)
    assert not any("idempotency" in name for name in err.request.headers)
