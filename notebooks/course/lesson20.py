"""Checkers for lesson 20, "Batches".

* ``to_resubmit(results)``: from the results of one Message Batch (the SDK's
  ``MessageBatchIndividualResponse`` lines), the ``custom_id`` of each request worth sending
  again unchanged: ``expired`` and ``canceled`` ones (never processed), and ``errored`` ones
  whose error a retry can fix (``api_error``, ``overloaded_error``, ...); never a succeeded
  one, nor one whose request is at fault (``invalid_request_error``, ...).
* ``finish(client, requests, ledger, clock, rounds)``: send ``requests`` as batches until
  every one has succeeded or cannot, at most ``rounds`` batches; poll each with backoff on
  ``clock``; record each answer in ``ledger`` (``custom_id`` -> text) and never send again a
  request the ledger already holds.

Both run against the test kit's simulated Message Batches API
(:class:`resilience.testing.FakeBatches`) through the real SDK.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from anthropic.types.messages.batch_create_params import Request

from course import exercise
from resilience.catalogue import ERRORS
from resilience.clock import VirtualClock

__all__ = ["CHECKS", "FIRST_WAIT", "LONGEST_WAIT", "check_finish", "check_to_resubmit",
           "request"]

FIRST_WAIT, LONGEST_WAIT = 60.0, 3600.0
"""The polling schedule the exercises ask for: wait 60 s, then double, at most 1 hour."""

_POLLS = 40  # a batch polled more often than this is not backing off
_POLL_LIMIT = 100  # past this the simulated API stops the loop (PollLimitError)


def request(i: int, model: str) -> Request:
    """The ``i``-th request of the lessons' batches: ``custom_id`` ``q00``, ``q01``, ..."""
    return {"custom_id": f"q{i:02d}",
            "params": {"model": model, "max_tokens": 256,
                       "messages": [{"role": "user", "content": f"Summarize ticket {i}."}]}}


def _worth_resending(result: str) -> bool:
    return result in ("expired", "canceled") or (result in ERRORS and ERRORS[result].retryable)


def _ids(got: object, what: str) -> set[str]:
    if isinstance(got, str | bytes) or not isinstance(got, Iterable):
        raise AssertionError(f"return the custom_ids {what} (a set or list of str), got "
                             f"{got!r}")
    ids = set(got)
    if not all(isinstance(i, str) for i in ids):
        raise AssertionError(f"return custom_ids (str), got {sorted(map(repr, ids))}")
    return ids


def _resubmit_case(solution: Callable[..., Any], cancel: bool) -> tuple[set[str], dict[str, str]]:
    """Run ``to_resubmit`` on one batch's results: (its answer, each id's true result)."""
    from resilience.testing import FakeBatches, FakeClaude

    plans = {"q01": "api_error", "q02": "invalid_request_error", "q04": "overloaded_error",
             "q05": "expired", "q07": "request_too_large", "q08": "timeout_error"}
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        batches = FakeBatches(api, processing_time=3600.0, cancel_time=0.0)
        for custom_id, outcome in ({} if cancel else plans).items():
            batches.plan(custom_id, outcome)
        client = api.client()
        batch = client.messages.batches.create(requests=[request(i, api.model)
                                                         for i in range(10)])
        if cancel:
            api.clock.advance(1800.0)
            client.messages.batches.cancel(batch.id)
        api.clock.advance(24 * 3600.0)
        got = _ids(solution(list(client.messages.batches.results(batch.id))), "to send again")
        return got, batches.batch(batch.id).results()


@exercise("20.1", "pick the requests to send again")
def check_to_resubmit(solution: Callable[..., Any]) -> None:
    """Expired, canceled and retryable errors; never succeeded or invalid requests."""
    for cancel in (False, True):
        got, truth = _resubmit_case(solution, cancel)
        want = {i for i, result in truth.items() if _worth_resending(result)}
        for custom_id in sorted(got - want):
            result = truth.get(custom_id, "not in this batch")
            if result == "succeeded":
                raise AssertionError(f"you would send {custom_id} again, but it succeeded: "
                                     "never resubmit a succeeded request (you would pay twice).")
            raise AssertionError(
                f"you would send {custom_id} again, but it errored with {result} "
                f"({ERRORS[result].error_type if result in ERRORS else result}): sending the "
                "same request again fails the same way. Send again only errors classify() "
                "calls retryable.")
        for custom_id in sorted(want - got):
            result = truth[custom_id]
            why = {"expired": "it expired before it was processed",
                   "canceled": "its batch was canceled before it was processed"}.get(
                result, f"it errored with {result}, which a retry can fix")
            raise AssertionError(f"you left out {custom_id}: {why}. Send it again.")


def _finish_case(solution: Callable[..., Any], *, rounds: int,
                 plans: dict[str, list[str]], done: Iterable[int] = ()) -> dict[str, Any]:
    """Run ``finish`` on 10 requests; what it returned and what the API saw."""
    import anthropic

    from resilience.testing import FakeBatches, FakeClaude
    from resilience.testing.batches import PollLimitError

    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=0) as api:
        batches = FakeBatches(api, processing_time=3600.0, poll_limit=_POLL_LIMIT)
        for custom_id, outcomes in plans.items():
            batches.plan(custom_id, *outcomes)
        requests = [request(i, api.model) for i in range(10)]
        ledger = {f"q{i:02d}": f"Answer to q{i:02d}." for i in done}
        before = dict(ledger)
        try:
            returned = solution(api.client(), requests, ledger, clock, rounds)
        except PollLimitError as e:
            raise AssertionError(
                f"a batch was retrieved over {_POLL_LIMIT} times ({e}). Sleep on the clock "
                f"between polls: {FIRST_WAIT:g} s, then double the wait, at most "
                f"{LONGEST_WAIT:g} s.") from None
        except anthropic.BadRequestError as e:
            raise AssertionError(
                f"the simulated API refused a batch ({e.api_message}). When nothing is left to "
                "send, stop: never create an empty batch.") from None
        return {"returned": returned, "ledger": ledger, "before": before,
                "batches": list(batches.batches), "submitted": dict(batches.submitted),
                "succeeded": dict(batches.succeeded)}


def _check_polling(run: dict[str, Any]) -> None:
    for record in run["batches"]:
        polls, noticed = len(record.polls), record.noticed
        assert noticed is not None, (
            f"you stopped polling {record.id} before it ended; poll until processing_status "
            "is 'ended', then read its results.")
        assert polls <= _POLLS, (
            f"you polled {record.id} {polls} times before it ended after "
            f"{record.ended_at - record.created:,.0f} s; back off: wait {FIRST_WAIT:g} s, then "
            f"double the wait each time, at most {LONGEST_WAIT:g} s.")
        times = [record.created, *record.polls]
        longest = max(b - a for a, b in itertools.pairwise(times))
        assert longest <= LONGEST_WAIT, (
            f"you waited {longest:,.0f} s between two looks at {record.id} (it ended at "
            f"t={record.ended_at:,.0f} s, you noticed at t={noticed:,.0f} s): cap each wait "
            f"at {LONGEST_WAIT:g} s, so you are never more than that late.")


@exercise("20.2", "resubmit until done, idempotently")
def check_finish(solution: Callable[..., Any]) -> None:
    """Converges; never resends a succeeded or invalid request; stops after N rounds."""
    plans = {"q01": ["api_error", "api_error"], "q02": ["invalid_request_error"],
             "q03": ["expired"], "q04": ["overloaded_error"]}
    run = _finish_case(solution, rounds=4, plans=plans)
    submitted, ledger = run["submitted"], run["ledger"]
    assert run["returned"] is ledger or run["returned"] == ledger, (
        f"return the ledger (the dict you were given, filled in); you returned "
        f"{type(run['returned']).__name__}.")
    duplicated = sorted(i for i, n in run["succeeded"].items() if n > 1)
    assert not duplicated, (
        f"{', '.join(duplicated)} succeeded more than once: send again only what failed, "
        "never a request that already succeeded.")
    assert submitted.get("q02") == 1, (
        f"you sent q02 {submitted.get('q02')} times; its request is invalid "
        "(invalid_request_error), so it fails the same way each time: send it once, give up.")
    missing = sorted({f"q{i:02d}" for i in range(10)} - {"q02"} - set(ledger))
    assert not missing, (
        f"after 4 rounds {', '.join(missing)} has no answer in the ledger; resend the "
        "requests that expired or errored with a retryable error (api_error, "
        "overloaded_error), and put each succeeded answer in the ledger.")
    assert "q02" not in ledger and ledger["q01"] == "Answer to q01.", (
        "put each succeeded request's text (result.message.content[0].text) in the ledger, "
        "under its custom_id, and nothing else.")
    sizes = [len(record.items) for record in run["batches"]]
    assert sizes == [10, 3, 1], (
        f"your batches held {sizes} requests; expected [10, 3, 1]: everything, then only the "
        "3 that failed and are worth resending (q01, q03, q04), then q01 again.")
    _check_polling(run)

    run = _finish_case(solution, rounds=3, plans={"q05": ["api_error"] * 6})
    count = len(run["batches"])
    assert count == 3, (
        f"with rounds=3 and q05 failing every time, you created {count} batches; stop after "
        "3 rounds (a batch each) even if something is left.")
    assert "q05" not in run["ledger"] and len(run["ledger"]) == 9

    run = _finish_case(solution, rounds=3, plans={}, done=range(10))
    assert not run["batches"], (
        f"every request already had an answer in the ledger and you created "
        f"{len(run['batches'])} batch(es): a second run must not redo work. Skip what the "
        "ledger holds, and create no batch when nothing is left.")
    assert run["ledger"] == run["before"], "leave answers already in the ledger as they are."

    run = _finish_case(solution, rounds=3, plans={}, done=range(6))
    sent = sorted(run["submitted"])
    assert sent == ["q06", "q07", "q08", "q09"], (
        f"q00..q05 were already in the ledger, and you sent {', '.join(sent)}; send only the "
        "requests without an answer.")


CHECKS = {"to_resubmit": check_to_resubmit, "finish": check_finish}
