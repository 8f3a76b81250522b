"""Checkers for lesson 02, "Errors you fix, not retry".

* ``log_fields(e)``: the five fields worth logging for an ``anthropic.APIStatusError``, and
  never the API key.
* ``user_message(e)``: a message for a person: the category's advice and the request id,
  without the raw SDK message or the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic

from course import exercise
from resilience.classification import classify
from resilience.clock import VirtualClock
from resilience.testing import FAKE_API_KEY, FakeClaude

__all__ = ["CHECKS", "LOG_KEYS", "check_log_fields", "check_user_message"]

LOG_KEYS = frozenset({"request_id", "status", "error_type", "error_code", "sdk_class"})
"""The keys ``log_fields`` returns."""

_NAMES = ["invalid_request_error", "authentication_error", "billing_error",
          "permission_error", "not_found_error", "request_too_large", "unprocessable_entity",
          "workspace_spend_limit", "spend_limit_reached", "rate_limit_error",
          "overloaded_error", "bad_gateway"]


def _raise_each() -> list[anthropic.APIStatusError]:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        caught = [api.raised(name) for name in _NAMES]
    errors = [e for e in caught if isinstance(e, anthropic.APIStatusError)]
    if len(errors) != len(caught):  # the checker's own premise, not the learner's answer
        raise RuntimeError("every case should raise an APIStatusError through the SDK")
    return errors


def _leaks_key(value: object) -> bool:
    return FAKE_API_KEY in json.dumps(value, default=repr) or FAKE_API_KEY in repr(value)


@exercise("02.1", "the fields to log")
def check_log_fields(solution: Callable[..., Any]) -> None:
    """``solution(e)`` is a dict of the five log fields, with no secret in it."""
    for name, error in zip(_NAMES, _raise_each(), strict=True):
        got = solution(error)
        assert isinstance(got, dict), f"for a {name} you returned {got!r}; expected a dict."
        assert not _leaks_key(got), (
            f"for a {name} your dict contains the API key: never log e.request or its "
            "headers.")
        assert set(got) == LOG_KEYS, (
            f"for a {name} your keys are {sorted(got)}; expected exactly {sorted(LOG_KEYS)}.")
        want = {"request_id": error.request_id, "status": error.status_code,
                "error_type": error.type, "error_code": error.error_code,
                "sdk_class": type(error).__name__}
        for key, value in want.items():
            assert got[key] == value, (
                f"for a {name}, {key} is {got[key]!r}; expected {value!r}.")


@exercise("02.2", "a message for the user")
def check_user_message(solution: Callable[..., Any]) -> None:
    """``solution(e)`` holds the advice and request id, not the raw message or the key."""
    for name, error in zip(_NAMES, _raise_each(), strict=True):
        got = solution(error)
        verdict = classify(error)
        assert isinstance(got, str), f"for a {name} you returned {got!r}; expected a string."
        assert FAKE_API_KEY not in got, f"for a {name} your message contains the API key."
        assert str(error) not in got, (
            f"for a {name} your message contains the SDK's raw message {str(error)[:40]!r}...; "
            "a user should not see it.")
        assert verdict.advice in got, (
            f"for a {name} (category {verdict.category}) your message lacks the advice "
            f"{verdict.advice!r}.")
        assert str(error.request_id) in got, (
            f"for a {name} your message lacks the request id {error.request_id!r}.")


CHECKS = {"log_fields": check_log_fields, "user_message": check_user_message}
