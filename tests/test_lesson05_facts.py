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
                       if spec.status == 429 or spec.status >= 500}
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
def test_retry_after_is_obeyed_with_no_cap_and_ms_first(kwargs: dict[str, float],
                                                        waited: float) -> None:
    with FakeClaude(clock=VirtualClock(), seed=0) as api:
        api.respond(error("overloaded_error", **kwargs), "ok")
        create(api.client(), api.model)
    assert api.calls[1].time == waited


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
