"""Every factual claim lesson 02 ("Errors you fix, not retry") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, so neither can drift from the SDK unnoticed.
"""

from __future__ import annotations

import json
import random
import typing
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic._data.deprecated_models import DEPRECATED_MODELS

from resilience import ERRORS, MODEL, VirtualClock, classify, retry
from resilience.fakeapi import FAKE_API_KEY, Call, FakeClaude, error

HELLO = [{"role": "user", "content": "Hello, Claude"}]
FIXABLE = ["invalid_request_error", "authentication_error", "billing_error",
           "permission_error", "not_found_error", "request_too_large", "unprocessable_entity"]
GUIDE_LIST = {429, 500, 502, 503, 529}


def one_call(*outcomes: object, model: str = MODEL, max_retries: int = 2
             ) -> tuple[anthropic.APIStatusError, list[Call], float]:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*outcomes)
        with pytest.raises(anthropic.APIStatusError) as caught:
            api.client(max_retries=max_retries).messages.create(
                model=model, max_tokens=64, messages=HELLO)
    return caught.value, api.calls, clock.now()


@pytest.mark.parametrize("name", FIXABLE)
def test_the_sdk_and_classify_never_retry_the_seven(name: str) -> None:
    err, calls, _ = one_call(*[name] * 3)
    assert len(calls) == 1
    assert not classify(err).retryable
    assert err.status_code == ERRORS[name].status


def test_the_seven_statuses() -> None:
    assert [ERRORS[n].status for n in FIXABLE] == [400, 401, 402, 403, 404, 413, 422]
    assert "32 MB" in ERRORS["request_too_large"].advice


def test_the_retired_id_is_unknown_to_the_sdk_and_the_courses_id_is_current() -> None:
    retired = ERRORS["not_found_error"].message.removeprefix("model: ")
    known = typing.get_args(typing.get_args(anthropic.types.ModelParam)[0])
    assert retired not in known and retired not in DEPRECATED_MODELS
    assert MODEL in known and MODEL not in DEPRECATED_MODELS
    err, calls, _ = one_call("not_found_error", model=retired)
    assert (type(err).__name__, err.status_code, len(calls)) == ("NotFoundError", 404, 1)
    assert retired in (err.api_message or "")


def test_the_sdk_retries_a_spend_limit_twice_by_default() -> None:
    err, calls, seconds = one_call(*["spend_limit_reached"] * 3)
    assert type(err).__name__ == "EnforcedSpendLimitReachedError"
    assert isinstance(err, anthropic.RateLimitError)
    assert err.error_code == "enforced_spend_limit_reached"
    assert [c.status for c in calls] == [429] * 3
    assert f"{seconds:.3f}" == "1.205"
    assert str(classify(err)) == "spend_limit 429 (not retryable)"


def test_x_should_retry_false_stops_the_sdk() -> None:
    _, calls, seconds = one_call(*[error("spend_limit_reached", should_retry=False)] * 3)
    assert (len(calls), seconds) == (1, 0.0)


def test_resilience_retry_with_max_retries_0_sends_one_attempt() -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*["spend_limit_reached"] * 3)
        ask = retry(attempts=4, clock=clock, rng=random.Random(7))(
            api.client(max_retries=0).messages.create)
        with pytest.raises(anthropic.RateLimitError):
            ask(model=MODEL, max_tokens=64, messages=HELLO)
    assert (len(api.calls), clock.now()) == (1, 0.0)


def guide_style_retry(call: Callable[[], Any], clock: VirtualClock, tries: int = 5) -> Any:
    for attempt in range(tries):
        try:
            return call()
        except anthropic.APIStatusError as e:
            if attempt == tries - 1 or e.status_code not in GUIDE_LIST:
                raise
            clock.sleep(2**attempt)
    return None


@pytest.mark.parametrize(("tries", "attempts"), [(5, 15), (3, 9)])
def test_a_loop_stacked_on_the_sdk_multiplies_its_attempts(tries: int, attempts: int) -> None:
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*["spend_limit_reached"] * attempts)
        client = api.client()
        with pytest.raises(anthropic.RateLimitError):
            guide_style_retry(lambda: client.messages.create(
                model=MODEL, max_tokens=64, messages=HELLO), clock, tries)
    assert len(api.calls) == attempts
    if tries == 5:
        assert f"{clock.now():.3f}" == "21.543"


def test_idempotency_key_is_a_type_error_before_any_request() -> None:
    with FakeClaude(clock=VirtualClock()) as api, pytest.raises(TypeError,
                                                                 match="idempotency_key"):
        api.client().messages.create(model=MODEL, max_tokens=64, messages=HELLO,
                                     idempotency_key="order-42")  # type: ignore[call-arg]
    assert api.calls == []


def test_the_key_is_in_the_request_but_not_in_the_message_or_body() -> None:
    err, _, _ = one_call("billing_error")
    assert FAKE_API_KEY not in str(err)
    assert FAKE_API_KEY not in json.dumps(err.body)
    assert err.request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    record = {"request_id": err.request_id, "status": err.status_code,
              "error_type": err.type, "error_code": err.error_code,
              "sdk_class": type(err).__name__}
    assert record == {"request_id": "req_fake_000001", "status": 402,
                      "error_type": "billing_error", "error_code": None,
                      "sdk_class": "PaymentRequiredError"}


def test_a_spend_limit_and_a_rate_limit_share_429_but_not_their_advice() -> None:
    spend, _, _ = one_call("spend_limit_reached", max_retries=0)
    rate, _, _ = one_call("rate_limit_error", max_retries=0)
    assert spend.status_code == rate.status_code == 429
    assert classify(spend).advice != classify(rate).advice


def test_an_ordinary_call_sends_no_idempotency_header() -> None:
    err, _, _ = one_call("billing_error", max_retries=0)
    assert not any("idempotency" in name for name in err.request.headers)
