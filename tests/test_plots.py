"""The course's plots: checked through the returned Figure (titles, labels, data), not images."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # the test picks a backend; the plots module never does

import matplotlib.pyplot as plt
import pytest

from resilience import CircuitBreaker, VirtualClock, backoff
from resilience.lab import amplification, brooker2015, budgets, herd, plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_delays_draws_the_core_strategies_schedule() -> None:
    strategies = {"exponential": backoff.exponential(0.5, 30.0),
                  "full_jitter": backoff.full_jitter(0.5, 30.0)}
    fig = plots.plot_delays(strategies, retries=5, samples=20)
    ax = fig.axes[0]
    assert tuple(fig.get_size_inches()) == plots.FIGSIZE
    assert ax.get_title() == "Jitter spreads each retry's delay"
    assert "[s]" in ax.get_ylabel()
    exponential = ax.get_lines()[0]
    assert list(exponential.get_ydata()) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(strategies)


def test_plot_timeline_shades_the_outage_and_draws_each_strategy() -> None:
    results = [herd(200, "exponential", seed=0, outage=10.0),
               herd(200, "full_jitter", seed=0, outage=10.0)]
    fig = plots.plot_timeline(results)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time [s]" and "per second" in ax.get_ylabel()
    assert "synchronised" in ax.get_title()
    assert len(ax.patches) == 1                          # the shaded outage
    assert list(ax.get_lines()[0].get_ydata()) == list(results[0].timeline)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["outage (529)", "exponential", "full_jitter"]


def test_plot_load_vs_failure_one_line_per_policy() -> None:
    rows = budgets([0.0, 1.0], seed=0, requests=200)
    fig = plots.plot_load_vs_failure(rows)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4
    assert ax.get_xlabel().startswith("failure rate")
    assert list(ax.get_lines()[0].get_ydata()) == [1.0, 4.0]


def test_plot_brooker2015_has_work_and_time_panels() -> None:
    rows = brooker2015([5, 10], runs=2, seed=0)
    fig = plots.plot_brooker2015(rows)
    calls_ax, time_ax = fig.axes
    assert len(calls_ax.get_lines()) == 5 and len(time_ax.get_lines()) == 5
    assert time_ax.get_ylabel().endswith("[ms]")
    assert "jitter" in fig.get_suptitle()
    assert tuple(fig.get_size_inches()) == plots.WIDE


def test_plot_amplification_bars() -> None:
    fig = plots.plot_amplification(amplification(3, 4, 1.0, requests=5, seed=0))
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights[:2] == [64.0, 4.0] and heights[2] < 64.0


def test_plot_breaker_history_steps_through_states() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0, clock=clock,
                             is_failure=lambda e: True)
    with pytest.raises(RuntimeError):
        breaker.call(_fail)
    clock.advance(6.0)
    breaker.call(lambda: None)
    fig = plots.plot_breaker_history(breaker.history, until=10.0)
    ax = fig.axes[0]
    xs, ys = ax.get_lines()[0].get_data()
    assert list(xs) == [0.0, 0.0, 6.0, 6.0, 10.0]
    assert list(ys) == [0, 2, 1, 0, 0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["closed", "half_open", "open"]


def _fail() -> None:
    raise RuntimeError("down")


def test_course_style_is_scoped_and_helpers_never_show(monkeypatch) -> None:
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plots must not show"))
    before = matplotlib.rcParams["axes.grid"]
    with plots.course_style():
        assert matplotlib.rcParams["axes.grid"] is True
    assert matplotlib.rcParams["axes.grid"] == before
    plots.plot_delays({"full_jitter": backoff.full_jitter()}, retries=2, samples=2)


def test_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="results"):
        plots.plot_timeline([])
    with pytest.raises(ValueError, match="history"):
        plots.plot_breaker_history([])
