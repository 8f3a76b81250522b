"""Every factual claim lesson 01 ("The error catalogue") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, so neither can drift from the SDK unnoticed.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest

from resilience import ERRORS, VirtualClock, classify
from resilience.testing import FakeClaude

STOPS_AT_504 = {429, 500, 502, 503, 504}
GUIDE_LIST = {429, 500, 502, 503, 529}


def raised(value: object) -> anthropic.APIStatusError:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        error = api.raised(value)
    assert isinstance(error, anthropic.APIStatusError), error
    return error


def descendants(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | descendants(sub)
    return found


def test_first_ten_rows_are_documented_and_the_last_four_met_in_the_field() -> None:
    specs = list(ERRORS.values())
    assert len(specs) == 14
    assert all(s.documented for s in specs[:10])
    assert [(s.name, s.status) for s in specs[10:]] == [
        ("spend_limit_reached", 429), ("unprocessable_entity", 422),
        ("service_unavailable", 503), ("bad_gateway", 502)]
    assert not any(s.documented for s in specs[10:])


def test_two_names_share_429_rate_limit_error_but_only_one_is_retryable() -> None:
    rate, spend = ERRORS["rate_limit_error"], ERRORS["spend_limit_reached"]
    assert (rate.status, rate.error_type) == (spend.status, spend.error_type) == (
        429, "rate_limit_error")
    assert rate.retryable and not spend.retryable


@pytest.mark.parametrize("name", list(ERRORS))
def test_every_catalogued_error_raises_the_class_the_catalogue_names(name: str) -> None:
    spec = ERRORS[name]
    error = raised(name)
    assert type(error).__name__ == spec.sdk_class
    assert (error.status_code, classify(error).retryable) == (spec.status, spec.retryable)
    assert classify(error).category == spec.category


def test_a_502_has_no_class_of_its_own_and_no_error_type() -> None:
    error = raised("bad_gateway")
    assert type(error) is anthropic.InternalServerError
    assert classify(error).error_type is None and str(classify(error)) == (
        "bad_gateway 502 (retryable)")


def test_classify_reads_retry_after_from_the_429() -> None:
    verdict = classify(raised("rate_limit_error"))
    assert (verdict.retry_after, verdict.status, verdict.category) == (5.0, 429, "rate_limit")


def test_the_retry_rule_over_400_to_599() -> None:
    assert [s for s in range(400, 500) if classify(s).retryable] == [408, 409, 429]
    assert [s for s in range(500, 600) if not classify(s).retryable] == [501]
    assert not classify(raised("spend_limit_reached")).retryable


def test_the_sdk_has_over_a_hundred_status_error_classes() -> None:
    count = len(descendants(anthropic.APIStatusError))  # 151 in 2.14.0, 155 in 2.15.0
    assert count > 100, (
        f"lesson 01: the SDK now has {count} classes below APIStatusError; the lesson says "
        "more than a hundred")
    for narrow, base in [(anthropic.EnforcedSpendLimitReachedError, anthropic.RateLimitError),
                         (anthropic.OverloadedError, anthropic.InternalServerError)]:
        assert narrow in descendants(base), (
            f"lesson 01: {narrow.__name__} is no longer below {base.__name__}; the lesson "
            "says it is")
    assert "CompactionUnavailableError" in {c.__name__ for c in descendants(
        anthropic.OverloadedError)}, "lesson 01 (exercise 01.2) uses a 529 subclass that is gone"


@pytest.mark.parametrize(("status", "code", "expected"), [
    (429, None, "RateLimitError"),
    (429, "enforced_spend_limit_reached", "EnforcedSpendLimitReachedError"),
    (529, None, "OverloadedError"),
    (529, "compaction_unavailable", "CompactionUnavailableError"),
    (520, None, "InternalServerError"),
    (418, None, "APIStatusError"),
])
def test_the_class_is_chosen_by_status_and_error_code(status: int, code: str | None,
                                                      expected: str) -> None:
    details = {"details": {"error_code": code}} if code else {}
    body = {"type": "error", "error": {"type": "api_error", "message": "x", **details}}
    assert type(raised(httpx.Response(status, json=body))).__name__ == expected


def test_overloaded_unavailable_and_gateway_timeout_are_internal_server_errors() -> None:
    for cls in (anthropic.OverloadedError, anthropic.ServiceUnavailableError,
                anthropic.GatewayTimeoutError):
        assert issubclass(cls, anthropic.InternalServerError)
    assert not issubclass(anthropic.RateLimitError, anthropic.InternalServerError)
    assert issubclass(anthropic.EnforcedSpendLimitReachedError, anthropic.RateLimitError)


def test_the_wrong_except_order_sends_a_529_to_the_server_error_branch() -> None:
    def wrong_order(error: Exception) -> str:
        try:
            raise error
        except anthropic.InternalServerError:
            return "server"
        except anthropic.OverloadedError:  # never reached for a 529
            return "overloaded"

    assert wrong_order(raised("overloaded_error")) == "server"


def test_hand_written_lists_miss_statuses_the_api_sends() -> None:
    retryable = {s for s in range(400, 600) if classify(s).retryable}
    assert len(retryable) == 102
    assert len(retryable - STOPS_AT_504) == len(retryable - GUIDE_LIST) == 97
    assert {529, 520, 524} <= retryable - STOPS_AT_504
    assert 504 in retryable - GUIDE_LIST and 529 not in retryable - GUIDE_LIST
    assert 504 in STOPS_AT_504 and 529 not in STOPS_AT_504
