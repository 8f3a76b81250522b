"""Every factual claim lesson 16 ("Tool use and agent loops") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, through the real anthropic SDK answered by the simulated API, and check that
the exercises' checkers reject plausible wrong answers.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from course.lesson16 import (
    CONTINUE,
    TOOLS,
    Planner,
    Refused,
    check_agent,
    check_finish,
)
from lesson_code import run_lesson

from resilience import MODEL, retry
from resilience.testing import FakeClaude

LESSON = "16_tool_use_and_agent_loops"
TASK: list[Any] = [{"role": "user", "content": "Charge Ana 42.00 and email her the receipt."}]
CHARGE = ("charge_card", {"cents": 4200})
EMAIL = ("send_email", {"to": "ana@example.com"})


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    return run_lesson(LESSON)


def run_agent(lesson: dict[str, Any], where: str, fail_at: frozenset[int]) -> tuple[
        list[str], list[str]]:
    """The lesson's loop with the retry around it or inside it: (ledger, outcomes)."""
    ledger, loop, tools = lesson["ledger"], lesson["agent_loop"], lesson["TOOL_FUNCTIONS"]
    ledger.clear()
    with FakeClaude(seed=0) as api:
        api.scenario(Planner(lesson["STEPS"], fail_at=fail_at))
        if where == "whole loop":
            assert retry(attempts=2, clock=api.clock)(loop)(api.client().messages.create,
                                                            tools) == "Done."
        else:
            ask = retry(attempts=5, clock=api.clock)(api.client(max_retries=0).messages.create)
            assert loop(ask, tools) == "Done."
    return list(ledger), [call.outcome for call in api.calls]


# -- a retry that re-runs a turn ---------------------------------------------------------

def test_the_loop_runs_each_tool_once_without_failures(lesson: dict[str, Any]) -> None:
    ledger, outcomes = run_agent(lesson, "each call", frozenset())
    assert (ledger, outcomes) == (["charged 4200 cents", "emailed ana@example.com"],
                                  ["tool_use", "tool_use", "ok"])


def test_a_retry_of_the_whole_loop_charges_twice(lesson: dict[str, Any]) -> None:
    ledger, outcomes = run_agent(lesson, "whole loop", frozenset({3, 4, 5}))
    assert outcomes == ["tool_use", "tool_use", *["overloaded_error"] * 3, "tool_use",
                        "tool_use", "ok"], (
        f"lesson 16: the SDK's default retries of a 529 are now {outcomes}; the lesson says "
        "three attempts (two retries), then OverloadedError")
    assert ledger == ["charged 4200 cents", "emailed ana@example.com"] * 2
    assert lesson["ids"] == ["toolu_fake_000001_0", "toolu_fake_000002_0",
                             "toolu_fake_000006_0", "toolu_fake_000007_0"]


def test_a_retry_around_each_call_charges_once(lesson: dict[str, Any]) -> None:
    ledger, outcomes = run_agent(lesson, "each call", frozenset({3, 4, 5}))
    assert ledger == ["charged 4200 cents", "emailed ana@example.com"]
    assert len(outcomes) == 6


def test_idempotency_key_is_a_type_error_before_any_request() -> None:
    with FakeClaude(seed=0) as api, pytest.raises(TypeError, match="idempotency_key"):
        api.client().messages.create(model=MODEL, max_tokens=64, messages=TASK,
                                     idempotency_key="charge-ana-42")  # type: ignore[call-arg]
    assert api.calls == [], "lesson 16: idempotency_key now sends a request"


def test_the_sdk_gives_each_tool_use_block_an_id_field() -> None:
    fields = anthropic.types.ToolUseBlock.model_fields
    assert {"id", "name", "input"} <= set(fields), (
        f"lesson 16: ToolUseBlock's fields are now {sorted(fields)}; the lesson keys tool "
        "runs by its id")
    result_fields = typing.get_type_hints(anthropic.types.ToolResultBlockParam)
    assert "tool_use_id" in result_fields, (
        "lesson 16: a tool_result block no longer names its tool_use_id")


# -- a key per tool_use id -------------------------------------------------------------

def test_a_key_per_id_runs_the_charge_once(lesson: dict[str, Any]) -> None:
    assert [(name, tool_id) for name, tool_id in
            ((b.name, b.id) for b in lesson["turn"].content)] == [
        ("charge_card", "toolu_fake_000001_0"), ("send_email", "toolu_fake_000001_1")]
    assert lesson["run_twice"](fresh_memory=True) == [
        "charged 4200 cents", "charged 4200 cents", "emailed ana@example.com"]
    assert lesson["run_twice"](fresh_memory=False) == [
        "charged 4200 cents", "emailed ana@example.com"]


def test_the_sweep(lesson: dict[str, Any]) -> None:
    runs, rates = lesson["runs"], lesson["RATES"]
    whole, each = runs["whole loop"], runs["each call"]
    assert whole[0] == each[0] == (1.0, 1.0)
    assert all(charges == 1.0 for charges, _ in each), (
        f"lesson 16: a retry around each call now charges {each}; the lesson says at most once")
    assert all(charges > 1.0 for charges, _ in whole[1:]), (
        f"lesson 16: a retry around the whole loop now charges {whole} at rates {rates}; the "
        "lesson says more than once per task on a bad day")
    assert all(e >= w for (_, e), (_, w) in zip(each, whole, strict=True)), (
        "lesson 16: a retry around each call no longer finishes at least as many tasks")


# -- failures that arrive as a 200 -------------------------------------------------------

def test_stop_reasons_are_the_sdk_s() -> None:
    reasons = set(typing.get_args(anthropic.types.StopReason))
    assert {"end_turn", "tool_use", "max_tokens", "refusal", "pause_turn"} <= reasons, (
        f"lesson 16: the SDK's stop reasons are now {sorted(reasons)}")


def test_unfinished_answers_arrive_as_200s(lesson: dict[str, Any]) -> None:
    got = lesson["got"]
    assert {reason: (m.stop_reason, m.content[0].text) for reason, m in got.items()} == {
        "max_tokens": ("max_tokens", "The answer is"),
        "refusal": ("refusal", "I can't help with that."),
        "pause_turn": ("pause_turn", "Searching. "),
    }
    with FakeClaude(seed=0) as api:  # none raises, even with the SDK's retries on
        api.respond(*lesson["REPLIES"].values())
        for _ in range(3):
            api.client().messages.create(model=MODEL, max_tokens=64, messages=TASK)
    assert [c.status for c in api.calls] == [200, 200, 200], (
        "lesson 16: a max_tokens, refusal or pause_turn answer is no longer a plain 200")


def test_continue_and_resume_shapes(lesson: dict[str, Any]) -> None:
    cut = lesson["cut"]
    continued = lesson["continued"](TASK, cut)
    assert [m["role"] for m in continued] == ["user", "assistant", "user"]
    assert continued[-1]["content"] == CONTINUE
    assert [m["role"] for m in lesson["resumed"](TASK, lesson["paused"])] == ["user",
                                                                               "assistant"]
    with pytest.raises(Refused):
        lesson["stop_on_refusal"](lesson["got"]["refusal"])
    assert lesson["stop_on_refusal"](cut) is cut


# -- the simulated model ------------------------------------------------------------------

def test_the_planner_wants_a_result_for_every_tool_use() -> None:
    planner = Planner([[CHARGE]])
    with FakeClaude(seed=0) as api:
        api.scenario(planner)
        client = api.client(max_retries=0)
        turn = client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=TASK)
        history = [*TASK, {"role": "assistant", "content": turn.content}]
        with pytest.raises(anthropic.BadRequestError, match="toolu_fake_000001_0"):
            client.messages.create(model=MODEL, max_tokens=64, messages=[
                *history, {"role": "user", "content": "and?"}])
        final = client.messages.create(model=MODEL, max_tokens=64, messages=[
            *history, {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": turn.content[0].id, "content": "ok"}]}])
    assert final.content[0].text == "Done." and len(planner.seen) == 3


def test_the_planner_fails_where_told_and_starts_over_on_a_fresh_conversation() -> None:
    with FakeClaude(seed=0) as api:
        api.scenario(Planner([[CHARGE]], fail_at=frozenset({2})))
        client = api.client(max_retries=0)
        first = client.messages.create(model=MODEL, max_tokens=64, messages=TASK)
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(model=MODEL, max_tokens=64, messages=TASK)
        again = client.messages.create(model=MODEL, max_tokens=64, messages=TASK)
    assert (first.content[0].id, again.content[0].id) == (  # type: ignore[union-attr]
        "toolu_fake_000001_0", "toolu_fake_000003_0")


# -- the exercises' checkers reject plausible wrong answers -------------------------------

def _text(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def _agent(*, key: bool = True, fresh: bool = False, late_append: bool = False,
           mark_first: bool = False, content: str | None = None) -> Callable[..., str]:
    def agent(client: anthropic.Anthropic, model: str, messages: list[Any],
              tools: dict[str, Any], done: dict[str, Any]) -> str:
        history = list(messages) if fresh else messages
        memory = done if key else {}
        while True:
            last = history[-1]
            if last["role"] == "user":
                message = client.messages.create(model=model, max_tokens=64, tools=TOOLS,
                                                 messages=history)
                if message.stop_reason != "tool_use":
                    return _text(message)
                last = {"role": "assistant", "content": message.content}
                if not late_append:
                    history.append(last)
            results = []
            for block in last["content"]:
                if block.type == "tool_use":
                    if block.id not in memory:
                        if mark_first:
                            memory[block.id] = "running"
                        memory[block.id] = tools[block.name](**block.input)
                    results.append({"type": "tool_result", "tool_use_id": block.id,
                                    "content": content or memory[block.id]})
            if late_append:
                history.append(last)
            history.append({"role": "user", "content": results})
    return agent


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_agent(fresh=True), "Keep the transcript"),
    (_agent(key=False), "Record each tool_use id in `done`"),
    (_agent(late_append=True), "Append the model's turn to `messages` before running"),
    (_agent(mark_first=True), "record its id only after it returns"),
    (_agent(content="done"), "send the result the tool returned the first time"),
], ids=["restarts from scratch", "no key", "turn appended after its tools",
        "id recorded before the tool ran", "made-up result"])
def test_checker_16_1_rejects_wrong_agents(wrong: Any, complaint: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert check_agent(wrong) is False
    assert complaint in capsys.readouterr().out


def _finisher(*, pause: str = "resend", cut: str = "continue", refuse: str = "raise",
              limit: bool = True, join: bool = True) -> Callable[..., str]:
    def finish(client: anthropic.Anthropic, model: str, messages: list[Any],
               limit_: int) -> str:
        history, pieces = list(messages), []
        for _ in range(limit_ if limit else 100):
            message = client.messages.create(model=model, max_tokens=64, messages=history)
            pieces = [*pieces, _text(message)] if join else [_text(message)]
            reason = message.stop_reason
            if reason == "refusal" and refuse == "raise":
                raise Refused("no")
            if reason == "pause_turn" and pause != "ignore":
                content = ([b for b in message.content if b.type == "text"]
                           if pause == "text only" else message.content)
                history.append({"role": "assistant", "content": content})
                if pause == "user turn":
                    history.append({"role": "user", "content": CONTINUE})
            elif reason == "max_tokens" and cut != "ignore":
                if cut == "continue":
                    history += [{"role": "assistant", "content": message.content},
                                {"role": "user", "content": CONTINUE}]
            elif reason == "refusal" and refuse == "retry":
                continue
            else:
                return "".join(pieces)
        raise RuntimeError("too many")
    return finish


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_finisher(cut="ignore"), "is cut short"),
    (_finisher(cut="resend"), "send the partial answer back as an assistant turn"),
    (_finisher(join=False), "join the pieces"),
    (_finisher(pause="user turn"), "with no new user turn"),
    (_finisher(pause="text only"), "its server_tool_use block included"),
    (_finisher(refuse="return"), "Raise Refused at once"),
    (_finisher(refuse="retry"), "sending it again does not help"),
    (_finisher(limit=False), "make at most `limit` requests"),
], ids=["max_tokens as an answer", "max_tokens resent as it was", "last piece only",
        "pause with a user turn", "pause without its blocks", "refusal as an answer",
        "refusal resent", "no limit"])
def test_checker_16_2_rejects_wrong_finishers(wrong: Any, complaint: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert check_finish(wrong) is False
    assert complaint in capsys.readouterr().out

