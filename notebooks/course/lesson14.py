"""Checkers for lesson 14, "Test your own app under failure", and the app the lesson tests.

The app is a function ``app(client, question, log) -> str``: it asks Claude through
``client``, returns the text for the user, and reports each outcome with ``log(line)``.
:func:`answer` is the lesson's own app; the lesson defines the same function in a cell (the
fact test checks they agree).

* ``test_outage(fake_claude, app)``: a test, as you would write it for pytest, of ``app``
  while the API is down. It must pass for :func:`answer` and fail for four broken apps: one
  that retries without end, one that lets the error out, one that swallows it (an empty
  reply), and one that logs the failure without its request-id.
* ``unaccounted(results, log)``: reconcile an app's results with the chaos server's log and
  return the tags of the requests that are not accounted for. The rule, per tag: the last
  logged attempt decides. A result that says "answered" needs that attempt to be ``"ok"``
  with the result's request-id; a failed result needs it not ``"ok"``, and a request-id that
  is that attempt's or None (no error response reached the app). A tag in the log without
  a result was lost; a result whose tag is not in the log came from nowhere.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

import anthropic

from course import exercise
from resilience.classification import classify
from resilience.clock import VirtualClock
from resilience.models import MODEL

__all__ = ["BUSY", "CHECKS", "SORRY", "Result", "answer", "check_outage_test",
           "check_unaccounted"]

BUSY = "Claude is busy right now. Please try again in a minute."
"""What the user reads when the failure is transient (retrying later can work)."""

SORRY = "Sorry, we could not answer that. We have logged the problem."
"""What the user reads when the failure is the app's own (a 4xx: retrying will not help)."""

App = Callable[[Any, str, Callable[[str], None]], Any]
Test = Callable[[Any, App], None]

RUNAWAY = 50
"""How often the runaway app calls again: "without end", stopped only so the check ends."""


class Result(NamedTuple):
    """What an app reported about one request: its tag, whether the user got an answer, and
    the request-id it logged (None when no response with an id reached it)."""

    tag: str
    answered: bool
    request_id: str | None


def _ask(client: Any, question: str) -> Any:
    return client.messages.create(model=MODEL, max_tokens=256,
                                  messages=[{"role": "user", "content": question}])


def answer(client: Any, question: str, log: Callable[[str], None]) -> str:
    """The lesson's app: Claude's text, or a message for the user; one log line either way."""
    try:
        message = _ask(client, question)
    except anthropic.APIError as e:
        verdict = classify(e)
        log(f"claude failed: {verdict.category}, request-id {verdict.request_id}")
        return BUSY if verdict.retryable else SORRY
    log(f"claude answered: request-id {message._request_id}")
    return str(message.content[0].text)


def _retries_without_end(client: Any, question: str, log: Callable[[str], None]) -> str:
    for _ in range(RUNAWAY):
        reply = answer(client, question, log)
        if reply != BUSY:
            return reply
    return BUSY


def _lets_the_error_out(client: Any, question: str, log: Callable[[str], None]) -> str:
    message = _ask(client, question)
    log(f"claude answered: request-id {message._request_id}")
    return str(message.content[0].text)


def _swallows_the_error(client: Any, question: str, log: Callable[[str], None]) -> str:
    try:
        message = _ask(client, question)
    except anthropic.APIError as e:
        log(f"claude failed: {classify(e).category}, request-id {classify(e).request_id}")
        return ""
    log(f"claude answered: request-id {message._request_id}")
    return str(message.content[0].text)


def _loses_the_request_id(client: Any, question: str, log: Callable[[str], None]) -> str:
    try:
        message = _ask(client, question)
    except anthropic.APIError as e:
        verdict = classify(e)
        log(f"claude failed: {verdict.category}")
        return BUSY if verdict.retryable else SORRY
    log(f"claude answered: request-id {message._request_id}")
    return str(message.content[0].text)


BROKEN: Mapping[str, tuple[App, str]] = {
    "retries without end": (
        _retries_without_end,
        "your test passed an app that sent {attempts} attempts for one question: assert "
        "that at most 3 attempts reach the API (len(fake_claude.calls) <= 3)."),
    "lets the error out": (
        _lets_the_error_out,
        "your test passed an app that let the OverloadedError out to the user: call the app "
        "plainly (no try/except around it), so an exception it lets out fails the test."),
    "swallows the error": (
        _swallows_the_error,
        "your test passed an app that gave the user an empty reply: assert the reply is "
        "BUSY."),
    "loses the request-id": (
        _loses_the_request_id,
        "your test passed an app whose log line has no request-id: assert that the last "
        "attempt's request-id (fake_claude.calls[-1].request_id) is in the app's log."),
}
"""The broken apps a good outage test must fail, with what to tell a test that passes one."""


def _run(test: Test, app: App) -> tuple[BaseException | None, Any]:
    """Run ``test`` as pytest would (a fresh ``fake_claude``); what it raised, and the fake."""
    from resilience.testing import FakeClaude

    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        try:
            test(api, app)
        except NotImplementedError:
            raise
        except Exception as e:
            return e, api
    return None, api


@exercise("14.1", "a test that catches broken apps")
def check_outage_test(solution: Callable[..., Any]) -> None:
    """Passes for the lesson's app in an outage; fails for each of the four broken apps."""
    failed, api = _run(solution, answer)
    if failed is not None:
        raise AssertionError(
            f"your test failed for the lesson's app, which handles an outage well: "
            f"{type(failed).__name__}: {failed}")
    assert api.calls, (
        "your test never called the app: call app(fake_claude.client(), 'Hi', lines.append) "
        "with lines = [], then assert on the reply, fake_claude.calls and lines.")
    answered = [call for call in api.calls if call.status == 200]
    assert not answered, (
        "in your test the API answered (a 200 reached the app): for an outage, make every "
        "attempt fail, e.g. fake_claude.scenario(Outage(0, 1e9)).")
    for app, advice in BROKEN.values():
        failed, broken_api = _run(solution, app)
        assert failed is not None, advice.format(attempts=len(broken_api.calls))


def _is_tags(value: object) -> bool:
    return (isinstance(value, Collection) and not isinstance(value, str | bytes | Mapping)
            and all(isinstance(tag, str) for tag in value))


def _entry(number: int, tag: str, outcome: str, retry_count: int = 0) -> dict[str, Any]:
    """One log entry as ``GET /_chaos/log`` returns it."""
    statuses = {"ok": 200, "overloaded_error": 529, "api_error": 500,
                "rate_limit_error": 429, "connection_error": None}
    return {"number": number, "time": 0.01 * number, "request_id": f"req_chaos_{number:06d}",
            "retry_count": retry_count, "status": statuses[outcome], "outcome": outcome,
            "stream": False, "method": "POST", "path": "/v1/messages", "model": MODEL,
            "delay": 0.0, "tag": tag}


def _id(number: int) -> str:
    return f"req_chaos_{number:06d}"


def _cases() -> list[tuple[str, list[Result], list[dict[str, Any]], set[str]]]:
    """(what, results, log, the tags unaccounted for)."""
    log = [_entry(1, "q0", "ok"),
           _entry(2, "q1", "overloaded_error"), _entry(3, "q2", "api_error"),
           _entry(4, "q1", "ok", 1), _entry(5, "q2", "api_error", 1),
           _entry(6, "q3", "rate_limit_error"), _entry(7, "q2", "overloaded_error", 2),
           _entry(8, "q3", "connection_error", 1)]
    good = [Result("q0", True, _id(1)), Result("q1", True, _id(4)),
            Result("q2", False, _id(7)), Result("q3", False, None)]
    lost = [_entry(9, "q4", "overloaded_error"), _entry(10, "q4", "ok", 1)]
    return [
        ("every request is accounted for (the last attempt decides)", good, log, set()),
        ("the same, with the results in another order", good[::-1], log, set()),
        ("a request in the log has no result (the app lost it)", good, log + lost, {"q4"}),
        ("a result whose tag is not in the log (an answer from nowhere)",
         [*good, Result("q5", True, _id(11))], log, {"q5"}),
        ("an answer whose last attempt failed",
         [good[0], good[1], Result("q2", True, _id(7)), good[3]], log, {"q2"}),
        ("a failure whose last attempt was ok (an answer dropped)",
         [good[0], Result("q1", False, _id(4)), good[2], good[3]], log, {"q1"}),
        ("an answer carrying an earlier attempt's request-id",
         [good[0], Result("q1", True, _id(2)), good[2], good[3]], log, {"q1"}),
        ("a failure carrying an earlier attempt's request-id",
         [good[0], good[1], Result("q2", False, _id(3)), good[3]], log, {"q2"}),
        ("a failure with no request-id (no error response reached the app)",
         [good[0], good[1], Result("q2", False, None), good[3]], log, set()),
    ]


@exercise("14.2", "reconcile results with the log")
def check_unaccounted(solution: Callable[..., Any]) -> None:
    """Every case of :func:`_cases`: the tags returned are exactly those unaccounted for."""
    for what, results, log, expected in _cases():
        got = solution(list(results), [dict(entry) for entry in log])
        assert _is_tags(got), (
            f"when {what}, unaccounted returned {got!r}; return a set of tags (strings), "
            "set() when everything is accounted for.")
        assert set(got) == expected, (
            f"when {what}, unaccounted returned {sorted(got)}; expected {sorted(expected)}.")


CHECKS: dict[str, Callable[[Callable[..., Any]], bool | None]] = {
    "test_outage": check_outage_test, "unaccounted": check_unaccounted}
