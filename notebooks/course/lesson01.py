"""Checkers for lesson 01, "The error catalogue".

* ``should_retry(status)``: whether an HTTP status is worth retrying, checked against
  :func:`resilience.classify` for every status from 400 to 599.
* ``action_for(e)``: one action per SDK exception, which needs the most specific class
  tested first (``OverloadedError`` before ``InternalServerError``, a spend limit before
  ``RateLimitError``), and a spend limit you set, which is a plain 400 known by its message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx

from course import exercise
from resilience.classification import classify
from resilience.clock import VirtualClock
from resilience.testing import FakeClaude

__all__ = ["ACTIONS", "CHECKS", "check_action_for", "check_should_retry"]

ACTIONS = ("overloaded", "server_error", "spend_limit", "rate_limit", "fix_request")
"""The answers ``action_for`` may give."""


@exercise("01.1", "should this status be retried?")
def check_should_retry(solution: Callable[..., Any]) -> None:
    """``solution(status)`` equals ``classify(status).retryable`` for 400..599."""
    wrong = []
    for status in range(400, 600):
        got = solution(status)
        assert isinstance(got, bool), (
            f"should_retry({status}) returned {got!r}; expected True or False.")
        if got != classify(status).retryable:
            wrong.append(status)
    assert not wrong, (
        f"{len(wrong)} statuses disagree with classify(), for example "
        f"{', '.join(map(str, wrong[:6]))}. Retry 408, 409, 429 and every status >= 500 "
        "except 501.")


# (label, outcome for the simulated API, expected action)
_COMPACTION = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded",
                                          "details": {"error_code": "compaction_unavailable"}}}
_CASES: list[tuple[str, object, str]] = [
    ("a 529 overloaded_error", "overloaded_error", "overloaded"),
    ("a 529 with error_code compaction_unavailable (CompactionUnavailableError)",
     httpx.Response(529, json=_COMPACTION), "overloaded"),
    ("a 500 api_error", "api_error", "server_error"),
    ("a 502 from a proxy", "bad_gateway", "server_error"),
    ("a 503", "service_unavailable", "server_error"),
    ("a 504 timeout_error", "timeout_error", "server_error"),
    ("a 520 from a proxy", httpx.Response(520), "server_error"),
    ("a 429 rate_limit_error", "rate_limit_error", "rate_limit"),
    ("a 429 spend limit (the usage tier's monthly cap)", "spend_limit_reached", "spend_limit"),
    ("a 400 spend limit you set on a workspace", "workspace_spend_limit", "spend_limit"),
    ("a 400 invalid_request_error", "invalid_request_error", "fix_request"),
    ("a 401 authentication_error", "authentication_error", "fix_request"),
    ("a 404 not_found_error", "not_found_error", "fix_request"),
    ("a 413 request_too_large", "request_too_large", "fix_request"),
]


def _raise_each() -> list[anthropic.APIStatusError]:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        caught = [api.raised(value) for _, value, _ in _CASES]
    errors = [e for e in caught if isinstance(e, anthropic.APIStatusError)]
    if len(errors) != len(caught):  # the checker's own premise, not the learner's answer
        raise RuntimeError("every case should raise an APIStatusError through the SDK")
    return errors


@exercise("01.2", "one action per exception")
def check_action_for(solution: Callable[..., Any]) -> None:
    """``solution(e)`` maps fourteen SDK exceptions to the right action."""
    for (label, _, want), error in zip(_CASES, _raise_each(), strict=True):
        got = solution(error)
        assert got in ACTIONS, (
            f"for {label} ({type(error).__name__}) you returned {got!r}; "
            f"expected one of {', '.join(ACTIONS)}.")
        tip = ("A spend limit you set is a plain 400: only its message tells; "
               "classify(e).category reads it." if error.status_code == 400 and want ==
               "spend_limit" else "Test the most specific class first.")
        assert got == want, (
            f"for {label} ({type(error).__name__}) you returned {got!r}; expected {want!r}. "
            + tip)


CHECKS = {"should_retry": check_should_retry, "action_for": check_action_for}
