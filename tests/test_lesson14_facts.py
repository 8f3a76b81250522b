"""Every factual claim lesson 14 ("Test your own app under failure") makes, checked by running it.

The tests run the lesson's code cells once (not the plot or the exercises), against the
installed SDK, the simulated API and the chaos server on loopback, and pin the numbers its
prose and outputs state. Then each exercise checker is fed plausible wrong answers, which
it must reject.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anthropic
import pytest
from course import lesson14
from course.lesson14 import check_outage_test, check_unaccounted
from lesson_code import ROOT, run_lesson

from resilience import VirtualClock
from resilience.testing import FailureRates, FakeClaude, Outage
from resilience.testing.responses import DEFAULT_TEXT

pytestmark = pytest.mark.loopback  # the lesson runs the chaos server on 127.0.0.1

STEM = "14_test_your_own_app"


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plot and exercises skipped)."""
    return run_lesson(STEM)


# -- the app and its unit tests ---------------------------------------------------------

def test_the_sdk_retries_twice_by_default() -> None:
    assert anthropic.DEFAULT_MAX_RETRIES == 2, (
        f"lesson 14: the SDK's default max_retries is now {anthropic.DEFAULT_MAX_RETRIES}; "
        "the lesson says the SDK makes at most 3 attempts (one try and two retries)")


def test_the_lessons_app_is_the_one_the_checker_uses(lesson: dict[str, Any]) -> None:
    assert (lesson["BUSY"], lesson["SORRY"]) == (lesson14.BUSY, lesson14.SORRY), (
        "lesson 14: the app's messages differ from course.lesson14's")
    for outcomes in (["ok"], ["overloaded_error"] * 3, ["invalid_request_error"],
                     ["connection_error"] * 3, ["rate_limit_error", "ok"]):
        seen = []
        for app in (lesson["answer"], lesson14.answer):
            lines: list[str] = []
            with FakeClaude(clock=VirtualClock(), seed=0) as api:
                api.respond(*outcomes)
                seen.append((app(api.client(), "Hi", lines.append), lines))
        assert seen[0] == seen[1], (
            f"lesson 14: for {outcomes} the lesson's app gave {seen[0]}, the checker's "
            f"{seen[1]}: they must be the same app")


def test_the_first_test_passes_and_shows_the_sdks_schedule(lesson: dict[str, Any]) -> None:
    calls = [str(call) for call in lesson["fake_claude"].calls]
    assert calls == ["t=0.000s retry 0 -> 529 overloaded_error (req_fake_000001)",
                     "t=0.394s retry 1 -> 529 overloaded_error (req_fake_000002)",
                     "t=1.205s retry 2 -> 200 ok (req_fake_000003)"], (
        f"lesson 14: the first test's attempts are now {calls}")


@pytest.mark.parametrize("test", ["test_two_overloads_then_an_answer",
                                  "test_a_bad_request_is_sent_once_and_explained"])
def test_the_lessons_tests_pass_with_the_real_fixture(
        test: str, lesson: dict[str, Any], fake_claude: FakeClaude) -> None:
    # the fixture pytest supplies through the test kit's plugin, as the lesson says
    assert isinstance(fake_claude.clock, VirtualClock) and fake_claude.seed == 0
    assert fake_claude.clock.now() == 0.0 and not fake_claude.calls
    lesson[test](fake_claude, lesson["answer"])


def _report(lesson: dict[str, Any], test: str, app: str,
            capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    lesson["run_test"](lesson[test], lesson[app])
    return capsys.readouterr().out.strip()


def test_the_bad_request_test_passes_the_app_and_fails_the_one_that_tries_harder(
        lesson: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    test = "test_a_bad_request_is_sent_once_and_explained"
    assert _report(lesson, test, "answer", capsys) == f"PASSED {test}", (
        "lesson 14: the bad-request test no longer passes the lesson's app")
    assert _report(lesson, test, "answer_tries_harder", capsys) == (
        f"FAILED {test}: AssertionError: 5 attempts"), (
        "lesson 14: the lesson says the app that tries harder sends the 400 five times")
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(FailureRates({"invalid_request_error": 1.0}))
        reply = lesson["answer_tries_harder"](api.client(), "Hi", [].append)
    assert (reply, len(api.calls)) == (lesson["BUSY"], 5), (
        "lesson 14: the app that tries harder sends a 400 five times and tells the user BUSY")


def test_run_test_passes_the_first_test(lesson: dict[str, Any],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    test = "test_two_overloads_then_an_answer"
    assert _report(lesson, test, "answer", capsys) == f"PASSED {test}"


# -- the chaos server run ---------------------------------------------------------------

def test_the_chaos_run(lesson: dict[str, Any]) -> None:
    results, log, replies = lesson["results"], lesson["log"], lesson["replies"]
    assert (len(results), len(log)) == (30, 41), (
        f"lesson 14: the chaos run made {len(results)} questions and {len(log)} attempts; "
        "the lesson says 30 and 41")
    assert sorted(replies.items()) == [("answered", 27), ("busy", 1), ("sorry", 2)], (
        f"lesson 14: the users read {sorted(replies.items())}; the lesson says 27 answers, "
        "one BUSY and two SORRY")
    outcomes = sorted(Counter(entry["outcome"] for entry in log).items())
    assert outcomes == [("api_error", 3), ("connection_error", 3), ("invalid_request_error", 2),
                        ("ok", 27), ("overloaded_error", 4), ("rate_limit_error", 2)], (
        f"lesson 14: the chaos log's outcomes are now {outcomes}")


def _tried(log: Iterable[Mapping[str, Any]], tag: str) -> list[tuple[Any, ...]]:
    return [(e["retry_count"], e["status"], e["outcome"]) for e in log if e["tag"] == tag]


def test_the_three_failed_questions(lesson: dict[str, Any]) -> None:
    failed = [r for r in lesson["results"] if not r.answered]
    assert [(r.tag, r.request_id) for r in failed] == [
        ("q13", "req_chaos_000019"), ("q18", "req_chaos_000026"), ("q23", None)], (
        f"lesson 14: the failed questions are now {failed}")
    log = lesson["log"]
    assert _tried(log, "q13") == [(0, None, "connection_error"),
                                  (1, 400, "invalid_request_error")], (
        "lesson 14: q13's connection should drop, and the SDK's retry meet a 400")
    assert _tried(log, "q18") == [(0, 400, "invalid_request_error")], (
        "lesson 14: q18 should be a 400, sent once")
    assert _tried(log, "q23") == [(0, 529, "overloaded_error"), (1, None, "connection_error"),
                                  (2, None, "connection_error")], (
        "lesson 14: q23 should meet a 529, then two dropped connections")
    for result in failed:
        last = [e for e in log if e["tag"] == result.tag][-1]
        if result.request_id is None:
            assert last["status"] is None and last["request_id"], (
                f"lesson 14: {result.tag} logged None, so no response may have come back; "
                "the server still logs a request-id for it")
        else:
            assert last["request_id"] == result.request_id, (
                f"lesson 14: {result.tag}'s logged request-id is not the server's last entry")


def test_the_chaos_run_is_bounded_and_nothing_is_lost(lesson: dict[str, Any]) -> None:
    log, results = lesson["log"], lesson["results"]
    per_tag = Counter(entry["tag"] for entry in log)
    assert max(per_tag.values()) == 3 and max(e["retry_count"] for e in log) == 2, (
        "lesson 14: the most attempts for one question should be 3, retry_count at most 2")
    assert set(per_tag) == {r.tag for r in results}, "lesson 14: a request was lost"
    ok_ids = {e["request_id"] for e in log if e["outcome"] == "ok"}
    answered = [r for r in results if r.answered]
    assert len(answered) == 27 and all(r.request_id in ok_ids for r in answered), (
        "lesson 14: every answer's request-id should be logged by the server as ok (27 of 27)")


def _model_answer(name: str) -> Any:
    path = ROOT / "notebooks" / "solutions" / "lesson14.py"
    spec = importlib.util.spec_from_file_location("solutions_lesson13", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_the_model_answer_accounts_for_the_chaos_run(lesson: dict[str, Any]) -> None:
    unaccounted = _model_answer("unaccounted")
    results, log = lesson["results"], lesson["log"]
    assert unaccounted(results, log) == set(), (
        "lesson 14: the lesson says unaccounted returns set() for its run")
    assert unaccounted(results[:-1], log) == {"q29"}, (
        "lesson 14: the hint says a dropped result shows up")
    assert (lesson["logged_id"]("claude failed: connection, request-id None"),
            lesson["logged_id"]("claude answered: request-id req_x")) == (None, "req_x")


# -- the async herd ----------------------------------------------------------------------

def test_the_async_herd(lesson: dict[str, Any]) -> None:
    statuses, calls = lesson["statuses"], lesson["calls"]
    assert len(statuses) == lesson["USERS"] == 300
    assert sorted(Counter(statuses).items()) == [(200, 271), (429, 29)], (
        f"lesson 14: the herd's users got {sorted(Counter(statuses).items())}; the lesson "
        "says 271 served and 29 gave up on a 429")
    assert len(calls) == 2771, f"lesson 14: the herd made {len(calls)} attempts, not 2771"
    assert max(call.retry_count for call in calls) == 9, (
        "lesson 14: no user should pass 10 attempts, and some should use all 10")
    assert sum(call.status == 200 for call in calls) == statuses.count(200), (
        "lesson 14: the 200s the users saw should be the 200s the API sent")
    assert Counter(call.retry_count for call in calls)[0] == 300, (
        "lesson 14: every user should ask once at the start")
    assert sum(call.time < 30 for call in calls) > 0.5 * len(calls), (
        "lesson 14: the lesson says most attempts are spent while the API is down")


def test_the_herd_model_and_how_close_the_sdk_is(lesson: dict[str, Any]) -> None:
    model, calls = lesson["model"], lesson["calls"]
    assert (model.served, model.attempts) == (258, 2792), (
        f"lesson 14: the lab model now serves {model.served} with {model.attempts} "
        "attempts; the lesson says 258 and 2792")
    sdk = Counter(int(call.time) for call in calls)
    diff = sum(abs(sdk[s] - n) for s, n in enumerate(model.timeline))
    assert diff < 0.1 * len(calls), (
        f"lesson 14: the SDK's load differs from the model's by {diff} attempts in all; "
        "the lesson says they agree closely")


# -- exercise 14.1: tests that miss a broken app ---------------------------------------

BUSY = lesson14.BUSY


def _outage_test(*, outage: bool = True, bound: bool = True, message: bool = True,
                 request_id: bool = True, shield: bool = False) -> Callable[[Any, Any], None]:
    """An outage test with some of the four assertions left out."""
    def test_outage(fake_claude: Any, app: Any) -> None:
        if outage:
            fake_claude.scenario(Outage(0, 1e9))
        lines: list[str] = []
        try:
            reply = app(fake_claude.client(), "Hi", lines.append)
        except anthropic.APIError:
            if not shield:
                raise
            return
        if bound:
            assert len(fake_claude.calls) <= 3
        if message:
            assert reply == (BUSY if outage else DEFAULT_TEXT)
        if request_id:
            assert fake_claude.calls[-1].request_id in lines[-1]

    return test_outage


@pytest.mark.parametrize(("wrong", "said"), [
    ({"bound": False}, "sent 150 attempts"),
    ({"message": False}, "empty reply"),
    ({"request_id": False}, "no request-id"),
    ({"shield": True}, "let the OverloadedError out"),
    ({"outage": False}, "the API answered"),
])
def test_13_1_rejects_a_test_that_misses_a_broken_app(
        wrong: dict[str, bool], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_outage_test(_outage_test(**wrong)) is False
    assert said in capsys.readouterr().out


def test_13_1_accepts_the_full_test_and_rejects_one_that_fails_the_good_app(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_outage_test(_outage_test()) is True

    def expects_an_answer(fake_claude: Any, app: Any) -> None:
        fake_claude.scenario(Outage(0, 1e9))
        assert app(fake_claude.client(), "Hi", [].append) == DEFAULT_TEXT

    capsys.readouterr()
    assert check_outage_test(expects_an_answer) is False
    assert "failed for the lesson's app" in capsys.readouterr().out


def test_13_1_the_broken_apps_are_broken_as_described() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Outage(0, 1e9))
        lines: list[str] = []
        assert lesson14.answer(api.client(), "Hi", lines.append) == BUSY
        assert len(api.calls) == 3 and api.calls[-1].request_id in lines[-1]
    for name, (app, _) in lesson14.BROKEN.items():
        with FakeClaude(clock=VirtualClock(), seed=0) as api:
            api.scenario(Outage(0, 1e9))
            lines = []
            try:
                reply = app(api.client(), "Hi", lines.append)
            except anthropic.OverloadedError:
                reply = None
        broken = {"retries without end": len(api.calls) > 3,
                  "lets the error out": reply is None,
                  "swallows the error": reply == "",
                  "loses the request-id": reply is not None and not any(
                      api.calls[-1].request_id in line for line in lines)}
        assert broken[name], f"the broken app that {name} is not broken that way"
        assert sum(broken.values()) == 1, f"the app that {name} is broken in more ways"


# -- exercise 14.2: reconciliations that get it wrong ----------------------------------

def _last(log: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {entry["tag"]: entry for entry in log}


def _forgets_lost_requests(results: list[Any], log: list[dict[str, Any]]) -> set[str]:
    last = _last(log)
    return {r.tag for r in results
            if r.tag not in last or r.answered != (last[r.tag]["outcome"] == "ok")
            or r.request_id not in (last[r.tag]["request_id"], None)}


def _reads_the_first_entry(results: list[Any], log: list[dict[str, Any]]) -> set[str]:
    first = _last(reversed(log))
    missing = set(first) - {r.tag for r in results}
    return missing | {r.tag for r in results
                      if r.tag not in first or r.answered != (first[r.tag]["outcome"] == "ok")}


def _ignores_request_ids(results: list[Any], log: list[dict[str, Any]]) -> set[str]:
    last = _last(log)
    missing = set(last) - {r.tag for r in results}
    return missing | {r.tag for r in results
                      if r.tag not in last or r.answered != (last[r.tag]["outcome"] == "ok")}


def _checks_answers_only(results: list[Any], log: list[dict[str, Any]]) -> set[str]:
    last = _last(log)
    missing = set(last) - {r.tag for r in results}
    return missing | {r.tag for r in results if r.answered and (
        r.tag not in last or last[r.tag]["outcome"] != "ok"
        or last[r.tag]["request_id"] != r.request_id)}


def _any_ok_entry(results: list[Any], log: list[dict[str, Any]]) -> set[str]:
    ok_ids = {e["request_id"] for e in log if e["outcome"] == "ok"}
    missing = {e["tag"] for e in log} - {r.tag for r in results}
    return missing | {r.tag for r in results if r.answered and r.request_id not in ok_ids}


def _no_none_for_failures(results: list[Any], log: list[dict[str, Any]]) -> set[str]:
    last = _last(log)
    missing = set(last) - {r.tag for r in results}
    return missing | {r.tag for r in results
                      if r.tag not in last or r.answered != (last[r.tag]["outcome"] == "ok")
                      or r.request_id != last[r.tag]["request_id"]}


@pytest.mark.parametrize("wrong", [_forgets_lost_requests, _reads_the_first_entry,
                                   _ignores_request_ids, _checks_answers_only, _any_ok_entry,
                                   _no_none_for_failures])
def test_13_2_rejects_a_wrong_reconciliation(wrong: Callable[..., set[str]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert check_unaccounted(wrong) is False
    assert "expected" in capsys.readouterr().out


def test_13_2_rejects_an_answer_that_is_not_a_set_of_tags(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_unaccounted(lambda results, log: "") is False
    assert "return a set of tags" in capsys.readouterr().out
    assert check_unaccounted(lambda results, log: len(results)) is False
