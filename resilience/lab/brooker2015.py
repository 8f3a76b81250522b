"""Brooker (2015), "Exponential Backoff And Jitter": the optimistic-concurrency experiment.

Setup (AWS Architecture Blog, 2015, and its simulator), reproduced as published:

* ``N`` clients start at ``t = 0``; each must update one shared row exactly once.
* A client **reads** the row's version, then **writes** conditionally on that version. The
  server handles messages one at a time in arrival order; a write succeeds iff the version
  is unchanged since this client's read, i.e. iff no other write succeeded in between.
* Every message (request or reply) takes ``|Normal(10 ms, 2 ms)|``.
* After a failed write the client sleeps, then reads again. The sleep before retry ``a``
  (``a = 1`` at the first retry, as in Brooker's code) is ``strategy.next_delay(a, previous,
  u)`` from :mod:`resilience.backoff` (built by ``backoff.by_name(name, 5 ms, 2000 ms)``);
  ``previous`` (read by decorrelated jitter only) starts at ``base``. ``none`` sleeps 0.
* Metrics: the write calls the server received, and the time when the last client learns
  that its write succeeded; each averaged over ``runs`` runs.

Only writes need to be handled in time order. A client's read at time ``r`` sees version
``v``; its write at ``w`` succeeds iff no write succeeded in ``[r, w)``, which is the same as
``last successful write < r`` when writes are handled in time order. One write is therefore
one event: on success the client is done (finishing one reply later, at ``w + d``); on
failure its next read reaches the server at ``w + d + d' + sleep`` and its next write two
messages after that. All ``runs`` runs advance together in a :class:`~.engine.Lockstep`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .. import backoff
from .._check import choices, seed_value, whole_number
from .engine import Lockstep
from .sizing import require

__all__ = [
    "BASE",
    "CAP",
    "MESSAGE_MEAN",
    "MESSAGE_SD",
    "STRATEGIES",
    "Brooker2015Row",
    "brooker2015",
    "brooker2015_runs",
    "brooker_strategy",
]

BASE = 0.005
"""Backoff base: 5 ms (in seconds, like every delay in :mod:`resilience.backoff`)."""
CAP = 2.0
"""Backoff cap: 2000 ms."""
MESSAGE_MEAN = 0.010
"""Mean one-way message time: 10 ms."""
MESSAGE_SD = 0.002
"""Standard deviation of the message time: 2 ms (the time is ``|Normal(mean, sd)|``)."""

STRATEGIES = tuple(name for name in backoff.NAMES if name != "sdk_default")
"""The five strategies of the study, in the order of its figures: ``none``, exponential,
full, equal and decorrelated jitter (``backoff.NAMES`` without the SDK's schedule)."""

_BLOCK = 128  # steps between book-keeping rounds (retire finished runs, draw random numbers)

WORK_LIMIT = 1.5e9
"""The most ``rows x slots x clients`` (about a minute): each step is an ``argmin`` over every
row's slots, and a run takes a few steps per client. The full sweep is 1.2e8."""


def _bytes(rows: int, slots: int) -> float:
    """Peak memory of one point: seven ``(rows, slots)`` arrays (the first messages count
    three times, twice while concatenated) plus a block of random numbers per row."""
    return rows * slots * 8.0 * 14 + rows * _BLOCK * 8.0 * 12


def _check_size(points: tuple[int, ...], runs: int, strategies: int) -> None:
    """Refuse a sweep over ``points`` (values of N) that is too big for this machine."""
    rows = runs * strategies
    require("brooker2015", f"{max(points):,} clients x {runs:,} runs x {strategies} "
            f"strateg{'y' if strategies == 1 else 'ies'}",
            memory=_bytes(rows, max(points) + 1),
            work=sum(rows * (n + 1) * n for n in points), work_limit=WORK_LIMIT,
            unit="row-slot-client steps")


def brooker_strategy(name: str) -> backoff.Backoff:
    """The strategy called ``name`` with the study's base (5 ms) and cap (2000 ms)."""
    choices("strategy", (name,), STRATEGIES)
    return backoff.by_name(name, BASE, CAP)


@dataclass(frozen=True, slots=True)
class Brooker2015Row:
    """One point of the study's figures: ``strategy`` with ``clients`` clients.

    Attributes:
        clients: N, the number of clients.
        strategy: one of :data:`STRATEGIES`.
        calls: mean write calls the server received per run.
        time_ms: mean time until the last client finished, in milliseconds.
    """

    clients: int
    strategy: str
    calls: float
    time_ms: float


def brooker2015_runs(clients: int, strategies: Iterable[str], runs: int,
                     seed: int) -> dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]]:
    """Simulate ``runs`` runs of each strategy; return per-run write calls and finish times.

    All strategies' runs advance in one :class:`~.engine.Lockstep` (``len(strategies) *
    runs`` rows, one slot per client plus a dummy slot 0); runs that are over are dropped
    every ``_BLOCK`` steps. Each strategy draws its random numbers from its own
    ``numpy.random.default_rng([seed, clients, k])`` (``k`` its position in
    :data:`STRATEGIES`), so its results do not depend on the strategies run beside it.

    Returns:
        ``{strategy: (calls, time_ms)}``, each an array with one entry per run.
    """
    clients = whole_number("clients", clients, minimum=1, maximum=100_000)
    runs = whole_number("runs", runs, minimum=1, maximum=100_000)
    seed = seed_value(seed)
    names = choices("strategies", strategies, STRATEGIES)
    _check_size((clients,), runs, len(names))
    sleeps = [brooker_strategy(name) for name in names]
    rngs = [np.random.default_rng([seed, clients, STRATEGIES.index(name)]) for name in names]
    slots = clients + 1

    def messages(k: int, *shape: int) -> NDArray[np.float64]:
        return np.abs(rngs[k].normal(MESSAGE_MEAN, MESSAGE_SD, size=shape))

    # Slot 0 of every run is a dummy client that never has an event: once a run is over,
    # ``argmin`` picks it, and the updates below land there harmlessly (no masks needed).
    first = np.concatenate([messages(k, runs, slots, 3) for k in range(len(names))])
    write_at = first.sum(axis=2)       # read request + read reply + write request
    write_at[:, 0] = np.inf
    read_at = first[:, :, 0].copy()    # when each client's read reached the server
    previous = np.array([s.base for s in sleeps]).repeat(runs)[:, None].repeat(slots, axis=1)
    writes_made = np.zeros(write_at.shape, dtype=np.int64)
    reply_at = np.zeros(write_at.shape)  # when each client heard its last write's reply
    last_success = np.full(len(write_at), -np.inf)  # the latest successful write, per run
    row_ids = np.arange(len(write_at))   # which (strategy, run) each row is
    calls = np.zeros(len(write_at), dtype=np.int64)
    finish = np.zeros(len(write_at))

    while True:
        # Every _BLOCK steps: retire finished runs, then draw the next block of randomness.
        over = np.isinf(write_at).all(axis=1)
        if over.any():
            calls[row_ids[over]] = writes_made[over, 1:].sum(axis=1)
            finish[row_ids[over]] = reply_at[over, 1:].max(axis=1)
            keep = ~over
            write_at, read_at, previous = write_at[keep], read_at[keep], previous[keep]
            writes_made, reply_at = writes_made[keep], reply_at[keep]
            last_success, row_ids = last_success[keep], row_ids[keep]
        if len(row_ids) == 0:
            break
        owner = row_ids // runs          # index into ``names`` of each remaining row
        mine = {k: row_ids[owner == k] % runs for k in range(len(names)) if (owner == k).any()}
        segments = [(k, int(np.searchsorted(owner, k)), int(np.searchsorted(owner, k, "right")))
                    for k in mine if names[k] != "none"]
        # Four messages per step: write reply, read request, read reply, write request.
        normal = np.concatenate([messages(k, 4, _BLOCK, runs)[:, :, mine[k]] for k in mine],
                                axis=2)
        uniform = np.concatenate([rngs[k].random((_BLOCK, runs))[:, mine[k]] for k in mine],
                                 axis=1)
        reply, to_read, to_write = normal[0], normal[0] + normal[1], normal[2] + normal[3]
        writes = Lockstep(write_at)
        read_flat, writes_flat = read_at.reshape(-1), writes_made.reshape(-1)
        previous_flat, reply_flat = previous.reshape(-1), reply_at.reshape(-1)
        pause = np.zeros(len(row_ids))   # "none" rows keep 0
        for step in range(_BLOCK):
            flat, now = writes.earliest()
            lost = read_flat[flat] <= last_success  # someone wrote after our read: stale
            last_success = np.where(lost, last_success, now)
            reply_flat[flat] = now + reply[step]
            writes_flat[flat] += 1                  # = the retry number if this write lost
            made, before, u = writes_flat[flat], previous_flat[flat], uniform[step]
            for k, lo, hi in segments:
                pause[lo:hi] = sleeps[k].next_delay(made[lo:hi], before[lo:hi], u[lo:hi])
            previous_flat[flat] = pause
            reread = now + to_read[step] + pause
            read_flat[flat] = reread
            writes.schedule(flat, np.where(lost, reread + to_write[step], np.inf))
    per_run = {}
    for k, name in enumerate(names):
        part = slice(k * runs, (k + 1) * runs)
        per_run[name] = (calls[part], finish[part] * 1000.0)
    return per_run


def brooker2015(clients: Iterable[int], runs: int, seed: int,
                strategies: Iterable[str] = STRATEGIES, *,
                progress: Callable[[int], object] | None = None) -> tuple[Brooker2015Row, ...]:
    """The study's sweep: mean write calls and completion time per ``(clients, strategy)``.

    Args:
        clients: the values of N (each >= 1), e.g. ``range(10, 200, 10)``.
        runs: runs per point (the study uses 100).
        seed: the random seed; the same seed gives the same rows to the last digit.
        strategies: names from :data:`STRATEGIES`.
        progress: called with 1 after each value of N (a progress bar's ``update``).

    Returns:
        One :class:`Brooker2015Row` per ``(clients, strategy)``, clients-major.

    Raises:
        ValueError: a setting out of range, or a sweep too big for this machine (see
            :mod:`.sizing`), before anything is allocated.
    """
    counts = tuple(whole_number("clients", n, minimum=1, maximum=100_000) for n in clients)
    if not counts:
        raise ValueError("clients must hold at least one number of clients")
    runs = whole_number("runs", runs, minimum=1, maximum=100_000)
    names = choices("strategies", strategies, STRATEGIES)
    _check_size(counts, runs, len(names))
    rows = []
    for n in counts:
        per_run = brooker2015_runs(n, names, runs, seed)
        for name in names:
            calls, times = per_run[name]
            rows.append(Brooker2015Row(n, name, float(calls.mean()), float(times.mean())))
        if progress is not None:
            progress(1)
    return tuple(rows)
