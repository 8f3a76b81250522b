"""The course's plots: one look for every figure, titles that state the finding.

Every helper returns a :class:`matplotlib.figure.Figure` of a fixed size, with labelled axes
(units in brackets), a legend and a title. Nothing here picks a backend or calls
``plt.show()``: a notebook shows the figure it gets back. Wrap your own figures in
``with course_style():`` to give them the same look.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..backoff import Strategy

__all__ = [
    "COLOURS",
    "FIGSIZE",
    "STYLE",
    "WIDE",
    "course_style",
    "plot_amplification",
    "plot_breaker_history",
    "plot_breaker_states",
    "plot_brooker2015",
    "plot_delays",
    "plot_fallback_steps",
    "plot_herd_vs_model",
    "plot_load_vs_failure",
    "plot_timeline",
    "use_course_style",
]

FIGSIZE = (8.0, 4.5)
"""Every figure's size in inches (two panels side by side use ``(11, 4.5)``)."""
WIDE = (11.0, 4.5)

COLOURS = {
    "none": "#7f7f7f", "exponential": "#d62728", "full_jitter": "#1f77b4",
    "equal_jitter": "#ff7f0e", "decorrelated_jitter": "#2ca02c", "sdk_default": "#9467bd",
    "retries": "#d62728", "token_bucket": "#1f77b4", "retry_breaker": "#2ca02c",
    "adaptive_throttle": "#9467bd", "every_layer": "#d62728", "top_layer": "#1f77b4",
    "budget_per_layer": "#2ca02c",
}
"""One colour per strategy or policy, the same in every figure."""

STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
}
"""The rcParams of the course's look."""

OUTAGE_COLOUR = "#d62728"
OPEN_COLOUR = "#7f7f7f"
"""A circuit breaker's open state: grey, never the outage's red."""

_MARKERS = {"none": "x", "exponential": "o", "full_jitter": "s", "equal_jitter": "^",
            "decorrelated_jitter": "D", "sdk_default": "v"}
"""One marker per backoff strategy, so lines that overlap stay apart."""
_LINES = {"none": ":", "exponential": "-", "full_jitter": "-", "equal_jitter": "--",
          "decorrelated_jitter": "-.", "sdk_default": ":"}
"""One line style per backoff strategy (equal jitter dashed over full jitter's solid)."""


@contextmanager
def course_style() -> Iterator[None]:
    """Apply :data:`STYLE` inside the ``with`` block (and restore the old settings after)."""
    with mpl.rc_context(cast(Any, STYLE)):
        yield


def use_course_style() -> None:
    """Apply :data:`STYLE` globally (for a notebook's own figures); helpers do it themselves."""
    mpl.rcParams.update(cast(Any, STYLE))


def _figure(size: tuple[float, float] = FIGSIZE, panels: int = 1) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(1, panels, figsize=size, layout="constrained")
    return fig, axes


def _colour(name: str) -> str | None:
    return COLOURS.get(name)


def plot_delays(strategies: Mapping[str, Strategy], retries: int = 8, samples: int = 200,
                seed: int = 0, title: str = "Jitter spreads each retry's delay",
                ax: Axes | None = None) -> Figure:
    """Each strategy's delay before retries 1..``retries``: the median and the 5-95 % range.

    Delays come from ``strategy.delays(random.Random(seed + i))`` for ``samples`` clients.
    Each strategy is drawn as a line through its medians (a marker per retry) and, at every
    retry, a vertical bar from the 5th to the 95th percentile: 90 % of the clients wait a
    time inside the bar. The bars of different strategies stand side by side (each
    strategy is shifted a little along x) so none hides another; the y axis is logarithmic
    (base 2: each grid line up is twice the wait), so early and late retries read alike.
    Pass ``ax`` to draw into a panel of your own figure (its figure is returned).
    """
    if retries < 1 or samples < 1:
        raise ValueError("retries and samples must be >= 1")
    with course_style():
        if ax is None:
            fig, ax = _figure()
        else:
            fig = cast(Figure, ax.figure)
        xs = list(range(1, retries + 1))
        width = 0.5 / max(1, len(strategies))
        for k, (name, strategy) in enumerate(strategies.items()):
            runs = []
            for i in range(samples):
                schedule = strategy.delays(random.Random(seed + i))
                runs.append([next(schedule) for _ in xs])
            columns = [sorted(run[j] for run in runs) for j in range(retries)]
            median = [c[len(c) // 2] for c in columns]
            low = [c[int(0.05 * (len(c) - 1))] for c in columns]
            high = [c[int(0.95 * (len(c) - 1))] for c in columns]
            shift = (k - (len(strategies) - 1) / 2) * width
            at = [x + shift for x in xs]
            line, = ax.plot(at, median, marker=_MARKERS.get(name, "o"), label=name,
                            color=_colour(name), linestyle=_LINES.get(name, "-"))
            ax.vlines(at, low, high, color=line.get_color(), linewidth=5, alpha=0.35)
        ax.set_yscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xlabel("retry number")
        ax.set_ylabel("delay before the retry [s] (log scale)")
        ax.set_title(title)
        ax.legend(title=f"line: median; bar: 90 % of {samples} clients", loc="upper left")
    return fig


def plot_timeline(results: Sequence[Any], outage: float | None = None,
                  capacity: float | None = None,
                  title: str = "Without jitter, clients retry in synchronised spikes") -> Figure:
    """Attempts per second over time, one line per result (e.g. :class:`~.lab.HerdResult`).

    Each result needs ``strategy`` and ``timeline`` (attempts in each second). The outage,
    ``[0, outage)`` seconds, is shaded; by default it is read from ``results[0].outage_s``.
    The server's capacity after the outage (requests per second, default
    ``results[0].capacity`` when it has one) is a dashed black line. The legend sits
    outside the axes, to the right, so no spike runs through it.
    """
    if not results:
        raise ValueError("results must hold at least one timeline")
    if outage is None:
        outage = getattr(results[0], "outage_s", None)
    if capacity is None:
        capacity = getattr(results[0], "capacity", None)
    with course_style():
        fig, ax = _figure()
        if outage:
            ax.axvspan(0, outage, color=OUTAGE_COLOUR, alpha=0.08, label="outage (529)")
        end = max(len(result.timeline) for result in results)
        for result in results:
            seconds = list(range(len(result.timeline)))
            ax.step(seconds, result.timeline, where="post", label=result.strategy,
                    color=_colour(result.strategy))
        if capacity:
            ax.hlines(capacity, outage or 0.0, max(end, (outage or 0.0) + 1.0), colors="black",
                      linestyles="--", linewidth=1.2, label=f"capacity ({capacity:g}/s)")
        ax.set_xlabel("time [s]")
        ax.set_ylabel("attempts per second [1/s]")
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_load_vs_failure(rows: Sequence[Any], group: str = "policy", y: str = "load",
                         ylabel: str = "server calls per request [x]",
                         title: str = "A retry budget keeps the load near 1x") -> Figure:
    """One line per ``group`` value: ``y`` against ``failure_rate`` (budgets, openloop rows)."""
    if not rows:
        raise ValueError("rows must hold at least one result")
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(str(getattr(row, group)), []).append(row)
    with course_style():
        fig, ax = _figure()
        for name, members in groups.items():
            members = sorted(members, key=lambda r: r.failure_rate)
            ax.plot([r.failure_rate for r in members], [getattr(r, y) for r in members],
                    marker="o", label=name, color=_colour(name))
        ax.set_xlabel("failure rate x [share of calls]")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
    return fig


def plot_brooker2015(rows: Sequence[Any],
                     title: str = "Full jitter: half the calls of plain exponential backoff"
                     ) -> Figure:
    """Brooker's two figures side by side: write calls and completion time against N.

    Each strategy has its own colour, marker (hollow) and line style, so a line drawn over
    another (equal jitter over full jitter) leaves the one beneath visible; both panels
    have a legend.
    """
    if not rows:
        raise ValueError("rows must hold at least one result")
    with course_style():
        fig, (calls_ax, time_ax) = _figure(WIDE, panels=2)
        for name in dict.fromkeys(r.strategy for r in rows):
            mine = sorted((r for r in rows if r.strategy == name), key=lambda r: r.clients)
            n = [r.clients for r in mine]
            look = {"label": name, "color": _colour(name), "marker": _MARKERS.get(name, "o"),
                    "linestyle": _LINES.get(name, "-"), "markerfacecolor": "none",
                    "markersize": 7}
            calls_ax.plot(n, [r.calls for r in mine], **look)
            time_ax.plot(n, [r.time_ms for r in mine], **look)
        calls_ax.set_xlabel("clients N")
        calls_ax.set_ylabel("write calls per run [calls]")
        calls_ax.set_title("Work")
        time_ax.set_xlabel("clients N")
        time_ax.set_ylabel("time until the last client is done [ms]")
        time_ax.set_yscale("log")
        time_ax.set_title("Time")
        calls_ax.legend()
        time_ax.legend()
        fig.suptitle(title, fontweight="bold")
    return fig


_POLICY_NAMES = {"every_layer": "every layer retries",
                 "top_layer": "only the top layer retries",
                 "budget_per_layer": "every layer retries,\nwithin a retry budget"}
"""Plain names for :func:`resilience.lab.amplification`'s policies."""


def plot_amplification(rows: Sequence[Any],
                       title: str = "Retrying at every layer multiplies the load") -> Figure:
    """Bottom calls per user request for each retry policy (bars on a linear axis, each
    labelled with its value, policies named in plain words)."""
    if not rows:
        raise ValueError("rows must hold at least one result")
    with course_style():
        fig, ax = _figure()
        names = [_POLICY_NAMES.get(r.policy, r.policy) for r in rows]
        values = [r.simulated for r in rows]
        bars = ax.bar(names, values, color=[_colour(r.policy) or "#7f7f7f" for r in rows])
        ax.bar_label(bars, fmt="%.1f calls", padding=2)
        ax.set_ylim(0, 1.12 * max(values))
        ax.set_xlabel("where the retries happen")
        ax.set_ylabel("calls that reach the failing service\nper user request [calls]")
        ax.set_title(title)
    return fig


_LEVEL = {"closed": 0, "half_open": 1, "open": 2}


def plot_breaker_history(history: Sequence[tuple[float, str]], until: float | None = None,
                         title: str = "The breaker opens while the service is down",
                         outage: tuple[float, float] | None = None) -> Figure:
    """A circuit breaker's state over time, from ``CircuitBreaker.history``.

    The outage is shaded in the outage colour of every other plot; the time the circuit
    is open is shaded in grey (calls rejected), so the two never look alike.

    Args:
        history: ``(time, state)`` pairs, the first at the start.
        until: where the last state ends on the time axis (default: last change + 10 %).
        title: the figure's title.
        outage: ``(start, end)`` of the service's outage in seconds, shaded if given.
    """
    if not history:
        raise ValueError("history must hold at least the starting state")
    times = [t for t, _ in history]
    levels = [_LEVEL[state] for _, state in history]
    end = until if until is not None else times[-1] + max(1.0, 0.1 * (times[-1] - times[0]))
    with course_style():
        fig, ax = _figure()
        if outage is not None:
            ax.axvspan(*outage, color=OUTAGE_COLOUR, alpha=0.08, label="outage (529)")
        ax.step([*times, end], [*levels, levels[-1]], where="post", label="state",
                color="#1f77b4")
        spans: list[list[float]] = []       # open time; a zero-length trial does not split it
        for (start, state), stop in zip(history, [*times[1:], end], strict=True):
            if state == "open" and spans and spans[-1][1] == start:
                spans[-1][1] = stop
            elif state == "open":
                spans.append([start, stop])
        for i, (start, stop) in enumerate(spans):
            ax.axvspan(start, stop, ymin=0.75, ymax=0.98, color=OPEN_COLOUR, alpha=0.35,
                       label=None if i else "open: calls rejected")
        ax.set_yticks(list(_LEVEL.values()), list(_LEVEL))
        ax.set_ylim(-0.3, 2.3)
        ax.set_xlabel("time [s]")
        ax.set_ylabel("breaker state")
        ax.set_title(title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3)
    return fig


def plot_herd_vs_model(calls: Sequence[Any], model: Any, outage: float | None = None,
                       label: str = "real SDK (FakeClaude)",
                       title: str = "The real SDK's herd follows the lab's model") -> Figure:
    """A herd run through the real SDK beside the lab's herd model, on one time axis.

    Left: attempts per second, ``[s, s + 1)`` bins. Right: clients served by time ``t``
    (the running count of 200s). The outage ``[0, outage)`` is shaded on both.

    Args:
        calls: the attempts of the real run, each with ``time`` (virtual seconds) and
            ``status`` (200 = served), e.g. ``FakeClaude.calls``.
        model: a :class:`~resilience.lab.herd.HerdResult` (``timeline``, ``successes``,
            ``strategy`` and ``outage_s``), e.g. ``herd(1000, "sdk_default", seed)``.
        outage: the outage's length in seconds (default: ``model.outage_s``).
        label: the real run's name in the legends.
        title: the figure's title.
    """
    if not calls:
        raise ValueError("calls must hold at least one attempt")
    if outage is None:
        outage = getattr(model, "outage_s", None)
    horizon = max(len(model.timeline), int(max(call.time for call in calls)) + 1)
    attempts = [0] * horizon
    served = [0] * horizon
    for call in calls:
        attempts[int(call.time)] += 1
        if call.status == 200:
            served[int(call.time)] += 1
    seconds = list(range(horizon + 1))

    def running(counts: Sequence[int]) -> list[int]:
        total, out = 0, [0]
        for count in counts:
            total += count
            out.append(total)
        return out

    model_name = f"lab model ({model.strategy})"
    with course_style():
        fig, (load_ax, served_ax) = _figure(WIDE, panels=2)
        for ax in (load_ax, served_ax):
            if outage:
                ax.axvspan(0, outage, color=OUTAGE_COLOUR, alpha=0.08, label="outage (529)")
            ax.set_xlabel("time [s]")
        load_ax.step(seconds[:-1], attempts, where="post", label=label, color="#1f77b4")
        load_ax.step(list(range(len(model.timeline))), model.timeline, where="post",
                     label=model_name, color=_colour(model.strategy), linestyle="--")
        load_ax.set_ylabel("attempts per second [1/s]")
        load_ax.set_title("Load")
        served_ax.plot(seconds, running(served), label=label, color="#1f77b4")
        served_ax.plot(list(range(len(model.successes) + 1)), running(model.successes),
                       label=model_name, color=_colour(model.strategy), linestyle="--")
        served_ax.set_ylabel("clients served by then [clients]")
        served_ax.set_title("Served")
        load_ax.legend()
        fig.suptitle(title, fontweight="bold")
    return fig


def plot_breaker_states(histories: Mapping[str, Sequence[tuple[float, str]]], until: float,
                        title: str = "Two breakers, side by side") -> Figure:
    """Several circuit breakers' states over time, one line each (lesson 09's bugs).

    Each line is nudged a little up or down, so lines that share a state stay visible.

    Args:
        histories: name -> ``(time, state)`` pairs, as in ``CircuitBreaker.history``.
        until: where the last states end on the time axis.
        title: the figure's title.
    """
    if not histories or not all(histories.values()):
        raise ValueError("histories must hold at least one history, each with its start")
    with course_style():
        fig, ax = _figure()
        for i, (name, history) in enumerate(histories.items()):
            nudge = 0.1 * ((len(histories) - 1) / 2 - i)
            times = [t for t, _ in history] + [until]
            levels = [_LEVEL[state] + nudge for _, state in history]
            ax.step(times, [*levels, levels[-1]], where="post", label=name)
        ax.set_yticks(list(_LEVEL.values()), list(_LEVEL))
        ax.set(xlabel="time [s]", ylabel="breaker state", title=title, ylim=(-0.3, 2.3))
        ax.legend(loc="upper right")
    return fig


FALLBACK_STEPS = {"main": "#1f77b4", "smaller": "#2ca02c", "cache": "#ff7f0e",
                  "static": "#7f7f7f"}
"""The colour of each step of lesson 10's fallback chain."""


def plot_fallback_steps(steps: Sequence[str], outage: tuple[float, float], block: int = 20,
                        title: str = "While the main model is down, the smaller model answers"
                        ) -> Figure:
    """Which step served each request, stacked in blocks of ``block`` requests (one a second).

    Args:
        steps: the step that served each request, in order (one request per second).
        outage: ``(start, end)`` of the main model's outage in seconds, shaded.
        block: requests per bar.
        title: the figure's title.
    """
    if not steps or block < 1:
        raise ValueError("steps must hold at least one step, and block must be >= 1")
    starts = list(range(0, len(steps), block))
    with course_style():
        fig, ax = _figure()
        ax.axvspan(*outage, color=OUTAGE_COLOUR, alpha=0.08, label="main model down",
                   zorder=0)
        bottom = [0] * len(starts)
        for step, colour in FALLBACK_STEPS.items():
            counts = [steps[s:s + block].count(step) for s in starts]
            ax.bar(starts, counts, width=0.9 * block, align="edge", bottom=bottom, label=step,
                   color=colour)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set(xlabel="time [s]", ylabel=f"requests served [per {block} s]",
               ylim=(0, 1.2 * block), title=title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=5)
    return fig
