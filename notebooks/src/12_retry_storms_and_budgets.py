# %% [markdown]
# # Lesson 12: Retry storms and budgets
#
# Every retry is one more request, sent at the moment a service is struggling. One layer
# retrying 3 times is fine. But real apps have layers: your loop, the SDK's loop, a job
# queue that re-runs failed jobs. Their retries multiply, and an outage that a service
# could have ridden out turns into a retry storm that keeps it down. This lesson counts
# the multiplication, then limits it with budgets that are shared by all your requests.
#
# **In this lesson you will**
#
# - count how retries at every layer multiply the load: 64 and 243 calls per user request
# - catch a guide's retry loop, stacked on the SDK's own retries, making 15 calls per request
# - see when backoff lowers the load and when it does not (open and closed loops)
# - limit retries with a token bucket (in your loop, or on the SDK's own retries), a retry
#   breaker and adaptive throttling
# - check the numbers against the published ones, including one that differs

# %%
import json
import random
from collections import Counter
from pathlib import Path

import anthropic
import matplotlib.pyplot as plt
from course.lesson12 import check_reject_probability, check_send_with_budget, check_stacked_calls
from ipywidgets import FloatSlider

# %% [markdown]
# From the course's package: budgets and a throttle, the lab's experiments and plots, a
# playground, the budget middleware and the simulated API.
# %%
from resilience import AdaptiveThrottle, RetryBudget, VirtualClock, retry
from resilience.lab import amplification, budgets, expected_calls, openloop
from resilience.lab.playground import Playground
from resilience.lab.plots import COLOURS, course_style, plot_amplification, plot_load_vs_failure
from resilience.middleware import BudgetMiddleware
from resilience.testing import FakeClaude, Outage

clock = VirtualClock()
SEED = 0
PROMPT = [{"role": "user", "content": "Summarize this support ticket."}]

# %% [markdown]
# ## Retries multiply
#
# A user request enters the top layer of a stack; each layer calls the one below; the
# bottom service is down. If every layer makes 4 attempts, the layer below sees 4 calls
# for each one it gets, so 3 layers make 4 x 4 x 4 calls at the bottom. The Google SRE
# book uses 3 layers of 4 attempts; the Amazon Builders' Library uses 5 layers of 3.
# `expected_calls(layers, attempts, failure_rate)` computes it (see
# `resilience/lab/amplification.py`).

# %%
print("3 layers x 4 attempts:", expected_calls(3, 4, 1.0))
print("5 layers x 3 attempts:", expected_calls(5, 3, 1.0))

# %% [markdown]
# The lab also *simulates* the call tree for 1,000 user requests, under three policies:
# retry at every layer, retry only at the top layer, and retry at every layer with a
# `RetryBudget` each (AWS SDK standard mode: 500 tokens, a retry costs 5, so 100 retries
# per layer in all). Count the calls that reach the failing service for each user request:

# %%
rows = amplification(3, 4, 1.0, requests=1000, seed=SEED)
for r in rows:
    print(f"{r.policy:16} {r.simulated:6.2f} bottom calls per user request")

# %% [markdown]
# The same as bars. Retrying only at the top layer costs 4 calls per request, not 64.

# %%
fig = plot_amplification(rows, title="Retries at all 3 layers: 4 x 4 x 4 = 64 calls per request")
plt.show()

# %% [markdown]
# The per-layer budgets do even better here, 1.30, for a different reason: each layer's
# 100 retries are spent at the start of the outage, and after that every request makes
# one call. Over the first 100 requests alone the budgets average 4.00 (try
# `requests=100`). Retrying at one layer is bounded per request; a budget is bounded per
# outage.
#
# Now make the bottom fail only half the time. Look at how small the difference becomes.

# %%
for layers_retrying in (3, 1):
    calls = expected_calls(3, 4, 0.5, retrying_layers=layers_retrying)
    print(f"{layers_retrying} layer(s) retrying, 50 % failures: {calls:.3f} calls")

# %% [markdown]
# At 50 % failures the stack makes 2.000 calls per request instead of 1.875: nobody
# notices. The multiplication shows up only when the bottom is (nearly) down, which is
# exactly when it can least afford it. That is why a retry storm surprises people: the
# retry policy looked cheap in every test with a working service.
#
# ## A guide's loop, stacked on the SDK's
#
# A widely shared guide to Claude API errors wraps `messages.create` in its own loop of 5
# attempts, and leaves the SDK's built-in retries on. The SDK retries a 529 by itself:
# 3 attempts by default (`max_retries=2`; you counted them on the simulated API in
# lesson 05). So each of the guide's attempts is really three. That is a stack of two
# retrying layers; `expected_calls` takes one number of attempts for all layers, so
# multiply by hand:

# %%
guide_attempts = 5           # the guide's own loop
sdk_attempts = 1 + 2         # the SDK's first try + max_retries=2
print(guide_attempts * sdk_attempts, "calls per user request while the API is down")
print(guide_attempts * 1, "calls with the SDK's retries turned off (max_retries=0)")

# %% [markdown]
# 15 calls for one user request. Run a few workers like that during an outage and each of
# them is 15 clients. The fix: one retry layer. Turn the SDK's retries off under your own
# loop (`anthropic.Anthropic(max_retries=0)`, or `client.with_options(max_retries=0)`),
# or drop your loop and let the SDK retry. Exercise 12.1 computes any stack at any failure
# rate; `tests/test_lesson11_facts.py` counts the 15 calls with the real SDK.
#
# ## Does backoff lower the load?
#
# Backoff spreads retries out in time. Does it also *reduce* them? Marc Brooker's "What is
# Backoff For?" (2022) says: it depends on who your clients are. `resilience/lab/openloop.py`
# runs his setup: 100 clients, each wanting 10 requests per second, 3 retries, backoff
# 0.1 s doubling; a call fails with probability x, whatever the load.
#
# - **Open loop**: requests arrive on their own schedule (independent users). Backoff
#   moves each retry later but every retry still happens.
# - **Closed loop**: each client waits for its request to finish before the next one (a
#   fixed pool of workers). Time spent backing off is time not spent calling.
#
# Look at the open-loop columns: with and without backoff they are about equal.

# %%
loops = {(r.loop, r.backoff, r.failure_rate): r.calls_per_s
         for r in openloop((0.0, 0.5, 0.9), seed=SEED)}
print("   x  open/none  open/backoff  closed/none  closed/backoff   (calls per second)")
for x in (0.0, 0.5, 0.9):
    print(f"{x:4.1f} {loops[('open', 'none', x)]:10.1f} {loops[('open', 'exponential', x)]:13.1f}"
          f" {loops[('closed', 'none', x)]:12.1f} {loops[('closed', 'exponential', x)]:15.1f}")

# %% [markdown]
# With open-loop clients, the load follows 1000 x (1 + x + x² + x³) calls per second with
# or without backoff (1,875 at x = 0.5). Only closed-loop clients slow down. Many users
# acting independently are an open loop: backoff does not protect the server from them.
# Something must *limit the number* of retries.
#
# ## Limiting retries: a token bucket
#
# `RetryBudget` (in `resilience/budget.py`) is a token bucket shared by all your requests.
# Each first try deposits `ratio` tokens; each retry spends `cost` tokens, and is refused
# when the bucket is empty. Under a total outage the retries level off at `ratio / cost`
# of the requests. Watch it on 1,000 requests, each allowed 3 retries, all failing.

# %%
budget = RetryBudget(capacity=5, ratio=0.1, cost=1)
calls = 0
for _ in range(1000):
    budget.deposit()
    calls += 1 + sum(1 for _ in range(3) if budget.try_spend())
print(f"{calls} calls: {calls / 1000:.3f} per request; retries granted {budget.granted}, "
      f"refused {budget.denied}")

# %% [markdown]
# Without the budget that would be 4,000 calls. With it: the 5 tokens it started with,
# plus about one retry per 10 requests (each request deposits 0.1 token).
#
# ### The same budget on the SDK's retries
#
# Above, your own loop paid for each retry. To put a budget on the SDK's own retries,
# give the client `BudgetMiddleware(budget)`, from `resilience.middleware`. The SDK runs
# it once per HTTP attempt: a first attempt deposits, each SDK retry spends. When the
# budget is empty, the SDK stops retrying and you get its usual exception, here an
# `OverloadedError`: no new type to catch. `outage` sends 20 requests while the API is
# down, through a client with `max_retries=3`, and counts attempts and exceptions.

# %%
def outage(middleware, requests=20):
    with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
        api.scenario(Outage(start=0, end=3600))
        client, raised = api.client(middleware=middleware, max_retries=3), Counter()
        for _ in range(requests):
            try:
                client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
            except anthropic.APIStatusError as e:
                raised[type(e).__name__] += 1
    return len(api.calls), dict(raised)

# %% [markdown]
# Compare the SDK's retries alone with the same retries on a budget. Look at the attempts,
# and at what each caller caught.

# %%
sdk_budget = RetryBudget(capacity=5, ratio=0.1, cost=1)
for name, middleware in {"SDK retries alone": [],
                         "with BudgetMiddleware": [BudgetMiddleware(sdk_budget)]}.items():
    attempts, raised = outage(middleware)
    print(f"{name:21} {attempts:2d} HTTP attempts for 20 requests, raised {raised}")
print(f"retries granted {sdk_budget.granted}, refused {sdk_budget.denied}")

# %% [markdown]
# 80 attempts become 26: 20 first attempts and 6 retries, the 5 tokens the budget started
# with plus one paid for by the deposits (0.1 a request). Both callers caught the same
# `OverloadedError`. Which route to choose:
#
# - **`BudgetMiddleware`** when the SDK's retries are your one retry layer: keep its
#   schedule, its `retry-after` and `max_retries`, and add the limit it lacks.
# - **`retry(budget=...)`** (or a loop like exercise 12.2) on a client with
#   `max_retries=0` when you own the retries: your backoff, a total deadline, retrying a
#   whole function rather than one HTTP attempt.
#
# Never both: that is two retry layers again.
#
# ## Four policies, every failure rate
#
# `resilience/lab/budgets.py` compares four policies as the failure rate x grows, with
# 3 retries per request (Brooker, "Fixing retries with token buckets and circuit
# breakers", 2022; Google SRE book, "Handling Overload"):
#
# - `retries`: 3 retries, nothing else.
# - `token_bucket`: the `RetryBudget` above.
# - `retry_breaker`: retry only while fewer than 10 % of first tries fail (a real
#   `CircuitBreaker` watches the first tries).
# - `adaptive_throttle`: a real `AdaptiveThrottle` rejects calls locally with probability
#   `max(0, (requests - 2 * accepts) / (requests + 1))`.
#
# 1,000 requests per point keep this notebook fast (the published check used 10,000).

# %%
rates = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
policy_rows = budgets(rates, seed=SEED, requests=1000)

# %% [markdown]
# Look for which lines stay flat as x grows.

# %%
fig = plot_load_vs_failure(policy_rows)
plt.show()

# %% [markdown]
# Load is only half the story. A limit on retries also limits what retries are *for*.
# Compare load and success at two failure rates:

# %%
table = {(r.policy, r.failure_rate): r for r in policy_rows}
print("policy             x=0.2 load  success   x=1.0 load  success")
for policy in ("retries", "token_bucket", "retry_breaker", "adaptive_throttle"):
    low, high = table[(policy, 0.2)], table[(policy, 1.0)]
    print(f"{policy:18} {low.load:10.3f} {low.success_rate:8.3f} "
          f"{high.load:12.3f} {high.success_rate:8.3f}")

# %% [markdown]
# At x = 1.0 plain retries quadruple the load for nothing; the token bucket stays at
# 1.104 and the breaker at 1.057. At x = 0.2 they cost you: 88 % and 83 % of requests
# succeed instead of 99.8 %, because here failures are random and a retry would usually
# have worked. A budget is insurance against storms, and you pay for it in retries you
# do not make. Size it (`ratio`) from the failure rate you want to ride out.
#
# ### Playground: the budget's ratio
#
# To try other ratios, rebuild the token bucket with the package's `retry` decorator.
# `flaky` makes a call that fails (a `TimeoutError`) with probability `x`, and counts
# every call it gets.

# %%
def flaky(x, rng, count):
    def call():
        count["calls"] += 1
        if rng.random() < x:
            raise TimeoutError("the server failed")
    return call

# %% [markdown]
# `with_bucket` sends 1,000 requests, each with up to 3 retries paid from a `RetryBudget`
# of the given `ratio`, and returns the load and the share of requests that succeed.

# %%
def with_bucket(x, ratio, requests=1000):
    rng, count = random.Random(SEED), Counter()
    budget = RetryBudget(capacity=5, ratio=ratio, cost=1)
    call = retry(attempts=4, deadline=None, retry_on=TimeoutError, budget=budget,
                 clock=VirtualClock(), rng=random.Random(SEED))(flaky(x, rng, count))
    for _ in range(requests):
        try:
            call()
        except TimeoutError:
            count["failed"] += 1
    return count["calls"] / requests, (requests - count["failed"]) / requests

# %% [markdown]
# At `ratio=0.1` it is the lab's `token_bucket`, draw for draw. Check it:

# %%
bucket = {x: with_bucket(x, 0.1) for x in rates}
print("same as the lab:", all(bucket[x] == (table[("token_bucket", x)].load,
                                            table[("token_bucket", x)].success_rate)
                              for x in rates))

# %% [markdown]
# `draw_budget` redraws the plot above with the token bucket at your `ratio`. Its title
# gives both sides of the deal: the load at x = 1.0 and the success at x = 0.2.

# %%
def draw_budget(ratio):
    runs = {x: with_bucket(x, ratio) for x in rates}
    others = [r for r in policy_rows if r.policy != "token_bucket"]
    fig = plot_load_vs_failure(others, title=f"ratio {ratio:.2f}: {runs[1.0][0]:.2f}x load "
                               f"at x = 1.0, {runs[0.2][1]:.1%} succeed at x = 0.2")
    with course_style():
        fig.axes[0].plot(rates, [load for load, _ in runs.values()], marker="o",
                         color=COLOURS["token_bucket"], label=f"token_bucket, ratio {ratio:.2f}")
        fig.axes[0].legend()
    return fig

# %% [markdown]
# With a running kernel, move the slider (without one, you see only this text). Try 0.5:
# at x = 0.2 as many requests succeed as with plain retries (99.8 %), and a total outage
# costs 1.5x, not 4x.

# %%
slider = FloatSlider(0.1, min=0.05, max=1.0, step=0.05, description="ratio")
slider.continuous_update = False        # redraw when you let go
Playground({"ratio": slider}, draw_budget, "Budget playground: move the token bucket's "
                                           "ratio (needs a running kernel; the static plot "
                                           "is above).")

# %% [markdown]
# ## Adaptive throttling, and a claim that differs
#
# The adaptive throttle's line looks odd: it follows plain retries up to x = 0.5, then
# falls to almost 0. The SRE book says that with k = 2 "the backend sees about 2C"
# requests when it can accept C. Read the claim and what the lab gets:

# %%
claims = {c["id"]: c for c in json.loads(Path("../data/published_claims.json").read_text())
          ["claims"]}
throttle_claim = claims["sre.adaptive_throttling"]
print(throttle_claim["claim"])
print("lab (10,000 requests):", throttle_claim["reproduced"])
print("here (1,000 requests):", {x: round(table[("adaptive_throttle", x)].load, 4)
                                 for x in (0.5, 0.8, 1.0)})

# %% [markdown]
# Both are right; they model different failures. In the lab, failures are independent of
# load. Once more than half the calls fail (x > 0.5), accepts are below requests / 2 and
# keep falling as the throttle rejects more, so it ends up rejecting almost everything.
# The "2C" figure is about *overload*: a backend that accepts C requests per second
# however many you send. Model that in a few lines: 100 requests per second against a
# backend that accepts 10 per second, for 120 s of virtual time.

# %%
throttle = AdaptiveThrottle(k=2.0, window=120.0, clock=clock)
rng, sent, free = random.Random(7), [], 0
for tick in range(12_000):               # one request every 0.01 s
    clock.advance(0.01)
    if tick % 100 == 0:
        free = 10                        # the backend accepts 10 per second
    if throttle.allow(rng):
        sent.append(tick)
        if free:
            free -= 1
            throttle.record_accept()
print(f"backend saw {sum(t >= 6000 for t in sent) / 60:.1f} requests/s (last 60 s); C = 10")

# %% [markdown]
# About 2C, as published. The throttle keeps what reaches the backend at k times what
# it accepts; it cannot tell overload from a broken backend, and with a broken one it
# backs off almost completely (which is also what you want from a circuit breaker).
#
# ## Our numbers beside the published ones
#
# | source | claim | ours |
# |---|---|---|
# | Google SRE book | 3 layers x 4 attempts = 64 calls | 64 (exact and simulated) |
# | Amazon Builders' Library | 5 layers x 3 = 243; one layer: 3 | 243 and 3 |
# | AWS SDK retry quota | 500 tokens / 5 per retry = 100 retries | 100 |
# | Brooker 2022 | open loop: backoff barely changes load | 1,876.5 vs 1,873.0 /s (x = 0.5) |
# | Brooker 2022 | closed loop: backoff cuts it sharply | 1,000.0 vs 556.4 /s (x = 0.5) |
# | Brooker 2022 | 4x at x = 1; bucket ~1.1x; breaker ~1x | 4.000, 1.104, 1.057 (1,000 req.) |
# | Google SRE book | throttle: backend sees ~2C | ~2C if overloaded; ~0 if failures ignore load |

# %% [markdown]
# ## Exercise 12.1: calls at the bottom of a stack
#
# Write `stacked_calls(attempts, failure_rate)`: the expected calls at the bottom per user
# request, where `attempts` lists each layer's attempts from the top layer down (they may
# differ) and each bottom call fails with probability `failure_rate`. A layer stops at its
# first success. `stacked_calls([5, 3], 1.0)` is the guide's 15.

# %%
def stacked_calls(attempts, failure_rate):
    raise NotImplementedError


check_stacked_calls(stacked_calls)

# %% [markdown]
# **Hint**: work from the bottom layer up (`reversed(attempts)`). A layer whose calls
# fail with probability `p` makes `1 + p + ... + p**(tries - 1)` calls on average, and
# itself fails with probability `p**tries`. Multiply the calls as you go up.
#
# ## Exercise 12.2: retries within a budget
#
# Write `send_with_budget(call, budget, attempts)`: make up to `attempts` calls of
# `call()` (it returns True on success), paying for every retry from the shared
# `RetryBudget`. Record the request with `budget.deposit()`; ask `budget.try_spend()`
# before each retry (never before the first try) and give up when it says no. Return True
# on success, False when you give up.

# %%
def send_with_budget(call, budget, attempts):
    raise NotImplementedError


check_send_with_budget(send_with_budget)

# %% [markdown]
# **Hint**: `budget.deposit()`, then `for attempt in range(attempts):`; if `attempt > 0`
# and not `budget.try_spend()`, return False; if `call()`, return True. After the loop,
# return False.
#
# ## Exercise 12.3: adaptive throttling
#
# Write `reject_probability(requests, accepts, k)`: the Google SRE client-side throttle's
# chance of rejecting a new request locally, given the requests and accepts counted over
# the window. Then try `reject_probability(100, 50, 2.0)` and
# `reject_probability(100, 40, 2.0)`: why is the first 0?

# %%
def reject_probability(requests, accepts, k=2.0):
    raise NotImplementedError


check_reject_probability(reject_probability)

# %% [markdown]
# **Hint**: `max(0.0, (requests - k * accepts) / (requests + 1))`. The `+ 1` keeps it
# defined (0) before the first request.
#
# ## Recap
#
# - Retries at every layer multiply: 4 x 4 x 4 = 64, 3⁵ = 243. Retry at one layer.
# - Your own loop over the SDK's retries is two layers: 5 x 3 = 15 calls per request. Set
#   `max_retries=0` under your own loop.
# - Backoff spreads retries but does not remove them when clients are open loop. Limit
#   the number of retries instead.
# - A token bucket (`RetryBudget`) or a retry breaker keeps the load near 1x in a total
#   outage, at the price of some successes when failures are random. `BudgetMiddleware`
#   puts the bucket on the SDK's own retries; `retry(budget=...)` on yours.
# - Published numbers hold when you rebuild their setup; check what a claim assumes (the
#   "2C" is about overload) before you carry it over.
#
# **Next:** [Lesson 13: Putting it together](13_putting_it_together.ipynb)
