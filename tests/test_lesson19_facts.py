"""Every factual claim lesson 19 ("Observability") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, through the real anthropic SDK answered by the simulated API, and check that
the exercises' checkers reject plausible wrong answers.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise
from typing import Any

import anthropic
import pytest
from course.lesson19 import (
    _HAND_MADE,
    REDACTED,
    During,
    _a_run,
    _Loud,
    _reference,
    check_on_call,
    check_prepare,
)
from lesson_code import run_lesson
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from resilience import MODEL
from resilience.middleware import Attempt, AttemptLog
from resilience.testing import FAKE_API_KEY, FailureRates, FakeClaude

PROMPT: list[Any] = [{"role": "user", "content": "Hi"}]
LESSON = "19_observability"


@pytest.fixture(scope="module")
def lesson() -> Iterator[dict[str, Any]]:
    """The lesson's namespace; the SDK's logger is given back as it was, after the module.

    The lesson sends the ``anthropic`` logger to its own buffer (and stops it propagating):
    other tests in this process must find it as they left it.
    """
    sdk_log = logging.getLogger("anthropic")
    saved = (list(sdk_log.handlers), sdk_log.propagate, sdk_log.level)
    try:
        yield run_lesson(LESSON)
    finally:
        sdk_log.handlers, sdk_log.propagate = saved[0], saved[1]
        sdk_log.setLevel(saved[2])


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, dict[str, Any]]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield spans, {"open_telemetry": {"tracer_provider": provider}}
    provider.shutdown()


# -- logs ---------------------------------------------------------------------------------

def test_one_json_line_per_attempt_with_its_request_id(lesson: dict[str, Any]) -> None:
    lesson["drain"]()
    logging.getLogger("anthropic").setLevel(logging.WARNING)
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        client = api.client(middleware=[AttemptLog(lesson["log_attempt"], clock=api.clock)])
        client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    lines = [json.loads(line) for line in lesson["drain"]().splitlines()]
    assert [(x["request_id"], x["status"], x["retry"]) for x in lines] == [
        ("req_fake_000001", 529, 0), ("req_fake_000002", 529, 1), ("req_fake_000003", 200, 2),
    ], f"lesson 19: the attempt log lines are now {lines}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_sdk_logs_each_retry_at_info_without_a_request_id() -> None:
    sdk_log, records = logging.getLogger("anthropic"), _Records()
    level = sdk_log.level
    sdk_log.addHandler(records)
    sdk_log.setLevel(logging.INFO)
    try:
        with FakeClaude(seed=0) as api:
            api.respond("overloaded_error", "overloaded_error", "ok")
            api.client().messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    finally:
        sdk_log.removeHandler(records)
        sdk_log.setLevel(level)
    info = [r.getMessage() for r in records.records if r.levelno == logging.INFO]
    assert [m.split(" in ")[0] for m in info] == ["Retrying request to /v1/messages"] * 2, (
        f"lesson 19: the SDK's INFO lines for two retries are now {info}; the lesson shows "
        "one 'Retrying request to /v1/messages in ... seconds' line per retry")
    assert not any("req_fake" in m for m in info), (
        "lesson 19: the SDK's INFO retry lines now name a request id; the lesson says they "
        "do not")


def test_the_sdk_debug_log_has_the_prompt_and_the_request_id_but_not_the_key(
        lesson: dict[str, Any]) -> None:
    text = lesson["debug_text"]
    assert FAKE_API_KEY not in text, "lesson 19: the SDK's DEBUG log now contains the key"
    assert "4111 1111" in text, (
        "lesson 19: the SDK's DEBUG log no longer contains the prompt; the lesson warns "
        "that it does")
    assert "req_fake_000001" in text, (
        "lesson 19: the SDK's DEBUG log no longer names the request id")
    assert logging.getLogger("anthropic").level == logging.WARNING


def test_the_key_hides_in_the_request_headers() -> None:
    with FakeClaude(seed=0) as api:
        err = api.raised("authentication_error")
    assert isinstance(err, anthropic.APIStatusError)
    headers = err.request.headers
    assert headers["authorization"] == f"Bearer {FAKE_API_KEY}", (
        "lesson 19: the SDK no longer sends the key as 'authorization: Bearer ...'")
    assert FAKE_API_KEY not in str(headers) and FAKE_API_KEY not in repr(headers), (
        "lesson 19: httpx2 no longer masks the authorization header when it prints headers")
    assert FAKE_API_KEY in str(dict(headers)), (
        "lesson 19: a dict of the request headers no longer shows the key")
    assert FAKE_API_KEY not in str(err) and FAKE_API_KEY not in json.dumps(err.body)


def test_the_lesson_shows_one_safe_line_and_one_leak(lesson: dict[str, Any]) -> None:
    lesson["drain"]()
    log, err = lesson["log"], lesson["err"]
    log.error("call failed: %s", err.request.headers, extra={"request_id": err.request_id})
    log.error("call failed: %s", dict(err.request.headers),
              extra={"request_id": err.request_id})
    leaks = [FAKE_API_KEY in line for line in lesson["drain"]().splitlines()]
    assert leaks == [False, True], f"lesson 19: the key in each line is now {leaks}"


# -- spans --------------------------------------------------------------------------------

def _spans(exporter: InMemorySpanExporter) -> Sequence[ReadableSpan]:
    return exporter.get_finished_spans()


def test_one_client_span_per_call_covering_its_retries(
        exporter: tuple[InMemorySpanExporter, dict[str, Any]]) -> None:
    spans, traced = exporter
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        api.client(**traced).messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    finished = _spans(spans)
    assert (len(api.calls), len(finished)) == (3, 1), (
        f"lesson 19: 3 attempts now make {len(finished)} spans; the lesson says one span per "
        "call, none per attempt")
    span = finished[0]
    assert (span.name, span.kind, span.status.status_code) == (
        "anthropic.messages.create", SpanKind.CLIENT, StatusCode.OK), (
        f"lesson 19: the span is now {span.name} {span.kind} {span.status.status_code}")
    attributes = dict(span.attributes or {})
    assert {name: attributes.get(name) for name in (
        "anthropic.request.id", "http.request.resend_count", "http.response.status_code",
        "gen_ai.operation.name", "gen_ai.request.model")} == {
        "anthropic.request.id": "req_fake_000003", "http.request.resend_count": 2,
        "http.response.status_code": 200, "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
    }, f"lesson 19: the span's attributes are now {attributes}"
    assert "error.type" not in attributes
    assert span.parent is None and not span.events


def test_a_failed_call_s_span_is_an_error_with_the_api_s_type(
        exporter: tuple[InMemorySpanExporter, dict[str, Any]]) -> None:
    spans, traced = exporter
    with FakeClaude(seed=0) as api:
        api.raised(*["overloaded_error"] * 3, max_retries=2, **traced)
    (span,) = _spans(spans)
    attributes = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR, "lesson 19: a failed call's span is OK"
    assert (attributes.get("error.type"), attributes.get("http.response.status_code"),
            attributes.get("http.request.resend_count"),
            attributes.get("anthropic.request.id")) == (
        "overloaded_error", 529, 2, "req_fake_000003"), (
        f"lesson 19: a call failing three times with 529 now has the attributes {attributes}")


def test_a_stream_s_span_ends_when_the_stream_is_read(
        exporter: tuple[InMemorySpanExporter, dict[str, Any]]) -> None:
    spans, traced = exporter
    with FakeClaude(seed=0) as api:
        stream = api.client(**traced).messages.create(model=api.model, max_tokens=64,
                                                      messages=PROMPT, stream=True)
        before = len(_spans(spans))
        for _ in stream:
            pass
        after = len(_spans(spans))
    assert (before, after) == (0, 1), (
        f"lesson 19: a streamed call's span count is now {before} after create() and "
        f"{after} after reading; the lesson says 0 and 1")


def test_attempts_become_events_on_the_current_call_span(
        lesson: dict[str, Any], exporter: tuple[InMemorySpanExporter, dict[str, Any]]) -> None:
    spans, traced = exporter
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        client = api.client(middleware=[AttemptLog(lesson["add_to_span"], clock=api.clock)],
                            **traced)
        client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    (span,) = _spans(spans)
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert [(name, a["retry"], a["status"], a["request_id"]) for name, a in events] == [
        ("attempt", 0, 529, "req_fake_000001"), ("attempt", 1, 529, "req_fake_000002"),
        ("attempt", 2, 200, "req_fake_000003")], (
        f"lesson 19: the SDK no longer makes the call span current during its attempts: "
        f"events {events}")
    wait = events[1][1]["wait_s"]
    assert "wait_s" not in events[0][1] and isinstance(wait, float) and 0.375 <= wait <= 0.5, (
        "lesson 19: the first retry's wait is outside the SDK's 0.375-0.5 s band")


def test_the_lesson_printed_the_same_span_facts(lesson: dict[str, Any]) -> None:
    assert lesson["words"], "lesson 19: the streamed call returned no text"
    assert lesson["finished"][0].name == "anthropic.messages.create"


# -- listeners and the bad hour ------------------------------------------------------------

def test_an_attempt_log_callback_that_raises_is_logged_and_the_call_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(attempt: Attempt) -> None:
        raise RuntimeError("metrics backend down")

    with FakeClaude(seed=0) as api:
        client = api.client(middleware=[AttemptLog(broken, clock=api.clock)])
        with caplog.at_level("ERROR", logger="resilience.middleware"):
            message = client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    assert message.content[0].type == "text", (
        "lesson 19: the lesson says an AttemptLog callback that raises never fails the call")
    assert [call.status for call in api.calls] == [200]
    assert "metrics backend down" in caplog.text, (
        "lesson 19: the lesson says a raising AttemptLog callback is logged")


def test_the_bad_hour_counters(lesson: dict[str, Any]) -> None:
    metrics = dict(lesson["METRICS"])
    assert metrics == {
        "attempt 200": 126, "attempt 429": 4, "attempt 500": 1, "attempt 529": 35,
        "attempt refused": 30, "breaker closed -> open": 1, "breaker half_open -> closed": 1,
        "breaker half_open -> open": 12, "breaker open -> half_open": 13,
        "budget denied": 24, "budget granted": 12,
    }, f"lesson 19: the bad hour's counters are now {metrics}"
    assert dict(lesson["FAILED"]) == {"CircuitOpenError": 30, "OverloadedError": 24}, (
        f"lesson 19: the calls that failed are now {dict(lesson['FAILED'])}")


def test_the_bad_hour_story(lesson: dict[str, Any]) -> None:
    history = lesson["breaker"].history
    opened = [t for t, state in history if state == "open"]
    assert 1800 <= opened[0] < 1800 + 60, (
        f"lesson 19: the breaker first opens at t={opened[0]:.0f} s; the lesson says it stays "
        "closed through the brown-out and opens early in the outage (t=1800 s)")
    closed_at = history[-1][0]
    assert history[-1][1] == "closed" and 2520 < opened[-1] < closed_at, (
        "lesson 19: the lesson says a background 500 re-opened the breaker just after the "
        f"outage (t=2520 s): opened at {opened[-1]:.0f} s, closed at {closed_at:.0f} s")
    gaps = {round(b - a) for a, b in pairwise(opened)}
    assert gaps == {60}, f"lesson 19: the trials are {gaps} s apart, not once a minute"
    assert lesson["per_bin"]("500") == [0] * 21 + [1] + [0] * 8, (
        "lesson 19: the one 500 is no longer in the 42-44 min bin the lesson points at")
    totals = [sum(lesson["per_bin"](kind)[i] for kind in lesson["KINDS"]) for i in range(30)]
    assert max(totals[5:10]) > 6 and totals[7] == totals[9] == 6 and max(totals[:5]) <= 7, (
        f"lesson 19: attempts per bin in the brown-out are now {totals[5:10]}; the lesson "
        "says they climb above 6, then fall back to 6")
    tokens = lesson["TOKENS"]
    assert min(n for t, n in tokens if 600 <= t < 1200) < 1.0, (
        "lesson 19: the brown-out no longer empties the budget")
    assert [n for t, n in tokens if t >= 3400] == [5.0] * len(
        [t for t, _ in tokens if t >= 3400]), "lesson 19: the budget no longer refills"


def test_during_applies_its_scenario_only_in_its_window() -> None:
    window = During(10.0, 20.0, FailureRates({"overloaded_error": 1.0}))
    with FakeClaude(seed=0) as api:
        api.scenario(window)
        statuses = []
        for t in (0.0, 10.0, 19.9, 20.0):
            api.clock.advance(t - api.clock.now())
            statuses.append(api.raised() is None)
    assert statuses == [True, False, False, True]
    with pytest.raises(ValueError, match="start must be <= end"):
        During(5.0, 1.0, window)


# -- the exercises' checkers reject plausible wrong answers ---------------------------------

def _request_id(record: logging.LogRecord) -> None:
    if getattr(record, "request_id", None) is None:
        error = record.exc_info[1] if record.exc_info else None
        record.request_id = getattr(error, "request_id", None)


def drops_the_key_s_records(record: logging.LogRecord, key: str) -> bool:
    _request_id(record)
    return key not in record.getMessage()


def redacts_msg_only(record: logging.LogRecord, key: str) -> bool:
    _request_id(record)
    record.msg = str(record.msg).replace(key, REDACTED)
    return True


def keeps_args(record: logging.LogRecord, key: str) -> bool:
    _request_id(record)
    record.msg = record.getMessage().replace(key, REDACTED)
    return True


def redacts_each_arg(record: logging.LogRecord, key: str) -> bool:
    _request_id(record)
    record.msg = str(record.msg).replace(key, REDACTED)
    record.args = tuple(str(a).replace(key, REDACTED) for a in record.args or ())
    return True


def no_id_from_the_error(record: logging.LogRecord, key: str) -> bool:
    record.request_id = getattr(record, "request_id", None)
    record.msg, record.args = record.getMessage().replace(key, REDACTED), ()
    return True


def error_id_wins(record: logging.LogRecord, key: str) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    record.request_id = getattr(error, "request_id", getattr(record, "request_id", None))
    record.msg, record.args = record.getMessage().replace(key, REDACTED), ()
    return True


def masks_differently(record: logging.LogRecord, key: str) -> bool:
    _request_id(record)
    record.msg, record.args = record.getMessage().replace(key, "***"), ()
    return True


@pytest.mark.parametrize(("wrong", "complaint"), [
    (drops_the_key_s_records, "Keep every record"),
    (redacts_msg_only, "not only in record.msg"),
    (keeps_args, "Your code raised TypeError"),
    (redacts_each_arg, "Your code raised TypeError"),
    (no_id_from_the_error, "else take the logged exception's"),
    (error_id_wins, "keep one given with extra="),
    (masks_differently, "[REDACTED]"),
], ids=["drops records", "msg only", "args kept", "each arg", "no id from the error",
        "error id wins", "another mask"])
def test_checker_19_1_rejects_wrong_filters(wrong: Any, complaint: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert check_prepare(wrong) is False
    assert complaint in capsys.readouterr().out


def test_checker_19_1_leaves_no_handler_behind() -> None:
    logger = logging.getLogger("course.lesson19.check")
    before = list(logger.handlers)
    check_prepare(keeps_args)  # its filter makes the checker's handler raise
    assert logger.handlers == before and not any(isinstance(h, _Loud) for h in before)


def _on_call(**changes: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    def on_call(attempts: Sequence[Attempt], history: Sequence[tuple[float, str]],
                until: float) -> dict[str, Any]:
        result = _reference(attempts, history, until)
        for name, change in changes.items():
            result[name] = change(attempts, history, until)
        return result
    return on_call


def _open_time(history: Sequence[tuple[float, str]], until: float, *,
               states: tuple[str, ...] = ("open",), tail: bool = True) -> float:
    ends = [t for t, _ in history[1:]] + [until]
    pairs = list(zip(history, ends, strict=True))
    if not tail:
        pairs = pairs[:-1]
    return sum(end - start for (start, state), end in pairs if state in states)


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_on_call(calls=lambda a, h, u: len(a)), "count first attempts only"),
    (_on_call(retries=lambda a, h, u: sum(1 for x in a if x.retry > 0)),
     "A refused retry never reached it"),
    (_on_call(refused=lambda a, h, u: sum(1 for x in a if x.status is None)),
     "count attempts that were not sent"),
    (_on_call(errors=lambda a, h, u: dict(Counter(
        str(x.status) if x.status is not None else str(x.error) for x in a
        if x.status is None or x.status >= 400))), "a refused attempt is not an error"),
    (_on_call(errors=lambda a, h, u: dict(Counter(
        x.status if x.status is not None else str(x.error) for x in a
        if x.sent and (x.status is None or x.status >= 400)))), "by str(status)"),
    (_on_call(errors=lambda a, h, u: dict(Counter(
        str(x.status) for x in a if x.sent and x.status is not None and x.status >= 400))),
     "by the error's name"),
    (_on_call(opened=lambda a, h, u: sum(
        1 for (_, old), (_, new) in pairwise(h)
        if old == "closed" and new == "open")), "a re-opening after a failed trial"),
    (_on_call(open_seconds=lambda a, h, u: _open_time(h, u, tail=False)),
     "still open at the end"),
    (_on_call(open_seconds=lambda a, h, u: _open_time(h, u, states=("open", "half_open"))),
     "half-open is not open"),
], ids=["calls = attempts", "refused retries", "refused = no status", "refused errors",
        "int status keys", "no error names", "first openings only", "no tail",
        "half-open counted"])
def test_checker_19_2_rejects_wrong_numbers(wrong: Any, complaint: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert check_on_call(wrong) is False
    assert complaint in capsys.readouterr().out


def test_checker_19_2_wants_a_dict() -> None:
    assert check_on_call(lambda a, h, u: list(_reference(a, h, u).items())) is False


def test_the_hand_made_answer_is_right() -> None:
    assert _reference(*_HAND_MADE) == {
        "calls": 5, "retries": 3, "refused": 2,
        "errors": {"529": 2, "APITimeoutError": 1, "500": 1, "429": 1},
        "opened": 3, "open_seconds": 30.0 + 30.0 + 100.0,
    }


def test_the_checker_s_run_has_every_kind_of_attempt() -> None:
    attempts, history, until = _a_run()
    assert any(not a.sent for a in attempts) and any(a.retry > 0 and a.sent for a in attempts)
    assert any(a.status is None and a.sent for a in attempts), "no connection error"
    assert any(state == "open" for _, state in history) and until == 180.0
    result = _reference(attempts, history, until)
    assert result["opened"] >= 2 and result["errors"]["500"] >= 3
    assert _a_run() == (attempts, history, until), "the checker's run is not repeatable"
