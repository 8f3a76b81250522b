# %% [markdown]
# # Lesson 08: Circuit breakers
#
# Retries help when a failure is brief. When the API is down for a minute, every request
# you send still fails, and still costs time: your user waits through the retries, and the
# service that is trying to recover gets more load. A circuit breaker notices the run of
# failures and stops calling for a while. Requests fail at once, with a clear error, and
# the service gets room to recover. Now and then one trial call checks whether it is back.
#
# **In this lesson you will**
#
# - see what one request costs while the API is down, and why a breaker stops calling
# - drive `resilience.CircuitBreaker` through a simulated outage and watch its states
# - read the `CircuitOpenError` it raises, which says when the next trial comes
# - count the calls that hit an outage with and without a breaker, and play with its settings
# - predict a breaker's states, and when it closes again after an outage

# %%
from collections import Counter

import anthropic
import matplotlib.pyplot as plt
from course.lesson08 import check_closes_at, check_predict_states
from ipywidgets import FloatSlider, IntSlider

# %% [markdown]
# From the course's package: the breaker, the simulated API, a plot and a playground.
# %%
from resilience import CircuitBreaker, CircuitOpenError, VirtualClock, classify
from resilience.lab.playground import Playground
from resilience.lab.plots import plot_breaker_history
from resilience.testing import FakeClaude, Outage

clock = VirtualClock()
SEED = 0
PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]


# %% [markdown]
# ## Why stop calling
#
# First, what one request costs while the API is down. The simulated API answers three 529s
# in a row, and the client has the SDK's default retries (2). Look at the calls and the
# time before it failed: the SDK slept between attempts.

# %%
with FakeClaude(seed=SEED) as api:
    api.respond("overloaded_error", "overloaded_error", "overloaded_error")
    try:
        api.client().messages.create(model=api.model, max_tokens=64, messages=PROMPT)
    except anthropic.APIStatusError as e:
        print(f"{type(e).__name__} {e.status_code} after {len(api.calls)} calls "
              f"and {api.clock.now():.2f} s")

# %% [markdown]
# Three calls and more than a second, for nothing; a thousand users make thousands of
# calls to a service that is already overloaded. An open breaker answers at once, with
# no call at all.
#
# ## The state machine
#
# A breaker has three states:
#
# | state | a call | leaves when |
# |---|---|---|
# | `closed` | goes through; failures are counted | `failure_threshold` failures in a row |
# | `open` | is rejected at once (`CircuitOpenError`) | `recovery_timeout` s have passed |
# | `half_open` | one trial goes through, others are rejected | the trial ends (ok: `closed`) |
#
# A failed trial opens it for another `recovery_timeout`. The code is short: see
# `resilience/breaker.py`.
#
# Here is one with a threshold of 5 failures and a 10 s recovery timeout, on the lesson's
# virtual clock.

# %%
breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=10.0, clock=clock)
print(breaker)

# %% [markdown]
# Now some traffic: one request a second for 90 s, through the breaker, to a simulated API
# with an outage (529s) from t = 20 s to t = 65 s. The client has `max_retries=0`, so each
# request is exactly one call and you can count them. (With the SDK's retries on, the
# breaker would still count one failure per request, however many attempts it took.)
# First, one request: `one_request` says what it got. Only an error from the API is
# `failed`; a refusal by the breaker is `rejected`.

# %%
def one_request(call, model):
    try:
        call(model=model, max_tokens=64, messages=PROMPT)
        return "ok"
    except CircuitOpenError:
        return "rejected"
    except anthropic.APIStatusError:
        return "failed"

# %% [markdown]
# `traffic` sends one a second and records what each got; pass `None` for no breaker.

# %%
def traffic(breaker, clock, seconds=90):
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(Outage(start=20, end=65))
        create = api.client(max_retries=0).messages.create
        call = create if breaker is None else breaker(create)
        seen = []
        for _ in range(seconds):
            seen.append(one_request(call, api.model))
            clock.advance(1.0)
    return seen, api.calls

# %% [markdown]
# Run it and count. Most of the outage is `rejected`: those requests never reached the API.
# Only a handful `failed`.

# %%
seen, calls = traffic(breaker, clock)
print(dict(Counter(seen)))
print(f"calls that reached the API: {len(calls)} of {len(seen)} requests")

# %% [markdown]
# `breaker.history` holds every change of state with its time. Read it from the top. The
# 5th failure (t = 24 s) opens the circuit. Every 10 s a trial call fails and opens it again.
# The trial at t = 64 s fails, one second before the outage ends, so the breaker only finds
# out at the next trial, t = 74 s. That is the price of a long `recovery_timeout`.

# %%
for t, state in breaker.history:
    print(f"t={t:5.1f} s  {state}")

# %% [markdown]
# The same history as a picture. The outage is shaded red, as in every plot of the course;
# the grey band is the time the circuit was open, rejecting calls. Look at both ends: the
# grey starts after the red (5 failures first) and outlasts it (the next trial).

# %%
fig = plot_breaker_history(breaker.history, until=90, outage=(20, 65),
                           title="The breaker opens 4 s into the outage and closes 9 s after it")
plt.show()

# %% [markdown]
# ### Playground: threshold and timeout
#
# `draw` runs the same 90 s of `traffic` with your settings; its title counts both sides:
# calls that hit the outage, requests rejected. With a running kernel, move the sliders
# below (without one, you see only a line of text). Try a 40 s timeout: 6 calls hit the
# outage, but the circuit is still open at t = 90 s, 25 s after the API came back.

# %%
def draw(threshold, timeout):
    clock = VirtualClock()
    trial = CircuitBreaker(failure_threshold=threshold, recovery_timeout=timeout, clock=clock)
    seen, _ = traffic(trial, clock)
    t, state = trial.history[-1]
    end = f"closed at t = {t:g} s" if state == "closed" else "still open at t = 90 s"
    return plot_breaker_history(trial.history, until=90, outage=(20, 65), title=(
        f"{seen.count('failed')} calls hit the outage, {seen.count('rejected')} rejected; {end}"))

# %%
sliders = {"threshold": IntSlider(5, min=1, max=10, description="threshold"),
           "timeout": FloatSlider(10, min=2, max=40, step=2, description="timeout [s]")}
for slider in sliders.values():
    slider.continuous_update = False        # redraw when you let go
Playground(sliders, draw, "Breaker playground: move failure_threshold and recovery_timeout "
                          "(needs a running kernel; the static plot is above).")

# %% [markdown]
# ## What a rejected request sees
#
# While the circuit is open, a call raises `CircuitOpenError` without touching the API.
# Its message and its `retry_in` say how long until the next trial call. Here a breaker
# with `failure_threshold=1` sees one 529, then a request comes 4 s later. Look at the
# second line: no call was made, and the error says when to come back.

# %%
demo = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock)
with FakeClaude(clock=clock, seed=SEED) as api:
    api.respond("overloaded_error")
    create = demo(api.client(max_retries=0).messages.create)
    print("first request:", one_request(create, api.model))
    clock.advance(4.0)
    try:
        create(model=api.model, max_tokens=64, messages=PROMPT)
    except CircuitOpenError as e:
        print(f"{type(e).__name__}: {e}")
        rejected = e

# %% [markdown]
# `classify` knows this error too. It is not worth retrying now, and it carries a
# `retry_after`: show the user "try again in 6 s", or go to a fallback (lesson 10).

# %%
print(f"retry_in={rejected.retry_in:.1f} s, calls made: {len(api.calls)}")
print(classify(rejected), "| retry_after:", classify(rejected).retry_after)

# %% [markdown]
# ## With and without a breaker
#
# Run the same 90 s without a breaker (`None`), on a fresh clock, and count the calls
# that got a 529: the calls that hit the API while it was down.

# %%
_, without = traffic(None, VirtualClock())
for name, made in {"without a breaker": without, "with a breaker": calls}.items():
    print(f"{name:18}: {sum(c.status == 529 for c in made):2d} calls hit the outage")

# %% [markdown]
# Forty-five against nine. With 1,000 users, that difference lets a service come back
# instead of being knocked over again.
#
# That is the breaker around one call. [Lesson 09](09_circuit_breakers_in_practice.ipynb)
# puts it inside the SDK's retries, and shows what goes wrong in breakers people write.

# %% [markdown]
# ## Exercise 08.1: predict the states
#
# Write `predict_states(events, failure_threshold=3, recovery_timeout=5.0)`. `events` is a
# list of `"ok"` and `"fail"`: one call a second, at t = 0, 1, 2, ... Return the state the
# breaker is in *as each call arrives* (what `breaker.state` says just before the call).
# A call that arrives while the circuit is open is rejected: its event does not matter.
#
# Example with the defaults: `["fail", "fail", "fail", "ok", "ok", "ok", "ok", "ok", "ok"]`
# gives three `"closed"`, four `"open"`, then `"half_open"` (t = 7 s: the trial succeeds)
# and `"closed"`. The checker runs each sequence through a real `CircuitBreaker`.

# %%
def predict_states(events, failure_threshold=3, recovery_timeout=5.0):
    raise NotImplementedError


check_predict_states(predict_states)

# %% [markdown]
# **Hint**: keep `state`, `opened_at` and `failures`. For each `t, event` in
# `enumerate(events)`: first, if the state is open and `t - opened_at >= recovery_timeout`,
# it becomes half-open; record the state; then apply the event. A half-open trial closes
# the circuit or opens it again (`opened_at = t`). Closing or a success resets `failures`.
#
# ## Exercise 08.2: when does it close?
#
# Write `closes_at(start, end, failure_threshold, recovery_timeout)`. One request a second
# arrives, at t = 0, 1, 2, ..., through a breaker, as in `traffic`. Every call at
# `start <= t < end` fails; every other call succeeds. Return the time (in s, a number) at
# which the breaker closes again after the outage. Every setting is a whole number, and
# the outage is long enough to open the circuit. With the lesson's settings,
# `closes_at(20, 65, 5, 10)` is `74`, as in the history above. The checker runs each case
# through a real `CircuitBreaker`.

# %%
def closes_at(start, end, failure_threshold, recovery_timeout):
    raise NotImplementedError


check_closes_at(closes_at)

# %% [markdown]
# **Hint**: the `failure_threshold`-th failure opens it, at `start + failure_threshold - 1`.
# Trials come every `recovery_timeout` seconds after that. The first trial at or after
# `end` succeeds (the call at `t = end` is already healthy), and closes the circuit. It is
# not `end + recovery_timeout`: the clock started when the circuit opened, not when the
# API came back.
#
# ## Recap
#
# - A breaker stops calling a service that is down: requests fail at once with
#   `CircuitOpenError` (with `retry_in`), and the service gets room to recover.
# - closed -> open after a run of failures; open -> half-open after `recovery_timeout`;
#   one trial call decides between closed and open.
# - The breaker learns that the API is back only at a trial: a long `recovery_timeout`
#   keeps rejecting requests after the outage, a short one sends more trials into it.
# - `classify` treats `CircuitOpenError` as not worth retrying now, with a `retry_after`.
#
# **Next:** [Lesson 09: Circuit breakers in practice](09_circuit_breakers_in_practice.ipynb)
