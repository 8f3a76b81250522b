"""The drift alarm's table: every fact about the SDK that the course teaches, measured.

Each row names the lesson that teaches a fact, the fact in words, what the lesson says, and
how to measure the installed SDK (through the real SDK and the simulated API wherever the
fact is behaviour). When a release changes one, the test fails with a message such as::

    lesson 05: the SDK's largest backoff delay is now 10.0 s, the lesson says 8.0 s

``bash scripts/drift.sh`` runs the whole suite on the newest releases, so this table is
where a change in the SDK first shows up by name. The lessons' own fact tests
(``tests/test_lessonNN_facts.py``) pin how each lesson uses these facts.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from resilience import MODEL, VirtualClock, backoff
from resilience.testing import FakeClaude, error, stream_error

HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]


@dataclass(frozen=True)
class Fact:
    """One fact a lesson teaches: ``measure()`` must return ``taught``."""

    lessons: str
    what: str
    taught: object
    measure: Callable[[], object]

    def __str__(self) -> str:
        return f"{self.lessons}: {self.what}"


def _attempts(*outcomes: object, **client_options: Any) -> tuple[int, list[float]]:
    """Attempts the SDK makes for queued outcomes (then "ok"), and the waits between them."""
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond(*outcomes)
        with contextlib.suppress(anthropic.APIError):
            api.client(**client_options).messages.create(model=MODEL, max_tokens=16,
                                                          messages=HELLO)
    return len(api.calls), list(clock.sleeps)


def _forever_529_attempts() -> int:
    return _attempts(*["overloaded_error"] * 20)[0]


def _delays_match_one_formula(max_retries: int = 6) -> list[tuple[float, float]]:
    """The SDK's own waits beside ``backoff.sdk_default()`` fed the same random draws."""
    _, waits = _attempts(*["overloaded_error"] * (max_retries + 1), max_retries=max_retries)
    draws = random.Random(0)  # FakeClaude(seed=0) seeds the SDK's jitter with Random(0)
    ours = backoff.sdk_default()
    expected = [float(ours.next_delay(n, ours.base, draws.random())) for n in range(max_retries)]
    return [(sdk, mine) for sdk, mine in zip(waits, expected, strict=True) if sdk != mine]


def _largest_delay() -> float:
    _, waits = _attempts(*["overloaded_error"] * 12, max_retries=11)
    draws = random.Random(0)
    jitters = [1 - 0.25 * draws.random() for _ in waits]
    return round(max(w / j for w, j in zip(waits, jitters, strict=True)), 9)


def _retried(name_or_status: object) -> bool:
    return _attempts(name_or_status, max_retries=1)[0] == 2


def _retried_statuses() -> dict[int, bool]:
    import httpx

    statuses = (400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 501, 502, 503, 504,
                520, 529)
    return {s: _retried(httpx.Response(s, json={"type": "error", "error": {
        "type": "api_error", "message": "x"}})) for s in statuses}


def _mid_stream_overload() -> tuple[int, str, int]:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(stream_error("overloaded_error"))
        try:
            for _ in api.client().messages.create(model=MODEL, max_tokens=16,
                                                  messages=HELLO, stream=True):
                pass
        except anthropic.APIStatusError as e:
            return e.status_code, str(e.type), len(api.calls)
    raise AssertionError("the stream did not fail")


def _idempotency_key_is_a_type_error() -> bool:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        try:
            api.client().messages.create(  # type: ignore[call-arg]
                model=MODEL, max_tokens=16, messages=HELLO, idempotency_key="k")
        except TypeError:
            return True
    return False


def _large_max_tokens_needs_streaming() -> tuple[bool, int]:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        try:
            api.client().messages.create(model=MODEL, max_tokens=64_000, messages=HELLO)
        except ValueError as e:
            return "Streaming is required" in str(e), len(api.calls)
    return False, len(api.calls)


def _deprecated(model: str) -> bool:
    from anthropic._data.deprecated_models import DEPRECATED_MODELS

    return model in DEPRECATED_MODELS


FACTS = [
    Fact("lessons 00, 05, 08, 12, 13", "attempts the default client makes for an endless 529",
         3, _forever_529_attempts),
    Fact("lesson 05", "the SDK's first backoff delay before jitter, in s",
         0.5, lambda: anthropic._constants.INITIAL_RETRY_DELAY),
    Fact("lesson 05", "the SDK's largest backoff delay before jitter, in s", 8.0, _largest_delay),
    Fact("lesson 05 and resilience.backoff.sdk_default", "SDK waits that differ from "
         "min(0.5 * 2**n, 8) * (1 - 0.25 * u) for the same draws", [], _delays_match_one_formula),
    Fact("lessons 04, 05", "the default read timeout, in s", 600.0,
         lambda: anthropic.Anthropic(api_key="x").timeout.read),  # type: ignore[union-attr]
    Fact("lessons 04, 05", "the default connect timeout, in s", 5.0,
         lambda: anthropic.Anthropic(api_key="x").timeout.connect),  # type: ignore[union-attr]
    Fact("lessons 00, 01, 05", "which statuses the SDK retries by itself",
         {400: False, 401: False, 402: False, 403: False, 404: False, 408: True, 409: True,
          413: False, 422: False, 429: True, 500: True, 501: True, 502: True, 503: True,
          504: True, 520: True, 529: True}, _retried_statuses),
    Fact("lesson 00", "a connection error is retried by default", True,
         lambda: _retried("connection_error")),
    Fact("lesson 04", "a timeout is retried by default", True,
         lambda: _retried("timeout")),
    Fact("lessons 03, 05", "the wait after a 429 with retry-after: 3, in s", [3.0],
         lambda: _attempts(error("rate_limit_error", retry_after=3), max_retries=1)[1]),
    Fact("lesson 05", "the wait after retry-after-ms: 1500 beside retry-after: 120, in s",
         [1.5], lambda: _attempts(error("overloaded_error", retry_after=120,
                                        retry_after_ms=1500), max_retries=1)[1]),
    Fact("lesson 05", "the SDK's cap on a retry-after wait, in s", [4_294_967.0],
         lambda: _attempts(error("overloaded_error", retry_after=10**9), max_retries=1)[1]),
    Fact("lesson 05", "a retry-after of 0 is ignored (backoff instead: 0.375-0.5 s)", True,
         lambda: 0.375 <= _attempts(error("overloaded_error", retry_after=0),
                                    max_retries=1)[1][0] <= 0.5),
    Fact("lesson 05", "x-should-retry: false stops the SDK's retry of a 529", 1,
         lambda: _attempts(error("overloaded_error", should_retry=False))[0]),
    Fact("lesson 05", "x-should-retry: true makes the SDK retry a 400", 2,
         lambda: _attempts(error("invalid_request_error", should_retry=True),
                           max_retries=1)[0]),
    Fact("lesson 11", "an overload mid-stream: (status_code, type, attempts)",
         (200, "overloaded_error", 1), _mid_stream_overload),
    Fact("lesson 02", "messages.create(idempotency_key=...) raises TypeError", True,
         _idempotency_key_is_a_type_error),
    Fact("lesson 02", "a large max_tokens without streaming: (ValueError, attempts)",
         (True, 0), _large_max_tokens_needs_streaming),
    Fact("every lesson", f"the course's model {MODEL} is deprecated", False,
         lambda: _deprecated(MODEL)),
]


@pytest.mark.parametrize("fact", FACTS, ids=str)
def test_the_installed_sdk_still_does_what_the_course_teaches(fact: Fact) -> None:
    measured = fact.measure()
    assert measured == fact.taught, (
        f"{fact.lessons}: {fact.what} is now {measured!r}, the lesson says {fact.taught!r}")
