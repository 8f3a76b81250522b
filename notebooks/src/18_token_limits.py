# %% [markdown]
# # Lesson 18: Token-based limits
#
# [Lesson 03](03_rate_limits.ipynb) paced requests per minute. The API has two more limits,
# and they are the ones long prompts and long answers hit: input tokens per minute and
# output tokens per minute. A few large requests can use up a minute's tokens while the
# request count is nowhere near its limit, and the 429 that follows looks the same as any
# other. This lesson shows the three limits side by side, reads the headers that report
# them, counts a request's tokens before sending it, and paces a client on tokens so it
# never sees a token 429.
#
# **In this lesson you will**
#
# - see the three limits (requests, input tokens, output tokens per minute) and the
#   `anthropic-ratelimit-*-tokens-*` headers that report them
# - meet a 429 from the output limit with most of the request limit to spare, and see that
#   `max_tokens`, not the answer's length, is what counts
# - count a request's input tokens before sending it, with `messages.count_tokens`
# - compute the wait before a request of N tokens from the headers
# - pace a client on tokens with a bucket of its own, fed by `count_tokens` and `max_tokens`

# %%
from contextlib import ExitStack

import anthropic
import matplotlib.pyplot as plt
from course.lesson18 import check_pacer, check_wait_for_tokens, document, workload

from resilience import VirtualClock
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FakeClaude, RateLimited, Slow

PREFIX = "anthropic-ratelimit-"
KINDS = ("requests", "input-tokens", "output-tokens")
LIMITS = {"requests_per_minute": 50, "input_tokens_per_minute": 30_000,
          "output_tokens_per_minute": 8_000}

# %% [markdown]
# ## Three limits, three buckets
#
# Each limit is a token bucket (lesson 03): it holds a minute's worth and refills
# continuously at `limit / 60` a second. A request takes one from the request bucket, its
# input tokens from the input bucket, and its `max_tokens` from the output bucket. The
# simulated API's `RateLimited` takes all three limits. `document(4000)` (from
# `course/lesson18.py`) is a prompt of about 3,000 tokens. Send it once, asking for up to
# 1,024 tokens back:

# %%
session = ExitStack()  # closed at the end of the count_tokens section
api = session.enter_context(FakeClaude(clock=VirtualClock(), seed=0))
api.scenario(RateLimited(**LIMITS))
client = api.client(max_retries=0)
DOC = document(3000)
raw = client.messages.with_raw_response.create(model=api.model, max_tokens=1024, messages=DOC)

# %% [markdown]
# Every answer reports each limit in three headers: `limit` (per minute), `remaining`
# (what you may use right now) and `reset` (when the bucket is full again). Look at the
# output tokens: the answer used a handful, yet `remaining` fell by 1,024.

# %%
def show(headers):
    for kind in (*KINDS, "tokens"):
        limit, remaining, reset = (headers[f"{PREFIX}{kind}-{part}"]
                                   for part in ("limit", "remaining", "reset"))
        print(f"{kind:14} limit={limit:>6} remaining={remaining:>6} reset={reset}")


show(raw.headers)
print("output tokens the answer used:", raw.parse().usage.output_tokens)

# %% [markdown]
# The API counts `max_tokens` against the output limit when the request starts, because
# it cannot know the answer's length yet. (The real API gives back the unused part when
# the answer ends; the simulated API keeps the whole reservation, the worst case.) The
# last row, `tokens`, repeats whichever token limit is closer to running out: the API
# documents it as the most restrictive limit in effect.
#
# ## Refused with requests to spare
#
# Send the same request seven more times, back to back. Look at which `remaining` runs
# out first, and what the 429 says.

# %%
for _ in range(7):
    try:
        headers = client.messages.with_raw_response.create(
            model=api.model, max_tokens=1024, messages=DOC).headers
        print("200 remaining:", *(f"{kind}={headers[PREFIX + kind + '-remaining']}"
                                  for kind in KINDS))
    except anthropic.RateLimitError as e:
        refused = e
        print("429", e.body["error"]["message"], "retry-after:", e.response.headers["retry-after"])

# %% [markdown]
# The eighth request needed 1,024 output tokens and only 832 were left. The request limit
# still had room for dozens more: a 429 does not tell you which limit you hit, except in
# its message and in the headers that came with it.

# %%
print({kind: refused.response.headers[PREFIX + kind + "-remaining"] for kind in KINDS})

# %% [markdown]
# Try it: change `document(3000)` to `document(5000)` in the first cell of this lesson's
# first section and run the cells again. Now the input limit runs out first: five
# 5,000-token prompts fit in 30,000, the sixth does not, and the 429 names input tokens.
#
# ## Count before you send: `count_tokens`
#
# You choose `max_tokens`, so you know the output side before you send. The input side you
# can ask for: `client.messages.count_tokens(...)` takes the same model and messages and
# returns the input tokens, without generating anything. Compare it with what the request
# used:

# %%
counted = client.messages.count_tokens(model=api.model, messages=DOC)
print("count_tokens:", counted.input_tokens, "| usage.input_tokens:",
      raw.parse().usage.input_tokens)
print("it went to", api.calls[-1].path, "->", api.calls[-1].status)
session.close()

# %% [markdown]
# It is its own endpoint. The real API does not charge for counting, but limits how many
# counts you may request per minute, and its docs call the count an estimate that may
# differ a little from the final `usage`. The simulated API uses one estimate for both
# (about four characters a token), so here they agree exactly.
#
# ## The wait before a request of N tokens
#
# A bucket refills at `limit / 60` a second. A request that needs `need` from a bucket
# holding `remaining` waits `max(0, need - remaining) / (limit / 60)` seconds for it. It
# needs room in all three buckets at once, so the wait is the longest of the three:
#
# | limit | need | a bucket refills at |
# |---|---|---|
# | requests | 1 | `requests-limit / 60` a second |
# | input tokens | what `count_tokens` says | `input-tokens-limit / 60` a second |
# | output tokens | `max_tokens` | `output-tokens-limit / 60` a second |
#
# The 429 above: 1,024 - 832 = 192 output tokens short, at 8,000 / 60 = 133.3 a second,
# is 1.44 s; `retry-after` rounds it up to 2. Lesson 03's rule (wait only when `remaining`
# is 0) never waits here: 832 is not 0.
#
# ## Exercise 18.1: the wait before a request of N tokens
#
# Write `wait_for_tokens(headers, input_tokens, max_tokens)`: given the headers of the
# last answer, how many seconds to wait before sending a request with `input_tokens` input
# tokens and `max_tokens`. The checker sets up five situations in the simulated API (no
# limit short, each limit short, two at once), waits as you say, then sends the request
# with `max_retries=0`. It passes if no request gets a 429 and no wait is more than a
# second longer than needed.

# %%
def wait_for_tokens(headers, input_tokens, max_tokens):
    raise NotImplementedError


check_wait_for_tokens(wait_for_tokens)

# %% [markdown]
# **Hint**: loop over `("requests", 1)`, `("input-tokens", input_tokens)` and
# `("output-tokens", max_tokens)`; read `int(headers[f"anthropic-ratelimit-{kind}-limit"])`
# and `-remaining`; return the largest `max(0, need - remaining) / (limit / 60)`. Not the
# sum: the buckets refill at the same time. Not the `reset` date: that is when a bucket is
# *full*, far later than when it holds enough.
#
# ## Pacing on tokens
#
# Now a workload: `workload(0)` is 24 seeded jobs, prompts of 200 to 4,000 tokens, each
# with a `max_tokens` of 256 to 2,048. Look at the output it asks for: more than two
# minutes of the 8,000 a minute limit.

# %%
JOBS = workload(0)
asked = sum(max_tokens for _, max_tokens in JOBS)
print(f"{len(JOBS)} jobs, max_tokens {asked:,} in all = {asked / 8_000:.1f} minutes of output")

# %% [markdown]
# Two clients run it one job after another, both with the SDK's default retries; each
# answer takes 2 s (`Slow(2.0)`). **Naive** sends each job as soon as the last one
# returns. **Paced** reads the output headers of the last answer and waits until the next
# job's `max_tokens` fits, by the rule above (this workload runs out of output tokens
# first; exercise 18.1 covers all three limits).

# %%
def run(paced):
    clock, headers = VirtualClock(), None
    with FakeClaude(clock=clock, seed=0) as api:
        api.scenario(RateLimited(**LIMITS), Slow(2.0))
        create = api.client().messages.with_raw_response.create
        for messages, max_tokens in JOBS:
            if paced and headers is not None:
                short = max_tokens - int(headers[PREFIX + "output-tokens-remaining"])
                clock.sleep(max(0, short) / (int(headers[PREFIX + "output-tokens-limit"]) / 60))
            headers = create(model=api.model, max_tokens=max_tokens, messages=messages).headers
    return api.calls, clock.now()

# %% [markdown]
# Look at the 429s each drew, and when each finished.

# %%
results = {"naive": run(paced=False), "paced": run(paced=True)}
for name, (calls, took) in results.items():
    refusals = sum(call.status == 429 for call in calls)
    print(f"{name:6} {len(calls):2d} requests, {refusals:2d} were 429s, done at {took:5.1f} s")

# %% [markdown]
# The same 24 answers at about the same time: the output limit sets the pace either way.
# The naive client drew eight 429s once the first minute's 8,000 tokens were spent, and
# the SDK waited out each one's `retry-after` (the only header it reads).
#
# The plot adds up the output tokens each client asked for (every request's `max_tokens`,
# refused ones too) over time. The dashed line is what the limit allows by then: a
# minute's worth at the start, plus 8,000 a minute. `asked_for` lists each request's time,
# the running total and its status (a job's 429s come before its 200).

# %%
def asked_for(calls):
    job, total, points = 0, 0, []
    for call in calls:
        total += JOBS[job][1]
        points.append((call.time, total, call.status))
        job += call.status == 200
    return points


# %% [markdown]
# Look at the red crosses: each is a request the naive client sent above the line. The
# paced client's total stays just under it.

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    for name, (calls, _) in results.items():
        times, totals, _ = zip(*asked_for(calls), strict=True)
        ax.step([0, *times], [0, *totals], where="post", label=name)
    refused = [(t, n) for t, n, status in asked_for(results["naive"][0]) if status == 429]
    ax.plot(*zip(*refused, strict=True), "X", color="#d62728", ms=9, label="naive: a 429")
    ax.plot([0, 105], [8_000, 8_000 + 105 * 8_000 / 60], "k--", label="what the limit allows")
    ax.set(xlabel="virtual time [s]", ylabel="output tokens asked for, in all")
    ax.set_title("Paced on the headers, the tokens asked for stay under the limit")
    ax.legend()
plt.show()

# %% [markdown]
# Try it: in `run`, change `Slow(2.0)` to `Slow(20.0)` and run the cells again. Each job
# now takes longer than the output it reserves needs to come back, so neither client
# waits and neither sees a 429: pacing only costs time when you are at the limit.
#
# ## A pacer that needs no headers
#
# The headers arrive only with an answer, so they cannot pace the first request, nor
# several requests that go out at once. A bucket of your own can: keep one per token limit,
# start it full (a minute's worth, as the API's are), refill it at `limit / 60` a second up
# to that, and before each request wait until both buckets hold what it needs (its
# counted input tokens, its `max_tokens`), then take it. Set a bucket a little under your
# real limit when other clients share it: the headers know about them, your bucket does
# not.
#
# ## Exercise 18.2: pace on tokens
#
# Write `make_pacer(input_tokens_per_minute, output_tokens_per_minute)`. It returns a
# function `wait(now, input_tokens, max_tokens)` that says how many seconds to wait before
# sending a request with those tokens at virtual time `now`; the request then counts as
# sent at `now + wait`. The checker runs two seeded workloads of 24 jobs against limits of
# 20,000 input and 6,000 output tokens a minute. It calls `count_tokens` for each job,
# waits as your pacer says and sends with `max_retries=0`; half-way through, the app is
# quiet for 150 s. It passes with no 429 in either run and a time within 10 % (+2 s) of a
# perfect pacer's.

# %%
def make_pacer(input_tokens_per_minute, output_tokens_per_minute):
    raise NotImplementedError


check_pacer(make_pacer)

# %% [markdown]
# **Hint**: keep `tokens` and `last` for each bucket in the closure (lists or a small
# class). In `wait`, refill first: `tokens = min(capacity, tokens + (now - last) * rate)`,
# with `rate = limit / 60` and `capacity = limit`. The pause is the longest of
# `max(0, (need - tokens) / rate)`. Then refill to `now + pause` and subtract each need.
# The cap matters after the quiet spell: a bucket never banks more than a minute.
#
# ## Recap
#
# - The API limits requests, input tokens and output tokens per minute, each a bucket that
#   refills continuously; a request must fit in all three, and a 429 names the one it hit.
# - Every answer reports each limit in `anthropic-ratelimit-{requests,input-tokens,
#   output-tokens}-{limit,remaining,reset}`; the `tokens` trio repeats the tightest token
#   limit. The SDK reads none of them, only `retry-after`.
# - `max_tokens` counts against the output limit when the request starts: a large
#   `max_tokens` can be refused while the request limit has plenty of room.
# - `messages.count_tokens` tells you the input side before you send.
# - Wait `max(0, need - remaining) / (limit / 60)` for the slowest limit, or keep buckets of
#   your own: the same answers with no 429s.
#
# **Next:** [Lesson 19: Observability](19_observability.ipynb)
