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
# - drive `resilience.CircuitBreaker` through a simulated outage and watch its states,
#   around your call and inside the SDK's retries
# - read the `CircuitOpenError` it raises, which says when the next trial comes
# - re-create a popular guide's breaker and show its three bugs by simulation
# - compare counting failures in a row with a failure rate over a window
# - predict a breaker's states, and write the test that decides what counts as a failure

# %%
import asyncio
import copy
import random
from collections import Counter
from contextlib import suppress

import anthropic
import matplotlib.pyplot as plt
from course.lesson08 import check_is_failure, check_predict_states
from ipywidgets import FloatSlider, IntSlider

# %% [markdown]
# From the course's package: the breaker, the simulated API, plots and a playground.
# %%
from resilience import CircuitBreaker, CircuitOpenError, VirtualClock, classify
from resilience.lab.playground import Playground
from resilience.lab.plots import FIGSIZE, course_style, plot_breaker_history, plot_breaker_states
from resilience.middleware import BreakerMiddleware
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
# `retry_after`: show the user "try again in 6 s", or go to a fallback (lesson 09).

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
# ## The breaker inside the SDK
#
# So far the breaker wraps your call, `breaker(create)`, and sees one outcome per request.
# The SDK also runs *middleware* once per HTTP attempt, inside its own retry loop;
# `BreakerMiddleware(breaker)` puts the breaker there. Below, a client with 4 SDK retries
# meets an outage; the threshold is 3. `met` notes what each of two requests raised, the
# HTTP attempts so far and the time taken.

# %%
with FakeClaude(seed=SEED) as api:
    inside = CircuitBreaker(failure_threshold=3, recovery_timeout=10.0, clock=api.clock)
    api.scenario(Outage(start=0, end=60))
    client = api.client(middleware=[BreakerMiddleware(inside)], max_retries=4)
    met = []
    for _ in range(2):
        started = api.clock.now()
        try:
            client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
        except CircuitOpenError as e:
            met.append((type(e).__name__, len(api.calls), api.clock.now() - started))
    retries_sent = [c.retry_count for c in api.calls]

# %% [markdown]
# The third attempt opens the breaker. The SDK sleeps and tries a fourth, which never
# leaves: it fails at once with `CircuitOpenError`, and the SDK does not retry that. The
# second request costs no attempt and no time.

# %%
for name, attempts, took in met:
    print(f"{name} after {took:.2f} s; HTTP attempts so far: {attempts}")
print("the SDK's retry count on each attempt sent:", retries_sent)

# %% [markdown]
# Which route to choose:
#
# | | decorator: `breaker(create)` | middleware: `BreakerMiddleware(breaker)` |
# |---|---|---|
# | counts | one outcome per request | every HTTP attempt |
# | retries | yours (`max_retries=0`), or the SDK's, unseen | the SDK's; they stop when it opens |
# | covers | what you wrap: several calls, a whole stream | every call of the client |
#
# Take the middleware when the SDK's retries are your one retry layer (`failure_threshold`
# then counts attempts). Take the decorator when you own the retries, or when a failure
# can come after the status line, as in a stream (lesson 10).
#
# ## A guide's breaker and its three bugs
#
# A widely shared guide to Claude API errors includes a small breaker class. It has the
# right states, but three bugs:
#
# 1. **It never forgets a failure.** A success in the closed state does not reset the count;
#    only a successful half-open trial does. Rare errors spread over a day add up until it
#    opens, on a healthy service.
# 2. **It counts every exception.** One user's bad request (400), a wrong key (401) or your
#    own rate limit (429) counts as the service failing, and opens the circuit for everybody.
# 3. **Half-open lets everyone in.** When the timeout ends, every caller waiting at that
#    moment goes through at once, not one trial call.
#
# (It also reads the wall clock, `datetime.now()`; `resilience` uses a monotonic clock.)
# Here is our own re-creation of it, in three parts. First the state, and a `history`
# like `CircuitBreaker`'s, for plots.

# %%
class NaiveState:
    def __init__(self, failure_threshold=5, recovery_timeout=30.0, *, clock):
        self.threshold, self.timeout, self.clock = failure_threshold, recovery_timeout, clock
        self.failures, self.opened_at, self.state = 0, 0.0, "closed"
        self.history = [(clock.now(), "closed")]

    def _move(self, state):
        self.state = state
        self.history.append((self.clock.now(), state))
        if state == "open":
            self.opened_at = self.clock.now()

# %% [markdown]
# Then the rules, as a context manager like `CircuitBreaker`. The way in, `__enter__`,
# admits a call or refuses it. Look for the comment: it marks bug 3.

# %%
class NaiveOpen(Exception):
    """What NaiveBreaker raises while open."""


class NaiveGate(NaiveState):
    def __enter__(self):
        if self.state == "open":
            if self.clock.now() - self.opened_at < self.timeout:
                raise NaiveOpen("circuit is open")
            self._move("half_open")           # bug 3: no limit on calls in half-open

# %% [markdown]
# The way out, `__exit__`, records how the call went. Two comments mark bugs 1 and 2.

# %%
class NaiveBreaker(NaiveGate):
    def __exit__(self, exc_type, exc, tb):
        if exc is None and self.state == "half_open":
            self.failures = 0                 # bug 1: the only place the count resets
            self._move("closed")
        self.failures += exc is not None      # bug 2: every exception counts (True is 1)
        if self.failures >= self.threshold and self.state != "open":
            self._move("open")

    def call(self, fn, *args, **kwargs):
        with self:
            return fn(*args, **kwargs)

# %% [markdown]
# ### A fast stand-in for the API
#
# The bugs show over thousands of calls, too many to send through the whole SDK here. So
# you get the real SDK exceptions once, with `api.raised(name)`, and a small stand-in
# raises copies of them: a 529 for the service failing, a 400 for a request that is bad
# in itself, a 429 for your own rate limit.

# %%
with FakeClaude(seed=SEED) as api:
    OVERLOADED = api.raised("overloaded_error")
    INVALID = api.raised("invalid_request_error")
    RATE_LIMITED = api.raised("rate_limit_error")
print(" | ".join(f"{type(e).__name__} {e.status_code}"
                 for e in (OVERLOADED, INVALID, RATE_LIMITED)))

# %% [markdown]
# The stand-in fails with a 529 at random with `error_rate`, or always before `down_until`,
# and counts its calls. Pass it an error to send a request that is bad in itself.

# %%
class StandIn:
    def __init__(self, clock, error_rate=0.0, down_until=0.0, seed=SEED):
        self.clock, self.error_rate, self.down_until = clock, error_rate, down_until
        self.rng, self.calls = random.Random(seed), 0

    def __call__(self, error=None):
        self.calls += 1
        if error is not None:
            raise copy.copy(error)
        if self.clock.now() < self.down_until or self.rng.random() < self.error_rate:
            raise copy.copy(OVERLOADED)
        return "ok"

# %% [markdown]
# ### Bug 1: it never forgets
#
# A healthy service: 1 % of calls fail with a 529, and there is one request a second for an
# hour. `hour` sends them through a breaker and counts what happened. Both breakers have the
# same settings (5 failures, 30 s).

# %%
def hour(breaker, error_rate=0.01, seconds=3600):
    service, seen = StandIn(breaker.clock, error_rate), Counter()
    for _ in range(seconds):
        try:
            seen[breaker.call(service)] += 1
        except (CircuitOpenError, NaiveOpen):
            seen["rejected"] += 1
        except anthropic.APIStatusError:
            seen["failed"] += 1
        breaker.clock.advance(1.0)
    return seen

# %% [markdown]
# Look at `rejected`. The naive breaker turns 39 scattered errors into seven openings and
# about 200 requests refused. Ours never opens: five failures *in a row* at 1 % almost never
# happen, and every success resets its count.

# %%
naive = NaiveBreaker(clock=VirtualClock())
ours = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=VirtualClock())
for name, b in {"naive": naive, "resilience": ours}.items():
    seen = hour(b)
    print(f"{name:10} {dict(seen)}  opened {sum(s == 'open' for _, s in b.history)} times")

# %%
fig = plot_breaker_states({"naive": naive.history, "resilience": ours.history}, until=3600,
                          title="Bug 1: at 1 % errors the naive breaker keeps opening")
plt.show()

# %% [markdown]
# ### Bug 2: one user's bad requests open it for everybody
#
# The service is healthy. Good users send a request a second for 5 minutes. From t = 100 s,
# one user sends a request that is invalid (a 400) every second for 10 s: their code
# retries everything. `bad_user` counts what the *good* requests got.

# %%
def bad_user(breaker, seconds=300):
    service, good = StandIn(breaker.clock), Counter()
    for t in range(seconds):
        if 100 <= t < 110:
            with suppress(CircuitOpenError, NaiveOpen, anthropic.APIStatusError):
                breaker.call(service, INVALID)
        try:
            good[breaker.call(service)] += 1
        except (CircuitOpenError, NaiveOpen):
            good["rejected"] += 1
        breaker.clock.advance(1.0)
    return good

# %% [markdown]
# The naive breaker refuses 30 good requests: 30 s of outage that your own app made, with
# the API perfectly healthy. Ours treats the 400s as neutral (neither failure nor success):
# by default it counts only service failures (`service_failure` in `resilience/breaker.py`),
# a 5xx (but 501), a timeout, a connection error. No 4xx counts, not even a 429 (last
# line): that is your own quota, answered at once. Slow down for it (lesson 03); do not
# shut out every user.

# %%
naive = NaiveBreaker(clock=VirtualClock())
ours = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=VirtualClock())
for name, b in {"naive": naive, "resilience": ours}.items():
    print(f"{name:10} good requests: {dict(bad_user(b))}")
print("counted as a failure? 400:", ours.is_failure(INVALID), "| 429:",
      ours.is_failure(RATE_LIMITED), "| 529:", ours.is_failure(OVERLOADED))

# %%
fig = plot_breaker_states({"naive": naive.history, "resilience": ours.history}, until=300,
                          title="Bug 2: five bad requests from one user open the naive breaker")
plt.show()

# %% [markdown]
# ### Bug 3: everyone rushes into half-open
#
# Now many callers at once: 20 requests every second, in parallel (asyncio tasks), during
# an outage from t = 0 to t = 120 s. In `caller`, `await asyncio.sleep(0)` stands for the
# network wait: while one call is in flight, the other callers run.

# %%
async def caller(breaker, service):
    with suppress(CircuitOpenError, NaiveOpen, anthropic.APIStatusError), breaker:
        await asyncio.sleep(0)                # in flight: the other callers get their turn
        service()

# %% [markdown]
# `crowd` sends `callers` such calls together every second and counts how many reached
# the service in each second.

# %%
async def crowd(breaker, seconds=150, callers=20):
    service, per_second = StandIn(breaker.clock, down_until=120.0), []
    for _ in range(seconds):
        before = service.calls
        await asyncio.gather(*(caller(breaker, service) for _ in range(callers)))
        per_second.append(service.calls - before)
        breaker.clock.advance(1.0)
    return per_second

# %% [markdown]
# Count the calls that reached the service while it was down, and the biggest burst after
# the first second. Every 30 s the naive breaker lets all 20 callers in to a service that is
# still down; ours lets in one trial call (`half_open_max_calls=1`) and rejects the rest
# at once. The same happens at t = 120 s, when the service has just come back and is at its
# most fragile. (A notebook may `await` at the top of a cell, as this one does.)

# %%
naive = NaiveBreaker(clock=VirtualClock())
ours = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=VirtualClock())
bursts = {"naive": await crowd(naive), "resilience": await crowd(ours)}
for name, counts in bursts.items():
    print(f"{name:10} calls during the outage: {sum(counts[:120]):3d}, "
          f"trial burst at t=30 s: {counts[30]}")

# %% [markdown]
# In the plot, look at the spikes every 30 s: 20 calls each for the naive breaker, one for
# ours. (At t = 0 both let 20 calls through: they were in flight before the first failure
# came back.)

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    for name, counts in bursts.items():
        ax.step(range(len(counts)), counts, where="post", label=name)
    ax.axvspan(0, 120, color="#d62728", alpha=0.08, label="outage (529)")
    ax.set(xlabel="time [s]", ylabel="calls reaching the service [1/s]",
           title="Bug 3: the naive half-open state lets every caller in")
    ax.legend(loc="center right")
plt.show()

# %% [markdown]
# ## In a row, or as a rate?
#
# "5 failures in a row" is a proxy. At 30 % errors, runs of 5 happen by chance; and one
# lucky success resets the count, however sick the service is. resilience4j and Polly
# trip on a **failure rate** over a window instead. So can
# `CircuitBreaker`: pass `failure_rate_threshold`, `window_size` (how many recent calls)
# and `minimum_calls` (no verdict on too few calls). With `failure_threshold=None` the rate
# alone decides.

# %%
def by_rate():
    return CircuitBreaker(failure_threshold=None, failure_rate_threshold=0.5, window_size=100,
                          minimum_calls=20, recovery_timeout=30.0, clock=VirtualClock())


def in_a_row():
    return CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, clock=VirtualClock())

# %% [markdown]
# An hour of traffic at four error rates. Each column is "times opened / requests
# rejected". The naive breaker rejects requests at every rate. "5 in a row" opens a few
# times at 30 % errors. "50 % of the last 100" stays closed until half the calls fail, and
# then opens more often than "5 in a row" does.

# %%
lines = [f"{'errors':>6} {'naive':>10} {'5 in a row':>11} {'50 % of 100':>12}"]
for rate in (0.01, 0.1, 0.3, 0.5):
    row = []
    for b in (NaiveBreaker(clock=VirtualClock()), in_a_row(), by_rate()):
        rejected = hour(b, error_rate=rate)["rejected"]
        row.append(f"{sum(s == 'open' for _, s in b.history)}/{rejected}")
    lines.append(f"{rate:6.0%} {row[0]:>10} {row[1]:>11} {row[2]:>12}")
print("\n".join(lines))

# %% [markdown]
# Which is right depends on what you need. A rate ignores noise, but needs
# `minimum_calls` requests before it can open; at low traffic, "in a row" reacts sooner.
# You can set both: the circuit opens when either says so.
#
# ## Defaults in the wild
#
# Every library picks different defaults. Ours first, read from a fresh breaker:

# %%
fresh = CircuitBreaker()
print(f"failure_threshold={fresh.failure_threshold}, recovery_timeout={fresh.recovery_timeout}"
      f" s, half_open_max_calls={fresh.half_open_max_calls}, "
      f"failure_rate_threshold={fresh.failure_rate_threshold}")

# %% [markdown]
# | | opens when | stays open | trial calls in half-open |
# |---|---|---|---|
# | `resilience` | 5 counted failures in a row (or a rate, if set) | 30 s | 1 |
# | resilience4j | failure rate >= 50 % over the last 100 calls (minimum 100 calls) | 60 s | 10 |
# | Polly v8 | failure ratio >= 10 % over 30 s (minimum 100 calls) | 5 s | 1 |
# | Fowler's example | 5 consecutive failures | (a timeout) | 1 |
# | the guide | 5 failures, never forgotten, any exception | 30 s | unlimited |
#
# Both windowed libraries refuse to judge on fewer than 100 calls.
#
# ## Lock the state, not the call
#
# A breaker is shared by every thread or task that calls the service. Its state needs a
# lock, but the call must not hold it. pybreaker holds its lock for the whole call, so a
# slow API turns your breaker into a queue. `CircuitBreaker` locks only to read or change
# the state (`_acquire` and `_release` in `resilience/breaker.py`). That is why the 20
# callers above could be in flight together.

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
# ## Exercise 08.2: what counts as a failure
#
# Write `is_failure(e)` for `CircuitBreaker(is_failure=...)`: True only when the error
# says the *service* is unhealthy. Count server errors (500 and up, 529 included, but not
# 501 Not Implemented), and connection failures and timeouts (`anthropic.APIConnectionError`,
# of which `APITimeoutError` is a subclass). No 4xx counts: not 400, 401, 403, 404, 409,
# 413, and not a 429 (your own quota). Nor do your own bugs (a `ValueError`). The checker
# then uses your function in a breaker: ten 400s and ten 429s must leave it closed, three
# 529s must open it.

# %%
def is_failure(e):
    raise NotImplementedError


check_is_failure(is_failure)

# %% [markdown]
# **Hint**: check `isinstance(e, anthropic.APIConnectionError)` first; then for
# `anthropic.APIStatusError` look at `e.status_code`: `>= 500` but not 501 (not a list
# that stops at 504, or 529 slips through). Everything else is False. When you are done,
# compare with `service_failure` in `resilience/breaker.py`, the breaker's default.
# (`classify(e).retryable` asks another question, "worth retrying?", and says yes to 429.)
#
# ## Recap
#
# - A breaker stops calling a service that is down: requests fail at once with
#   `CircuitOpenError` (with `retry_in`), and the service gets room to recover. Wrap your
#   call when you own the retries; `BreakerMiddleware` judges every attempt of the SDK's.
# - closed -> open after a run of failures; open -> half-open after `recovery_timeout`;
#   one trial call decides between closed and open.
# - Forget failures on success, count only service failures (5xx, timeouts, connection
#   errors; no 4xx, not even 429), and limit half-open trials; the guide's breaker does
#   none of the three.
# - A failure rate over a window (`failure_rate_threshold`, `window_size`,
#   `minimum_calls`) ignores scattered errors; a run in a row reacts sooner at low traffic.
# - Lock the breaker's state, never the call.
#
# **Next:** [Lesson 09: Fallbacks and graceful degradation](09_fallbacks.ipynb)
