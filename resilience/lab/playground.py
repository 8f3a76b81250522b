"""Playgrounds: sliders that redraw a lesson's plot, for a notebook with a running kernel.

A :class:`Playground` is a row of controls (ipywidgets sliders and drop-downs) above a
picture (an ``ipywidgets.Image`` holding a PNG). Moving a control calls ``draw`` with every
control's value, renders the returned figure to PNG and swaps the picture: no Output
widget, no captured output, so a notebook that displays a playground stores the same
outputs on every run (its text is :attr:`Playground.text`; the widget's model id, which
changes every run, is the one output nbval does not compare).

ipywidgets is imported only when a playground is built, so ``import resilience.lab`` does
not need it. Keep each ``draw`` small (well under a second): it runs on every slider move.

>>> jitter_playground()      # doctest: +SKIP  (in a notebook: strategy, base, cap)
"""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .. import backoff
from .plots import COLOURS, WIDE, course_style, plot_delays, plot_timeline

__all__ = ["Playground", "herd_playground", "jitter_playground", "png"]


def png(fig: Figure, dpi: float = 80.0) -> bytes:
    """``fig`` as PNG bytes at ``dpi``, and closed, so no notebook shows it again."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


class Playground:
    """Controls above a picture; any control's change redraws the picture.

    Args:
        controls: name -> ipywidgets control (anything with ``value`` and ``observe``);
            ``draw`` gets each value under its name.
        draw: ``draw(**values) -> Figure``, called once now and after every change.
        text: what a reader without a kernel sees (the display's ``text/plain``).

    Attributes:
        controls: as given.
        image: the ``ipywidgets.Image`` showing the last drawing.
        widget: the whole playground (a ``VBox``: controls, then the image).
        draws: how many times ``draw`` has run.
    """

    def __init__(self, controls: Mapping[str, Any], draw: Callable[..., Figure],
                 text: str) -> None:
        import ipywidgets as widgets

        if not controls:
            raise ValueError("controls must hold at least one control")
        if not callable(draw):
            raise TypeError(f"draw must be a function returning a Figure, got {draw!r}")
        self.controls = dict(controls)
        self._draw = draw
        self.text = text
        self.draws = 0
        self.image = widgets.Image(format="png")
        row = widgets.HBox(list(self.controls.values()))
        self.widget = widgets.VBox([row, self.image])
        self.redraw()
        for control in self.controls.values():
            control.observe(self._changed, names="value")

    @property
    def values(self) -> dict[str, Any]:
        """Every control's current value, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        """Call ``draw`` with the current values and show the result."""
        self.image.value = png(self._draw(**self.values))
        self.draws += 1

    def _changed(self, change: Mapping[str, Any]) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text
        return bundle

    def __repr__(self) -> str:
        return self.text


def _slider(kind: str, description: str, value: float, low: float, high: float,
            step: float) -> Any:
    import ipywidgets as widgets

    make = widgets.IntSlider if kind == "int" else widgets.FloatSlider
    return make(value=value, min=low, max=high, step=step, description=description,
                continuous_update=False, style={"description_width": "initial"},
                layout=widgets.Layout(width="250px"))


# -- lesson 06: one strategy's delays, and when a crowd sends its 5th attempt --------------

def _crowd(strategy: backoff.Strategy, clients: int, waits: int, seed: int) -> list[float]:
    times = []
    for i in range(clients):
        schedule = strategy.delays(random.Random(seed + i))
        times.append(sum(next(schedule) for _ in range(waits)))
    return times


def draw_jitter(strategy: str, base: float, cap: float, clients: int = 200,
                seed: int = 0) -> Figure:
    """Left: the strategy's delays per retry (:func:`plot_delays`, ``clients`` samples).
    Right: when each of ``clients`` clients that failed together sends its 5th attempt."""
    chosen = (backoff.sdk_default() if strategy == "sdk_default"
              else backoff.by_name(strategy, base=base, cap=max(cap, base)))
    times = _crowd(chosen, clients, 4, seed)
    busiest = max(Counter(int(t * 10) for t in times).values())
    with course_style():
        fig, (delays_ax, crowd_ax) = plt.subplots(1, 2, figsize=WIDE, layout="constrained")
        plot_delays({strategy: chosen}, retries=8, samples=clients, seed=seed,
                    title="Delay before each retry", ax=delays_ax)
        crowd_ax.hist(times, bins=40, color=COLOURS.get(strategy))
        crowd_ax.set_xlabel("time of the 5th attempt [s]")
        crowd_ax.set_ylabel("clients per bin [clients]")
        crowd_ax.set_title(f"{clients} clients' 5th attempt: busiest 100 ms holds {busiest}")
        fig.suptitle(f"{strategy}, base {base:g} s, cap {cap:g} s", fontweight="bold")
    return fig


def jitter_playground(strategy: str = "full_jitter", base: float = 0.5, cap: float = 30.0,
                      clients: int = 200, seed: int = 0) -> Playground:
    """Pick a strategy, its base and cap; see its delays and a crowd's 5th attempt."""
    import ipywidgets as widgets

    names = [name for name in backoff.NAMES if name != "none"]
    controls = {
        "strategy": widgets.Dropdown(options=names, value=strategy, description="strategy"),
        "base": _slider("float", "base [s]", base, 0.1, 2.0, 0.1),
        "cap": _slider("float", "cap [s]", cap, 1.0, 60.0, 1.0),
    }

    def draw(strategy: str, base: float, cap: float) -> Figure:
        return draw_jitter(strategy, base, cap, clients=clients, seed=seed)

    return Playground(controls, draw, "Jitter playground: pick a strategy, move base and "
                                      "cap (needs a running kernel; the static plot is above).")


# -- lesson 07: a herd's attempts per second ----------------------------------------------

def draw_herd(clients: int, capacity: float, strategy: str = "full_jitter",
              seed: int = 0, outage: float = 30.0) -> Figure:
    """One herd (:func:`resilience.lab.herd`) beside plain exponential, second by second.

    The y axis stops above the tallest second after second 0 (which holds two waves)."""
    from .herd import herd

    runs = [herd(clients, name, seed=seed, capacity=capacity, outage=outage)
            for name in dict.fromkeys(("exponential", strategy))]
    served = ", ".join(f"{r.strategy} {r.served}" for r in runs)
    fig = plot_timeline(runs, title=f"{clients} clients, capacity {capacity:g}/s: "
                                    f"served {served}")
    tallest = max(max(r.timeline[1:], default=1) for r in runs)
    fig.axes[0].set_ylim(0, 1.1 * max(tallest, capacity))
    return fig


def herd_playground(clients: int = 1000, capacity: float = 50.0,
                    strategy: str = "full_jitter", seed: int = 0) -> Playground:
    """Move the herd's size and the server's capacity; pick the strategy beside exponential."""
    import ipywidgets as widgets

    from .herd import STRATEGIES

    controls = {
        "clients": _slider("int", "clients", clients, 100, 2000, 100),
        "capacity": _slider("float", "capacity [1/s]", capacity, 10.0, 300.0, 10.0),
        "strategy": widgets.Dropdown(options=[s for s in STRATEGIES if s != "exponential"],
                                     value=strategy, description="strategy"),
    }

    def draw(clients: int, capacity: float, strategy: str) -> Figure:
        return draw_herd(clients, capacity, strategy, seed=seed)

    return Playground(controls, draw, "Herd playground: move the herd's size and the "
                                      "capacity (needs a running kernel; the static plot is "
                                      "above).")
