"""Every factual claim lesson 15 ("Long requests and streams") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, through the real anthropic SDK answered by the simulated API, and check that
the exercises' checkers reject plausible wrong answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic._constants import MODEL_NONSTREAMING_TOKENS
from course.lesson15 import PacedStream, check_collect, check_watch, paced_stream
from lesson_code import run_lesson

from resilience import MODEL, classify
from resilience.testing import FakeClaude, dropped_stream, stalled_stream
from resilience.testing.responses import DEFAULT_TEXT

PROMPT: list[Any] = [{"role": "user", "content": "Tell me a long story."}]
LESSON = "15_long_requests_and_streams"


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    return run_lesson(LESSON)


def texts(stream: Any) -> list[str]:
    return [e.delta.text for e in stream if e.type == "content_block_delta"]


# -- "Streaming is required" ------------------------------------------------------------

def test_a_large_non_streaming_request_fails_before_any_http_call() -> None:
    with FakeClaude(seed=0) as api:
        with pytest.raises(ValueError, match=r"^Streaming is required") as caught:
            api.client().messages.create(model=api.model, max_tokens=64_000, messages=PROMPT)
        assert len(api.calls) == 0, (
            f"lesson 15: the SDK now sends {len(api.calls)} request(s) before refusing a "
            "64,000-token non-streaming call; the lesson says none")
    assert not isinstance(caught.value, anthropic.APIError)


def test_the_threshold_the_lesson_computes_is_the_sdk_s(lesson: dict[str, Any]) -> None:
    assert lesson["low"] == 21_334, (
        f"lesson 15: the smallest max_tokens that needs streaming is now {lesson['low']}, "
        "the lesson says 21,334")
    with FakeClaude(seed=0) as api:  # the public behaviour on both sides of it
        client = api.client()
        client.messages.create(model=api.model, max_tokens=21_333, messages=PROMPT)
        with pytest.raises(ValueError, match="Streaming is required"):
            client.messages.create(model=api.model, max_tokens=21_334, messages=PROMPT)
        assert len(api.calls) == 1


def test_model_nonstreaming_tokens() -> None:
    assert MODEL_NONSTREAMING_TOKENS.get(MODEL) is None, (
        f"lesson 15: the SDK now caps {MODEL} at {MODEL_NONSTREAMING_TOKENS.get(MODEL)} "
        "non-streaming tokens; the lesson says it has no cap of its own")
    cap = MODEL_NONSTREAMING_TOKENS.get("claude-opus-4-0")
    assert cap == 8_192, f"lesson 15: claude-opus-4-0's cap is now {cap}, the lesson says 8192"
    with FakeClaude(seed=0) as api:
        client = api.client()
        client.messages.create(model="claude-opus-4-0", max_tokens=8_192, messages=PROMPT)
        with pytest.raises(ValueError):
            client.messages.create(model="claude-opus-4-0", max_tokens=8_193, messages=PROMPT)


def test_a_timeout_of_your_own_skips_the_check() -> None:
    with FakeClaude(seed=0) as api:
        api.client(timeout=900.0).messages.create(model=api.model, max_tokens=64_000,
                                                  messages=PROMPT)
        api.client().messages.create(model=api.model, max_tokens=64_000, messages=PROMPT,
                                     timeout=900.0)
        assert len(api.calls) == 2, (
            "lesson 15: a client or call with its own timeout now gets the streaming check; "
            "the lesson says the SDK then trusts you")
        with pytest.raises(ValueError):  # a timeout equal to the default still checks
            api.client(timeout=httpx2.Timeout(600, connect=5.0)).messages.create(
                model=api.model, max_tokens=64_000, messages=PROMPT)


def test_streaming_the_same_request_works(lesson: dict[str, Any]) -> None:
    assert lesson["message"].content[0].text == DEFAULT_TEXT
    with FakeClaude(seed=0) as api:
        with api.client().messages.stream(model=api.model, max_tokens=64_000,
                                          messages=PROMPT) as stream:
            assert stream.get_final_message().content[0].text == DEFAULT_TEXT
        assert len(api.calls) == 1


# -- connect and read timeouts ----------------------------------------------------------

def test_the_default_timeout_and_the_timeout_class() -> None:
    limits = anthropic.DEFAULT_TIMEOUT
    assert (limits.connect, limits.read, limits.write, limits.pool) == (5.0, 600, 600, 600), (
        f"lesson 15: the SDK's default timeout is now {limits}; the lesson says connect 5 s "
        "and 600 s for read, write and pool")
    assert anthropic.Timeout is httpx2.Timeout, (
        "lesson 15: anthropic.Timeout is no longer httpx2.Timeout")
    ours = httpx2.Timeout(60.0, connect=5.0, read=10.0)
    assert (ours.connect, ours.read, ours.write, ours.pool) == (5.0, 10.0, 60.0, 60.0), (
        f"lesson 15: httpx2.Timeout(60.0, connect=5.0, read=10.0) is now {ours}; the lesson "
        "says the plain number sets write and pool")


def test_a_connect_timeout_is_an_api_timeout_error_the_sdk_retries() -> None:
    with FakeClaude(seed=0) as api:
        api.respond(*[httpx2.ConnectTimeout] * 3)
        error = api.raised(max_retries=2)
        assert type(error) is anthropic.APITimeoutError, (
            f"lesson 15: a connect timeout now raises {type(error).__name__}; the lesson "
            "says APITimeoutError")
        assert len(api.calls) == 3, "lesson 15: the SDK no longer retries a connect timeout"
    assert str(classify(error)) == "timeout (retryable)"


def test_the_read_timeout_bounds_each_silence_not_the_total(lesson: dict[str, Any]) -> None:
    runs = lesson["runs"]
    assert runs["streamed, a word every 8 s"] == ([8.0 * i for i in range(1, 7)], None, 48.0), (
        "lesson 15: a stream with a word every 8 s no longer survives a 10 s read timeout")
    assert runs["the same answer, not streamed"] == ([], "APITimeoutError", 10.0), (
        "lesson 15: the same answer not streamed no longer times out at 10 s")
    assert runs["streamed, silent after 2 words"] == ([8.0, 16.0], "ReadTimeout", 26.0), (
        "lesson 15: a stream silent after 2 words no longer raises httpx2.ReadTimeout at 26 s")
    times, error, end = runs["streamed, a word every 8 s for 160 s"]
    assert (len(times), error, end) == (20, None, 160.0)


def test_a_stall_on_the_default_timeout_waits_600_s(lesson: dict[str, Any]) -> None:
    times, error, end = lesson["arrivals"](paced_stream([8.0, 8.0, None]))
    assert (times, error, end) == ([8.0, 16.0], "ReadTimeout", 616.0), (
        f"lesson 15: a stalled stream on the default client now ends with {error} at "
        f"{end} s; the lesson says ReadTimeout at 616 s")


def test_the_kit_s_stalled_stream_raises_the_raw_read_timeout_mid_stream() -> None:
    with FakeClaude(seed=0) as api:
        api.respond(stalled_stream(None, after_chunks=2), "ok")
        client = api.client(timeout=httpx2.Timeout(60.0, connect=5.0, read=10.0))
        shown: list[str] = []
        with pytest.raises(httpx2.ReadTimeout):
            for event in client.messages.create(model=api.model, max_tokens=64,
                                                messages=PROMPT, stream=True):
                if event.type == "content_block_delta":
                    shown.append(event.delta.text)
        assert (len(api.calls), api.pending, api.clock.now()) == (1, ("ok",), 10.0), (
            "lesson 15: the SDK now retries a stream that stalls mid-body")
    assert "".join(shown) == "Hello from the simulated"


# -- stalled or dropped -----------------------------------------------------------------

def test_what_happens_table(lesson: dict[str, Any]) -> None:
    what_happens = lesson["what_happens"]
    table = {name: (what_happens(failure, True), what_happens(failure, False))
             for name, failure in [("dropped", dropped_stream(after_chunks=2)),
                                   ("stalled", stalled_stream(None, after_chunks=2))]}
    assert table == {
        "dropped": ("RemoteProtocolError after 1 request(s)", "answered after 2 requests"),
        "stalled": ("ReadTimeout after 1 request(s)", "answered after 2 requests"),
    }, f"lesson 15: dropped and stalled streams now behave as {table}"


@pytest.mark.parametrize(("cls", "verdict"), [(httpx2.RemoteProtocolError,
                                               "connection (retryable)"),
                                              (httpx2.ReadTimeout, "timeout (retryable)")])
def test_raw_transport_errors(cls: type[Exception], verdict: str) -> None:
    error = cls("[simulated]")
    assert not isinstance(error, anthropic.APIError), (
        f"lesson 15: httpx2.{cls.__name__} is now an anthropic.APIError")
    assert isinstance(error, httpx2.TransportError), (
        f"lesson 15: httpx2.{cls.__name__} is no longer an httpx2.TransportError")
    assert str(classify(error)) == verdict


# -- partial output: restart, resume, stop ----------------------------------------------

def test_the_cost_table(lesson: dict[str, Any]) -> None:
    serve, full = lesson["serve"], lesson["FULL"]
    table = {s.__name__: serve(s, *then)
             for s, then in [(lesson["restart"], [full]), (lesson["resume"], [lesson["REST"]]),
                             (lesson["stop"], [])]}
    costs = {name: (words, resent, done, text == full.text)
             for name, (text, words, resent, done) in table.items()}
    assert costs == {
        "restart": (21, 0, 42.0, True),
        "resume": (12, 9, 24.0, True),
        "stop": (9, 0, 18.0, False),
    }, (f"lesson 15: (words generated, words re-sent, done at, complete) per strategy are "
        f"now {costs}; the lesson's table says restart 21/0/42 s, resume 12/9/24 s, stop "
        "9/0/18 s")
    assert table["stop"][0].endswith("[cut off: ask again]")


def test_the_resume_request_ends_with_a_user_turn(lesson: dict[str, Any]) -> None:
    messages = lesson["resume_messages"]("partial")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    # Lesson 11 cites Anthropic's migration guide: a prefilled assistant turn returns a 400
    # on the Claude 4.6 models. If MODEL moves on, re-check that claim for the new model.
    assert MODEL == "claude-sonnet-4-6", (
        f"lesson 15: the course's model is now {MODEL}; re-check whether it accepts a prefill")


# -- the paced stream the lesson runs on ------------------------------------------------

def test_paced_stream_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="gaps"):
        paced_stream([1.0, -1.0])
    with pytest.raises(TypeError, match="gaps"):
        paced_stream(["1"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="pieces"):
        paced_stream([1.0], pieces=["a", "b"])
    with pytest.raises(ValueError, match="pieces"):
        paced_stream([])
    with pytest.raises(ValueError, match="end"):
        paced_stream([1.0], end="explode")


def test_paced_stream_ends() -> None:
    with FakeClaude(seed=0) as api:
        api.respond(paced_stream([1.0, 2.0], end="overloaded_error"),
                    paced_stream([1.0], end="drop"), paced_stream([3.0]))
        client = api.client(max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as caught:
            texts(client.messages.create(model=api.model, max_tokens=64, messages=PROMPT,
                                         stream=True))
        assert caught.value.type == "overloaded_error" and api.clock.now() == 3.0
        with pytest.raises(httpx2.RemoteProtocolError):
            texts(client.messages.create(model=api.model, max_tokens=64, messages=PROMPT,
                                         stream=True))
        message = client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
        assert message.content[0].text == "Long" and api.clock.now() == 7.0
    assert [c.outcome for c in api.calls] == ["stream_paced"] * 3


def test_paced_stream_default_pieces_are_words() -> None:
    stream = paced_stream([0.0] * 3)
    assert isinstance(stream, PacedStream)
    assert stream.pieces == ("Long ", "answers ", "arrive")


# -- the exercises' checkers reject plausible wrong answers ---------------------------

def _read(stream: Any, pieces: list[str]) -> None:
    for event in stream:
        if event.type == "content_block_delta":
            pieces.append(event.delta.text)


def no_watchdog(client: anthropic.Anthropic, model: str, messages: Any, clock: Any,
                deadline: float, silence: float) -> str:
    pieces: list[str] = []
    _read(client.messages.create(model=model, max_tokens=64, messages=messages, stream=True),
          pieces)
    return "".join(pieces)


def read_timeout_only(client: anthropic.Anthropic, model: str, messages: Any, clock: Any,
                      deadline: float, silence: float) -> str:
    pieces: list[str] = []
    try:
        _read(client.messages.create(model=model, max_tokens=64, messages=messages,
                                     stream=True, timeout=httpx2.Timeout(60.0, read=silence)),
              pieces)
    except httpx2.ReadTimeout as e:
        raise TimeoutError("silent") from e
    return "".join(pieces)


def no_conversion(client: anthropic.Anthropic, model: str, messages: Any, clock: Any,
                  deadline: float, silence: float) -> str:
    start, pieces = clock.now(), []
    for event in client.messages.create(model=model, max_tokens=64, messages=messages,
                                        stream=True, timeout=httpx2.Timeout(60.0, read=silence)):
        if clock.now() - start > deadline:
            raise TimeoutError("deadline")
        if event.type == "content_block_delta":
            pieces.append(event.delta.text)
    return "".join(pieces)


def _watchdog(*, check_at_end: bool = False, start_after_create: bool = False,
              limit: str = "deadline") -> Callable[..., str]:
    def watch(client: anthropic.Anthropic, model: str, messages: Any, clock: Any,
              deadline: float, silence: float) -> str:
        budget = silence if limit == "silence" else deadline
        start, pieces = clock.now(), []
        try:
            stream = client.messages.create(model=model, max_tokens=64, messages=messages,
                                            stream=True,
                                            timeout=httpx2.Timeout(60.0, read=silence))
            if start_after_create:
                start = clock.now()
            for event in stream:
                if not check_at_end and clock.now() - start > budget:
                    raise TimeoutError("deadline")
                if event.type == "content_block_delta":
                    pieces.append(event.delta.text)
        except (httpx2.ReadTimeout, anthropic.APITimeoutError) as e:
            raise TimeoutError("silent") from e
        if check_at_end and clock.now() - start > budget:
            raise TimeoutError("deadline")
        return "".join(pieces)
    return watch


@pytest.mark.parametrize(("wrong", "complaint"), [
    (no_watchdog, "Pass a read timeout"),
    (read_timeout_only, "check the 60 s deadline at every event"),
    (no_conversion, "raise TimeoutError (the built-in)"),
    (_watchdog(check_at_end=True), "check the deadline as each event arrives"),
    (_watchdog(start_after_create=True), "The deadline counts from your call"),
    (_watchdog(limit="silence"), "The read timeout bounds each silence, not the total"),
], ids=["no watchdog", "read timeout only", "raw ReadTimeout", "checked at the end",
        "timer after create", "silence as a total"])
def test_checker_15_1_rejects_wrong_watchdogs(wrong: Any, complaint: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert check_watch(wrong) is False
    assert complaint in capsys.readouterr().out


def _collector(*, catch: tuple[type[BaseException], ...] = (anthropic.APIStatusError,
                                                              httpx2.TransportError),
               reset: bool = True, extra: int = 0, first: bool = False,
               wrap: bool = False, any_type: bool = False) -> Callable[..., str]:
    def collect(client: anthropic.Anthropic, model: str, messages: Any, restarts: int) -> str:
        pieces: list[str] = []
        errors: list[BaseException] = []
        for attempt in range(restarts + 1 + extra):
            if reset:
                pieces = []
            try:
                _read(client.messages.create(model=model, max_tokens=64, messages=messages,
                                             stream=True), pieces)
                return "".join(pieces)
            except catch as e:
                errors.append(e)
                restartable = any_type or not isinstance(e, anthropic.APIStatusError) or (
                    e.type == "overloaded_error")
                if not restartable or attempt == restarts + extra:
                    break
        error = errors[0] if first else errors[-1]
        if wrap:
            raise RuntimeError("gave up") from error
        raise error
    return collect


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_collector(catch=(anthropic.APIStatusError,)), "restart on httpx2.TransportError too"),
    (_collector(reset=False), "Start the text afresh"),
    (_collector(extra=-1), "allows the first request and 2 more"),
    (_collector(extra=1), "make the first and at most 2 more"),
    (_collector(first=True), "re-raise the last error as it is"),
    (_collector(wrap=True), "re-raise the last error as it is"),
    (_collector(any_type=True), "no restart fixes a bad request"),
], ids=["status errors only", "no reset", "one restart too few", "one restart too many",
        "first error", "wrapped error", "restarts a bad request"])
def test_checker_15_2_rejects_wrong_collectors(wrong: Any, complaint: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert check_collect(wrong) is False
    assert complaint in capsys.readouterr().out
