"""Every factual claim lesson 18 ("Token-based limits") makes, checked against the SDK.

The lesson prints these facts under strict nbval; these tests pin what its prose *says*
about them, through the real anthropic SDK answered by the simulated API, and check that
the exercises' checkers reject plausible wrong answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageTokensCount
from course.lesson18 import check_pacer, check_wait_for_tokens, document, exact_pacer, workload
from lesson_code import run_lesson

from resilience import VirtualClock
from resilience.testing import FakeClaude, RateLimited

LESSON = "18_token_limits"
PREFIX = "anthropic-ratelimit-"
KINDS = ("requests", "input-tokens", "output-tokens")


def message_of(error: anthropic.APIStatusError) -> str:
    """The body's ``error.message``."""
    body = error.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict)
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    return run_lesson(LESSON)


# -- three limits, three buckets --------------------------------------------------------

def test_max_tokens_not_the_answer_counts_against_the_output_limit(
        lesson: dict[str, Any]) -> None:
    headers, used = lesson["raw"].headers, lesson["raw"].parse().usage.output_tokens
    assert headers[PREFIX + "output-tokens-remaining"] == str(8_000 - 1_024), (
        "lesson 18: one request with max_tokens=1024 no longer takes 1,024 output tokens")
    assert used < 20, f"lesson 18: the answer used {used} output tokens; the lesson says few"
    assert headers[PREFIX + "requests-remaining"] == "49"


def test_the_tokens_trio_repeats_the_tightest_token_limit(lesson: dict[str, Any]) -> None:
    headers = lesson["raw"].headers
    assert int(headers[PREFIX + "output-tokens-remaining"]) < int(
        headers[PREFIX + "input-tokens-remaining"])
    for part in ("limit", "remaining", "reset"):
        assert headers[f"{PREFIX}tokens-{part}"] == headers[f"{PREFIX}output-tokens-{part}"], (
            f"lesson 18: the tokens-{part} header no longer repeats the tightest limit")


def test_the_eighth_request_is_refused_by_the_output_limit(lesson: dict[str, Any]) -> None:
    refused = lesson["refused"]
    assert isinstance(refused, anthropic.RateLimitError)
    remaining = {k: refused.response.headers[f"{PREFIX}{k}-remaining"] for k in KINDS}
    assert remaining["requests"] == "43" and remaining["output-tokens"] == "832", (
        f"lesson 18: the 429 now comes with {remaining}; the lesson says 43 requests and 832 "
        "output tokens left")
    assert "8000 output tokens per minute" in message_of(refused)
    assert refused.response.headers["retry-after"] == "2", (
        "lesson 18: 192 tokens short at 8,000/60 a second is 1.44 s; retry-after should be 2")


def test_try_it_a_larger_document_runs_out_of_input_tokens_first() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(50, input_tokens_per_minute=30_000,
                                 output_tokens_per_minute=8_000))
        client = api.client(max_retries=0)
        for _ in range(5):
            client.messages.create(model=api.model, max_tokens=1024, messages=document(5000))
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=api.model, max_tokens=1024, messages=document(5000))
    assert "30000 input tokens per minute" in message_of(caught.value), (
        "lesson 18: the sixth 5,000-token prompt is no longer refused by the input limit")


# -- count_tokens -----------------------------------------------------------------------

def test_count_tokens_is_its_own_endpoint_and_matches_usage(lesson: dict[str, Any]) -> None:
    counted = lesson["counted"]
    assert isinstance(counted, MessageTokensCount), (
        f"lesson 18: messages.count_tokens now returns {type(counted).__name__}")
    assert counted.input_tokens == lesson["raw"].parse().usage.input_tokens == 3005
    with FakeClaude(seed=0) as api:
        api.client().messages.count_tokens(model=api.model, messages=document(10))
    assert (api.calls[0].method, api.calls[0].path) == ("POST", "/v1/messages/count_tokens"), (
        "lesson 18: the SDK's count_tokens no longer sends POST /v1/messages/count_tokens")


def test_the_sdk_reads_no_token_header_only_retry_after() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(RateLimited(output_tokens_per_minute=2_000))
        client = api.client(max_retries=2)
        for _ in range(2):
            client.messages.create(model=api.model, max_tokens=1_500, messages=document(10))
    assert [c.status for c in api.calls] == [200, 429, 200]
    waited = api.calls[2].time - api.calls[1].time
    assert waited == 30.0, (  # 1,000 short at 2,000/60 a second = 30 s: retry-after exactly
        f"lesson 18: the SDK waited {waited} s after a token 429; the lesson says it waits "
        "the retry-after, 30 s")


# -- pacing on tokens -------------------------------------------------------------------

def test_the_workload(lesson: dict[str, Any]) -> None:
    assert len(lesson["JOBS"]) == 24 and lesson["asked"] == 21_248


def test_naive_vs_paced(lesson: dict[str, Any]) -> None:
    summary = {name: (len(calls), sum(c.status == 429 for c in calls), round(took, 1))
               for name, (calls, took) in lesson["results"].items()}
    assert summary == {"naive": (32, 8, 102.0), "paced": (24, 0, 103.4)}, (
        f"lesson 18: (requests, 429s, done at) are now {summary}")


def test_the_paced_total_never_crosses_the_limit(lesson: dict[str, Any]) -> None:
    for name, crosses in (("paced", False), ("naive", True)):
        points = lesson["asked_for"](lesson["results"][name][0])
        above = [t for t, total, _ in points if total > 8_000 + t * 8_000 / 60 + 1e-9]
        assert bool(above) is crosses, f"lesson 18: the {name} client's total crosses: {above}"


def test_try_it_slow_answers_need_no_pacing(lesson: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import resilience.testing as kit

    slow = kit.Slow
    monkeypatch.setitem(lesson, "Slow", lambda seconds: slow(20.0))
    for paced in (False, True):
        calls, took = lesson["run"](paced)
        assert (len(calls), took) == (24, 480.0), (
            "lesson 18: with 20 s answers a client now meets 429s or waits")


# -- the exercises' checkers reject plausible wrong answers ---------------------------

def _waits(headers: Mapping[str, str], needs: Mapping[str, int]) -> dict[str, float]:
    out = {}
    for kind, need in needs.items():
        limit = int(headers[f"{PREFIX}{kind}-limit"])
        out[kind] = max(0, need - int(headers[f"{PREFIX}{kind}-remaining"])) / (limit / 60)
    return out


def _needs(input_tokens: int, max_tokens: int) -> dict[str, int]:
    return {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}


def only_when_empty(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    """Lesson 03's rule: wait only when a remaining count is 0."""
    return max(60 / int(headers[f"{PREFIX}{k}-limit"]) for k in KINDS
               if int(headers[f"{PREFIX}{k}-remaining"]) == 0) if any(
        int(headers[f"{PREFIX}{k}-remaining"]) == 0 for k in KINDS) else 0.0


def _one_limit(kind: str) -> Callable[..., float]:
    def wait(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
        return _waits(headers, _needs(input_tokens, max_tokens))[kind]
    return wait


def summed(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    return sum(_waits(headers, _needs(input_tokens, max_tokens)).values())


def in_minutes(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    return max(_waits(headers, _needs(input_tokens, max_tokens)).values()) / 60


def until_reset(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    from datetime import datetime

    from resilience.testing import VIRTUAL_EPOCH

    waits = _waits(headers, _needs(input_tokens, max_tokens))
    resets = [datetime.fromisoformat(headers[f"{PREFIX}{k}-reset"].replace("Z", "+00:00"))
              for k, w in waits.items() if w > 0]
    return max(((r - VIRTUAL_EPOCH).total_seconds() for r in resets), default=0.0)


def tokens_trio(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    """Reads only the combined tokens-* headers, for the larger of the two needs."""
    need = max(input_tokens, max_tokens)
    limit = int(headers[f"{PREFIX}tokens-limit"])
    return max(0, need - int(headers[f"{PREFIX}tokens-remaining"])) / (limit / 60)


def always_wait(headers: Mapping[str, str], input_tokens: int, max_tokens: int) -> float:
    return max_tokens / (int(headers[f"{PREFIX}output-tokens-limit"]) / 60)


@pytest.mark.parametrize(("wrong", "complaint"), [
    (only_when_empty, "got a 429"),
    (_one_limit("input-tokens"), "got a 429"),
    (_one_limit("output-tokens"), "got a 429"),
    (_one_limit("requests"), "got a 429"),
    (in_minutes, "got a 429"),
    (summed, "not their sum"),
    (until_reset, "time until reset"),
    (tokens_trio, "no 429, but you waited"),
    (always_wait, "Wait only for what is short"),
], ids=["lesson 03 rule", "input only", "output only", "requests only", "minutes",
        "sum of waits", "until reset", "tokens headers only", "always wait"])
def test_checker_18_1_rejects_wrong_waits(wrong: Any, complaint: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert check_wait_for_tokens(wrong) is False
    assert complaint in capsys.readouterr().out


def _pacer(*, limits: str = "both", start_full: bool = True, cap: bool = True,
           record: bool = True, refill: bool = True, scale: float = 1.0,
           margin: float = 0.0) -> Callable[..., Callable[[float, int, int], float]]:
    def make_pacer(itpm: float, otpm: float) -> Callable[[float, int, int], float]:
        per_minute = (itpm * (1 - margin), otpm * (1 - margin))
        rates = [p / 60 * scale for p in per_minute]
        caps = list(per_minute)
        tokens = list(caps) if start_full else [0.0, 0.0]
        last: list[float | None] = [None]
        used = {"both": (0, 1), "input": (0,), "output": (1,)}[limits]

        def wait(now: float, input_tokens: int, max_tokens: int) -> float:
            needs = (input_tokens, max_tokens)
            if last[0] is not None and refill:
                for i in range(2):
                    grown = tokens[i] + (now - last[0]) * rates[i]
                    tokens[i] = min(caps[i], grown) if cap else grown
            last[0] = now
            pause = max(max(0.0, (needs[i] - tokens[i]) / rates[i]) for i in used)
            if not refill and pause > 0:
                return 1e6
            for i in range(2):
                grown = tokens[i] + pause * rates[i]
                tokens[i] = (min(caps[i], grown) if cap else grown) - (needs[i] if record
                                                                        else 0)
            last[0] = now + pause
            return pause
        return wait
    return make_pacer


@pytest.mark.parametrize(("wrong", "complaint"), [
    (_pacer(limits="input"), "got a 429"),
    (_pacer(limits="output"), "got a 429"),
    (_pacer(start_full=False), "Start each bucket full"),
    (_pacer(cap=False), "after the app was quiet"),
    (_pacer(record=False), "got a 429"),
    (_pacer(refill=False), "Start each bucket full"),
    (_pacer(scale=60.0), "got a 429"),
    (_pacer(margin=0.3), "Start each bucket full"),
], ids=["input only", "output only", "starts empty", "no cap", "spends nothing",
        "never refills", "per second as per minute", "30 % under the limit"])
def test_checker_18_2_rejects_wrong_pacers(wrong: Any, complaint: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert check_pacer(wrong) is False
    assert complaint in capsys.readouterr().out


def test_checker_18_2_accepts_a_pacer_a_little_under_the_limit(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_pacer(_pacer(margin=0.02)) is True, capsys.readouterr().out


def test_the_workload_is_seeded_and_its_count_matches_the_reference() -> None:
    assert workload(0) == workload(0) and workload(0) != workload(1)
    pace = exact_pacer(600, 600)
    assert [pace(0.0, 300, 300), pace(0.0, 300, 300), pace(0.0, 300, 300)] == [0.0, 0.0, 30.0]
