"""Every factual claim lesson 05 ("What the SDK already does") makes, checked against the
installed SDK through the simulated API.

Where a fact comes from the lesson's own code (the waits it measured over 100 seeds, its
table of catalogue errors, and its three ways of stacking retries) the tests run that code
(``tests/lesson_code.py``), not a copy of it.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic import _constants
from course.lesson05 import STATUSES, check_ask, sdk_attempts
from lesson_code import run_lesson

from resilience import ERRORS, VirtualClock, backoff, classify, retry
from resilience.testing import FakeClaude, Outage, error

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "Hi"}]


def create(client: anthropic.Anthropic, model: str) -> Any:
    return client.messages.create(model=model, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped)."""
    return run_lesson("05_what_the_sdk_does")


def test_the_constants() -> None:
    assert _constants.DEFAULT_MAX_RETRIES == 2
    assert (_constants.INITIAL_RETRY_DELAY, _constants.MAX_RETRY_DELAY) == (0.5, 8.0)
    assert (_constants.DEFAULT_TIMEOUT.read, _constants.DEFAULT_TIMEOUT.connect) == (600, 5.0)


def test_three_attempts_with_retry_counts_0_1_2() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        create(api.client(), api.model)
    assert [(f"{c.time:.3f}", c.retry_count, c.status) for c in api.calls] == [
        ("0.000", 0, 529), ("0.394", 1, 529), ("1.205", 2, 200)]


def test_the_schedule_over_100_seeds_is_sdk_default_exactly(lesson: dict[str, Any]) -> None:
    waits = lesson["waits"]                   # the lesson's sdk_waits over seeds 0-99
    assert len(waits) == 100
    assert all(0.375 <= a <= 0.5 and 0.75 <= b <= 1.0 for a, b in waits)
    first, second = [w[0] for w in waits], [w[1] for w in waits]
    assert (f"{min(first):.3f}", f"{max(first):.3f}") == ("0.378", "0.498")
    assert (f"{min(second):.3f}", f"{max(second):.3f}") == ("0.754", "0.997")
    for seed, (a, b) in enumerate(waits):
        delays = backoff.sdk_default().delays(random.Random(seed))
        assert a == pytest.approx(next(delays), abs=1e-12)
        assert b == pytest.approx(next(delays), abs=1e-12)


def test_which_catalogue_errors_the_sdk_retries(lesson: dict[str, Any]) -> None:
    table = {name: lesson["sdk_attempts"](name) for name in ERRORS}
    assert all(row is not None for row in table.values())   # every one ends in an error
    retried = {name for name, (attempts, _, _) in table.items() if attempts == 3}
    assert all(attempts in (1, 3) for attempts, _, _ in table.values())
    assert retried == {name for name, spec in ERRORS.items()
                       if spec.status in (409, 429) or spec.status >= 500}, (
        "lesson 05: the SDK now retries a different set of catalogue errors than 409, 429 "
        "and every status >= 500")
    disagree = {name for name, (attempts, _, e) in table.items()
                if (attempts == 3) != classify(e).retryable}
    assert disagree == {"spend_limit_reached"}
    assert type(table["spend_limit_reached"][2]).__name__ == "EnforcedSpendLimitReachedError"
    assert table["rate_limit_error"][1] == 10.0  # retry-after: 5, twice


def test_the_sdk_retries_408_409_429_and_every_5xx_and_obeys_x_should_retry() -> None:
    cases = [(s, h) for s in STATUSES for h in (None, True, False)]
    for (status, header), attempts in zip(cases, sdk_attempts(cases), strict=True):
        expected = header if header is not None else (status in (408, 409, 429)
                                                      or status >= 500)
        assert (attempts == 2) == expected, (status, header)


def test_x_should_retry_overrules_the_status() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(error("overloaded_error", should_retry=False), "ok")
        with pytest.raises(anthropic.OverloadedError):
            create(api.client(), api.model)
    assert len(api.calls) == 1
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(error("invalid_request_error", should_retry=True), "ok")
        create(api.client(), api.model)
    assert len(api.calls) == 2


@pytest.mark.parametrize(("kwargs", "waited"), [
    ({"retry_after": 120}, 120.0), ({"retry_after_ms": 1500}, 1.5),
    ({"retry_after": 120, "retry_after_ms": 1500}, 1.5)])
def test_retry_after_is_obeyed_and_ms_first(kwargs: dict[str, float], waited: float) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(error("overloaded_error", **kwargs), "ok")
        create(api.client(), api.model)
    assert api.calls[1].time == waited, (
        f"lesson 05: the SDK waited {api.calls[1].time} s for {kwargs}; the lesson says "
        f"{waited} s")


RETRY_AFTER_CAP = 4_294_967.0
"""The SDK's only limit on retry-after (``_calculate_retry_timeout``): 2**32 ms in seconds."""


@pytest.mark.parametrize(("value", "waited"), [
    ("120", 120.0), ("1e9", RETRY_AFTER_CAP), ("inf", RETRY_AFTER_CAP),
    ("0", 0.394), ("-5", 0.394), ("nan", 0.394), ("soon", 0.394),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.394)])
def test_retry_after_is_capped_at_49_7_days_and_bad_values_are_ignored(
        lesson: dict[str, Any], value: str, waited: float) -> None:
    got = lesson["waited_for"](value)   # the lesson's own cell, through the real SDK
    assert round(got, 3) == waited, (
        f"lesson 05: for retry-after: {value} the SDK now waits {got:.3f} s, the lesson says "
        f"{waited} s ({'the cap' if waited == RETRY_AFTER_CAP else 'ignored: backoff'})")


def test_the_retry_after_cap_in_days() -> None:
    assert f"{RETRY_AFTER_CAP / 86400:.1f}" == "49.7"
    assert RETRY_AFTER_CAP == 2**32 // 1000  # the longest sleep every platform allows


# -- middleware -------------------------------------------------------------------------

def test_middleware_runs_once_per_attempt_inside_the_sdk_loop(lesson: dict[str, Any]) -> None:
    attempts = [(a.retry, a.status, a.error, None if a.wait is None else f"{a.wait:.3f}")
                for a in lesson["log"].attempts]
    assert attempts == [(0, 529, None, None), (1, None, "APIConnectionError", "0.394"),
                        (2, 200, None, "0.811")], (
        f"lesson 05: the middleware saw {attempts}; the lesson shows three attempts, retry "
        "counts 0, 1, 2")


def test_budget_and_breaker_middleware_in_an_endless_outage(lesson: dict[str, Any]) -> None:
    runs = {name: lesson["outage_attempts"](middleware)
            for name, middleware in lesson["clients"].items()}
    counts = {name: [n for _, n in results] for name, results in runs.items()}
    assert counts == {"SDK alone": [3] * 8,
                      "+ budget": [3, 3, 2, 1, 2, 1, 2, 1],
                      "+ breaker + budget": [3, 2, 0, 0, 0, 0, 0, 0]}, (
        f"lesson 05: attempts per call in the outage are now {counts}")
    kinds = {name: sorted({kind for kind, _ in results}) for name, results in runs.items()}
    assert kinds == {"SDK alone": ["OverloadedError"], "+ budget": ["OverloadedError"],
                     "+ breaker + budget": ["CircuitOpenError", "OverloadedError"]}


def test_max_retries_on_the_client_and_with_options_but_not_on_create() -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.scenario(Outage(start=0, end=3600))
        base = api.client(max_retries=5)
        with pytest.raises(anthropic.OverloadedError):
            create(base, api.model)
        assert len(api.calls) == 6
        with pytest.raises(anthropic.OverloadedError):
            create(base.with_options(max_retries=0), api.model)
        assert len(api.calls) == 7
        with pytest.raises(TypeError, match="unexpected keyword argument 'max_retries'"):
            api.client().messages.create(model=api.model, max_tokens=64,
                                         messages=MESSAGES, max_retries=0)  # type: ignore[call-arg]
        assert len(api.calls) == 7


def test_stacked_layers_multiply_to_15_and_one_layer_does_not(lesson: dict[str, Any]) -> None:
    counts = {name: (n, f"{t:.1f}") for name, (n, t) in lesson["counts"].items()}
    assert counts == {"guide loop (5) x SDK (3)": (15, "23.8"),
                      "resilience.retry (5),\nmax_retries=0": (5, "3.1"),
                      "SDK alone (3)": (3, "1.2")}


def test_both_single_layer_answers_pass_exercise_05_2(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    spec = importlib.util.spec_from_file_location("solutions_lesson05",
                                                  ROOT / "notebooks" / "solutions" / "lesson05.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def sdk_alone(api: FakeClaude, rng: random.Random) -> Any:
        return create(api.client(max_retries=5), api.model)

    def stacked(api: FakeClaude, rng: random.Random) -> Any:
        return retry(attempts=5, clock=api.clock, rng=rng)(
            lambda: create(api.client(), api.model))()

    assert check_ask(module.ask) is True
    assert check_ask(sdk_alone) is True
    assert check_ask(stacked) is False  # the hint says the guide's pattern fails
    assert "Are two layers retrying?" in capsys.readouterr().out


def test_exercise_05_2_says_return_the_message_to_a_text_answer(
        capsys: pytest.CaptureFixture[str]) -> None:
    def text_answer(api: FakeClaude, rng: random.Random) -> Any:
        return create(api.client(max_retries=5), api.model).content[0].text

    assert check_ask(text_answer) is False
    out = capsys.readouterr().out
    assert "return the Message" in out and "returned str" in out
    assert "Wait longer" not in out


def test_exercise_05_2_says_wait_longer_to_one_that_gives_up_too_soon(
        capsys: pytest.CaptureFixture[str]) -> None:
    def too_quick(api: FakeClaude, rng: random.Random) -> Any:
        return create(api.client(max_retries=2), api.model)   # 1.5 s of waits at most

    assert check_ask(too_quick) is False
    out = capsys.readouterr().out
    assert "wait longer between attempts" in out and "OverloadedError" in out


def test_the_exercise_text_says_what_the_checker_needs() -> None:
    text = (ROOT / "notebooks" / "src" / "05_what_the_sdk_does.py").read_text()
    exercise = text[text.index("## Exercise 05.2"):text.index("def ask(api, rng)")]
    assert "return the `Message`" in exercise
