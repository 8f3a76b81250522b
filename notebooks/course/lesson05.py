"""Checkers for lesson 05, "What the SDK already does".

* ``sdk_retries(status, should_retry)``: predict whether the SDK retries an error response
  with this status and ``x-should-retry`` header (None: no header). Checked by sending each
  of 51 responses to the real SDK through the simulated API and counting its attempts.
* ``ask(api, rng)``: one question with *one* retry layer, returning the ``Message``: during
  an 8 s outage it gets the answer; in an endless one it gives up within 6 attempts; a 400
  is sent once.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

from anthropic.types import MessageParam

from course import exercise

__all__ = ["CHECKS", "STATUSES", "check_ask", "check_sdk_retries", "sdk_attempts"]

STATUSES = (400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 501, 502, 503, 504, 520,
            529)
"""The statuses the checker sends, each with x-should-retry absent, true and false."""

_MESSAGES: list[MessageParam] = [{"role": "user", "content": "Hi"}]


def sdk_attempts(cases: list[tuple[int, bool | None]]) -> list[int]:
    """How many attempts a client with ``max_retries=1`` makes for each error response."""
    import anthropic
    import httpx

    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude

    counts = []
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        client = api.client(max_retries=1)
        for status, should_retry in cases:
            headers = {} if should_retry is None else {
                "x-should-retry": "true" if should_retry else "false"}
            body = {"type": "error", "error": {"type": "api_error", "message": "test"}}
            api.respond(httpx.Response(status, json=body, headers=headers))
            before = len(api.calls)
            with contextlib.suppress(anthropic.APIStatusError):  # not retried: the error
                client.messages.create(model=api.model, max_tokens=16, messages=_MESSAGES)
            counts.append(len(api.calls) - before)  # 2 if retried (the retry gets "ok")
    return counts


_CACHE: dict[str, list[int]] = {}


@exercise("05.1", "which responses the SDK retries")
def check_sdk_retries(solution: Callable[..., Any]) -> None:
    """``solution(status, should_retry)`` predicts the SDK's own choice, for 51 responses."""
    cases = [(s, h) for s in STATUSES for h in (None, True, False)]
    if "attempts" not in _CACHE:
        _CACHE["attempts"] = sdk_attempts(cases)
    for (status, header), attempts in zip(cases, _CACHE["attempts"], strict=True):
        got = solution(status, header)
        call = f"sdk_retries({status}, {header})"
        assert isinstance(got, bool), f"{call} returned {got!r}; expected True or False."
        retried = attempts == 2
        assert got == retried, (
            f"{call} returned {got}, but the SDK {'retried' if retried else 'did not retry'} "
            f"a {status}" + ("" if header is None else f" with x-should-retry: "
                             f"{str(header).lower()}") + ".")


def _ask_once(solution: Callable[..., Any], seed: int, outage_end: float,
              first: object = None) -> tuple[object, int]:
    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, Outage

    with FakeClaude(clock=VirtualClock(), seed=seed) as api:
        api.scenario(Outage(start=0, end=outage_end))
        if first is not None:
            api.respond(first)
        try:
            result: object = solution(api, random.Random(seed))
        except Exception as e:
            result = e
    return result, len(api.calls)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@exercise("05.2", "one retry layer")
def check_ask(solution: Callable[..., Any]) -> None:
    """The Message through an 8 s outage; <= 6 attempts in an endless one; a 400 sent once."""
    import anthropic

    for seed in (0, 1, 2):
        result, attempts = _ask_once(solution, seed, outage_end=8)
        if isinstance(result, NotImplementedError):
            raise result
        assert attempts <= 6, (
            f"seed {seed}: {attempts} attempts for one question; at most 6. Are two layers "
            "retrying? Build the client with max_retries=0, or drop your own loop.")
        if isinstance(result, anthropic.OverloadedError):
            raise AssertionError(
                f"seed {seed}: during an 8 s outage ask(api, rng) gave up with "
                f"OverloadedError after {attempts} attempts; the outage ends at 8 s, so "
                "wait longer between attempts (the waits must add up to more than 8 s).")
        if isinstance(result, Exception):
            raise AssertionError(
                f"seed {seed}: during an 8 s outage ask(api, rng) raised "
                f"{type(result).__name__}: {result}; expected the Message.")
        assert isinstance(result, anthropic.types.Message), (
            f"seed {seed}: ask(api, rng) returned {type(result).__name__} "
            f"{_short(result)}; return the Message that messages.create returns (the whole "
            "object, not its text).")
    result, attempts = _ask_once(solution, 0, outage_end=1e9)
    assert isinstance(result, anthropic.OverloadedError), (
        f"in an endless outage ask(api, rng) gave {type(result).__name__}; expected the "
        "OverloadedError to come through.")
    assert attempts <= 6, (
        f"one question made {attempts} attempts in an endless outage; at most 6. Are two "
        "layers retrying? Build the client with max_retries=0, or drop your own loop.")
    result, attempts = _ask_once(solution, 0, outage_end=0, first="invalid_request_error")
    assert isinstance(result, anthropic.BadRequestError) and attempts == 1, (
        f"a 400 was sent {attempts} times and gave {type(result).__name__}; send it once.")


CHECKS = {"sdk_retries": check_sdk_retries, "ask": check_ask}
