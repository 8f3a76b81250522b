# %% [markdown]
# # Lesson 07: The thundering herd
#
# When the Claude API is overloaded, it is overloaded for everyone: all your workers (and
# everyone else's) get 529s at the same moment. When it recovers, they all come back. If
# their retry schedules match, they come back *together*, in waves far above what the
# recovering server can take, and it sends them away again. This is the thundering herd.
# In this lesson you watch one, second by second, and see which retry schedules tame it.
#
# **In this lesson you will**
#
# - send 1,000 simulated clients into a 30 s outage and count their attempts per second
# - see why backoff without jitter retries in synchronised spikes
# - compare plain exponential backoff, full jitter and the SDK's schedule on totals and
#   latency
# - find out why waiting *exactly* `retry-after` can bring clients back together
# - change the herd's size, the capacity and the strategy, and watch the herd change
# - make a herd stop synchronising, through the simulated API

# %%
import matplotlib.pyplot as plt
from course.lesson07 import check_wait, check_worker_rng

from resilience.lab import herd
from resilience.lab.playground import herd_playground
from resilience.lab.plots import plot_timeline

SEED = 0
CLIENTS = 1000

# %% [markdown]
# ## The experiment
#
# `resilience/lab/herd.py` simulates, on virtual time:
#
# - **The server.** For the first 30 s every request gets a **529** `overloaded_error`.
#   After that it serves 50 requests per second (a token bucket); a request that finds no
#   token gets a **429** with `retry-after` set to the time until the next token.
# - **The clients.** All 1,000 send at t = 0. After a failure a client waits, then tries
#   again, up to 10 attempts, then gives up. It waits `max(backoff delay, retry-after)`,
#   as `resilience.retry` does. The `sdk_default` clients wait like the anthropic SDK:
#   *exactly* `retry-after` when the server sends one, else the SDK's own schedule.
#
# Every strategy gets 10 attempts here so you can compare their schedules. (The SDK's own
# default is 3 attempts; you will see what that does at the end.)
#
# Start with plain exponential backoff, no jitter: 0.5 s, doubling, capped at 30 s. Print
# the attempts the server received in each of the first 16 seconds, and look for the
# empty seconds.

# %%
plain = herd(CLIENTS, "exponential", seed=SEED)
print(plain.timeline[:16])

# %% [markdown]
# Every client sends at t = 0, 0.5, 1.5, 3.5, 7.5 and 15.5 s, so second 0 holds two waves
# (2,000 attempts) and each later wave is all 1,000 clients at one instant, with nothing
# in between. The waits never differ, so the clients never drift apart.
#
# ## Three schedules, second by second
#
# Now the same herd with full jitter (the default of `resilience.retry`) and with the
# SDK's schedule. In the plot, the shaded band is the outage, and the dashed black line is
# what the server can take once it is back: 50 requests per second. Look at what happens
# after t = 30 s: which line stays near the dashed one?

# %%
results = [plain] + [herd(CLIENTS, name, seed=SEED) for name in ("full_jitter", "sdk_default")]
fig = plot_timeline(results)
fig.axes[0].set_ylim(0, 1100)  # second 0 (2,000 or more attempts) is cut off
plt.show()

# %% [markdown]
# Red (no jitter) is a row of spikes of up to 1,000, all the way to t = 121.5 s. Blue (full
# jitter) is a smooth slope: the clients spread out within the first seconds and stay
# spread. Purple (the SDK) is in between: its narrow jitter (75-100 % of the wait) leaves
# clumps, and just after the outage it comes back in one tall wave.
#
# Now the totals. `peak after` is the most attempts in one second once the outage is over:
# compare it with the 50 requests per second the server can serve.

# %%
def summary(r):
    during = sum(r.timeline[:30])
    return (f"{r.strategy:13} {r.attempts:8d} {during:9d} {r.served:6d} {r.gave_up:7d} "
            f"{r.last_success_s:8.1f} {r.p50_s:6.1f} {r.p99_s:6.1f} {max(r.timeline[30:]):10d}")


print("strategy      attempts in outage served gave up last 200    p50    p99 peak after")
for r in results:
    print(summary(r))

# %% [markdown]
# Read the table row by row:
#
# - **Exponential, no jitter**: 200 of 1,000 clients are served; 800 give up. At t = 31.5 s
#   all 1,000 arrive at once; 50 get a token, 950 get a 429 and wait 30 s (the cap), all
#   together, to do the same again.
# - **Full jitter**: 976 served, and everyone who was served was served by t = 57.4 s.
#   After the outage the server never sees more than 61 attempts in a second.
# - **SDK schedule**: 324 served. Times are short (p99 37.1 s) only because most clients
#   gave up early.
#
# ## Why the SDK's schedule does badly here
#
# Two reasons.
#
# 1. **It arrives with few attempts left.** Its waits are capped at 8 s, so they stay
#    short: by t = 30 s its clients had spent 7,995 of their 10,000 attempts (the
#    `in outage` column), about 2 left each.
# 2. **It waits exactly `retry-after`.** After the outage the server tells every rejected
#    client "the next token is free in at most 0.02 s". A client that obeys exactly comes
#    back almost at once, and so does everyone rejected at the same instant. One gets the
#    token; the rest get the same answer again. Each round costs every waiting client an
#    attempt and buys it 0.02 s, so the last attempts are gone in a fraction of a second.
#
# Full jitter waits `max(backoff, retry-after)`: seconds, not hundredths. Its clients come
# back spread out, after tokens have refilled.
#
# To see reason 2 alone, take the outage away: 200 clients, a server that takes 8
# requests per second, 20 attempts each. Both strategies honor `retry-after`; full jitter
# uses it as a floor, `max(backoff, retry-after)`, as `resilience.retry` does.

# %%
for name in ("sdk_default", "full_jitter"):
    r = herd(200, name, seed=SEED, capacity=8.0, outage=0.0, max_attempts=20)
    print(f"{name:12} served {r.served:3d}, gave up {r.gave_up:3d}, "
          f"attempts {r.attempts:4d}, last success at {r.last_success_s:5.2f} s")

# %% [markdown]
# The SDK's clients come back in lockstep every 1/8 s: one is served per round, so after
# 19 rounds (2.375 s) the rest have used all their attempts. With full jitter every client
# is served. The server's `retry-after` is a good *floor*; it is a bad *schedule* for a
# crowd, because it is the same number for everyone. Add jitter on top of it.
#
# ## Your turn: change the herd
#
# With a running kernel, the playground below has sliders for the herd's size and the
# server's capacity, and a strategy to draw beside plain exponential. Move them and watch
# the picture and the title (clients served). Try a capacity of 200: does plain
# exponential backoff serve everyone now? (Without a kernel you see one line of text.)

# %%
herd_playground()

# %% [markdown]
# The same in numbers: change `capacity` (try 20.0, then 200.0) and `strategy` (try
# `"equal_jitter"`, `"decorrelated_jitter"`, `"exponential"`) and run the cell again.
# Watch `served` and `peak after`.

# %%
capacity = 50.0
strategy = "full_jitter"
r = herd(CLIENTS, strategy, seed=SEED, capacity=capacity)
print("strategy      attempts in outage served gave up last 200    p50    p99 peak after")
print(summary(r))

# %% [markdown]
# (Spoiler for the question: at 200 requests per second plain exponential still serves
# only 800. Each wave of 1,000 at one instant finds at most a bucket of 200 tokens.)
#
# ## With the SDK's own 3 attempts
#
# The SDK's default is 3 attempts in all. What happens to the herd with 3?

# %%
for name in ("exponential", "full_jitter", "sdk_default"):
    r = herd(CLIENTS, name, seed=SEED, max_attempts=3)
    print(f"{name:12} served {r.served}, gave up {r.gave_up}, attempts {r.attempts}")

# %% [markdown]
# Nobody is served. Three attempts last about 1.5 s; a 30 s outage outlasts any
# per-request retry schedule. Retries smooth over *short* trouble. For a long outage you
# need something else: a circuit breaker that stops calling (lesson 08), and a fallback
# that answers meanwhile (lesson 10).

# %% [markdown]
# ## Exercise 07.1: retry-after as a floor, with jitter under it
#
# Write `wait(n, retry_after, u)`: how long a client waits before retry `n` (0 first).
# `retry_after` is the server's `retry-after` in seconds, or None when it sent none; `u`
# is the client's uniform draw in [0, 1).
#
# The checker runs a herd through the simulated API: 100 real SDK clients send at once
# to a server that takes 5 requests a second and answers the rest with a 429 and a
# `retry-after` in whole seconds, as the real API does. Each client has 10 attempts and
# waits what your `wait` says. You pass when no wait is shorter than `retry-after`, and
# all 100 are served in at most 600 requests.

# %%
def wait(n, retry_after, u):
    raise NotImplementedError


check_wait(wait)

# %% [markdown]
# **Hint**: `return retry_after` alone is what the SDK does: the 95 clients turned away
# at t = 0 all come back at t = 1 s, and 90 are turned away again. Compute full jitter,
# `u * min(30.0, 0.5 * 2**n)`, and return the larger of it and `retry_after` (just the
# jitter when `retry_after` is None).
#
# ## Exercise 07.2: every worker its own random source
#
# Jitter only spreads a herd if every client draws *different* numbers. A common bug: each
# worker process seeds its random source the same way at start-up, so all of them jitter
# alike and stay in lockstep. Write `worker_rng(worker_id, seed)`: worker `worker_id`'s
# random source (a `random.Random`). The same arguments must give the same draws (so a
# run repeats), and a different `seed` different draws.
#
# The checker runs 100 workers through the simulated API, each with the real
# `resilience.retry(backoff=full_jitter(), rng=worker_rng(i, seed))`, into a 10 s outage,
# then a server that takes 10 requests a second. You pass when all are served and no
# second after the outage sees more than 30 attempts.

# %%
def worker_rng(worker_id, seed):
    raise NotImplementedError


check_worker_rng(worker_rng)

# %% [markdown]
# **Hint**: `random.Random(seed)` gives every worker the same draws: the herd stays in
# one wave of 100. `random.Random()` never repeats. Seed with both numbers at once:
# `random.Random(f"{seed}-{worker_id}")` (`import random` first).
#
# ## Recap
#
# - Clients that fail together and wait the same time retry together. Without jitter
#   they stay in lockstep for ever: spikes of 1,000 against a server that takes 50.
# - Full jitter spreads the herd within seconds: 976 of 1,000 served here, against 200.
# - `retry-after` is the same for everyone. Use it as a floor under a jittered backoff,
#   not as the whole schedule.
# - Jitter needs independent randomness: workers seeded alike retry alike.
# - No per-request retry rides out a 30 s outage with 3 attempts. Long outages need a
#   breaker and a fallback.
#
# **Next:** [Lesson 08: Circuit breakers](08_circuit_breakers.ipynb)
