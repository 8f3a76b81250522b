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


def test_plot_delays_explains_its_bars_and_keeps_them_apart() -> None:
    strategies = {"full_jitter": backoff.full_jitter(0.5, 30.0),
                  "equal_jitter": backoff.equal_jitter(0.5, 30.0)}
    fig = plots.plot_delays(strategies, retries=4, samples=50)
    ax = fig.axes[0]
    assert "90 %" in ax.get_legend().get_title().get_text()  # what a bar means
    assert ax.get_yscale() == "log"
    full_bars, equal_bars = ax.collections                 # one set of bars per strategy
    full_x = {round(float(seg[0][0]), 6) for seg in full_bars.get_segments()}
    equal_x = {round(float(seg[0][0]), 6) for seg in equal_bars.get_segments()}
    assert len(full_x) == 4 and not full_x & equal_x      # side by side, never on top
    lows_highs = [(seg[0][1], seg[1][1]) for seg in full_bars.get_segments()]
    assert all(low < high for low, high in lows_highs)    # jitter: a real spread
    full, equal = ax.get_lines()
    assert full.get_marker() != equal.get_marker()
    assert full.get_linestyle() != equal.get_linestyle()


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
    assert labels == ["outage (529)", "exponential", "full_jitter", "capacity (50/s)"]


def test_plot_timeline_draws_the_capacity_after_the_outage() -> None:
    results = [herd(200, "exponential", seed=0, outage=10.0, capacity=20.0)]
    ax = plots.plot_timeline(results).axes[0]
    (capacity,) = ax.collections
    (start, level), (end, level_at_end) = capacity.get_segments()[0]
    assert (start, level, level_at_end) == (10.0, 20.0, 20.0)
    assert end >= len(results[0].timeline) - 1
    no_line = plots.plot_timeline(results, capacity=0.0).axes[0]
    assert not no_line.collections


def test_plot_timeline_keeps_the_legend_clear_of_the_spikes() -> None:
    results = [herd(1000, "exponential", seed=0), herd(1000, "full_jitter", seed=0)]
    fig = plots.plot_timeline(results)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1        # outside the axes, to the right
    assert legend.x1 <= fig.bbox.x1                       # and still on the figure


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


def test_plot_brooker2015_keeps_equal_jitter_from_hiding_full_jitter() -> None:
    fig = plots.plot_brooker2015(brooker2015([5, 10], runs=2, seed=0))
    for ax in fig.axes:
        assert ax.get_legend() is not None                # both panels
        lines = {line.get_label(): line for line in ax.get_lines()}
        full, equal = lines["full_jitter"], lines["equal_jitter"]
        assert full.get_marker() != equal.get_marker()
        assert full.get_linestyle() != equal.get_linestyle()
        assert equal.get_markerfacecolor() == "none"       # hollow: the line beneath shows
    looks = {(line.get_marker(), line.get_linestyle()) for line in fig.axes[0].get_lines()}
    assert len(looks) == 5                                # every strategy its own look


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


# -- playgrounds ------------------------------------------------------------------------

def test_a_playground_redraws_when_a_control_moves() -> None:
    from resilience.lab.playground import herd_playground

    playground = herd_playground(clients=200)
    before = bytes(playground.image.value)
    assert before.startswith(b"\x89PNG") and playground.draws == 1
    playground.controls["capacity"].value = 100.0
    assert playground.draws == 2 and bytes(playground.image.value) != before
    playground.controls["clients"].value = 300
    assert playground.draws == 3
    assert plt.get_fignums() == []                        # drawn, then closed


def test_the_jitter_playground_redraws_per_strategy() -> None:
    from resilience.lab.playground import jitter_playground

    playground = jitter_playground()
    assert set(playground.controls) == {"strategy", "base", "cap"}
    before = bytes(playground.image.value)
    playground.controls["strategy"].value = "exponential"
    assert bytes(playground.image.value) != before


def test_a_playground_shows_stable_text_without_a_kernel() -> None:
    from resilience.lab.playground import herd_playground, jitter_playground

    for make in (herd_playground, jitter_playground):
        bundle = make()._repr_mimebundle_()
        assert bundle["text/plain"] == make()._repr_mimebundle_()["text/plain"]
        assert "needs a running kernel" in bundle["text/plain"]
        assert "application/vnd.jupyter.widget-view+json" in bundle


def test_a_playground_refuses_bad_settings() -> None:
    from resilience.lab.playground import Playground

    with pytest.raises(ValueError, match="controls"):
        Playground({}, lambda: plt.figure(), "text")
    import ipywidgets

    with pytest.raises(TypeError, match="draw"):
        Playground({"x": ipywidgets.IntSlider()}, "not a function", "text")  # type: ignore[arg-type]


def test_importing_the_lab_does_not_need_ipywidgets() -> None:
    import subprocess
    import sys

    code = ("import sys, resilience.lab, resilience.lab.playground; "
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
