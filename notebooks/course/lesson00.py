"""Checkers for lesson 00, "Start here".

* ``describe(e)``: ``(status, error_type, request_id)`` of an ``anthropic.APIStatusError``.
* ``attempts_made(outcomes, max_retries)``: how many HTTP attempts the SDK makes for one
  ``messages.create`` call when the simulated API answers with ``outcomes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
from anthropic.types import MessageParam

from course import exercise
from resilience.clock import VirtualClock
from resilience.testing import FakeClaude

__all__ = ["CHECKS", "check_attempts_made", "check_describe"]

_HELLO: list[MessageParam] = [{"role": "user", "content": "Hello, Claude"}]


def _raised(names: list[str]) -> list[anthropic.APIStatusError]:
    """One SDK exception per catalogue error name, as the simulated API produces them."""
    caught = []
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        client = api.client(max_retries=0)
        for name in names:
            api.respond(name)
            try:
                client.messages.create(model=api.model, max_tokens=64, messages=_HELLO)
            except anthropic.APIStatusError as e:
                caught.append(e)
    return caught


@exercise("00.1", "describe an error")
def check_describe(solution: Callable[..., Any]) -> None:
    """``solution(e)`` is ``(e.status_code, e.type, e.request_id)`` for several errors."""
    names = ["overloaded_error", "rate_limit_error", "invalid_request_error",
             "not_found_error", "bad_gateway"]
    expected = [(529, "overloaded_error", "req_fake_000001"),
                (429, "rate_limit_error", "req_fake_000002"),
                (400, "invalid_request_error", "req_fake_000003"),
                (404, "not_found_error", "req_fake_000004"),
                (502, None, "req_fake_000005")]
    for name, error, want in zip(names, _raised(names), expected, strict=True):
        got = solution(error)
        assert isinstance(got, tuple) and len(got) == 3, (
            f"for a {name} you returned {got!r}; expected a tuple "
            "(status, error_type, request_id).")
        assert got == want, (
            f"for a {name} you returned {got!r}; expected {want!r}."
            + (" A proxy's HTML page has no error.type: use e.type, which is None here."
               if name == "bad_gateway" else ""))


_CASES: list[tuple[list[str], int, int]] = [
    (["ok"], 2, 1),
    (["overloaded_error", "ok"], 2, 2),
    (["overloaded_error"] * 5, 2, 3),
    (["overloaded_error"] * 5, 4, 5),
    (["overloaded_error"] * 3, 0, 1),
    (["invalid_request_error", "ok"], 2, 1),
    (["api_error", "rate_limit_error", "ok"], 3, 3),
]


@exercise("00.2", "count the SDK's attempts")
def check_attempts_made(solution: Callable[..., Any]) -> None:
    """``solution(outcomes, max_retries)`` counts the HTTP attempts of one SDK call."""
    for outcomes, max_retries, want in _CASES:
        got = solution(list(outcomes), max_retries)
        call = f"attempts_made({outcomes}, max_retries={max_retries})"
        assert isinstance(got, int) and not isinstance(got, bool), (
            f"{call} returned {got!r}; expected a whole number of attempts.")
        assert got == want, (
            f"{call} returned {got}; the SDK made {want}. It stops at the first success, "
            "at an error it does not retry, or after max_retries + 1 attempts.")


CHECKS = {"describe": check_describe, "attempts_made": check_attempts_made}
