"""Every factual claim lesson 20 ("Batches") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, through the real anthropic SDK answered by the simulated Batches API, and check
that the exercises' checkers reject plausible wrong answers.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types.messages import MessageBatch, MessageBatchRequestCounts, MessageBatchResult
from course.lesson20 import check_finish, check_to_resubmit, request
from lesson_code import run_lesson

from resilience import classify
from resilience.catalogue import ERRORS, RETRYABLE_TYPES
from resilience.clock import Clock
from resilience.testing import FakeBatches, FakeClaude

LESSON = "20_batches"


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    return run_lesson(LESSON)


# -- the SDK's shapes the lesson teaches ---------------------------------------------------

def test_the_four_result_types() -> None:
    union = typing.get_args(typing.get_args(MessageBatchResult)[0])
    types = {typing.get_args(cls.model_fields["type"].annotation)[0] for cls in union}
    assert types == {"succeeded", "errored", "expired", "canceled"}, (
        f"lesson 20: a batch result's type is now one of {sorted(types)}; the lesson's table "
        "lists succeeded, errored, expired and canceled")


def test_processing_status_and_request_counts() -> None:
    statuses = set(typing.get_args(MessageBatch.model_fields["processing_status"].annotation))
    assert statuses == {"in_progress", "canceling", "ended"}, (
        f"lesson 20: processing_status now takes {sorted(statuses)}; the lesson says "
        "in_progress, canceling, ended")
    counts = set(MessageBatchRequestCounts.model_fields)
    assert counts == {"processing", "succeeded", "errored", "expired", "canceled"}, (
        f"lesson 20: request_counts now has {sorted(counts)}; the lesson's tally reads "
        "processing, succeeded, errored, expired, canceled")


def test_the_sdk_refuses_results_before_the_end() -> None:
    with FakeClaude(seed=0) as api:
        FakeBatches(api)
        client = api.client()
        batch = client.messages.batches.create(requests=[request(0, api.model)])
        with pytest.raises(anthropic.AnthropicError, match="results_url"):
            client.messages.batches.results(batch.id)
        assert [c.method for c in api.calls] == ["POST", "GET"], (
            "lesson 20: the SDK's results() no longer retrieves the batch first")


# -- a batch from start to end ----------------------------------------------------------

def test_the_walkthrough(lesson: dict[str, Any]) -> None:
    batch = lesson["batch"]
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600, (
        "lesson 20: a batch now expires other than 24 hours after it was created")
    counts = lesson["counts"]
    assert (counts.succeeded, counts.errored, counts.expired, counts.canceled) == (7, 4, 1, 0)
    order = [line.custom_id for line in lesson["round_1"]]
    assert sorted(order) == [r["custom_id"] for r in lesson["REQUESTS"]]
    assert order != sorted(order), "lesson 20: the results file no longer comes out of order"
    assert set(lesson["failed"]) == {"q00", "q03", "q05", "q10"}


def test_an_errored_result_is_an_ordinary_error_body(lesson: dict[str, Any]) -> None:
    body = lesson["failed"]["q03"].error
    assert (body.type, body.error.type) == ("error", "invalid_request_error")
    assert body.error.message == ERRORS["invalid_request_error"].message
    assert body.request_id == "req_fake_batch_000001_00003"


def test_classify_on_a_body_in_a_200_follows_retryable_types(lesson: dict[str, Any]) -> None:
    verdict = lesson["verdict"]
    for spec in ERRORS.values():
        if not spec.documented:
            continue
        got = verdict(spec.body()).retryable
        assert got == (spec.error_type in RETRYABLE_TYPES), (
            f"lesson 20: classify() on a {spec.error_type} body inside a 200 now says "
            f"retryable={got}; the lesson says it follows RETRYABLE_TYPES")
    assert {t for t in RETRYABLE_TYPES} >= {"api_error", "overloaded_error"}
    assert "invalid_request_error" not in RETRYABLE_TYPES
    assert str(verdict(ERRORS["api_error"].body())) == "api_error 200 (retryable)"


def test_cancel_keeps_what_finished() -> None:
    with FakeClaude(seed=0) as other:  # the lesson's cancel cell
        client = other.client()
        FakeBatches(other, cancel_time=60.0)
        doomed = client.messages.batches.create(requests=[request(i, other.model)
                                                          for i in range(12)])
        other.clock.advance(1800)
        assert client.messages.batches.cancel(doomed.id).processing_status == "canceling"
        other.clock.advance(60)
        counts = client.messages.batches.retrieve(doomed.id).request_counts
    assert (counts.succeeded, counts.canceled, counts.processing) == (7, 5, 0)


# -- polling ------------------------------------------------------------------------------

def test_backoff_polls(lesson: dict[str, Any]) -> None:
    assert lesson["polls"] == [60.0, 180.0, 420.0, 900.0, 1860.0, 3780.0]
    poll_times = lesson["poll_times"]
    table = {label: [(len(t), t[-1] - end) for end in (300.0, 3600.0, 86400.0)
                     for t in [poll_times(end, first, factor)]]
             for label, (first, factor) in lesson["SCHEDULES"].items()}
    assert table == {
        "every 60 s": [(5, 0.0), (60, 0.0), (1440, 0.0)],
        "every 15 min": [(1, 600.0), (4, 0.0), (96, 0.0)],
        "backoff 60 s x2, cap 1 h": [(3, 120.0), (6, 180.0), (29, 180.0)],
    }
    capped = poll_times(86400.0, 60.0, 2.0, 900.0)  # the "Try it"
    assert len(capped) == 99 and max(b - a for a, b in itertools.pairwise(capped)) == 900.0
    assert poll_times(300.0, 60.0, 2.0, 900.0)[-1] - 300.0 == 120.0


# -- rounds and idempotency -----------------------------------------------------------

def test_rounds_converge_and_never_resend_the_broken_request(lesson: dict[str, Any]) -> None:
    assert [len(lines) for lines in lesson["rounds"]] == [12, 4, 1]
    assert not any(lesson["retryable"](line) for line in lesson["rounds"][-1])
    batches = lesson["batches"]
    assert batches.submitted["q03"] == 1
    assert len(lesson["ledger"]) == 11 and "q03" not in lesson["ledger"]


def test_the_careless_workers_pay_twice_and_submit_once_does_not(lesson: dict[str, Any]) -> None:
    batches = lesson["batches"]
    assert {k: n for k, n in batches.succeeded.items() if n > 1} == {
        "q00": 2, "q05": 2, "q06": 3, "q10": 3}
    assert len(batches.batches) == lesson["created"], (
        "lesson 20: submit_once sent a batch for requests that already had answers")


def test_submit_once_skips_what_is_in_flight() -> None:
    with FakeClaude(seed=0) as api:
        batches = FakeBatches(api)
        client, ledger, pending = api.client(), {"q00": "done"}, {}
        todo = [request(i, api.model) for i in range(3)]

        def submit_once(todo: list[Any]) -> str | None:  # the lesson's, on this client
            fresh = [r for r in todo if r["custom_id"] not in ledger | pending]
            if not fresh:
                return None
            sent = client.messages.batches.create(requests=fresh)
            pending.update(dict.fromkeys((r["custom_id"] for r in fresh), sent.id))
            return sent.id

        first = submit_once(todo)
        assert first is not None and submit_once(todo) is None
    assert batches.submitted == {"q01": 1, "q02": 1}


# -- the exercises' checkers reject plausible wrong answers ---------------------------

def _retryable_error(result: Any) -> bool:
    return bool(classify(httpx2.Response(200, json=result.error.to_dict(warnings=False)))
                .retryable)


def _picker(rule: Callable[[Any], bool]) -> Callable[[list[Any]], set[str]]:
    def to_resubmit(results: list[Any]) -> set[str]:
        return {line.custom_id for line in results if rule(line.result)}
    return to_resubmit


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_picker(lambda r: r.type != "succeeded"), "fails the same way"),
    (_picker(lambda r: True), "never resubmit a succeeded request"),
    (_picker(lambda r: r.type == "errored" and _retryable_error(r)), "it expired"),
    (_picker(lambda r: r.type == "expired" or (r.type == "errored" and _retryable_error(r))),
     "canceled before it was processed"),
    (_picker(lambda r: r.type in ("expired", "canceled")
             or (r.type == "errored" and r.error.error.type == "api_error")),
     "overloaded_error, which a retry can fix"),
    (lambda results: [i for i, line in enumerate(results) if line.result.type != "succeeded"],
     "return custom_ids (str)"),
    (lambda results: "q01", "a set or list of str"),
], ids=["every failure", "everything", "errors only", "forgets canceled", "api_error only",
        "positions", "a string"])
def test_checker_20_1_rejects_wrong_picks(wrong: Any, complaint: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert check_to_resubmit(wrong) is False
    assert complaint in capsys.readouterr().out


def _to_resubmit(lines: list[Any]) -> set[str]:
    return {line.custom_id for line in lines
            if line.result.type in ("expired", "canceled")
            or (line.result.type == "errored" and _retryable_error(line.result))}


def _finisher(*, resend: str = "retryable", skip_ledger: bool = True, cap: bool = True,
              extra_round: bool = False, first: float = 60.0, factor: float = 2.0,
              longest: float = 3600.0, record: bool = True, stop_when_empty: bool = True,
              sleep: bool = True) -> Callable[..., Any]:
    def finish(client: anthropic.Anthropic, requests: list[Any], ledger: dict[str, str],
               clock: Clock, rounds: int) -> dict[str, str]:
        todo = [r for r in requests if not skip_ledger or r["custom_id"] not in ledger]
        done = 0
        while (not cap or done < rounds + extra_round) and (todo or not stop_when_empty):
            done += 1
            batch = client.messages.batches.create(requests=todo)
            wait = first
            while batch.processing_status != "ended":
                if sleep:
                    clock.sleep(wait)
                wait = min(wait * factor, longest)
                batch = client.messages.batches.retrieve(batch.id)
            lines = list(client.messages.batches.results(batch.id))
            for line in lines:
                if record and line.result.type == "succeeded":
                    ledger[line.custom_id] = line.result.message.content[0].text
            again = {"retryable": _to_resubmit(lines),
                     "failed": {x.custom_id for x in lines if x.result.type != "succeeded"},
                     "errored": {x.custom_id for x in lines if x.result.type == "errored"
                                 and _retryable_error(x.result)},
                     "all": {x.custom_id for x in lines}}[resend]
            todo = [r for r in requests if r["custom_id"] in again]
        return ledger
    return finish


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_finisher(resend="failed"), "send it once, give up"),
    (_finisher(resend="all", cap=True), "succeeded more than once"),
    (_finisher(resend="errored"), "has no answer in the ledger"),
    (_finisher(record=False), "has no answer in the ledger"),
    (_finisher(skip_ledger=False), "a second run must not redo work"),
    (_finisher(cap=False), "stop after 3 rounds"),
    (_finisher(extra_round=True), "stop after 3 rounds"),
    (_finisher(stop_when_empty=False), "never create an empty batch"),
    (_finisher(factor=1.0), "retrieved over 100 times"),
    (_finisher(first=900.0, factor=1.0), "back off"),
    (_finisher(sleep=False), "Sleep on the clock"),
    (_finisher(first=86400.0, factor=1.0), "cap each wait"),
    (_finisher(longest=7200.0), "cap each wait"),
], ids=["resends invalid", "resends everything", "forgets expired", "no ledger",
        "ignores the ledger", "no round cap", "one round too many", "empty batch",
        "polls every minute", "polls every 15 min", "never sleeps", "sleeps a day",
        "cap of 2 h"])
def test_checker_20_2_rejects_wrong_loops(wrong: Any, complaint: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert check_finish(wrong) is False
    assert complaint in capsys.readouterr().out
