# %% [markdown]
# # Lesson 05: What the SDK already does
#
# Before you write a retry loop, know the one you already have. The `anthropic` SDK
# retries failed requests by itself: twice by default, with a short backoff, honoring the
# server's `retry-after`. Many guides do not mention it, and wrap their own five-attempt
# loop around it. The two loops multiply. This lesson takes the SDK's retries apart by
# measuring them, then counts what stacking a second layer costs.
#
# **In this lesson you will**
#
# - watch the SDK's default 3 attempts in virtual time, and read its constants
# - measure its backoff schedule over 100 seeds and match it to its formula
# - find which errors it retries, and how the server can overrule it
# - set `max_retries` the ways that work (and see the one that does not)
# - count the requests when a guide's loop wraps the SDK's, and fix it
# - add a breaker and a retry budget *inside* the SDK's own retries, as middleware

# %%
import random

import anthropic
import matplotlib.pyplot as plt
from anthropic import _constants
from course.lesson05 import check_ask, check_sdk_retries

from resilience import ERRORS, CircuitBreaker, RetryBudget, VirtualClock, backoff, classify, retry
from resilience.lab.plots import FIGSIZE, course_style
from resilience.middleware import AttemptLog, BreakerMiddleware, BudgetMiddleware
from resilience.testing import FakeClaude, Outage, error

SEED = 0
MESSAGES = [{"role": "user", "content": "Hi"}]

# %% [markdown]
# ## Three attempts, by default
#
# The SDK keeps its settings in `anthropic._constants`. Read them from the installed
# version (the numbers below are computed, not copied):

# %%
print("DEFAULT_MAX_RETRIES:", _constants.DEFAULT_MAX_RETRIES)
print("INITIAL_RETRY_DELAY:", _constants.INITIAL_RETRY_DELAY, "s")
print("MAX_RETRY_DELAY:    ", _constants.MAX_RETRY_DELAY, "s")
print("DEFAULT_TIMEOUT:    ", _constants.DEFAULT_TIMEOUT)

# %% [markdown]
# Two retries means three attempts. Queue two 529s and a success, and send one request with
# a default client. Each line of `api.calls` is one attempt: its virtual time, and the
# `x-stainless-retry-count` header the SDK sent with it.

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    api.respond("overloaded_error", "overloaded_error", "ok")
    reply = api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
for call in api.calls:
    print(call)
print(reply.content[0].text)

# %% [markdown]
# You never saw the two 529s: the SDK swallowed them, waited about 0.4 s and then about
# 0.8 s, and returned the answer. The retry count tells the server which attempt it is.
#
# ## The schedule, measured
#
# Where do those waits come from? The SDK computes the wait before retry `n` (0 first) as
# `min(0.5 * 2**n, 8) * (1 - 0.25 * random())`: the base doubles, and the jitter only
# *shortens* it, to 75-100 %. So the first wait lies in [0.375, 0.5] s and the second in
# [0.75, 1.0] s. Measure it: `sdk_waits(seed)` runs the same three attempts with the
# simulated API seeded with `seed`, and returns the two waits.

# %%
def sdk_waits(seed):
    with FakeClaude(clock=VirtualClock(), seed=seed) as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
    times = [call.time for call in api.calls]
    return times[1] - times[0], times[2] - times[1]

# %% [markdown]
# 100 seeds. Look at the ranges, and the last line: `backoff.sdk_default()` in
# `resilience/backoff.py` is the same formula; fed the same random draws, it gives the
# same waits.

# %%
waits = [sdk_waits(seed) for seed in range(100)]
for n in range(2):
    base = _constants.INITIAL_RETRY_DELAY * 2**n
    measured = [w[n] for w in waits]
    print(f"wait {n + 1}: {min(measured):.3f}-{max(measured):.3f} s, "
          f"formula band {0.75 * base:.3f}-{base:.3f} s")
formula = [tuple(next(d) for _ in range(2)) for d in
           (backoff.sdk_default().delays(random.Random(seed)) for seed in range(100))]
print("the same as sdk_default() to 1e-12:",
      all(abs(a - b) < 1e-12 for w, f in zip(waits, formula, strict=True)
          for a, b in zip(w, f, strict=True)))

# %% [markdown]
# To plot the 100 pairs, split them into two lists: the first waits and the second waits.

# %%
wait_1, wait_2 = zip(*waits, strict=True)

# %% [markdown]
# In the plot each dot is one seed: its first wait across, its second wait up. The shaded
# box is what the formula allows. Every dot is inside. Notice how narrow the box is: a crowd
# of clients that failed together comes back within a quarter of a second of each other
# (lesson 06 shows why wider jitter spreads them better).

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    ax.fill_between([0.375, 0.5], 0.75, 1.0, color="#9467bd", alpha=0.15,
                    label="formula: 75-100 % of 0.5 s, then of 1 s")
    ax.scatter(wait_1, wait_2, s=14, color="#9467bd", label="measured (100 seeds)")
    ax.set_xlim(0.3, 0.55)
    ax.set_ylim(0.6, 1.05)
    ax.set_xlabel("wait before retry 1 [s]")
    ax.set_ylabel("wait before retry 2 [s]")
    ax.set_title("The SDK waits 0.375-0.5 s, then 0.75-1 s: all 100 seeds")
    ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# ## Which errors it retries
#
# Send each error of the catalogue (`resilience/catalogue.py`) three times in a row to a
# default client, and count its attempts: 3 means it retried, 1 means it gave up at once.
# The last column is the verdict of `resilience.classify`.

# %%
def sdk_attempts(name):
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.respond(name, name, name)
        try:
            api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
        except anthropic.APIStatusError as e:
            return len(api.calls), api.clock.now(), e

# %% [markdown]
# Look for the rows where the last two columns disagree.

# %%
print(f"{'error':22} {'status':>6} {'SDK class':31} {'attempts':>8} {'took':>6}  classify")
for name, spec in ERRORS.items():
    attempts, took, e = sdk_attempts(name)
    print(f"{name:22} {spec.status:6} {type(e).__name__:31} {attempts:8} {took:5.1f}s  "
          f"{'retry' if classify(e).retryable else 'stop'}")

# %% [markdown]
# The SDK retries 409 (a conflict), 429 and every status >= 500, and nothing else in the
# catalogue (it also retries 408; exercise 05.1 checks it). The one disagreement is the spend
# limit: a 429 whose `error_code` (`enforced_spend_limit_reached`) says your organization
# used up its usage tier's monthly cap. The SDK retries it like any 429, although no retry
# can lift the cap; `classify` says stop. (A spend limit *you* set on a workspace is a
# plain 400, the `workspace_spend_limit` row: neither retries it.)
# And look at the 429's time: 10 s, because the SDK waited the `retry-after: 5` twice.
#
# ## The server can overrule it
#
# A response may carry `x-should-retry: true` or `false`. The SDK obeys it before looking
# at the status. Here a 529 that says "do not retry", and a 400 that says "retry":

# %%
for first in [error("overloaded_error", should_retry=False),
              error("invalid_request_error", should_retry=True)]:
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.respond(first, "ok")
        try:
            api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
        except anthropic.APIStatusError as e:
            print(f"{type(e).__name__}, not retried: attempts = {len(api.calls)}")
        else:
            print(f"{first.name}, retried: attempts = {len(api.calls)}, the last answered")

# %% [markdown]
# ## retry-after, honored up to 49 days
#
# When the server says how long to wait, the SDK waits exactly that, however long.
# `retry-after-ms` (milliseconds) comes first, then `retry-after` (seconds). Look at the
# second column: two minutes, spent waiting inside one `messages.create` call.

# %%
for first in [error("overloaded_error", retry_after=120),
              error("overloaded_error", retry_after_ms=1500),
              error("overloaded_error", retry_after=120, retry_after_ms=1500)]:
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.respond(first, "ok")
        api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
    print(f"{dict(first.headers)!s:48} waited {api.calls[1].time:6.1f} s")

# %% [markdown]
# Is there any limit? `waited_for(value)` sends one 529 carrying `retry-after: value`,
# then a success, and returns how long the SDK waited in between.

# %%
def waited_for(value):
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.respond(error("overloaded_error", headers={"retry-after": value}), "ok")
        api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
    return api.calls[1].time

# %% [markdown]
# Look at the second row: the only cap is 4,294,967 s, about 49.7 days (the longest sleep
# every platform allows). The last four rows are ignored: zero, negative, unreadable and
# past values fall back to the normal backoff (the 0.394 s of seed 0).

# %%
for value in ["120", "1e9", "0", "-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]:
    print(f"retry-after: {value:31} waited {waited_for(value):12,.3f} s")
print(f"the cap: {waited_for('1e9') / 86400:.1f} days")

# %% [markdown]
# If a long wait is not acceptable to your users, catch the error yourself with
# `max_retries=0` and decide. That is the next topic.
#
# ## Setting max_retries
#
# There are two places to set it: on the client, or on a copy of the client made with
# `with_options` (it shares the connection pool). Under an outage, count the attempts.

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    api.scenario(Outage(start=0, end=3600))
    base = api.client(max_retries=5)
    for client in [base, base.with_options(max_retries=0)]:
        before = len(api.calls)
        try:
            client.messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
        except anthropic.OverloadedError:
            print(f"max_retries={client.max_retries}: attempts = {len(api.calls) - before}")

# %% [markdown]
# The third place people try does not exist: `messages.create` takes no `max_retries`.
# Python says so:

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    try:
        api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES,
                                     max_retries=0)
    except TypeError as e:
        print(f"TypeError: {e}")
    print("requests sent:", len(api.calls))

# %% [markdown]
# ## Retries on retries
#
# A popular guide wraps `messages.create` in its own loop: five attempts, waits that grow
# from 1 s, retrying 429s and server errors. It builds the client with the defaults. So
# each of its five attempts is itself up to three SDK attempts. Here is that pattern, in
# our own code, on the virtual clock:

# %%
def guide_style(fn, clock, rng, attempts=5):
    for attempt in range(attempts):
        try:
            return fn()
        except anthropic.APIStatusError:
            if attempt == attempts - 1:
                raise
            clock.sleep(2**attempt + rng.random())

# %% [markdown]
# `attempts_per_call(build)` opens the simulated API during an outage that outlasts
# everything, lets `build(api)` make the function a user calls, calls it once, and counts
# the requests that reached the API and the time until the user got the error.

# %%
def attempts_per_call(build):
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.scenario(Outage(start=0, end=3600))
        call = build(api)
        try:
            call()
        except anthropic.OverloadedError:
            return len(api.calls), api.clock.now()

# %% [markdown]
# Three ways to build it: the guide's loop around a default client; one layer, our retry
# with the SDK's retries off; and the SDK alone.

# %%
def send(client, model):
    return lambda: client.messages.create(model=model, max_tokens=64, messages=MESSAGES)


ways = {
    "guide loop (5) x SDK (3)": lambda api: lambda: guide_style(
        send(api.client(), api.model), api.clock, random.Random(SEED)),
    "resilience.retry (5),\nmax_retries=0": lambda api: retry(
        attempts=5, clock=api.clock, rng=random.Random(SEED))(
        send(api.client(max_retries=0), api.model)),
    "SDK alone (3)": lambda api: send(api.client(), api.model),
}

# %% [markdown]
# Look at the first row: fifteen requests for one failed user call.

# %%
counts = {name: attempts_per_call(build) for name, build in ways.items()}
for name, (attempts, took) in counts.items():
    print(f"{name.replace(chr(10), ' '):38} {attempts:3d} requests, error after {took:5.1f} s")

# %% [markdown]
# Three times five. With a thousand users during an outage, that is 15,000 requests
# hitting an API that is already overloaded, where 5,000 (or 3,000) would tell you the
# same thing. Layers multiply: the Amazon Builders' Library counts 3 tries at each of 5
# layers as 3**5 = 243 calls at the bottom. Retry at one layer.

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    names = list(counts)
    bars = ax.bar(names, [counts[n][0] for n in names],
                  color=["#d62728", "#1f77b4", "#9467bd"])
    ax.bar_label(bars, fmt="%d requests")
    ax.set_ylabel("requests per failed user call [requests]")
    ax.set_xlabel("where the retries happen")
    ax.set_title("Two retry layers multiply: 5 x 3 = 15 requests per call")
plt.show()

# %% [markdown]
# The fix is one of the two single-layer rows. Use the SDK alone when its schedule suits
# you (a few quick retries, `retry-after` honored). Use `max_retries=0` plus
# `resilience.retry` when you want more: a deadline, progress messages, a different
# backoff. Never both. There is also a middle way, next.
#
# ## Middleware: inside the SDK's own loop
#
# The SDK takes a list of middleware: `anthropic.Anthropic(middleware=[...])` (and the same
# for `AsyncAnthropic`). Each one wraps **every HTTP attempt**, inside the SDK's retry
# loop, and sees the attempt's retry count and response. `AttemptLog` from
# `resilience.middleware` just records them. Look at the retry counts and the waits.

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    log = AttemptLog(clock=api.clock)
    api.respond("overloaded_error", "connection_error", "ok")
    api.client(middleware=[log]).messages.create(model=api.model, max_tokens=64,
                                                 messages=MESSAGES)
print(*log.attempts, sep="\n")

# %% [markdown]
# So a middleware can add what the SDK's retries lack, without a second layer.
# `BudgetMiddleware(budget)` makes each first attempt deposit into a `RetryBudget` and each
# SDK retry spend from it; when the budget is empty it marks the response
# `x-should-retry: false`, and the SDK stops. `BreakerMiddleware(breaker)` fails a call at
# once while the breaker is open. `outage_attempts(middleware)` sends 8 calls through an
# endless outage and returns what each raised and how many attempts it made.

# %%
def outage_attempts(middleware, calls=8):
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.scenario(Outage(start=0, end=3600))
        client = api.client(middleware=middleware(api.clock))
        results = []
        for _ in range(calls):
            before = len(api.calls)
            try:
                client.messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
            except Exception as e:
                results.append((type(e).__name__, len(api.calls) - before))
    return results

# %% [markdown]
# Three clients, the same outage. Look at the attempt counts: 3 each without middleware;
# fewer once the budget (4 tokens, +0.5 per call) runs dry; and none at all once the
# breaker opens. The errors stay the SDK's own `OverloadedError`, or `CircuitOpenError`.

# %%
clients = {
    "SDK alone": lambda clock: [],
    "+ budget": lambda clock: [BudgetMiddleware(RetryBudget(capacity=4, ratio=0.5))],
    "+ breaker + budget": lambda clock: [
        BreakerMiddleware(CircuitBreaker(failure_threshold=5, clock=clock)),
        BudgetMiddleware(RetryBudget(capacity=4, ratio=0.5))],
}
for name, middleware in clients.items():
    results = outage_attempts(middleware)
    print(f"{name:19} {sum(n for _, n in results):2d} attempts {[n for _, n in results]}",
          sorted({kind for kind, _ in results}))

# %% [markdown]
# Which route to choose:
#
# - **The SDK alone**, plus middleware for a breaker and a budget: you keep its schedule,
#   its exact `retry-after` and `x-should-retry`; every call through the client is covered;
#   the breaker and budget count each attempt.
# - **`max_retries=0` plus `resilience.retry`**: you own the policy: a total deadline, your
#   own backoff and `retry-after` cap, progress messages, retrying a whole function (a
#   stream read to the end, several calls).
#
# To make the SDK retry something it would not, a middleware can raise
# `anthropic.RetryableError`; to stop it, it marks the response `x-should-retry: false`,
# as `BudgetMiddleware` does.

# %% [markdown]
# ## Exercise 05.1: which responses the SDK retries
#
# Write `sdk_retries(status, should_retry)`: does the SDK retry an error response with
# this status? `should_retry` is the `x-should-retry` header: `True`, `False`, or `None`
# when absent. The checker sends 51 responses (17 statuses, each with the three header
# values) to the real SDK and compares.

# %%
def sdk_retries(status, should_retry):
    raise NotImplementedError


check_sdk_retries(sdk_retries)

# %% [markdown]
# **Hint**: the header wins when present. Without it, the SDK retries 408, 409, 429 and
# every status >= 500. (You can read the real rule in `anthropic/_base_client.py`,
# method `_should_retry`.)
#
# ## Exercise 05.2: one retry layer
#
# Write `ask(api, rng)`: send one question through the open simulated API `api` (use
# `api.client(...)`, `api.model`, `api.clock`), with exactly one layer of retries, and
# return the `Message` that `messages.create` returns (the whole object, not its text).
# The checker needs: the `Message` through an 8 s outage of 529s (three seeds); at most 6
# requests in an outage that never ends, ending with the real `OverloadedError`; and a 400
# sent only once.

# %%
def ask(api, rng):
    raise NotImplementedError


check_ask(ask)

# %% [markdown]
# **Hint**: two answers pass. The SDK alone, with more retries: `api.client(max_retries=5)`
# (its waits add up to over 11 s before the 6th attempt). Or `api.client(max_retries=0)`
# wrapped in `retry(attempts=6, backoff=backoff.equal_jitter(1.0, 30.0), clock=api.clock,
# rng=rng)`. The guide's pattern (your loop around a default client) makes too many.
#
# ## Recap
#
# - The SDK retries by itself: `max_retries=2` by default, so 3 attempts, waiting
#   0.375-0.5 s then 0.75-1 s (`min(0.5 * 2**n, 8)`, shortened by up to 25 %).
# - It retries 408, 409, 429 and every status >= 500, including the spend-limit 429 that
#   no retry can fix; `x-should-retry` overrules it; `retry-after` is obeyed up to
#   4,294,967 s (49.7 days), and zero, negative, unreadable or past values are ignored.
# - Set `max_retries` on the client or with `client.with_options(...)`; `messages.create`
#   does not take it.
# - A five-attempt loop around a default client sends 15 requests per failed call. Retry
#   at one layer: the SDK alone, or `max_retries=0` with `resilience.retry`.
# - Middleware runs inside the SDK's loop, once per attempt: `BreakerMiddleware` and
#   `BudgetMiddleware` give the SDK's own retries a breaker and a budget.
#
# **Next:** [Lesson 06: Backoff and jitter](06_backoff_and_jitter.ipynb)
