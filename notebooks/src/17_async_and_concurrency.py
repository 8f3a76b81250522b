# %% [markdown]
# # Lesson 17: Async and concurrency
#
# An app that serves many users at once calls Claude from many tasks at once, usually with
# `AsyncAnthropic` and `asyncio`. Concurrency changes what failure looks like. Start a
# thousand calls with one `gather` and you do not get a thousand answers faster: you get a
# burst the rate limit turns away, and a crowd of retries that come back at the same
# instant. Cancel a task and the cancellation travels through the SDK's retry loop, and
# through yours: a loop that catches it by mistake ignores every deadline you set. This
# lesson runs real `AsyncAnthropic` clients on virtual time, so you can watch every task's
# timing to the millisecond, and builds the two habits that keep an async app polite: bound
# how many calls are in flight, and let a cancellation end the work at once.
#
# **In this lesson you will**
#
# - call Claude with `AsyncAnthropic` through the simulated API, on virtual time, with
#   `api.run(main())`
# - put a deadline on a whole call with `asyncio.timeout`, and see that neither the SDK nor
#   `resilience.retry` ever retries the `CancelledError` it sends
# - watch an unbounded `gather` meet a rate limit, then bound it with a `Semaphore` or a
#   fixed pool of workers
# - share one client (one connection pool) between all your tasks
# - write a bounded fetcher and a cancellation-safe retry loop, checked on virtual time

# %%
import asyncio
import random
from collections import Counter

import matplotlib.pyplot as plt
from anthropic._constants import DEFAULT_CONNECTION_LIMITS
from course.lesson17 import check_ask_within, check_fetch_all

from resilience import MODEL, VirtualClock, classify, retry
from resilience.lab.plots import WIDE, course_style
from resilience.testing import FakeClaude, Outage, RateLimited, Slow

# %% [markdown]
# ## `AsyncAnthropic` on virtual time
#
# `api.async_client()` is a real `anthropic.AsyncAnthropic`, answered by the simulated API.
# `ask` is the call you would write in your app: one `await`, and the text of the answer.

# %%
async def ask(client, prompt="Hi"):
    message = await client.messages.create(model=MODEL, max_tokens=64,
                                           messages=[{"role": "user", "content": prompt}])
    return message.content[0].text


# %% [markdown]
# `api.run(main())` runs a coroutine to the end on an event loop whose time is the fake's
# virtual clock (in a pytest test, `fake_claude.run(...)`). Look at the two attempts: the
# async client retries a 529 exactly as the sync one does, and waits on the virtual clock.

# %%
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    api.respond("overloaded_error", "ok")
    text = api.run(ask(api.async_client()))
print(repr(text))
print(*api.calls, sep="\n")

# %% [markdown]
# On that loop every `await asyncio.sleep(...)` is a timer on the virtual clock, so your
# own async code runs unchanged, with no real waiting. An hour passes at once:

# %%
async def an_hour():
    await asyncio.sleep(3600)
    return asyncio.get_running_loop().time()


with FakeClaude(clock=VirtualClock(), seed=0) as api:
    print("loop time after asyncio.sleep(3600):", api.run(an_hour()),
          "| the fake's clock:", api.clock.now())

# %% [markdown]
# ## A deadline for the whole call: `asyncio.timeout`
#
# In [lesson 15](15_long_requests_and_streams.ipynb) sync code could check a deadline only
# when a read returned. Async code can stop a call anywhere it waits. `asyncio.timeout(s)`
# cancels the current task after `s` seconds: the code inside the block sees an
# `asyncio.CancelledError`, and the `async with` turns it into a `TimeoutError` at its
# edge. `within` runs a call under a deadline and says how it ended.

# %%
async def within(seconds, call):
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        return f"TimeoutError at t={asyncio.get_running_loop().time():.3f} s"


# %% [markdown]
# `noting` only looks: it records the name of any exception that passes through it, and
# re-raises it.

# %%
async def noting(call, seen):
    try:
        return await call
    except BaseException as e:  # to look, not to handle: it re-raises
        seen.append(type(e).__name__)
        raise


# %% [markdown]
# The API takes 30 s to answer (`Slow(30.0)`); your deadline is 5 s. Look at three things:
# the call ends at exactly 5 s, the code inside saw a `CancelledError`, and the client,
# which may retry twice, made one attempt.

# %%
seen = []
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    api.scenario(Slow(30.0))
    print(api.run(within(5.0, noting(ask(api.async_client(max_retries=2)), seen))))
print("inside, the call saw:", seen, "| attempts:", len(api.calls))

# %% [markdown]
# ## A cancellation is never retried
#
# Why one attempt? `CancelledError` is a `BaseException`, not an `Exception`, and the SDK's
# retry loop catches `Exception`. `classify` agrees: a cancellation is `cancelled`, never
# retryable. The work was called off: let it end.

# %%
print("CancelledError is an Exception:", issubclass(asyncio.CancelledError, Exception))
print("classify:", classify(asyncio.CancelledError()))

# %% [markdown]
# The same holds while the SDK waits between retries. The API is down (529) for a minute;
# the client may retry 5 times; the deadline is 1 s. Look at the attempts: two, then the
# cancellation lands in the second wait, and nothing follows it.

# %%
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    api.scenario(Outage(0, 60))
    print(api.run(within(1.0, ask(api.async_client(max_retries=5)))))
print("attempts at t =", [f"{call.time:.3f}" for call in api.calls])

# %% [markdown]
# `resilience.retry` does the same on its async path: it retries what `classify` calls
# retryable and catches only `Exception`. Its waits are timers on the loop too (pass the
# fake's clock). Here it may try 10 times, with no deadline of its own; the 3 s timeout
# ends it mid-wait.

# %%
def retrying_ask(client, clock):
    @retry(attempts=10, deadline=None, clock=clock, rng=random.Random(7))
    async def attempt():
        return await ask(client)

    return attempt()


# %% [markdown]
# Look at the last attempt: before 3 s. No attempt starts after the deadline.

# %%
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    api.scenario(Outage(0, 60))
    print(api.run(within(3.0, retrying_ask(api.async_client(max_retries=0), api.clock))))
print("attempts at t =", [f"{call.time:.3f}" for call in api.calls])

# %% [markdown]
# ### The bug: a retry loop that catches everything
#
# A hand-written loop with `except BaseException` (or a bare `except:`) catches the
# cancellation too, and treats it as one more failure to retry. Read `stubborn`, then run
# it with a 1 s deadline against an API that takes 2 s to answer.

# %%
async def stubborn(client, attempts=5):
    for _ in range(attempts):
        try:
            return await ask(client)
        except BaseException as e:  # the bug: this catches CancelledError too
            error = e
    raise error


# %% [markdown]
# The deadline did nothing. The timeout cancelled the first attempt at 1 s; `stubborn`
# swallowed the cancellation and started a second attempt, which answered at 3 s. The
# `async with asyncio.timeout(1.0)` saw no exception, so it raised none: your caller got an
# answer two seconds after its deadline. A user who pressed "stop" waits the same way.

# %%
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    api.scenario(Slow(2.0))
    result = api.run(within(1.0, stubborn(api.async_client())))
print(f"{result!r} at t={api.clock.now():.3f} s, after {len(api.calls)} attempts")

# %% [markdown]
# Catch `Exception` (or the SDK's `anthropic.APIError`) in a retry loop, never
# `BaseException`. If you must run cleanup on a cancellation, use `finally`, or catch
# `asyncio.CancelledError`, clean up, and `raise` it again.
#
# ## Bounded parallelism
#
# Now many calls. The simulated API allows 1,200 requests a minute (20 a second, with a
# burst of 20) and takes 1 s to answer each one. `busy_api` builds a fresh one for each run.

# %%
PROMPTS = [f"Question {i}" for i in range(100)]


def busy_api():
    api = FakeClaude(clock=VirtualClock(), seed=0)
    api.scenario(RateLimited(requests_per_minute=1200, burst=20), Slow(1.0))
    return api


# %% [markdown]
# `timed` runs one call and notes when it was in flight, from start to answer or error
# (the SDK's retries included), for the plot below.

# %%
async def timed(call, spans):
    start = asyncio.get_running_loop().time()
    try:
        return await call
    finally:
        spans.append((start, asyncio.get_running_loop().time()))


# %% [markdown]
# The obvious code starts every call at once: one `gather` over all 100 prompts, on one
# client with the SDK's default two retries. `return_exceptions=True` keeps each error in
# its place in the results, so you can count them.

# %%
async def unbounded(client, prompts, spans):
    return await asyncio.gather(*(timed(ask(client, p), spans) for p in prompts),
                                return_exceptions=True)


# %% [markdown]
# `trial` runs one way of doing the work on a fresh API and prints what came back: how
# many answers, how many errors, how many attempts, how many 429s, and when it all ended.

# %%
def trial(how, prompts=PROMPTS):
    spans = []
    with busy_api() as api:
        results = api.run(how(api.async_client(), prompts, spans))
    kinds = Counter("answer" if isinstance(r, str) else type(r).__name__ for r in results)
    print(f"{how.__name__:10} {sorted(kinds.items())}; {len(api.calls)} attempts, "
          f"{sum(c.status == 429 for c in api.calls)} got a 429; done at "
          f"t={api.clock.now():.0f} s")
    return results, api.calls, spans


# %% [markdown]
# Look at the answers: 60 of 100. The other 40 calls failed with `RateLimitError`, each
# after three attempts, and the whole run was over in 3 s.

# %%
runs = {"unbounded": trial(unbounded)}

# %% [markdown]
# The API served 20 at t=0 (its burst), then 20 a second. Every 429 carried
# `retry-after: 1`, and the SDK waits exactly that long, so all 80 refused calls came
# back at the same instant, t=1.000, and the 60 refused again at t=2.000. That is
# [lesson 07](07_thundering_herd.ipynb)'s thundering herd, made by one `gather` in one
# process. ([Lesson 14](14_test_your_own_app.ipynb) ran 300 async clients through an
# outage and matched the lab's model.) Count the attempts that arrived at each instant:

# %%
calls = runs["unbounded"][1]
print("attempts per instant:", Counter(round(c.time, 3) for c in calls).most_common(3))

# %% [markdown]
# Try it: make `PROMPTS` 1,000 prompts (`range(1000)`) and run the cells again (it takes
# a few seconds). Still 60 answers: an unbounded `gather` gets what the burst and two
# retries allow, and the other 940 calls fail. Starting more at once buys nothing.
#
# The fix is to bound how many calls are in flight. With an `asyncio.Semaphore(10)`, each
# call waits at the gate until one of the 10 places is free. The `gather` still creates
# every task, but at most 10 are past the gate.

# %%
async def semaphore(client, prompts, spans, limit=10):
    gate = asyncio.Semaphore(limit)

    async def one(prompt):
        async with gate:  # waits here while `limit` calls are in flight
            return await timed(ask(client, prompt), spans)

    return await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)


# %% [markdown]
# A fixed pool of workers does the same with 10 tasks in all, not 100: each worker takes
# the next prompt until none is left, and puts its result in the prompt's place.

# %%
async def workers(client, prompts, spans, count=10):
    results, todo = [None] * len(prompts), iter(enumerate(prompts))

    async def worker():
        for i, prompt in todo:  # all workers share one iterator: each prompt once
            try:
                results[i] = await timed(ask(client, prompt), spans)
            except Exception as e:  # kept in its place, as gather(return_exceptions=True)
                results[i] = e

    await asyncio.gather(*(worker() for _ in range(count)))
    return results


# %% [markdown]
# Look at both lines: every prompt answered, one attempt each, not one 429. At 10 answers
# a second, half the API's rate, the work takes 10 s.

# %%
runs["semaphore"] = trial(semaphore)
runs["workers"] = trial(workers)
print("same results:", runs["semaphore"][0] == runs["workers"][0])

# %% [markdown]
# Try it: in `workers`, change `count=10` to `count=40`, twice what the API serves in a
# second, and run that cell and the one below it again. The work ends at t=5 s, not 10 s,
# but 80 attempts get a 429 and 4 calls fail for good: 4 users see an error. The API can
# take requests per second times seconds per answer in flight, here 20 x 1 = 20. Set the
# bound a little below that, and the rate limit never has to say no.
#
# ## What the bound does over time
#
# `in_flight` turns the spans into a step curve: how many calls were in flight from each
# moment on.

# %%
def in_flight(spans):
    steps = Counter()
    for start, end in spans:
        steps[start] += 1
        steps[end] -= 1
    times, counts = [0.0], [0]
    for t in sorted(steps):
        times.append(t)
        counts.append(counts[-1] + steps[t])
    return times, counts


# %% [markdown]
# `answers` counts the answers as they arrive: each 200 reaches its caller 1 s after it was
# sent.

# %%
def answers(calls, until=12.0):
    done = sorted(call.time + 1.0 for call in calls if call.status == 200)
    return [0.0, *done, until], [*range(len(done) + 1), len(done)]


# %% [markdown]
# Look at the left panel: 100 calls in flight at once, then a cliff at t=2, when the 40
# calls refused three times give up. The bounded run holds a steady 10. On the right, the
# unbounded run stops at 60 answers by t=3; the bounded one climbs to all 100.

# %%
with course_style():
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE, layout="constrained")
    for name, label, colour in [("unbounded", "all at once", "#d62728"),
                                ("semaphore", "Semaphore(10)", "#1f77b4")]:
        left.step(*in_flight(runs[name][2]), where="post", color=colour, label=label)
        right.step(*answers(runs[name][1]), where="post", color=colour, label=label)
    left.set(xlabel="virtual time [s]", ylabel="calls in flight", xlim=(0, 12))
    right.set(xlabel="virtual time [s]", ylabel="answers received", xlim=(0, 12))
    left.text(2.15, 45, "40 calls give up:\nRateLimitError")
    left.legend()
    fig.suptitle("All at once: 60 answers, then nothing; 10 at a time: all 100 in 10 s")
plt.show()

# %% [markdown]
# ## One client for all your tasks
#
# Every function above shared one client. An `AsyncAnthropic` is safe to share between
# tasks, and sharing it shares its connection pool: connections stay open and are reused,
# instead of a new TCP and TLS handshake for each call. `with_options(...)` makes a copy
# with other settings that still uses the same pool. Look at the SDK's pool limits too.

# %%
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    client = api.async_client()
    print("with_options shares the pool:", client.with_options(max_retries=0)._client
          is client._client)
    print("a second client shares it:", api.async_client()._client is client._client)
limits = DEFAULT_CONNECTION_LIMITS
print(f"pool limits per client: {limits.max_connections} connections, "
      f"{limits.max_keepalive_connections} kept open between calls")

# %% [markdown]
# A client per task builds a pool per task, and nothing closes them. `per_task` asks 20
# questions, each with a new client, and counts the pools, and the ones still open after
# the work.

# %%
async def per_task(api, prompts):
    clients = [api.async_client() for _ in prompts]
    await asyncio.gather(*(ask(c, p) for c, p in zip(clients, prompts, strict=True)))
    return len({id(c._client) for c in clients}), sum(not c.is_closed() for c in clients)


# %% [markdown]
# Against a real server each of those pools holds an open connection until its client is
# garbage-collected. Make one client at startup, share it, and close it once at shutdown
# (`async with AsyncAnthropic() as client:` does that).

# %%
with FakeClaude(clock=VirtualClock(), seed=0) as api:
    pools, still_open = api.run(per_task(api, PROMPTS[:20]))
print(f"20 calls, a client each: {pools} HTTP clients, each with its own pool; "
      f"{still_open} still open")

# %% [markdown]
# A shared client also means shared settings: one `max_retries`, one timeout, one set of
# middleware (a breaker or budget from lesson 05 sees every task's attempts), in one place.
#
# ## Exercise 17.1: fetch them all, at most K at a time
#
# Write `async def fetch_all(client, model, prompts, limit)`. Ask one question per prompt
# (`max_tokens=64`) and return the list of answer texts (`message.content[0].text`) in the
# order of `prompts`. Rules:
#
# - at most `limit` requests in flight at any moment, and `limit` of them whenever that
#   many are left to do (do not wait for a whole batch to finish);
# - the answers in the order of `prompts`, not the order they arrive;
# - errors are not swallowed: when a call fails, `fetch_all` raises (the SDK's own error,
#   as `gather` does, or an `ExceptionGroup` holding it, as a `TaskGroup` does).
#
# The checker runs it on virtual time against an API whose answers take 1 to 6 s each, so
# they arrive out of order, and counts the requests in flight.

# %%
async def fetch_all(client, model, prompts, limit):
    raise NotImplementedError


check_fetch_all(fetch_all)

# %% [markdown]
# **Hint**: start from `semaphore` above. Keep `gather`'s default
# (`return_exceptions=False`) so the first error propagates, and `gather` returns results in
# the order of its arguments. A batch loop (`for i in range(0, len(prompts), limit)`) is
# the wrong shape: one slow answer holds up the whole batch.
#
# ## Exercise 17.2: a retry loop that a cancellation can stop
#
# Write `async def ask_within(client, model, prompt, attempts, deadline)`. The client has
# `max_retries=0`: your loop is the only retry layer. Return the answer's text. Rules:
#
# - at most `attempts` attempts; retry only what `classify(e).retryable` allows, and wait
#   before each retry with `await asyncio.sleep(...)` (say 0.5 s, then 1 s, 2 s, ...);
# - when the attempts run out, or the error is not retryable, re-raise the last error as it
#   is;
# - a total `deadline` in seconds, even in the middle of an attempt: raise `TimeoutError`
#   when it passes;
# - never retry or swallow a `CancelledError`: a cancelled task ends at once, cancelled.
#
# The checker runs it against overloads, a bad request, an answer slower than the deadline,
# and a task it cancels in the middle of an attempt.

# %%
async def ask_within(client, model, prompt, attempts, deadline):
    raise NotImplementedError


check_ask_within(ask_within)

# %% [markdown]
# **Hint**: put `async with asyncio.timeout(deadline):` around the whole loop, not around
# each attempt. Inside it, `for attempt in range(attempts):` with
# `try: ... except anthropic.APIError as e:` (`import anthropic` first), and a bare `raise`
# when `not classify(e).retryable` or it is the last attempt. Catching `anthropic.APIError`
# (or `Exception`) lets `CancelledError` through on its own.
#
# ## Recap
#
# - `api.run(main())` runs real `AsyncAnthropic` clients on virtual time: every SDK wait and
#   every `asyncio.sleep` is a timer, and the timers fire in exact time order.
# - `asyncio.timeout` puts a deadline on a whole call, mid-request included. The code inside
#   sees `CancelledError`; the SDK and `resilience.retry` let it through at once, and
#   `classify` calls it `cancelled`. A retry loop that catches `BaseException` ignores every
#   deadline.
# - An unbounded `gather` sends its burst all at once: the rate limit refuses most of it,
#   and the SDK's exact `retry-after` brings the refused calls back at the same instant.
# - Bound the calls in flight, with a `Semaphore` or a fixed pool of workers, a little
#   below what the limit serves; keep the results in input order and let errors out.
# - Share one client, and so one connection pool and one set of settings, between all your
#   tasks.
#
# **Next:** [Lesson 18: Token-based limits](18_token_limits.ipynb)
