# %% [markdown]
# # Lesson 06: Backoff and jitter
#
# When a call fails, the wait before the next try decides two things: how soon you get
# your answer, and how much extra load you send to a server that is already in trouble.
# Clients that failed at the same moment and wait the same time come back at the same
# moment, and fail together again. Jitter (a random part in the wait) breaks them up. This
# lesson shows how much that matters, with the numbers of a well-known AWS study.
#
# **In this lesson you will**
#
# - plot five backoff strategies, all computed by the one formula in `resilience.backoff`
# - see what jitter does to 1,000 clients that failed together
# - find the mistake in a popular guide's backoff formula, and fix it
# - reproduce the AWS jitter study (Brooker, 2015) and compare your numbers with its claims
# - write a strategy that `resilience.retry` runs through an outage, and a retry loop of
#   your own that uses one

# %%
import json
import random
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
from course.lesson06 import check_call_with_backoff, check_guide_fixed

from resilience import backoff
from resilience.lab import brooker2015, playground, plots

SEED = 0

# %% [markdown]
# ## One formula per strategy
#
# Each strategy in `resilience.backoff` is a small frozen object. Its method
# `next_delay(n, previous, u)` gives the wait before retry `n` (0 for the first retry)
# from one uniform random draw `u` in [0, 1). With `x = min(cap, base * 2**n)`:
#
# | strategy | wait before retry `n` |
# |---|---|
# | `exponential` | `x`: no jitter, every client waits the same |
# | `full_jitter` | `u * x`: anywhere in [0, x) |
# | `equal_jitter` | `x/2 + u * x/2`: in [x/2, x) |
# | `decorrelated_jitter` | `min(cap, base + u * (3 * previous - base))` |
# | `sdk_default` | `min(0.5 * 2**n, 8) * (1 - 0.25 * u)`: the anthropic SDK's own |
#
# The retry loop, the simulations and the plots all call this same method (see
# `resilience/backoff.py`). `backoff.by_name(name)` builds a strategy from its name, and
# `backoff.NAMES` lists every name, with `none` (no wait at all) first. The lab and the
# command line build theirs the same way.
#
# Below, one client's first six waits for each strategy, drawn from the same seeded random
# source. Look at the first row: the waits are exact powers of two. Every client that uses
# it waits exactly these times.

# %%
strategies = {name: backoff.by_name(name) for name in backoff.NAMES if name != "none"}
for name, strategy in strategies.items():
    waits = strategy.delays(random.Random(7))
    print(f"{name:20}", " ".join(f"{next(waits):5.2f}" for _ in range(6)))

# %% [markdown]
# One client tells you little. The plot draws 200 clients per strategy. How to read it:
#
# - **the line** joins each strategy's *median* wait (half the clients wait less);
# - **the bar** at each retry spans the 5th to the 95th percentile: 90 % of the clients
#   wait a time inside it. A tall bar means a crowd spread far apart;
# - the bars of the strategies stand side by side, and the y axis is logarithmic (each
#   grid line up doubles the wait), so early retries are as readable as late ones.
#
# Look for the height of each bar. Exponential has no bar at all: every client waits the
# same. Full jitter's bar reaches far down, towards 0. The SDK's bar is short (its jitter
# only shortens the wait, to 75-100 %) and flat from retry 5 on, where it caps at 8 s.
# Decorrelated jitter is left out to keep the plot calm; add it back
# (`plots.plot_delays(strategies, ...)`) to see its tall bars.

# %%
shown = {name: s for name, s in strategies.items() if name != "decorrelated_jitter"}
fig = plots.plot_delays(shown, retries=8, samples=200, seed=SEED)
plt.show()

# %% [markdown]
# ### Playground: one strategy at a time
#
# With a running kernel, the cell below shows sliders. Pick a strategy and move its
# base and cap: the left panel redraws its waits, the right one shows when 200 clients
# that failed together send their 5th attempt. Look at the title of the right panel: the
# busiest 100 ms. (Without a kernel you see one line of text; the plot above is the
# same picture for four strategies.)

# %%
playground.jitter_playground()

# %% [markdown]
# ## What jitter does to a crowd
#
# Picture 1,000 clients whose calls all failed at t = 0, during a short overload. When
# does each one send its 5th attempt (after 4 waits)? The helper adds up each client's
# first four waits. Then `busiest` counts the clients in the fullest 100 ms window: that
# is the burst the server sees at once.

# %%
def fifth_attempt_times(strategy, clients=1000):
    times = []
    for i in range(clients):
        waits = strategy.delays(random.Random(SEED + i))
        times.append(sum(next(waits) for _ in range(4)))
    return times


def busiest(times):
    return max(Counter(int(t * 10) for t in times).values())


# %% [markdown]
# Look at the last column. Without jitter all 1,000 clients arrive in the same 100 ms. With
# full jitter the fullest window holds a few dozen. The SDK's schedule sits in between:
# its 75-100 % jitter spreads the crowd over a narrower range.

# %%
print(f"{'strategy':20} {'earliest':>9} {'latest':>7} {'busiest 100 ms':>15}")
for name, strategy in strategies.items():
    times = fifth_attempt_times(strategy)
    print(f"{name:20} {min(times):8.2f}s {max(times):6.2f}s {busiest(times):15d}")

# %% [markdown]
# Try it: change `range(4)` in `fifth_attempt_times` to `range(2)` and run both cells again.
# Early retries have short waits, so even full jitter cannot spread them far.
#
# ## A guide's formula, corrected
#
# A widely shared guide to Claude API errors computes its wait with a line that has lost
# an operator: `base_delay` is followed directly by `(2 * attempt)`. As printed, Python
# would try to *call* a float and raise `TypeError`. Put a `*` back and the wait is
# *linear* (0, 2, 4, 6 ... s); the author probably meant `2 ** attempt`. Either way the
# jitter is *added*: a uniform 0 to 1 s, whatever the size of the wait.
#
# Here are both readings in your own code (base 1 s, cap 60 s, as in the guide), beside
# full jitter with the same base and cap.

# %%
def guide_linear(attempt, u, base=1.0, cap=60.0):
    return min(base * (2 * attempt) + u, cap)


def guide_exponential(attempt, u, base=1.0, cap=60.0):
    return min(base * 2**attempt + u, cap)


fixed = backoff.full_jitter(base=1.0, cap=60.0)

# %% [markdown]
# For each attempt, 1,000 clients draw their wait. Look at the busiest 100 ms: with the
# guide's additive jitter it stays above 100 clients at every attempt, because the crowd
# is never spread wider than 1 s. Full jitter spreads it over the whole wait, so the burst
# shrinks as the waits grow.

# %%
rng = random.Random(7)
print(f"{'attempt':>7} {'linear':>7} {'exp.':>5} {'full jitter':>12}   (busiest 100 ms)")
for attempt in range(5):
    linear = [guide_linear(attempt, rng.random()) for _ in range(1000)]
    expo = [guide_exponential(attempt, rng.random()) for _ in range(1000)]
    full = [fixed.next_delay(attempt, 1.0, rng.random()) for _ in range(1000)]
    print(f"{attempt:7d} {busiest(linear):7d} {busiest(expo):5d} {busiest(full):12d}")

# %% [markdown]
# The fix is one line: use a strategy whose jitter scales with the wait, such as
# `backoff.full_jitter(base=1.0, cap=60.0)`, and pass it to `resilience.retry(backoff=...)`.
# (The guide's loop has a second problem, retries stacked on the SDK's own retries;
# lesson 12 counts what that costs.)
#
# ## The AWS jitter study, reproduced
#
# Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015) is the
# source most libraries cite for full jitter. Its setup: N clients each update one shared
# row once, with optimistic concurrency. A client reads the row's version, then writes
# conditionally on it; if another write landed in between, the write fails, the client
# backs off and tries again. Each message takes |Normal(10 ms, 2 ms)|; base 5 ms, cap 2 s.
# The study counts the write calls the server receives and the time until the last client
# is done, averaged over 100 runs. `resilience/lab/brooker2015.py` reproduces it, calling
# the same `next_delay` you plotted above (plus `none`: retry at once).
#
# The full sweep (N = 10, 20, ..., 190) takes about 8 s, too long for this notebook. Here
# you run it at full size (100 runs per point, seed 0) for five values of N. The same
# numbers, and the other fourteen points, come from the command line:
# `python -m resilience brooker2015 --runs 100 --seed 0` (its `--clients` default is
# 10,20,...,190). Each point has its own random stream, so N = 100 gives the same
# numbers in both runs.

# %%
rows = brooker2015((10, 50, 100, 150, 190), runs=100, seed=SEED)
at_100 = {r.strategy: r for r in rows if r.clients == 100}
for r in at_100.values():
    print(f"{r.strategy:20} {r.calls:8.1f} calls {r.time_ms / 1000:7.2f} s")

# %% [markdown]
# In your run at N = 100, plain exponential backoff makes more than twice the calls of full
# jitter, and takes over ten times as long: its clients keep colliding, because they keep
# retrying at the same moments. `none` is fastest but makes the most calls. In the plot,
# look at how the gap grows with N (the time axis is logarithmic). Each strategy has its
# own marker and line style: in the left panel equal jitter (orange triangles, dashed)
# lies almost on top of full jitter (blue squares), because the two do the same work.

# %%
fig = plots.plot_brooker2015(rows)
plt.show()

# %% [markdown]
# ### Our numbers beside the published claims
#
# The blog publishes figures, not tables, so its claims are in words. Each one is stored
# with its source in `data/published_claims.json`, together with a check a computer can
# run. Load the study's claims first.

# %%
claims = json.loads(Path("../data/published_claims.json").read_text())["claims"]
study = [c for c in claims if c["id"].startswith("brooker2015.")]

# %% [markdown]
# `measure` computes what a check looks at (a ratio, or the slowest strategy), from your
# rows at N = 100.

# %%
def measure(check):
    metric = check["metric"]
    if "ratio" in check:
        top, bottom = check["ratio"]
        return getattr(at_100[top], metric) / getattr(at_100[bottom], metric)
    return max(check["among"], key=lambda name: getattr(at_100[name], metric))


# %% [markdown]
# `holds` compares what you measured with the check's bound: a name (`largest`), an
# upper or lower bound, or a range.

# %%
def holds(check, ours):
    if "largest" in check:
        return ours == check["largest"]
    if "less_than" in check:
        return ours < check["less_than"]
    if "greater_than" in check:
        return ours > check["greater_than"]
    low, high = check["between"]
    return low <= ours <= high


# %% [markdown]
# Each claim, then what you measured (a ratio, or the slowest strategy), the bound the
# check asks for, and whether it holds.

# %%
for claim in study:
    check = claim["check"]
    ours = measure(check)
    what = "/".join(check["ratio"]) if "ratio" in check else f"slowest by {check['metric']}"
    bound = {k: v for k, v in check.items() if k not in ("metric", "ratio", "among")}
    shown = ours if isinstance(ours, str) else f"{ours:.3f}"
    print(f"{claim['claim']}\n    {what} = {shown}; check {bound}; holds: {holds(check, ours)}")

# %% [markdown]
# All five claims hold at N = 100 with seed 0. In one table:
#
# | claim (Brooker 2015) | what we measure at N = 100 | ours | holds |
# |---|---|---|---|
# | full jitter: more than half fewer calls than exponential | calls, full / exp. | 0.425 | yes |
# | full and equal jitter: about the same work | calls, equal / full | 1.021 | yes |
# | decorrelated: a little more work than full | calls, decorrelated / full | 1.263 | yes |
# | exponential: the clear loser on time | slowest backoff | exponential | yes |
# | equal jitter: much longer than full | time, equal / full | 1.349 | yes |
#
# What the claims cannot tell you is the absolute scale: the blog's figures show curves,
# not numbers, so only ratios and rankings can be compared. Two notes:
#
# - "More than half" holds, but not by a wide margin: 57.5 % fewer calls here.
# - Decorrelated jitter depends on a detail: `previous` must start at the base, in the
#   same unit (seconds here). The `notes` in the claims file say what goes wrong otherwise.

# %% [markdown]
# ## Exercise 06.1: the guide's backoff, fixed
#
# Write the class `GuideFixed`: a backoff strategy with the guide's base (1 s) and cap
# (60 s), whose `next_delay(n, previous, u)` returns the wait before retry `n` (0 first).
# Keep the guide's exponential growth, but make the jitter scale with the wait. Every
# wait must lie between 0 and 60 s.
#
# The checker does not read your formula: it *runs* it. 200 clients call a server that
# is down for 10 s and then takes 5 requests a second. Each client uses the real
# `resilience.retry(backoff=GuideFixed(), ...)`. You pass when every client is served,
# with at most 25 % more calls and 50 % more time than full jitter (same base and cap).

# %%
class GuideFixed:
    base = 1.0
    cap = 60.0

    def next_delay(self, n, previous, u):
        raise NotImplementedError


check_guide_fixed(GuideFixed)

# %% [markdown]
# **Hint**: cap the exponential first, then scale it by `u`:
# `u * min(self.cap, self.base * 2**n)`. The guide's `2**n + u` fails: its crowd stays
# within 1 s, so the clients keep colliding. Equal or decorrelated jitter pass too; try
# them.
#
# ## Exercise 06.2: a retry loop that uses a strategy
#
# `resilience.retry` calls `next_delay` for you. Write the loop yourself, for any
# strategy: `call_with_backoff(call, strategy, attempts, clock, rng)` calls `call()` at
# most `attempts` times and returns its result. After a failure that
# `resilience.classify(e).retryable` allows, it waits
# `strategy.next_delay(n, previous, rng.random())` with `clock.sleep`: `n` is 0 before
# the first retry, and `previous` starts at `strategy.base`, then is the last wait.
# No wait after the last attempt: re-raise its error. Re-raise a non-retryable error at
# once. The checker runs your loop against the simulated API with decorrelated jitter
# (the one strategy that reads `previous`) and checks every wait to the microsecond.

# %%
def call_with_backoff(call, strategy, attempts, clock, rng):
    raise NotImplementedError


check_call_with_backoff(call_with_backoff)

# %% [markdown]
# **Hint**: `for n in range(attempts):` then `try: return call()`. In the `except
# Exception as e:` branch, `raise` when `n == attempts - 1` or the error is not
# retryable; otherwise compute `previous = strategy.next_delay(n, previous, rng.random())`
# and `clock.sleep(previous)`.
#
# ## Recap
#
# - A backoff strategy is one formula of the retry number and a random draw; in this
#   package each lives once, in `resilience/backoff.py`.
# - Without jitter, clients that failed together come back together, every time.
# - Jitter must scale with the wait. A fixed 0 to 1 s added to a long wait leaves the
#   crowd in one burst.
# - In your reproduction of Brooker's study, full jitter makes less than half the calls of
#   plain exponential at N = 100, and finishes more than ten times sooner. The study itself
#   shows these as curves; the ratios are your measurements.
# - A strategy is any object with `base` and `next_delay`: `resilience.retry` runs yours
#   as it runs its own.
#
# **Next:** [Lesson 07: The thundering herd](07_thundering_herd.ipynb)
