"""Every factual claim lesson 11 ("Streaming errors") makes, checked against the installed SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, through the real anthropic SDK answered by the simulated API.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from lesson_code import run_lesson

from resilience import MODEL, VirtualClock, classify, retry
from resilience.testing import FakeClaude, dropped_stream, ok, stream_error
from resilience.testing.responses import DEFAULT_TEXT

PROMPT = [{"role": "user", "content": "Say hello."}]


def texts(stream: Any) -> Iterator[str]:
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            yield event.delta.text


def read(client: anthropic.Anthropic, messages: list[dict[str, Any]] = PROMPT) -> Iterator[str]:
    return texts(client.messages.create(model=MODEL, max_tokens=256, messages=messages,
                                        stream=True))


# -- an error after a 200 ---------------------------------------------------------------

def test_the_error_comes_from_the_loop_not_from_create_as_a_bare_api_status_error() -> None:
    with FakeClaude(seed=0) as api:
        api.respond(stream_error("overloaded_error", after_chunks=2))
        stream = api.client().messages.create(model=api.model, max_tokens=256,
                                              messages=PROMPT, stream=True)
        assert type(stream).__name__ == "Stream"  # create() did not raise
        shown: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            for piece in texts(stream):
                shown.append(piece)
    error = caught.value
    assert "".join(shown) == "Hello from the simulated"
    assert type(error) is anthropic.APIStatusError
    assert error.status_code == 200 and error.type == "overloaded_error"
    assert error.request_id == "req_fake_000001"
    assert not isinstance(error, anthropic.OverloadedError)
    assert not isinstance(error, anthropic.InternalServerError)


@pytest.mark.parametrize("options", [{}, {"max_retries": 10}, {"timeout": 5.0}])
def test_neither_max_retries_nor_a_timeout_makes_the_sdk_retry_it(
        options: dict[str, Any]) -> None:
    with FakeClaude(seed=0) as api:
        api.respond("stream_overloaded", "ok")
        with pytest.raises(anthropic.APIStatusError) as caught:
            list(read(api.client(**options)))
        assert len(api.calls) == 1 and api.pending == ("ok",)
    assert caught.value.status_code == 200


def test_a_529_before_the_stream_starts_is_retried_by_the_sdk() -> None:
    with FakeClaude(seed=0) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        text = "".join(read(api.client()))
    assert [c.status for c in api.calls] == [529, 529, 200]
    assert text == DEFAULT_TEXT


# -- status codes misjudge it -----------------------------------------------------------

def test_a_status_list_loop_gives_up_after_one_request() -> None:
    def retry_by_status(client: anthropic.Anthropic, attempts: int = 5) -> str:
        for n in range(attempts):
            try:
                return "".join(read(client))
            except anthropic.APIStatusError as e:
                if n == attempts - 1 or e.status_code not in (429, 500, 502, 503, 529):
                    raise
        raise AssertionError("unreachable")

    with FakeClaude(seed=0) as api:
        api.respond("stream_overloaded", "ok")
        with pytest.raises(anthropic.APIStatusError):
            retry_by_status(api.client())
        assert len(api.calls) == 1 and api.pending == ("ok",)


def stream_exception(name: str) -> anthropic.APIStatusError:
    with FakeClaude(seed=0) as api:
        api.respond(stream_error(name, after_chunks=1))
        with pytest.raises(anthropic.APIStatusError) as caught:
            list(read(api.client(max_retries=0)))
    return caught.value


def test_classify_reads_the_type_of_a_mid_stream_error() -> None:
    verdict = classify(stream_exception("overloaded_error"))
    assert str(verdict) == "overloaded 200 (retryable)"
    assert verdict.error_type == "overloaded_error"
    assert not classify(stream_exception("invalid_request_error")).retryable


# -- retrying the whole stream ----------------------------------------------------------

def announced(delays: list[float]) -> Any:
    return lambda attempt, delay, verdict: delays.append(round(delay, 3))


def test_an_app_level_retry_around_reading_recovers() -> None:
    delays: list[float] = []
    with FakeClaude(seed=0) as api:
        client = api.client(max_retries=0)
        api.respond("stream_overloaded", "ok")

        @retry(attempts=3, deadline=30.0, clock=api.clock, rng=random.Random(7),
               on_retry=announced(delays))
        def answer() -> str:
            return "".join(read(client))

        assert answer() == DEFAULT_TEXT
    assert delays == [0.162]
    assert [(c.status, c.outcome) for c in api.calls] == [(200, "stream_overloaded_error"),
                                                           (200, "ok")]
    assert [round(c.time, 3) for c in api.calls] == [0.0, 0.162]


def test_the_stream_helper_raises_the_same_error_and_the_same_retry_works() -> None:
    delays: list[float] = []
    with FakeClaude(seed=0) as api:
        client = api.client(max_retries=0)
        api.respond("stream_overloaded", "stream_dropped", "ok")

        @retry(attempts=3, deadline=30.0, clock=api.clock, rng=random.Random(7),
               on_retry=announced(delays))
        def answer() -> str:
            with client.messages.stream(model=MODEL, max_tokens=256, messages=PROMPT) as s:
                return s.get_final_text()

        assert answer() == DEFAULT_TEXT
        api.respond("stream_dropped")
        with (pytest.raises(httpx2.RemoteProtocolError),
              client.messages.stream(model=MODEL, max_tokens=256, messages=PROMPT) as s):
            s.get_final_text()
        api.respond("stream_overloaded")
        with (pytest.raises(anthropic.APIStatusError) as caught,
              client.messages.stream(model=MODEL, max_tokens=256, messages=PROMPT) as s):
            s.get_final_text()
    assert type(caught.value) is anthropic.APIStatusError and caught.value.status_code == 200
    assert delays == [0.162, 0.151]
    assert [c.status for c in api.calls] == [200, 200, 200, 200, 200]


# -- a connection dropped mid-stream ----------------------------------------------------

@pytest.mark.parametrize("max_retries", [0, 2, 10])
def test_a_dropped_connection_raises_the_raw_httpx2_error_from_the_loop(
        max_retries: int) -> None:
    with FakeClaude(seed=0) as api:
        api.respond(dropped_stream(after_chunks=2), "ok")
        stream = api.client(max_retries=max_retries).messages.create(
            model=api.model, max_tokens=256, messages=PROMPT, stream=True)  # no error yet
        shown: list[str] = []
        with pytest.raises(Exception) as caught:
            for piece in texts(stream):
                shown.append(piece)
    error = caught.value
    assert type(error) is httpx2.RemoteProtocolError, (
        f"lesson 11: a dropped stream now raises {type(error).__name__}; the lesson says "
        "httpx2.RemoteProtocolError")
    assert not isinstance(error, anthropic.APIError), (
        "lesson 11: a dropped stream now raises an anthropic.APIError; the lesson says the "
        "raw httpx2 error")
    assert isinstance(error, httpx2.TransportError)
    assert "".join(shown) == "Hello from the simulated"
    assert (len(api.calls), api.pending) == (1, ("ok",)), (
        "lesson 11: the SDK now retries a stream dropped mid-body; the lesson says it does not")
    assert str(classify(error)) == "connection (retryable)"


def test_the_lesson_shows_the_drop_it_describes() -> None:
    lesson = run_lesson("11_streaming_errors")
    assert type(lesson["dropped"]) is httpx2.RemoteProtocolError
    assert "".join(lesson["shown"]) == "Hello from the simulated"


# -- the exercises' checkers reject plausible wrong answers ---------------------------

def _by_status(exc: anthropic.APIStatusError) -> bool:
    status = exc.status_code
    return status in (408, 409, 429) or (status >= 500 and status != 501)


def _by_type(exc: anthropic.APIStatusError) -> bool:
    return exc.type in {"overloaded_error", "api_error", "rate_limit_error", "timeout_error",
                        "conflict_error"}


def _spend_limit(exc: anthropic.APIStatusError) -> bool:
    return (exc.error_code or "").endswith("spend_limit_reached")


def _status_only(exc: anthropic.APIStatusError) -> bool:  # misses errors inside a 200 stream
    return not _spend_limit(exc) and _by_status(exc)


def _type_only(exc: anthropic.APIStatusError) -> bool:  # misses the proxy's HTML 502
    return not _spend_limit(exc) and _by_type(exc)


def _no_spend_limit(exc: anthropic.APIStatusError) -> bool:  # retries the tier's spend cap
    return _by_type(exc) if exc.status_code == 200 else _by_status(exc)


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_status_only, "200 stream"),
    (_type_only, "HTML page"),
    (_no_spend_limit, "spend limit"),
])
def test_checker_11_1_rejects_answers_that_trust_status_or_type_alone(
        wrong: Any, complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson11 import check_is_retryable

    assert check_is_retryable(wrong) is False
    assert complaint in capsys.readouterr().out


def test_checker_11_2_rejects_an_answer_that_catches_only_api_status_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson11 import check_answer_or_partial

    def status_errors_only(client: anthropic.Anthropic, model: str,
                           messages: list[dict[str, Any]]) -> tuple[str, bool]:
        pieces: list[str] = []
        try:
            for piece in texts(client.messages.create(model=model, max_tokens=256,
                                                      messages=messages, stream=True)):
                pieces.append(piece)
        except anthropic.APIStatusError:
            if not pieces:
                raise
            return "".join(pieces), False
        return "".join(pieces), True

    assert check_answer_or_partial(status_errors_only) is False
    assert "catch httpx2.TransportError too" in capsys.readouterr().out


# -- reconciling what was shown ---------------------------------------------------------

class Screen:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock, self.text, self.received = clock, "", 0
        self.notices: list[str] = []

    def show(self, piece: str) -> None:
        self.clock.advance(0.5)
        self.text, self.received = self.text + piece, self.received + len(piece)


def restart(client: anthropic.Anthropic, screen: Screen) -> None:
    @retry(attempts=3, deadline=30.0, clock=screen.clock, rng=random.Random(7),
           on_retry=lambda n, d, v: screen.notices.append("restart"))
    def attempt() -> None:
        screen.text = ""
        for piece in read(client):
            screen.show(piece)
    attempt()


def continue_(client: anthropic.Anthropic, screen: Screen) -> None:
    @retry(attempts=3, deadline=30.0, clock=screen.clock, rng=random.Random(7),
           on_retry=lambda n, d, v: screen.notices.append("continue"))
    def attempt() -> None:
        messages = PROMPT
        if screen.text:
            messages = [*PROMPT, {"role": "assistant", "content": screen.text},
                        {"role": "user", "content": "Continue."}]
        for piece in read(client, messages):
            screen.show(piece)
    attempt()


def stop(client: anthropic.Anthropic, screen: Screen) -> None:
    try:
        for piece in read(client):
            screen.show(piece)
    except (anthropic.APIStatusError, httpx2.TransportError):
        screen.notices.append("stop")


def run(strategy: Any, *then: object) -> Screen:
    screen = Screen(VirtualClock())
    with FakeClaude(clock=screen.clock, seed=0) as api:
        api.respond(stream_error("overloaded_error", after_chunks=2), *then)
        strategy(api.client(max_retries=0), screen)
    return screen


def test_the_strategies_table() -> None:
    screens = {"restart": run(restart, "ok"),
               "continue": run(continue_, ok(" Claude API.", chunks=1)),
               "stop": run(stop)}
    table = {name: (s.text, s.received, len(s.text), s.received - len(s.text))
             for name, s in screens.items()}
    assert table == {"restart": (DEFAULT_TEXT, 60, 36, 24),
                     "continue": (DEFAULT_TEXT, 36, 36, 0),
                     "stop": ("Hello from the simulated", 24, 24, 0)}
    assert all(len(s.notices) == 1 for s in screens.values())
    # the plot's time axis: the restart finishes one second after the continuation
    assert screens["continue"].clock.now() == pytest.approx(1.662, abs=1e-3)
    assert screens["restart"].clock.now() == pytest.approx(2.662, abs=1e-3)


def test_the_course_model_is_a_claude_4_6_model_so_prefill_is_not_taught() -> None:
    # The lesson cites Anthropic's migration guide: a prefilled assistant turn returns a 400
    # on the Claude 4.6 models. If MODEL moves on, re-check that claim for the new model.
    assert MODEL == "claude-sonnet-4-6"
