# %% [markdown]
# # Lesson 09: Circuit breakers in practice
#
# [Lesson 08](08_circuit_breakers.ipynb) wrapped one call in a breaker and watched it open
# and close. A real app has more to decide: whether the breaker sits around your call or
# inside the SDK's own retries, which errors count as the service failing, and how many
# callers a half-open breaker lets in. A popular guide gets three of these wrong, and each
# mistake turns a healthy service into an outage of your own. This lesson shows each one by
# simulation, then the choices real libraries make.
#
# **In this lesson you will**
#
# - put a breaker inside the SDK's retries with `BreakerMiddleware`, and pick a route
# - re-create a popular guide's breaker and show its three bugs by simulation
# - compare counting failures in a row with a failure rate over a window
# - compare defaults across libraries, and see why a breaker locks its state, not the call
# - write the test that decides what counts as a failure, and a client whose breaker
#   counts requests, not attempts

# %%
import asyncio
import copy
import random
from collections import Counter
from contextlib import suppress

import anthropic
import matplotlib.pyplot as plt
from course.lesson09 import check_guarded, check_is_failure

# %% [markdown]
# From the course's package: the breaker, its middleware, the simulated API and plots.
# %%
from resilience import CircuitBreaker, CircuitOpenError, VirtualClock
from resilience.lab.plots import FIGSIZE, course_style, plot_breaker_states
from resilience.middleware import BreakerMiddleware
from resilience.testing import FakeClaude, Outage

SEED = 0
PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]

# %% [markdown]
# ## The breaker inside the SDK
#
# In lesson 08 the breaker wrapped your call, `breaker(create)`: one outcome per request.
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
# can come after the status line, as in a stream (lesson 11).
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
# ## Exercise 09.1: what counts as a failure
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
# ## Exercise 09.2: count requests, not attempts
#
# Write `guarded(api, breaker)`. It returns a function that works like
# `messages.create`: a client keeps the SDK's default retries (2 per request), and the
# breaker sees *one outcome per request*, however many attempts it took. So a request
# that meets two 529s and then succeeds is a success, and it takes three requests that
# fail outright to open a breaker with `failure_threshold=3`. The checker sends requests
# through your function to the simulated API and reads the breaker's state after each.

# %%
def guarded(api, breaker):
    raise NotImplementedError


check_guarded(guarded)

# %% [markdown]
# **Hint**: look at the table of routes above. Which one counts one outcome per request,
# and leaves the SDK's retries alone? Build the client with `api.client()` (its retries
# are the default) and wrap its `messages.create`. With `BreakerMiddleware` the first
# failed request alone is three failures.
#
# ## Recap
#
# - `BreakerMiddleware` judges every HTTP attempt inside the SDK's retries and stops them
#   when it opens; wrapping your call judges each request, as your own retries see it.
# - Forget failures on success, count only service failures (5xx, timeouts, connection
#   errors; no 4xx, not even 429), and limit half-open trials; the guide's breaker does
#   none of the three.
# - A failure rate over a window (`failure_rate_threshold`, `window_size`,
#   `minimum_calls`) ignores scattered errors; a run in a row reacts sooner at low traffic.
# - Libraries disagree on defaults; both windowed ones wait for 100 calls.
# - Lock the breaker's state, never the call.
#
# **Next:** [Lesson 10: Fallbacks and graceful degradation](10_fallbacks.ipynb)
