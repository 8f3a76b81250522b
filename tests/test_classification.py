"""classify(): every SDK exception, response, status and odd input gets the right verdict."""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json

import anthropic
import httpx
import httpx2
import pytest
from anthropic._error_classes import ERROR_CLASSES
from hypothesis import given
from hypothesis import strategies as st
from sdk_responses import error_body, sdk_connection_error, sdk_error

from resilience import (
    ERRORS,
    CircuitOpenError,
    Fallback,
    Verdict,
    VirtualClock,
    classify,
    parse_retry_after,
    retry,
)
from resilience.catalogue import (
    ADVICE,
    RETRYABLE_CATEGORIES,
    RETRYABLE_STATUSES,
    RETRYABLE_TYPES,
    SPEND_LIMIT_CODES,
    STATUS_CATEGORIES,
    is_retryable_status,
)
from resilience.classification import MAX_RETRY_AFTER

DOCUMENTED = {400: "invalid_request", 401: "authentication", 402: "billing", 403: "permission",
              404: "not_found", 409: "conflict", 413: "request_too_large", 429: "rate_limit",
              500: "api_error", 504: "timeout", 529: "overloaded"}


@pytest.mark.parametrize(("status", "category"), sorted(DOCUMENTED.items()))
def test_documented_statuses_have_the_pinned_categories(status: int, category: str) -> None:
    assert classify(status).category == category


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529, 520, 524, 599])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert classify(status).retryable


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 405, 413, 418, 422, 431, 499, 501])
def test_caller_errors_are_not_retryable(status: int) -> None:
    assert not classify(status).retryable


@pytest.mark.parametrize("spec", list(ERRORS.values()), ids=list(ERRORS))
def test_catalogue_entry_through_the_real_sdk(spec: object) -> None:
    """Catalogue body -> the SDK's own exception class -> the catalogue's verdict."""
    from resilience.catalogue import ErrorSpec

    assert isinstance(spec, ErrorSpec)
    headers = {**spec.headers}
    if spec.proxy_html:
        exc = sdk_error(spec.status, raw=spec.message.encode(),
                        headers={**headers, "content-type": "text/html"})
    else:
        exc = sdk_error(spec.status, spec.body("req_cat"), headers)
    assert type(exc).__name__ == spec.sdk_class
    assert isinstance(exc, getattr(anthropic, spec.sdk_class))
    verdict = classify(exc)
    assert (verdict.category, verdict.retryable, verdict.status) == (
        spec.category, spec.retryable, spec.status)
    assert verdict.request_id == "req_header"
    assert verdict.advice == ADVICE[spec.category] == spec.advice
    if not spec.proxy_html:
        assert verdict.error_type == spec.error_type
        assert verdict.error_code == spec.error_code


def test_the_documented_errors_are_the_catalogues_documented_rows() -> None:
    documented = {s.status: s.category for s in ERRORS.values() if s.documented}
    assert documented == DOCUMENTED
    assert ERRORS["conflict_error"].sdk_class == "ConflictError"
    assert ERRORS["conflict_error"].retryable


def test_the_retry_rule_is_derived_from_the_catalogue_alone() -> None:
    """One home: the statuses, the mid-stream types and each spec follow RETRYABLE_CATEGORIES."""
    assert set(RETRYABLE_STATUSES) == {408, 409, 429}
    assert [s for s in range(100, 1000) if is_retryable_status(s)] == [
        s for s in range(100, 1000) if s in (408, 409, 429) or (s >= 500 and s != 501)]
    assert set(RETRYABLE_TYPES) == {"overloaded_error", "api_error", "rate_limit_error",
                                    "timeout_error", "conflict_error"}
    for spec in ERRORS.values():
        assert spec.retryable is (spec.category in RETRYABLE_CATEGORIES), spec.name
    assert set(STATUS_CATEGORIES.values()) | RETRYABLE_CATEGORIES <= set(ADVICE)
    assert "spend_limit" not in RETRYABLE_CATEGORIES
    assert "not_implemented" not in RETRYABLE_CATEGORIES


def _sdk_pairs() -> list[tuple[int, str | None]]:
    return sorted(ERROR_CLASSES, key=lambda k: (k[0], k[1] or ""))


@pytest.mark.parametrize(("status", "code"), _sdk_pairs(),
                         ids=[f"{s}-{c}" for s, c in _sdk_pairs()])
def test_every_sdk_status_error_class_is_classified(status: int, code: str | None) -> None:
    """Walk the SDK's own table of (status, error_code) -> class, not a hand list."""
    exc = sdk_error(status, error_body("api_error" if status >= 500 else "invalid_request_error",
                                       error_code=code))
    assert type(exc) is ERROR_CLASSES[(status, code)]
    verdict = classify(exc)
    expected = (status in (408, 409, 429) or (status >= 500 and status != 501)) \
        and code not in SPEND_LIMIT_CODES
    assert verdict.retryable is expected
    assert verdict.status == status
    assert verdict.category in ADVICE
    assert verdict.advice


def _all_sdk_exception_classes() -> list[type[BaseException]]:
    seen: dict[str, type[BaseException]] = {}
    stack: list[type[BaseException]] = [anthropic.AnthropicError]
    while stack:
        cls = stack.pop()
        seen[f"{cls.__module__}.{cls.__qualname__}"] = cls
        stack.extend(cls.__subclasses__())
    return [seen[k] for k in sorted(seen)]


def test_the_walk_finds_the_sdk_exception_tree() -> None:
    names = {c.__name__ for c in _all_sdk_exception_classes()}
    assert {"OverloadedError", "APITimeoutError", "EnforcedSpendLimitReachedError"} <= names
    assert len(names) >= 50


def test_every_sdk_exception_class_gets_a_verdict_without_crashing() -> None:
    """Even classes built without their usual arguments still classify (never raise)."""
    for cls in _all_sdk_exception_classes():
        exc = cls.__new__(cls)
        verdict = classify(exc)
        assert isinstance(verdict, Verdict), cls
        assert verdict.category in ADVICE, cls


def test_connection_and_timeout_from_the_sdk() -> None:
    timeout = sdk_connection_error(httpx2.ReadTimeout("slow"))
    assert type(timeout) is anthropic.APITimeoutError
    assert (classify(timeout).category, classify(timeout).retryable) == ("timeout", True)
    dropped = sdk_connection_error(httpx2.ConnectError("reset"))
    assert type(dropped) is anthropic.APIConnectionError
    assert (classify(dropped).category, classify(dropped).retryable) == ("connection", True)


def test_x_should_retry_overrides_both_ways() -> None:
    no = sdk_error(529, error_body("overloaded_error"), {"x-should-retry": "false"})
    assert classify(no).category == "overloaded"
    assert not classify(no).retryable
    yes = sdk_error(400, error_body("invalid_request_error"), {"x-should-retry": "true"})
    assert classify(yes).retryable


def test_the_tier_cap_429_has_an_error_code_and_no_retry_after() -> None:
    spec = ERRORS["spend_limit_reached"]
    assert (spec.status, spec.error_type, spec.error_code) == (
        429, "rate_limit_error", "enforced_spend_limit_reached")
    assert "retry-after" not in spec.headers and "retry-after-ms" not in spec.headers
    assert "You have reached your specified" not in spec.message  # that is the 400's message


def test_a_spend_limit_you_set_is_a_400_with_a_message_and_no_code() -> None:
    spec = ERRORS["workspace_spend_limit"]
    assert (spec.status, spec.error_type, spec.error_code, spec.sdk_class) == (
        400, "invalid_request_error", None, "BadRequestError")
    assert spec.message.startswith("You have reached your specified workspace API usage limits")
    exc = sdk_error(400, spec.body())
    assert type(exc) is anthropic.BadRequestError
    verdict = classify(exc)
    assert (verdict.category, verdict.retryable) == ("spend_limit", False)
    assert verdict.advice == ADVICE["spend_limit"] != ADVICE["invalid_request"]
    organization = error_body("invalid_request_error", "You have reached your specified API "
                              "usage limits. You will regain access on 2026-12-01 at 00:00 UTC.")
    assert classify(sdk_error(400, organization)).category == "spend_limit"
    plain = classify(sdk_error(400, error_body("invalid_request_error",
                                               "max_tokens: usage limits are not a field")))
    assert (plain.category, plain.retryable) == ("invalid_request", False)
    response = httpx2.Response(400, content=json.dumps(spec.body()).encode())
    assert (classify(response).category, classify(response).retryable) == ("spend_limit", False)
    assert classify(httpx2.Response(400, content=b"You have reached your specified API usage "
                                                 b"limits.")).category == "invalid_request"


@pytest.mark.parametrize("error", [
    "You have reached your specified workspace API usage limits.",  # error is a bare string
    {"type": "invalid_request_error", "message": 7},
    {"type": "invalid_request_error", "message": None, "details": "x"},
    {"message": ["You have reached your specified workspace API usage limits."]},
])
def test_a_400_with_an_odd_body_is_an_invalid_request(error: object) -> None:
    verdict = classify(sdk_error(400, {"type": "error", "error": error}))
    assert (verdict.category, verdict.retryable, verdict.status) == (
        "invalid_request", False, 400)


def test_spend_limit_429_is_not_retryable_but_a_plain_429_is() -> None:
    body = error_body("rate_limit_error", error_code="enforced_spend_limit_reached")
    spend = sdk_error(429, body)
    assert isinstance(spend, anthropic.RateLimitError)
    assert (classify(spend).category, classify(spend).retryable) == ("spend_limit", False)
    plain = sdk_error(429, error_body("rate_limit_error"), {"retry-after": "7"})
    assert (classify(plain).retryable, classify(plain).retry_after) == (True, 7.0)


def _mid_stream(error_type: str) -> anthropic.APIStatusError:
    """An error event inside a 200 SSE stream, raised by the SDK while iterating."""
    sse = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
        '"type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,'
        '"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        f'event: error\ndata: {{"type":"error","error":{{"type":"{error_type}",'
        '"message":"mid-stream"}}\n\n'
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream",
                                             "request-id": "req_stream"}, content=sse.encode())

    client = anthropic.Anthropic(api_key="test-key-not-real", max_retries=0,
                                 http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    stream = client.messages.create(model="m", max_tokens=8, stream=True,
                                    messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.APIStatusError) as info:
        for _ in stream:
            pass
    return info.value


def test_mid_stream_overload_is_classified_by_type_not_status() -> None:
    exc = _mid_stream("overloaded_error")
    assert exc.status_code == 200
    verdict = classify(exc)
    assert (verdict.category, verdict.retryable, verdict.status) == ("overloaded", True, 200)
    assert verdict.error_type == "overloaded_error"


def test_mid_stream_invalid_request_is_not_retryable() -> None:
    verdict = classify(_mid_stream("invalid_request_error"))
    assert (verdict.category, verdict.retryable) == ("invalid_request", False)


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(1)])
def test_cancellation_is_never_retryable(exc: BaseException) -> None:
    assert (classify(exc).category, classify(exc).retryable) == ("cancelled", False)


@pytest.mark.parametrize("exc", [TypeError("x"), ValueError("x"), KeyError("x"),
                                 AttributeError("x"), ZeroDivisionError()])
def test_programming_errors_are_never_retryable(exc: BaseException) -> None:
    assert (classify(exc).category, classify(exc).retryable) == ("programming_error", False)


def test_builtin_network_errors_are_retryable() -> None:
    assert classify(TimeoutError()).category == "timeout"
    assert classify(ConnectionResetError()).category == "connection"
    assert classify(httpx.ConnectError("x")).category == "connection"
    assert classify(httpx2.ReadTimeout("x")).category == "timeout"
    assert classify(RuntimeError("?")).category == "unknown"
    assert not classify(RuntimeError("?")).retryable


def test_an_open_circuit_says_when_to_come_back() -> None:
    verdict = classify(CircuitOpenError("claude", "open", 12.5))
    assert (verdict.category, verdict.retryable, verdict.retry_after) == (
        "circuit_open", False, 12.5)


@pytest.mark.parametrize("module", [httpx, httpx2])
def test_responses_from_httpx_and_httpx2(module: object) -> None:
    response = module.Response(  # type: ignore[attr-defined]
        529, headers={"request-id": "req_r", "retry-after-ms": "1500", "retry-after": "9"},
        content=json.dumps(error_body("overloaded_error")).encode())
    verdict = classify(response)
    assert (verdict.category, verdict.retry_after, verdict.request_id) == (
        "overloaded", 1.5, "req_r")


@pytest.mark.parametrize("content", [b"", b"<html><h1>502 Bad Gateway</h1></html>", b"\xff\xfe",
                                     b"null", b"[1,2]", b'{"error": "flat string"}',
                                     b'{"error": {"type": 7, "details": []}}'])
def test_malformed_bodies_are_classified_by_status(content: bytes) -> None:
    verdict = classify(httpx2.Response(502, headers={"retry-after": "soon"}, content=content))
    assert (verdict.category, verdict.retryable, verdict.retry_after) == (
        "bad_gateway", True, None)


def test_things_that_are_not_errors_are_unknown() -> None:
    for thing in [None, "529", 3.5, object(), True]:
        assert classify(thing).category == "unknown"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"Retry-After": "3"}, 3.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
    ({"retry-after": "-4"}, None),
    ({"retry-after": "0"}, None),
    ({"retry-after-ms": "0", "retry-after": "9"}, None),
    ({"retry-after-ms": "-5", "retry-after": "9"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "inf"}, MAX_RETRY_AFTER),
    ({"retry-after": "1e308"}, MAX_RETRY_AFTER),
    ({"retry-after": "4294968"}, 4_294_967.0),
    ({"retry-after": "120"}, 120.0),
    ({"retry-after": ""}, None),
    ({"retry-after": "Wed, 99 Foo 2015 07:28:00 GMT"}, None),
    ({"retry-after": "Fri, 31 Dec 99999 23:59:59 GMT"}, None),
    ({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, None),
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def _sdk_wait(headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> float:
    """The SDK's own wait before its first retry after a response with these headers."""
    import anthropic._base_client as sdk_base
    from anthropic._models import FinalRequestOptions

    monkeypatch.setattr(sdk_base, "random", lambda: 0.5)  # backoff 0.5 * (1 - 0.125)
    client = anthropic.Anthropic(api_key="test-key-not-real", max_retries=2)
    options = FinalRequestOptions.construct(method="post", url="/v1/messages")
    return client._calculate_retry_timeout(2, options, httpx2.Headers(headers))


@pytest.mark.parametrize("headers", [
    {"retry-after": "7"}, {"retry-after": "0.25"}, {"retry-after": "0"}, {"retry-after": "-3"},
    {"retry-after": "nan"}, {"retry-after": "inf"}, {"retry-after": "1e308"},
    {"retry-after": "junk"}, {"retry-after-ms": "1500", "retry-after": "9"},
    {"retry-after-ms": "-5", "retry-after": "9"}, {"retry-after-ms": "junk", "retry-after": "2"},
    {"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, {},
])
def test_parse_retry_after_gives_the_sdks_own_wait(headers: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A number is the SDK's wait; None means the SDK used its backoff (0.4375 s here)."""
    ours = parse_retry_after(headers)
    sdk = _sdk_wait(headers, monkeypatch)
    assert sdk == (0.4375 if ours is None else ours)


BAD_DATE = "Fri, 31 Dec 99999 23:59:59 GMT"


def test_an_unparseable_retry_after_date_does_not_hide_a_529() -> None:
    """Bug 1 (issue 9): the date made classify crash into 'unknown, not retryable'."""
    exc = sdk_error(529, error_body("overloaded_error"), {"retry-after": BAD_DATE})
    assert type(exc) is anthropic.OverloadedError
    verdict = classify(exc)
    assert (verdict.category, verdict.retryable, verdict.retry_after) == (
        "overloaded", True, None)
    response = httpx2.Response(529, headers={"retry-after": BAD_DATE},
                               content=json.dumps(error_body("overloaded_error")).encode())
    assert (classify(response).category, classify(response).retryable) == ("overloaded", True)


def test_retry_and_fallback_see_through_an_unparseable_retry_after() -> None:
    exc = sdk_error(529, error_body("overloaded_error"), {"retry-after": BAD_DATE})
    calls: list[int] = []

    @retry(attempts=3, clock=VirtualClock())
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise exc
        return "ok"

    assert (flaky(), len(calls)) == ("ok", 3)

    def overloaded(prompt: str) -> str:
        raise exc

    served = Fallback([("claude", overloaded), ("static", lambda p: "busy")]).call("hi")
    assert (served.step, served.value) == ("static", "busy")


def test_retry_after_as_an_http_date_is_read_against_now() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == 30.0
    assert parse_retry_after({"retry-after": header}, now=now + 60) is None


@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms", "x-should-retry",
                                        "request-id", "other"]), st.text(max_size=40)),
       st.binary(max_size=200), st.integers(min_value=100, max_value=999))
def test_classifier_never_crashes_on_any_response(headers: dict[str, str], body: bytes,
                                                  status: int) -> None:
    try:
        response = httpx2.Response(status, headers=headers, content=body)
    except Exception:  # httpx2 itself refuses some header values; nothing to classify then
        return
    verdict = classify(response)
    assert verdict.category in ADVICE
    assert verdict.retry_after is None or verdict.retry_after >= 0


def test_verdict_is_immutable_and_reads_well() -> None:
    verdict = classify(529)
    with pytest.raises(AttributeError):
        verdict.retryable = False  # type: ignore[misc]
    assert str(verdict) == "overloaded 529 (retryable)"
    assert inspect.signature(classify).parameters.keys() == {"x"}


def test_a_spend_limit_inside_a_200_is_a_spend_limit_too() -> None:
    # A Message Batch item or a mid-stream error carries the body without its 429.
    import httpx2

    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "cap",
                                       "details": {"error_code": "enforced_spend_limit_reached"}}}
    verdict = classify(httpx2.Response(200, json=body))
    assert (verdict.category, verdict.retryable) == ("spend_limit", False)
    plain = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert classify(httpx2.Response(200, json=plain)).category == "rate_limit"
