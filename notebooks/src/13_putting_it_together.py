# %% [markdown]
# # Lesson 13: Putting it together
#
# Each lesson so far fixed one thing. A real app needs them all at once, and in the right
# places: one retry layer, waits that spread out, a limit on time and on retries, a breaker
# that stops calling a model that is down, a fallback for when it is, and logs that let you
# find a failed request later. In this lesson you build that client from the package, run
# it through five minutes of trouble next to a naive client, and compare what each one did
# to your users and to the API.
#
# **In this lesson you will**
#
# - build one resilient client from `resilience`: the SDK's own retries with a breaker and a
#   budget as middleware, a fallback chain, and logging
# - run it and a naive client through the same 300 requests, random failures and an outage
# - compare answers, attempts per request, latency, and the load each sends to the API
# - check that a 400 is never retried or hidden by a fallback
# - leave with a production checklist

# %%
import logging
import random
from collections import Counter, namedtuple

import anthropic
import matplotlib.pyplot as plt
from course.lesson13 import check_make_ask, check_make_chain

from resilience import FALLBACK_MODEL, MODEL, CircuitBreaker, Fallback, RetryBudget
from resilience.lab.plots import FIGSIZE, course_style
from resilience.middleware import AttemptLog, BreakerMiddleware, BudgetMiddleware
from resilience.testing import FAKE_API_KEY, FailureRates, FakeClaude, ForModel, Outage, TurnClock

PROMPT = [{"role": "user", "content": "Summarise this support ticket."}]
ARRIVALS = [float(i) for i in range(300)]  # one request a second, for five minutes
BUSY = "Sorry, we are busy right now. Please try again in a minute."
Answer = namedtuple("Answer", "step attempts")

# %% [markdown]
# ## Five minutes of trouble
#
# Every request can fail at random: 5 % overloaded (529), 3 % rate limited (429, with
# `retry-after: 5`), 2 % internal errors (500), 1 % connection errors. On top of that the
# main model is overloaded for 40 s, from t = 100 s to t = 140 s, while the
# smaller model still answers: the case a smaller-model fallback is for. `ForModel` (from
# lesson 10) limits a scenario to one model's requests; any object with a `decide` method
# is a scenario (see `resilience/testing/scenarios.py`).

# %%
def add_trouble(api):
    api.scenario(ForModel(MODEL, Outage(start=100.0, end=140.0)),
                 FailureRates({"overloaded_error": 0.05, "rate_limit_error": 0.03,
                               "api_error": 0.02, "connection_error": 0.01}))


# %% [markdown]
# ## Many requests at once, on virtual time
#
# Requests arrive once a second whatever happens to earlier ones, so while one request
# waits to retry, others start. To run that on virtual time, `TurnClock` (see
# `resilience/clock.py`) gives each request its own thread, and the threads take turns:
# `TurnClock.sleep` books a wake-up and hands the turn to whoever is due first, moving the
# time to that moment. Only one thread runs at any moment, so every run repeats exactly.
# The SDK's own retry sleeps go through the same clock (`FakeClaude` sees to that).
#
# `clock.run(handle, arrivals)` starts `handle(i)` at `arrivals[i]` and returns, per
# request, what it returned (or the exception it raised) and its latency in virtual
# seconds. Here are three requests; each sleeps twice, and they overlap.

# %%
def three_sleeps(i):
    clock.sleep(1.0)
    clock.sleep(1.0)
    return f"request {i} done at t={clock.now():.1f} s"


clock = TurnClock()
for value, latency in clock.run(three_sleeps, [0.0, 0.5, 1.0]):
    print(value, f"(latency {latency:.1f} s)")


# %% [markdown]
# ## Logs you can use later
#
# When a user reports a failure, the `request-id` is what Anthropic's support can look up.
# Log it on every answer and every failure; never log the key. The handler below keeps the
# formatted records in a list so that this notebook can show them; in production it would
# be your log system's handler. `propagate = False` keeps the records away from the root
# logger (and so off stderr).

# %%
records = []


class KeepRecords(logging.Handler):
    def emit(self, record):
        records.append(self.format(record))

# %% [markdown]
# Give the bot's logger that handler, with a short format: the level, then the message.

# %%
log = logging.getLogger("support_bot.claude")
log.handlers[:] = [KeepRecords()]
log.handlers[0].setFormatter(logging.Formatter("%(levelname)-7s %(message)s"))
log.setLevel(logging.INFO)
log.propagate = False

# %% [markdown]
# ## The resilient client, piece by piece
#
# One retry layer: the SDK's own (lesson 05), with two retries per model. What it lacks,
# middleware adds, inside its retry loop, on every attempt: `BreakerMiddleware` consults and
# feeds the model's circuit breaker, `BudgetMiddleware` makes each retry spend from one
# `RetryBudget` shared by every request. Each model gets its own client, so that each has
# its own breaker.

# %%
def model_client(api, breaker, budget):
    return api.client(max_retries=2,
                      middleware=[BreakerMiddleware(breaker), BudgetMiddleware(budget)])


# %% [markdown]
# One call to a model. `AttemptLog(seen)` goes innermost, for this call only
# (`with_options` makes a copy that shares the connections): it reports each attempt that
# reached the API, with its retry count, status and `request-id`. `tried` collects them, so
# you can count attempts per request; failures go to the log. `message._request_id` is the
# SDK's name for the `request-id` header of a success.

# %%
def ask(client, model, tried, clock):
    def seen(attempt):
        tried.append(model)
        if attempt.status != 200:
            log.warning("t=%7.3f %s %s, request-id %s", clock.now(), model, attempt,
                        attempt.request_id)

    one_call = client.with_options(middleware=[*client.middleware, AttemptLog(seen)])
    message = one_call.messages.create(model=model, max_tokens=512, messages=PROMPT)
    log.info("t=%7.3f %s answered, request-id %s", clock.now(), model, message._request_id)
    return message.content[0].text


# %% [markdown]
# A hook for the log on each change of a breaker's state (`CircuitBreaker(listeners=[...])`):

# %%
def log_transition(breaker, old, new):
    log.warning("t=%7.3f breaker %s: %s -> %s", breaker.clock.now(), breaker.name, old, new)


# %% [markdown]
# Now the assembly. Read it top to bottom; each line is one item of the checklist at the
# end of this lesson:
#
# - one retry layer, the SDK's: at most 3 attempts per model, its short jittered waits,
#   `retry-after` honored;
# - one `RetryBudget` shared by every request: retries stay near 10 % of requests once the
#   first 10 are spent, and an empty budget stops the SDK at once;
# - one breaker per model: 5 service failures in a row open it for 10 s, and while it is
#   open a call fails at once with `CircuitOpenError`, without an attempt;
# - the chain: main model, then the smaller model, then a static message. One detail: to
#   stop the SDK, the budget marks the response `x-should-retry: false`; `classify` knows
#   that stop sign and judges the response by what the server said, so a 529 whose retry
#   the budget refused still falls back.

# %%
def resilient(api, clock):
    budget = RetryBudget(capacity=10, ratio=0.1)
    breakers = {m: CircuitBreaker(failure_threshold=5, recovery_timeout=10.0, clock=clock,
                                  name=m, listeners=[log_transition])
                for m in (MODEL, FALLBACK_MODEL)}
    clients = {m: model_client(api, breakers[m], budget) for m in breakers}
    chain = Fallback([
        ("main", lambda tried: ask(clients[MODEL], MODEL, tried, clock)),
        ("small", lambda tried: ask(clients[FALLBACK_MODEL], FALLBACK_MODEL, tried, clock)),
        ("static", lambda tried: BUSY)])
    return chain, breakers, budget


# %% [markdown]
# A degraded answer gets a warning in the log: which step served it, and what failed
# before it.

# %%
def log_degraded(i, served):
    failures = "; ".join(f"{step}: {verdict.category}" for step, verdict in served.failures)
    log.warning("request %d served by %s after %s", i, served.step, failures)


# %% [markdown]
# A request handler for `clock.run`: run the chain, log a degraded answer, and return which
# step served and how many attempts reached the API.

# %%
def resilient_handler(api, clock):
    chain, breakers, budget = resilient(api, clock)

    def handle(i):
        tried = []
        served = chain.call(tried)
        if served.degraded:
            log_degraded(i, served)
        return Answer(served.step, len(tried))

    return handle, breakers, budget


# %% [markdown]
# ## The naive client
#
# The comparison is the pattern from a popular guide: the SDK's default client (which
# retries twice itself) with a five-attempt loop stacked on top, a hand-written status
# list, and waits of `2 * attempt` seconds plus up to one second of jitter. No breaker, no
# fallback, no deadline. Here is the guide's loop around one call:

# %%
def guide_loop(client, clock, rng):
    for n in range(5):
        try:
            return client.messages.create(model=MODEL, max_tokens=512, messages=PROMPT)
        except (anthropic.RateLimitError, anthropic.APIStatusError) as e:
            if n == 4 or e.status_code not in [429, 500, 502, 503, 529]:
                raise
            clock.sleep(min(1.0 * (2 * n) + rng.uniform(0, 1), 60.0))


# %% [markdown]
# The naive handler runs that loop for each request, on one default client that every
# request shares.

# %%
def naive_handler(api, clock):
    client, rng = api.client(), random.Random(7)

    def handle(i):
        guide_loop(client, clock, rng)
        return Answer("main", None)

    return (handle,)


# %% [markdown]
# Before the big run, look at what stacking does to one request while the API is down:
# three SDK attempts for each of the loop's five. Here the request meets nothing but 529s.

# %%
clock = TurnClock()
with FakeClaude(clock=clock, seed=0) as api:
    api.respond(*["overloaded_error"] * 20)
    handle, = naive_handler(api, clock)
    result, latency = clock.run(handle, [0.0])[0]
print(f"{type(result).__name__} after {len(api.calls)} attempts and {latency:.1f} s")
print("SDK retry counts:", [call.retry_count for call in api.calls])

# %% [markdown]
# ## The run
#
# `run` builds a fresh clock, a fresh simulated API with the trouble added, and a handler,
# then sends the 300 requests. Both clients meet the same scenario, from the same seed.

# %%
def run(make_handler):
    clock = TurnClock()
    with FakeClaude(clock=clock, seed=0) as api:
        add_trouble(api)
        handle, *extra = make_handler(api, clock)
        results = clock.run(handle, ARRIVALS)
    return results, api.calls, extra


records.clear()
good, good_calls, (breakers, budget) = run(resilient_handler)
naive, naive_calls, _ = run(naive_handler)

# %% [markdown]
# Two small helpers to report: `served` names what answered each request (a step, or the
# exception's class), and `percentile` is the nearest-rank percentile.

# %%
def served(results):
    return Counter(v.step if isinstance(v, Answer) else type(v).__name__ for v, _ in results)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)]


# %% [markdown]
# Look at who answered. The resilient client answered all but one request from a model:
# the main one most of the time, the smaller one during the outage, and the static message
# once. The naive client lost 21 requests to the outage.

# %%
for name, results in (("resilient", good), ("naive", naive)):
    counts = served(results)
    answered = sum(n for step, n in counts.items() if step in ("main", "small"))
    print(f"{name:9} answered by a model: {answered / len(results):6.1%}   {dict(counts)}")

# %% [markdown]
# Attempts per request, for the resilient client: most requests need one, and none made
# more than 3 per model (the SDK's three attempts). The budget line says how many of the
# SDK's retries it allowed and refused. Then the total: every attempt either client sent to
# the API, and the mean per request.

# %%
print("attempts per request:", dict(sorted(Counter(v.attempts for v, _ in good).items())))
print(f"retry budget: {budget.granted} retries allowed, {budget.denied} refused")
for name, calls in (("resilient", good_calls), ("naive", naive_calls)):
    print(f"{name:9} sent {len(calls):5d} attempts, {len(calls) / len(ARRIVALS):.2f} per request")

# %% [markdown]
# Latency is measured on virtual time. The simulated API answers instantly, so these numbers
# are the waiting that each retry policy adds. The resilient client's worst case is a 429's
# `retry-after: 5`, honored once; the naive client's is whatever its loop adds up to, about
# 20 s for a request that fails anyway.

# %%
for name, results in (("resilient", good), ("naive", naive)):
    waits = [latency for _, latency in results]
    print(f"{name:9} p50 {percentile(waits, 50):6.3f} s   p99 {percentile(waits, 99):6.3f} s"
          f"   max {max(waits):6.3f} s")

# %% [markdown]
# The main model's breaker: it opens soon after the outage starts, lets one trial call
# through every 10 s, and closes at the first trial after the outage ends.

# %%
for t, state in breakers[MODEL].history:
    print(f"t={t:7.3f} s  {state}")

# %% [markdown]
# And the log. Here are the first lines, then the first lines from the outage. Every
# failed attempt carries its retry count, status and `request-id` (a connection error logs
# `None`: no response came back, so there is no id); the key appears nowhere.

# %%
outage = [r for r in records if "breaker" in r or "served by" in r]
print(*records[:3], "...", *outage[:6], sep="\n")
print(f"\n{len(records)} records; the key in any of them: "
      f"{any(FAKE_API_KEY in r for r in records)}")

# %% [markdown]
# ## The load on the API
#
# Count the attempts the API received in each 5 s window, for both clients. Look at the
# shaded 40 s: the naive client multiplies its load on a model that is already down,
# while the resilient client's breaker and budget hold it near the arrival rate (its
# attempts go to the smaller model instead).

# %%
def per_second(calls, width=5.0, end=330.0):
    bins = Counter(int(call.time // width) for call in calls)
    return [i * width for i in range(int(end // width))], [
        bins[i] / width for i in range(int(end // width))]


# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    ax.axvspan(100, 140, color="#d62728", alpha=0.08, label="main model down (529)")
    ax.step(*per_second(naive_calls), where="post", color="#d62728", label="naive client")
    ax.step(*per_second(good_calls), where="post", color="#1f77b4", label="resilient client")
    ax.set_xlabel("virtual time [s]")
    ax.set_ylabel("attempts reaching the API [1/s]")
    ax.set_title("Stacked retries multiply the load in an outage; the breaker sheds it")
    ax.legend(loc="upper right")
plt.show()

# %% [markdown]
# Try it: set `failure_threshold=None` and `failure_rate_threshold=0.5` in `resilient`
# (a breaker that trips on the failure rate over the last calls, `minimum_calls=20`), and
# run the last few cells again. Or take `BudgetMiddleware(budget)` out of `model_client`
# and watch the attempt count rise.
#
# ## A 400 is never retried, and never hidden
#
# The chain falls back only on what `classify` calls transient (see
# `resilience/fallback.py`). A bad request is your bug: a smaller model or a static message
# would hide it. Look for one attempt, the real exception, and a breaker still closed.

# %%
clock = TurnClock()
with FakeClaude(clock=clock, seed=0) as api:
    chain, check_breakers, _ = resilient(api, clock)
    api.respond("invalid_request_error")
    tried = []
    try:
        chain.call(tried)
    except anthropic.BadRequestError as e:
        print(f"{type(e).__name__} {e.status_code} after {len(tried)} attempt; "
              f"breaker {check_breakers[MODEL].state}; request-id {e.request_id}")

# %% [markdown]
# ## Exercise 13.1: one retry layer, the other route
#
# The client above keeps the SDK's retries. The other route owns them (lesson 05): no
# retries inside the SDK, and your own policy around the call. Write `make_ask(api,
# clock)`, returning a function `ask(prompt) -> str` (the answer's text) that retries
# transient failures: at most 4 attempts in all, a deadline of at most 60 s, waits on
# `clock`, and never sooner than a `retry-after` asks. The checker runs it against fresh
# simulated APIs: two 529s then success; nothing but 529s; a 400; a 429 whose
# `retry-after` is 3 s, then success; and a 429 whose `retry-after` is 120 s.

# %%
def make_ask(api, clock):
    raise NotImplementedError


check_make_ask(make_ask)

# %% [markdown]
# **Hint**: `client = api.client(max_retries=0)`, then decorate an inner function with
# `@retry(attempts=4, deadline=60.0, clock=clock)` that calls
# `client.messages.create(model=api.model, max_tokens=256, messages=[{"role": "user",
# "content": prompt}])` and returns `.content[0].text`. `retry` takes `retry-after` as the
# floor of its wait, and the deadline is why the 120 s case gives up at once: `retry` never
# waits past it. A hand-written loop that sleeps its own backoff retries the 429 too soon.
#
# ## Exercise 13.2: a fallback chain
#
# Write `make_chain(api, clock)`, returning a `Fallback` whose `call(prompt)` tries
# `MODEL`, then `FALLBACK_MODEL`, then a static message (any non-empty string). Model steps
# return the answer's text. This chain falls back *at once*: the next step is its only
# retry, so a model that fails gets one attempt, no SDK retries under it. The checker
# takes the main model down (and counts its attempts), then every model, then sends a 400
# and a 401: those must raise, not fall back.

# %%
def make_chain(api, clock):
    raise NotImplementedError


check_make_chain(make_chain)

# %% [markdown]
# **Hint**: write `ask(model, prompt)` with a client from `api.client(max_retries=0)` (a
# default client would retry a model that is down twice before the chain moves on),
# then `Fallback([("main", lambda p: ask(MODEL, p)), ("small", lambda p:
# ask(FALLBACK_MODEL, p)), ("static", lambda p: "Busy, try again soon.")])`. The default
# `should_fall_back` already refuses 4xx errors.
#
# ## A production checklist
#
# 1. **One retry layer.** Either the SDK retries (`max_retries`, 2 by default, with
#    `BreakerMiddleware` and `BudgetMiddleware` inside its loop) or your code does, with
#    the client at `max_retries=0`. Never both: 3 x 5 = 15 attempts per request.
# 2. **Jitter that scales with the wait**: full jitter (lesson 06), not a fixed second added.
# 3. **Bounded attempts and a deadline** per request, so no user waits forever (the SDK
#    has no total deadline: take the decorator route when you need one).
# 4. **A retry budget** shared by all requests, so an outage cannot multiply your load
#    (lesson 12).
# 5. **Classify, don't list statuses.** `classify(e).retryable` covers 529 and every 5xx but
#    501, honors `x-should-retry`, and refuses spend limits (lessons 01-04).
# 6. **Handle mid-stream errors.** An overload after a 200 arrives as `status_code == 200`;
#    retry around reading the stream, and reconcile what was shown (lesson 11).
# 7. **Honor `retry-after`** as a floor for the wait (lesson 03); the SDK obeys it exactly,
#    up to 49.7 days, so cap it yourself where users wait (lesson 05).
# 8. **A breaker per dependency** that counts only service failures, and forgets them on
#    success (lesson 09).
# 9. **Fall back only on transient failures**, never on a 4xx, and tell the user when an
#    answer is degraded (lesson 10).
# 10. **Log the `request-id`** of every failure and success; never log the key.
# 11. **The model id in one place**, tested against the SDK's deprecation list
#     (`resilience/models.py`).
# 12. **Test on virtual time**: script failures with the simulated API, so the tests of
#     your retry policy run in milliseconds and repeat exactly.
#
# ## Recap
#
# - The resilient client is a few lines of the package, composed: the SDK's own retries,
#   with a breaker per model and one shared budget as middleware inside its loop, and a
#   `Fallback` chain over the models. The other route, `max_retries=0` plus
#   `resilience.retry`, is exercise 13.1.
# - In the same five minutes of trouble it answered more requests, sent far fewer attempts,
#   and kept its worst latency bounded; the naive client turned an outage into a retry storm.
# - Logs with each attempt's status and `request-id` let you explain any single failure
#   afterwards.
#
# ## Where to go from here
#
# - The package's [README](../README.md): install it, the module map, and a short example
#   to paste into your own app.
# - The [benchmarks](../benchmarks/): what the package costs on the happy path, measured
#   beside tenacity, stamina and pybreaker in the same run (`python benchmarks/bench_core.py`).
# - Run any lesson against the real API once you have a key: lesson 00 shows the opt-in.
#
# **Next:** [Lesson 14: Test your own app under failure](14_test_your_own_app.ipynb)
