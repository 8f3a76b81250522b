"""Every factual claim lesson 01 ("The error catalogue") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, so neither can drift from the SDK unnoticed.
"""

from __future__ import annotations

import anthropic
import httpx
import pytest
from lesson_code import run_lesson

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


# The API's public error list (REFERENCE.md 2), 409 conflict_error included.
DOCUMENTED = [400, 401, 402, 403, 404, 409, 413, 429, 500, 504, 529]


def test_first_eleven_rows_are_documented_and_the_last_five_met_in_the_field() -> None:
    specs = list(ERRORS.values())
    assert len(specs) == 16, f"lesson 01: the catalogue has {len(specs)} rows; it says 16"
    assert [s.status for s in specs[:11]] == DOCUMENTED, (
        "lesson 01: the first eleven rows are no longer the documented errors")
    assert all(s.documented for s in specs[:11])
    assert [(s.name, s.status) for s in specs[11:]] == [
        ("workspace_spend_limit", 400), ("spend_limit_reached", 429),
        ("unprocessable_entity", 422), ("service_unavailable", 503), ("bad_gateway", 502)]
    assert not any(s.documented for s in specs[11:])
    documented = run_lesson("01_error_catalogue")["documented"]
    assert documented == DOCUMENTED, f"lesson 01 prints {documented} as documented"


def test_the_documented_409_is_a_retryable_conflict_error() -> None:
    spec = ERRORS["conflict_error"]
    assert (spec.status, spec.sdk_class, spec.retryable) == (409, "ConflictError", True)
    error = raised("conflict_error")
    assert type(error) is anthropic.ConflictError, (
        f"lesson 01: the SDK raises {type(error).__name__} for a 409; the lesson says "
        "ConflictError")


def test_two_statuses_carry_two_names_each() -> None:
    rate, spend = ERRORS["rate_limit_error"], ERRORS["spend_limit_reached"]
    assert (rate.status, rate.error_type) == (spend.status, spend.error_type) == (
        429, "rate_limit_error")
    assert rate.retryable and not spend.retryable
    fix, yours = ERRORS["invalid_request_error"], ERRORS["workspace_spend_limit"]
    assert (fix.status, fix.error_type) == (yours.status, yours.error_type) == (
        400, "invalid_request_error")
    assert (fix.category, yours.category) == ("invalid_request", "spend_limit")


def test_both_spend_limits_are_not_retryable_and_only_the_429_has_a_class() -> None:
    tier, yours = raised("spend_limit_reached"), raised("workspace_spend_limit")
    assert type(tier) is anthropic.EnforcedSpendLimitReachedError
    assert type(yours) is anthropic.BadRequestError, (
        f"lesson 01: a spend limit you set now raises {type(yours).__name__}; the lesson "
        "says a plain BadRequestError")
    assert str(classify(tier)) == "spend_limit 429 (not retryable)"
    assert str(classify(yours)) == "spend_limit 400 (not retryable)"


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


def test_checker_01_2_rejects_a_spend_limit_found_by_its_class_only(
        capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson01 import check_action_for

    def by_class_only(e: anthropic.APIStatusError) -> str:
        if isinstance(e, anthropic.OverloadedError):
            return "overloaded"
        if isinstance(e, anthropic.InternalServerError):
            return "server_error"
        if isinstance(e, anthropic.EnforcedSpendLimitReachedError):  # misses the 400
            return "spend_limit"
        if isinstance(e, anthropic.RateLimitError):
            return "rate_limit"
        return "fix_request"

    assert check_action_for(by_class_only) is False
    out = capsys.readouterr().out
    assert "a 400 spend limit you set" in out and "only its message tells" in out
