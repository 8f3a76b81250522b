"""Checkers for lesson 11, "Streaming errors".

* ``is_retryable(exc)``: whether an ``anthropic.APIStatusError`` is worth retrying, deciding
  a mid-stream error (status 200) by its ``type``; checked against
  :func:`resilience.classify` on real SDK exceptions from the simulated API, including two
  where status and type disagree (a proxy's HTML 502 has no type; a spend-limit 429 has the
  type ``rate_limit_error`` but is never retryable).
* ``answer_or_partial(client, model, messages)``: stream an answer and return
  ``(text, complete)``; keep partial text after a mid-stream error or a connection dropped
  mid-stream (a raw ``httpx2.TransportError``), but let an error that came before any text
  propagate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from anthropic.types import MessageParam

from course import exercise
from resilience.classification import classify
from resilience.clock import VirtualClock

__all__ = ["CHECKS", "check_answer_or_partial", "check_is_retryable"]

_PROMPT: list[MessageParam] = [{"role": "user", "content": "Say hello."}]

# (label, outcome name, stream?): plain HTTP errors, then errors inside a 200 stream.
_CASES = [
    ("HTTP 400 invalid_request_error", "invalid_request_error", False),
    ("HTTP 401 authentication_error", "authentication_error", False),
    ("HTTP 404 not_found_error", "not_found_error", False),
    ("HTTP 429 rate_limit_error", "rate_limit_error", False),
    ("HTTP 429 spend limit (type rate_limit_error)", "spend_limit_reached", False),
    ("HTTP 500 api_error", "api_error", False),
    ("HTTP 502 HTML page from a proxy (no type)", "bad_gateway", False),
    ("HTTP 503 service_unavailable", "service_unavailable", False),
    ("HTTP 529 overloaded_error", "overloaded_error", False),
    ("200 stream, then overloaded_error", "overloaded_error", True),
    ("200 stream, then api_error", "api_error", True),
    ("200 stream, then rate_limit_error", "rate_limit_error", True),
    ("200 stream, then invalid_request_error", "invalid_request_error", True),
]


@functools.cache
def _exceptions() -> tuple[tuple[str, BaseException], ...]:
    """One real SDK exception per case (built once: the simulated API is fast, not free)."""
    import anthropic

    from resilience.testing import FakeClaude, stream_error

    found: list[tuple[str, BaseException]] = []
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        client = api.client(max_retries=0)
        for label, name, stream in _CASES:
            api.respond(stream_error(name, after_chunks=1) if stream else name)
            try:
                if stream:
                    for _ in client.messages.create(model=api.model, max_tokens=64,
                                                    messages=_PROMPT, stream=True):
                        pass
                else:
                    client.messages.create(model=api.model, max_tokens=64, messages=_PROMPT)
            except anthropic.APIStatusError as e:
                found.append((label, e))
    return tuple(found)


@exercise("11.1", "retryable, mid-stream or not")
def check_is_retryable(solution: Callable[..., Any]) -> None:
    """``solution(exc)`` agrees with ``classify(exc).retryable`` on each case."""
    cases = _exceptions()
    assert len(cases) == len(_CASES), "the simulated API did not raise every case"
    for label, exc in cases:
        expected = classify(exc).retryable
        got = solution(exc)
        assert isinstance(got, bool), (
            f"is_retryable(<{label}>) returned {got!r}; expected True or False.")
        assert got == expected, (
            f"is_retryable(<{label}>) returned {got}; expected {expected} ({_why(exc)}).")


def _why(exc: BaseException) -> str:
    """The rule a wrong answer broke, for the learner."""
    status = getattr(exc, "status_code", None)
    if (getattr(exc, "error_code", None) or "").endswith("spend_limit_reached"):
        return "a spend limit is never retryable, whatever its status and type say"
    if status == 200:
        return "a 200 stream is judged by exc.type"
    if getattr(exc, "type", None) is None:
        return "a proxy's HTML page has no type: decide by the status"
    return "retry 408, 409, 429 and >= 500 (but 501), nothing else"


def _run(solution: Callable[..., Any], *outcomes: object) -> tuple[Any, int]:
    """Call the learner's function against a fresh simulated API; return (result, calls)."""
    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(*outcomes)
        result = solution(api.client(max_retries=0), api.model, _PROMPT)
        return result, len(api.calls)


@exercise("11.2", "stop and say so, but only mid-stream")
def check_answer_or_partial(solution: Callable[..., Any]) -> None:
    """Whole text on success; partial text after a mid-stream error; errors before any
    text propagate."""
    import anthropic
    import httpx2

    from resilience.testing import dropped_stream, ok, stream_error
    from resilience.testing.responses import DEFAULT_TEXT

    for outcome, expected in [
        (ok(), (DEFAULT_TEXT, True)),
        (ok("Four words, one stream.", chunks=4), ("Four words, one stream.", True)),
        (stream_error("overloaded_error", after_chunks=2), ("Hello from the simulated", False)),
        (stream_error("api_error", after_chunks=1), ("Hello from t", False)),
        (dropped_stream(after_chunks=2), ("Hello from the simulated", False)),
    ]:
        try:
            got, calls = _run(solution, outcome)
        except httpx2.TransportError as e:
            raise AssertionError(
                f"with a connection dropped mid-stream your code let {type(e).__name__} "
                "escape, with text already shown. The SDK raises the raw httpx2 error while "
                "you iterate, not an anthropic one: catch httpx2.TransportError too.") from e
        assert got == expected, (
            f"with {getattr(outcome, 'label', outcome)!s} you returned {got!r}; "
            f"expected {expected!r}.")
        assert calls == 1, f"make exactly one request (you made {calls})."
    for failure, what in [(stream_error("overloaded_error", after_chunks=0),
                           "a stream that fails before any text"),
                          ("overloaded_error", "a 529 from create()"),
                          (dropped_stream(after_chunks=0),
                           "a connection that drops before any text")]:
        try:
            got, _ = _run(solution, failure)
        except (anthropic.APIStatusError, httpx2.TransportError):
            continue
        raise AssertionError(f"with {what} you returned {got!r}; there is no text to show, "
                             "so let the error propagate.")


CHECKS = {"is_retryable": check_is_retryable, "answer_or_partial": check_answer_or_partial}
