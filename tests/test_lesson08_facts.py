"""Every factual claim lesson 08 ("Circuit breakers") makes, computed from the package and
the installed SDK (through the simulated API).

The lesson prints these numbers under strict nbval; these tests pin what its prose *says*
about them. They run the lesson's own code (``tests/lesson_code.py``): its ``traffic`` and
its playground's ``draw``, so a change to the lesson is a change to what is tested.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anthropic
import pytest
from lesson_code import run_lesson

from resilience import CircuitBreaker, CircuitOpenError, VirtualClock, classify
from resilience.testing import FakeClaude

SEED = 0
PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]


@pytest.fixture(scope="module")
def lesson() -> dict[str, Any]:
    """The lesson's namespace after its code cells ran (plots and exercises skipped)."""
    return run_lesson("08_circuit_breakers")


# -- why stop calling -------------------------------------------------------------------

def test_one_request_during_an_outage_costs_three_calls_and_over_a_second() -> None:
    with FakeClaude(seed=SEED) as api:
        api.respond("overloaded_error", "overloaded_error", "overloaded_error")
        with pytest.raises(anthropic.OverloadedError) as caught:
            api.client().messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    assert caught.value.status_code == 529
    assert len(api.calls) == 3                      # DEFAULT_MAX_RETRIES = 2
    assert f"{api.clock.now():.2f}" == "1.20"
    assert api.clock.now() > 1.0


# -- the state machine on the simulated API ---------------------------------------------

def test_the_breaker_opens_at_24_s_and_closes_at_the_first_trial_after_the_outage(
        lesson: dict[str, Any]) -> None:
    expected = [(0.0, "closed"), (24.0, "open"),
                (34.0, "half_open"), (34.0, "open"),
                (44.0, "half_open"), (44.0, "open"),
                (54.0, "half_open"), (54.0, "open"),
                (64.0, "half_open"), (64.0, "open"),     # 1 s before the end
                (74.0, "half_open"), (74.0, "closed")]   # 9 s after it
    breaker, calls = lesson["breaker"], lesson["calls"]   # as the lesson ran them
    assert (breaker.failure_threshold, breaker.recovery_timeout) == (5, 10.0)
    assert breaker.history == expected
    assert len(calls) == 45
    assert sum(c.status == 529 for c in lesson["without"]) == 45
    assert sum(c.status == 529 for c in calls) == 9
    # The lesson's `seen` is reused later on: run its `traffic` again for the counts.
    clock = VirtualClock()
    again = CircuitBreaker(failure_threshold=5, recovery_timeout=10.0, clock=clock)
    seen, calls = lesson["traffic"](again, clock)
    assert Counter(seen) == {"ok": 36, "failed": 9, "rejected": 45}
    assert len(calls) == 45 and again.history == expected


def test_circuit_open_error_says_when_the_next_trial_is() -> None:
    clock = VirtualClock()
    demo = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock)
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond("overloaded_error")
        create = demo(api.client(max_retries=0).messages.create)
        with pytest.raises(anthropic.OverloadedError):
            create(model=api.model, max_tokens=64, messages=PROMPT)
        clock.advance(4.0)
        with pytest.raises(CircuitOpenError) as caught:
            create(model=api.model, max_tokens=64, messages=PROMPT)
    assert len(api.calls) == 1
    e = caught.value
    assert str(e) == "circuit 'claude' is open: the next trial call is allowed in 6.0 s"
    assert e.retry_in == 6.0
    verdict = classify(e)
    assert (verdict.category, verdict.retryable, verdict.retry_after) == ("circuit_open",
                                                                          False, 6.0)


# -- the breaker-state plot and its playground ----------------------------------------------

def test_the_plot_shades_the_outage_red_and_the_open_circuit_grey(
        lesson: dict[str, Any]) -> None:
    """The outage has the colour it has in every plot; "open" has its own (issue 11)."""
    from matplotlib.colors import to_rgba

    from resilience.lab.plots import OPEN_COLOUR, OUTAGE_COLOUR

    ax = lesson["draw"](5, 10.0).axes[0]
    outage, *open_spans = ax.patches
    assert outage.get_facecolor() == to_rgba(OUTAGE_COLOUR, 0.08)
    assert (outage.get_x(), outage.get_width()) == (20.0, 45.0), "lesson 08: outage 20-65 s"
    assert [(p.get_x(), p.get_x() + p.get_width()) for p in open_spans] == [(24.0, 74.0)], (
        "lesson 08: the grey band should run from the opening (24 s) to the close (74 s), "
        "one band across the failed trials")
    assert all(p.get_facecolor()[:3] == to_rgba(OPEN_COLOUR)[:3] for p in open_spans)
    assert to_rgba(OPEN_COLOUR)[:3] != to_rgba(OUTAGE_COLOUR)[:3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "outage (529)", "state", "open: calls rejected"]


@pytest.mark.parametrize(("threshold", "timeout", "title"), [
    (5, 10.0, "9 calls hit the outage, 45 rejected; closed at t = 74 s"),
    (1, 10.0, "5 calls hit the outage, 45 rejected; closed at t = 70 s"),
    (5, 40.0, "6 calls hit the outage, 64 rejected; still open at t = 90 s"),   # the prose
])
def test_the_playground_draw_counts_both_sides(lesson: dict[str, Any], threshold: int,
                                               timeout: float, title: str) -> None:
    got = lesson["draw"](threshold, timeout).axes[0].get_title()
    assert got == title, f"lesson 08: draw({threshold}, {timeout}) is titled {got!r}"


def test_moving_a_slider_redraws_the_playground(lesson: dict[str, Any]) -> None:
    from resilience.lab.playground import Playground

    sliders = lesson["sliders"]
    assert {name: s.value for name, s in sliders.items()} == {"threshold": 5, "timeout": 10.0}
    assert all(s.continuous_update is False for s in sliders.values())
    playground = Playground(sliders, lesson["draw"], "text")
    first = playground.image.value
    try:
        sliders["timeout"].value = 40.0
        assert playground.draws == 2 and playground.image.value != first
    finally:
        sliders["timeout"].value = 10.0
    assert repr(playground) == "text"


# -- exercise 08.2: when does it close? ---------------------------------------------------

def test_exercise_08_2_example_is_the_lessons_own_history(lesson: dict[str, Any]) -> None:
    """The example ``closes_at(20, 65, 5, 10) == 74`` is what the lesson's breaker did."""
    from course.lesson08 import breaker_closes_at

    closed = [t for t, state in lesson["breaker"].history if state == "closed" and t > 0]
    assert closed == [74.0], f"lesson 08: the lesson's breaker closed at {closed}, not 74 s"
    assert breaker_closes_at(20, 65, 5, 10) == 74.0, (
        "lesson 08: exercise 08.2's reference breaker disagrees with the lesson's example")


def opens_one_late(start: int, end: int, threshold: int, timeout: int) -> int:
    """Opens at ``start + threshold`` (one second late), then the right rule."""
    opened = start + threshold
    return opened + max(1, -(-(end - opened) // timeout)) * timeout


def trial_must_pass_end(start: int, end: int, threshold: int, timeout: int) -> int:
    """A trial exactly at ``end`` counted as failing (``>`` for ``>=``)."""
    opened = start + threshold - 1
    return opened + ((end - opened) // timeout + 1) * timeout


@pytest.mark.parametrize(("wrong", "says"), [
    (lambda s, e, n, t: e + t, "closes_at(20, 65, 5, 10) returned 75;"),
    (opens_one_late, "returned 65; the breaker closes at t = 74 s. It opened at t = 24"),
    (trial_must_pass_end, "closes_at(20, 64, 5, 10) returned 74; the breaker closes at t = 64"),
    (lambda s, e, n, t: e, "closes_at(20, 65, 5, 10) returned 65;"),
    (lambda s, e, n, t: str(e + t), "expected a time in seconds"),
], ids=["end-plus-timeout", "opens-one-late", "trial-at-end-fails", "at-the-end", "a-string"])
def test_exercise_08_2_rejects_plausible_wrong_answers(
        wrong: Any, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    from course.lesson08 import check_closes_at

    assert check_closes_at(wrong) is False, "lesson 08: exercise 08.2 accepts a wrong answer"
    assert says in capsys.readouterr().out
