"""Checkers for lesson 16, "Tool use and agent loops", and the simulated model it runs on.

* :class:`Planner`: a scenario that plays an agent's model. It reads the conversation a
  request carries and calls the next tools of its plan (a ``tool_use`` turn, with ids new
  to each request, as from the real model) or gives its final answer; a request whose
  ``tool_use`` blocks lack their ``tool_result`` blocks gets the API's 400. Requests
  listed in ``fail_at`` get a 529. It records every request's messages.
* ``agent(client, model, messages, tools, done)`` (exercise 16.1): an agent loop that can
  be run again after a failure and resumes from ``messages``; it runs each ``tool_use``
  id at most once, keeping results in ``done``.
* ``finish(client, model, messages, limit)`` (exercise 16.2): one answer, whatever its
  ``stop_reason``: continue after ``max_tokens``, resend a ``pause_turn``, raise
  :class:`Refused` on a ``refusal``; at most ``limit`` requests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from anthropic.types import ToolParam

from course import exercise
from resilience.testing.outcomes import Exchange, Outcome, error, ok

__all__ = ["CHECKS", "CONTINUE", "TOOLS", "Planner", "Refused", "check_agent", "check_finish"]

TOOLS: list[ToolParam] = [
    {"name": "charge_card", "description": "Charge the customer's card, in cents.",
     "input_schema": {"type": "object", "properties": {"cents": {"type": "integer"}},
                      "required": ["cents"]}},
    {"name": "send_email", "description": "Email a receipt.",
     "input_schema": {"type": "object", "properties": {"to": {"type": "string"}},
                      "required": ["to"]}},
]
"""The tool definitions the lesson's agent sends with ``tools=TOOLS``."""

CONTINUE = "You were cut off. Continue exactly where you stopped."
"""The user turn that asks the model to go on after ``max_tokens``."""

Call = tuple[str, Mapping[str, Any]]


class Refused(Exception):
    """The model declined to answer (``stop_reason == "refusal"``): tell the user."""


def _field(item: Any, name: str) -> Any:
    """A field of a block or message, whether a dict or an SDK object."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _blocks(message: Any, kind: str) -> list[Any]:
    content = _field(message, "content")
    if not isinstance(content, list):
        return []
    return [block for block in content if _field(block, "type") == kind]


@dataclass
class Planner:
    """An agent's model, as a scenario: ``api.scenario(Planner(steps, final))``.

    Turn ``k`` of a conversation (``k`` = the user turns with ``tool_result`` blocks so far)
    calls the tools ``steps[k]``, all in one ``tool_use`` message; after the last step it
    answers ``final``. A conversation sent again from the start begins again at step 0,
    with new ids: that is what re-running a turn does.

    Attributes:
        steps: per turn, the tool calls: ``(name, input)`` pairs.
        final: the final answer's text.
        fail_at: request numbers (1 = the fake's first request) answered with a 529.
        seen: the ``messages`` of every request it answered, in order.
    """

    steps: Sequence[Sequence[Call]]
    final: str = "Done."
    fail_at: frozenset[int] = frozenset()
    seen: list[list[Any]] = field(default_factory=list)

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """The next turn of the plan for the conversation this request carries."""
        messages = list(exchange.body.get("messages", []))
        self.seen.append(messages)
        if exchange.number in self.fail_at:
            return error("overloaded_error")
        missing = _unanswered(messages)
        if missing:
            return error("invalid_request_error", message=(
                f"messages: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                "a corresponding `tool_result` block in the next message."))
        turn = sum(1 for m in messages if _field(m, "role") == "user"
                   and _blocks(m, "tool_result"))
        if turn >= len(self.steps):
            return ok(self.final)
        return ok("", stop_reason="tool_use", content=[
            {"type": "tool_use", "name": name, "input": dict(args)}
            for name, args in self.steps[turn]])


def _unanswered(messages: Sequence[Any]) -> list[str]:
    """The ids of tool calls that the next message does not answer with a tool_result."""
    missing: list[str] = []
    for i, message in enumerate(messages):
        if _field(message, "role") != "assistant":
            continue
        asked = [_field(b, "id") for b in _blocks(message, "tool_use")]
        after = messages[i + 1] if i + 1 < len(messages) else {}
        answered = {_field(b, "tool_use_id") for b in _blocks(after, "tool_result")}
        missing += [str(tool_id) for tool_id in asked if tool_id not in answered]
    return missing


# -- exercise 16.1 ----------------------------------------------------------------------

_TASK = "Charge Ana 42.00 and email her the receipt."
_CHARGE: Call = ("charge_card", {"cents": 4200})
_EMAIL: Call = ("send_email", {"to": "ana@example.com"})


class _Tools:
    """Tools that count what really happened; ``send_email`` can fail on its first call."""

    def __init__(self, flaky_email: bool = False) -> None:
        self.charges = 0
        self.emails = 0
        self.email_tries = 0
        self._flaky = flaky_email

    def charge_card(self, cents: int) -> str:
        self.charges += 1
        return f"charged {cents} cents"

    def send_email(self, to: str) -> str:
        self.email_tries += 1
        if self._flaky and self.email_tries == 1:
            raise ConnectionError("[simulated] the mail server did not answer")
        self.emails += 1
        return f"emailed {to}"

    def table(self) -> dict[str, Callable[..., str]]:
        return {"charge_card": self.charge_card, "send_email": self.send_email}


@dataclass
class _Job:
    result: Any
    tries: int
    planner: Planner
    tools: _Tools
    requests: int


def _run_job(solution: Callable[..., Any], planner: Planner, tools: _Tools,
             tries: int = 3) -> _Job:
    """Run the learner's agent as a job runner would: again after each failure, with the
    same transcript and the same ``done`` store."""
    import anthropic

    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude

    messages: list[Any] = [{"role": "user", "content": _TASK}]
    done: dict[str, Any] = {}
    result: Any = None
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(planner)
        client = api.client(max_retries=0)
        for attempt in range(1, tries + 1):  # noqa: B007 (the number of tries is reported)
            try:
                result = solution(client, api.model, messages, tools.table(), done)
                break
            except (anthropic.APIError, ConnectionError) as e:
                result = e
        return _Job(result, attempt, planner, tools, len(api.calls))


def _results_sent(planner: Planner) -> dict[str, Any]:
    """tool_use id -> the content of its tool_result, over every request sent."""
    sent: dict[str, Any] = {}
    for messages in planner.seen:
        for message in messages:
            for block in _blocks(message, "tool_result"):
                sent[str(_field(block, "tool_use_id"))] = _field(block, "content")
    return sent


@exercise("16.1", "run each tool_use id at most once")
def check_agent(solution: Callable[..., Any]) -> None:
    """Runs the agent as a job, again after each failure: each tool runs once, and the
    job still finishes."""
    job = _run_job(solution, Planner([[_CHARGE], [_EMAIL]]), _Tools())
    assert job.result == "Done.", (
        f"with no failures your agent returned {_what(job.result)}; expected the final "
        "answer's text, 'Done.' (loop until stop_reason is not 'tool_use').")
    assert (job.tools.charges, job.tools.emails, job.requests) == (1, 1, 3), (
        f"with no failures expected 1 charge, 1 email and 3 requests; saw "
        f"{job.tools.charges}, {job.tools.emails} and {job.requests}.")

    job = _run_job(solution, Planner([[_CHARGE], [_EMAIL]], fail_at=frozenset({2})), _Tools())
    assert job.tools.charges == 1, (
        f"the request after the charge failed (a 529) and the job ran your agent again: "
        f"the card was charged {job.tools.charges} times. Your agent asked the model again "
        "from the start, so turn 1 ran again with a new tool_use id. Keep the transcript "
        "in `messages` (append to it) and carry on from its last message.")
    assert job.result == "Done." and job.tools.emails == 1, (
        f"after a failed request and a second run, your agent returned "
        f"{_what(job.result)} with {job.tools.emails} email(s); expected 'Done.' and 1.")

    job = _run_job(solution, Planner([[_CHARGE, _EMAIL]]), _Tools(flaky_email=True))
    assert job.requests == 2, (
        f"the model called charge_card and send_email in one turn, send_email raised "
        f"ConnectionError, and the job ran your agent again: you made {job.requests} "
        "requests where 2 do (the tool_use turn, then the results). Append the model's "
        "turn to `messages` before running its tools, and when `messages` ends with that "
        "turn, finish its tools instead of asking the model again (a new turn has new ids).")
    assert job.tools.charges == 1, (
        f"the model called charge_card and send_email in one turn; send_email raised "
        f"ConnectionError and the job ran your agent again: the card was charged "
        f"{job.tools.charges} times. Record each tool_use id in `done` once its tool "
        "returns, and skip the ids already there.")
    assert job.tools.emails == 1, (
        f"send_email failed once, and after the job's retries it ran "
        f"{job.tools.emails} times in all; a tool that raised did not finish: record its "
        "id only after it returns, so the next run tries it again.")
    sent = _results_sent(job.planner)
    assert "charged 4200 cents" in sent.values(), (
        f"the tool_result for the charge carried {sorted(map(str, sent.values()))}; send "
        "the result the tool returned the first time (keep it in `done[id]`).")
    assert job.result == "Done.", f"the job ended with {_what(job.result)}, not 'Done.'."


# -- exercise 16.2 ----------------------------------------------------------------------

_ASK: list[Any] = [{"role": "user", "content": "What is the answer?"}]


@dataclass
class _Script:
    """Outcomes in order (then ``ok()``), recording each request's messages."""

    outcomes: list[Outcome]
    seen: list[list[Any]] = field(default_factory=list)

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        self.seen.append(list(exchange.body.get("messages", [])))
        return self.outcomes.pop(0) if self.outcomes else ok()


def _finished(solution: Callable[..., Any], *outcomes: Outcome,
              limit: int = 4) -> tuple[Any, list[list[Any]]]:
    """Run ``finish``: (its text or what it raised, the messages of each request)."""
    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude

    script = _Script(list(outcomes))
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(script)
        try:
            result = solution(api.client(max_retries=0), api.model, list(_ASK), limit)
        except NotImplementedError:  # a RuntimeError too: the stub, not an answer
            raise
        except (Refused, RuntimeError) as e:
            result = e
    return result, script.seen


def _roles(messages: Sequence[Any]) -> list[str]:
    return [str(_field(m, "role")) for m in messages]


def _text(message: Any) -> str:
    content = _field(message, "content")
    if isinstance(content, str):
        return content
    return "".join(str(_field(b, "text")) for b in _blocks(message, "text"))


@exercise("16.2", "finish an answer, whatever its stop_reason")
def check_finish(solution: Callable[..., Any]) -> None:
    """end_turn, max_tokens, pause_turn and refusal each handled as the API intends."""
    got, seen = _finished(solution, ok("Forty-two."))
    assert got == "Forty-two." and len(seen) == 1, (
        f"a finished answer (end_turn) gave {_what(got)} after {len(seen)} request(s); "
        "return its text after one request.")

    got, seen = _finished(solution, ok("The answer", stop_reason="max_tokens"), ok(" is 42."))
    assert len(seen) == 2, (
        f"the answer stopped at max_tokens ('The answer') and you {_ended(got)} after "
        f"{len(seen)} request(s): a 200 with stop_reason 'max_tokens' is cut short. "
        "Continue it with a second request.")
    assert _roles(seen[1]) == ["user", "assistant", "user"] and _text(seen[1][1]) == (
        "The answer") and _text(seen[1][2]) == CONTINUE, (
        f"to continue after max_tokens send the partial answer back as an assistant turn, "
        f"then a user turn with CONTINUE; your second request's roles were "
        f"{_roles(seen[1])}.")
    assert got == "The answer is 42.", (
        f"after max_tokens and a continuation you returned {_what(got)}; join the pieces: "
        "'The answer is 42.'.")

    paused = ok("Searching. ", stop_reason="pause_turn",
                content=[{"type": "server_tool_use", "name": "web_search",
                          "input": {"query": "the answer"}}])
    got, seen = _finished(solution, paused, ok("Found it."))
    assert len(seen) == 2 and _roles(seen[1]) == ["user", "assistant"], (
        f"after a pause_turn your requests' roles were {[_roles(m) for m in seen]}; send "
        "the paused turn back as it is, as the last (assistant) message, with no new user "
        "turn: the API then continues the same turn.")
    assert [_field(b, "type") for b in _field(seen[1][1], "content") or []] == [
        "text", "server_tool_use"], (
        "send the paused turn's whole content back (message.content), its server_tool_use "
        "block included, not only its text.")
    assert got == "Searching. Found it.", (
        f"after a pause_turn you returned {_what(got)}; expected the text of both parts, "
        "'Searching. Found it.'.")

    got, seen = _finished(solution, ok("I can't help with that.", stop_reason="refusal"))
    assert isinstance(got, Refused) and len(seen) == 1, (
        f"after a refusal you {_ended(got)} after {len(seen)} request(s); a refusal is the "
        "model's answer, not a fault: sending it again does not help. Raise Refused at "
        "once, so the app can tell the user.")

    got, seen = _finished(solution, *[paused] * 5, limit=3)
    assert len(seen) == 3 and isinstance(got, RuntimeError), (
        f"with limit=3 and a turn that keeps pausing you made {len(seen)} requests and "
        f"{_ended(got)}; make at most `limit` requests, then raise RuntimeError.")


def _what(got: Any) -> str:
    return type(got).__name__ if isinstance(got, BaseException) else repr(got)


def _ended(got: Any) -> str:
    if isinstance(got, BaseException):
        return f"raised {type(got).__name__}"
    return f"returned {got!r}"


CHECKS = {"agent": check_agent, "finish": check_finish}
