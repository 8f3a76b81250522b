# %% [markdown]
# # Lesson 03: Rate limits
#
# Your organization may send only so many requests per minute. Go over, and the API answers
# `429 rate_limit_error` until capacity comes back. A 429 is the easiest error to avoid:
# every answer tells you how much room is left. The SDK only reacts to a 429 after it
# happens; staying under the limit in the first place is your job. In this lesson you meet
# a 429, read the headers that announce it, and pace a client so it never sees one.
#
# **In this lesson you will**
#
# - see a 429 with its status, body, `retry-after` and `anthropic-ratelimit-*` headers
# - read the headers of a *successful* answer with `with_raw_response`
# - check what the SDK reads (only `retry-after`) and what it ignores (the rest)
# - compare a client that fires as fast as it can with one that paces on the headers
# - write the header parser and the pacing rule yourself

# %%
from collections import Counter
from contextlib import ExitStack

import anthropic
import httpx
import matplotlib.pyplot as plt
from course.lesson03 import check_parse_ratelimit, check_wait_before_next

from resilience import ERRORS, VirtualClock
from resilience.lab.plots import WIDE, course_style
from resilience.testing import FakeClaude, RateLimited, Slow
from resilience.testing.responses import rfc3339

clock = VirtualClock()
SEED = 0
MESSAGES = [{"role": "user", "content": "Hi"}]

# %% [markdown]
# ## A 429, seen
#
# The simulated API's `RateLimited` scenario is a token bucket on the virtual clock: it
# holds `burst` requests, and refills at `requests_per_minute / 60` a second. Here the limit
# is 6 requests per minute with a burst of 2, so the third request in a row is refused.
#
# `client.messages.with_raw_response.create(...)` sends the same request as
# `messages.create`, but gives you the HTTP response: its `.headers`, and `.parse()` for the
# usual `Message`. The client is built with `max_retries=0` so that you see the 429 itself.
# Look at `remaining` going down.

# %%
session = ExitStack()  # closed at the end of this section
api = session.enter_context(FakeClaude(clock=clock, seed=SEED))
api.scenario(RateLimited(requests_per_minute=6, burst=2))
client = api.client(max_retries=0)
PREFIX = "anthropic-ratelimit-requests-"

for _ in range(2):
    raw = client.messages.with_raw_response.create(model=api.model, max_tokens=64,
                                                   messages=MESSAGES)
    print(raw.status_code, raw.parse().content[0].text, "| remaining:",
          raw.headers[PREFIX + "remaining"], "| reset:", raw.headers[PREFIX + "reset"])

# %% [markdown]
# `remaining` is 0. The next request is refused. Look at what the exception carries: the
# class, the status, `e.type` from the body, the request id to quote to support, and the
# headers.

# %%
try:
    client.messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
except anthropic.RateLimitError as e:
    print(type(e).__name__, e.status_code, e.type, e.request_id)
    print(e.body["error"]["message"])
    for name in ("retry-after", PREFIX + "limit", PREFIX + "remaining", PREFIX + "reset"):
        print(f"  {name}: {e.response.headers[name]}")

# %% [markdown]
# The message names the limit you went over: the scenario's 6 requests per minute. The
# real API names your organization's own limit there. What each header means:
#
# | header | meaning |
# |---|---|
# | `retry-after` | seconds to wait before this request can succeed (on a 429) |
# | `anthropic-ratelimit-requests-limit` | requests allowed per minute |
# | `anthropic-ratelimit-requests-remaining` | requests you may send right now |
# | `anthropic-ratelimit-requests-reset` | when the allowance is full again (RFC 3339 date) |
#
# The real API sends the same trio for tokens too (`-tokens-`, `-input-tokens-`,
# `-output-tokens-`). A popular guide tells you to watch `x-ratelimit-remaining` and
# `x-ratelimit-reset`. Those names do not exist on this API. Check for yourself:

# %%
print("x-ratelimit-remaining" in raw.headers, "x-ratelimit-reset" in raw.headers)
print(sorted(h for h in raw.headers if "ratelimit" in h))

# %% [markdown]
# Code that reads the guide's names gets `None` forever and never slows down.
#
# ## What the SDK reads, and what it does not
#
# A default client (`max_retries=2`) handles a 429 for you: it waits and tries again. How
# long? `api.calls` records every attempt with its virtual time. The bucket has refilled a
# little by now, so first use up the room that is left, then send one more.

# %%
default = api.client()
api.clock.advance(20)
for _ in range(3):
    default.messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
for call in api.calls[-4:]:
    print(call)

# %% [markdown]
# Read the times. The second request got `remaining: 0` in its answer, yet the third went
# out at the same instant: it got a 429. Then the SDK waited exactly the
# `retry-after` (10 s) and the retry succeeded. The SDK reads `retry-after-ms` and
# `retry-after`, and nothing else.
#
# To see that it ignores the `reset` date, send a 429 that has *no* `retry-after` but says
# the allowance comes back in 30 s. (`api.respond` takes any `httpx.Response` too.)

# %%
body = ERRORS["rate_limit_error"].body()
no_retry_after = httpx.Response(429, json=body, headers={
    PREFIX + "limit": "6", PREFIX + "remaining": "0",
    PREFIX + "reset": rfc3339(api.clock.now() + 30)})
api.respond(no_retry_after, "ok")
default.messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
print(f"the SDK waited {api.calls[-1].time - api.calls[-2].time:.3f} s, not 30 s")
session.close()

# %% [markdown]
# The SDK fell back to its own backoff (under half a second, lesson 05 measures it) and
# would have hit the limit again. So: **the SDK reacts to a 429; pacing is your job.**
#
# ## Fire at will, or pace?
#
# Now a workload: 60 requests, one after another. The server allows 60 a minute (1 a
# second) with a burst of 10, and each answer takes 0.25 s (`Slow(0.25)`), so a client
# that never waits would send 4 a second. Two clients, both with the SDK's default
# retries:
#
# - **naive** sends the next request as soon as the last one returns;
# - **paced** reads `remaining` after each answer, and when it is 0 waits `60 / limit`
#   seconds: the time the server needs to give one request back.

# %%
def run(paced, jobs=60):
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(Slow(0.25), RateLimited(requests_per_minute=60, burst=10))
        create = api.client().messages.with_raw_response.create
        for _ in range(jobs):
            headers = create(model=api.model, max_tokens=64, messages=MESSAGES).headers
            if paced and int(headers[PREFIX + "remaining"]) == 0:
                clock.sleep(60 / int(headers[PREFIX + "limit"]))
    return api.calls, clock.now()

# %% [markdown]
# Both finish all 60 jobs. Look at the requests each sent, the 429s among them, and the
# time taken.

# %%
results = {"naive": run(paced=False), "paced": run(paced=True)}
for name, (calls, took) in results.items():
    n429 = sum(c.status == 429 for c in calls)
    print(f"{name:6} {len(calls):3d} requests, {n429:2d} were 429s, done at {took:5.2f} s")

# %% [markdown]
# The same 60 replies, in about the same time: the server's limit sets the pace either way.
# The naive client simply sent 29 extra requests that were refused. In a real
# organization those 429s are not free: every client sharing the limit sees them, and each
# retry competes with the next request.
#
# To see the pace, count the arrivals. `per_second` counts the requests with one status in
# each 5-second window of the first minute, and turns each count into a rate per second.

# %%
def per_second(calls, status, window=5):
    counts = Counter(int(c.time // window) for c in calls if c.status == status)
    return [counts[k] / window for k in range(12)]

# %% [markdown]
# `draw_rates` draws one client's panel: a bar per window, the successes at the bottom and
# the 429s stacked on top, and a dashed line at the limit.

# %%
def draw_rates(ax, calls):
    starts = [5 * k for k in range(12)]
    ok, refused = per_second(calls, 200), per_second(calls, 429)
    ax.bar(starts, ok, width=5, align="edge", edgecolor="white", label="200 ok")
    ax.bar(starts, refused, width=5, align="edge", bottom=ok, edgecolor="white",
           color="#d62728", label="429 refused")
    ax.axhline(1, color="black", linestyle="--", label="limit: 60 per minute")

# %% [markdown]
# The plot shows the rate at which requests arrived, in 5-second windows: successes in
# blue, 429s stacked on top in red. The dashed line is the limit. Look at the start: both
# clients spend their burst of 10 in the first few seconds. After that the naive client
# keeps knocking at over 1.5 times the limit; the paced one settles on the line.

# %%
with course_style():
    fig, axes = plt.subplots(1, 2, figsize=WIDE, sharey=True, layout="constrained")
    for ax, (name, (calls, _)) in zip(axes, results.items(), strict=True):
        draw_rates(ax, calls)
        ax.set_title(f"{name}: {sum(c.status == 429 for c in calls)} of {len(calls)} refused")
        ax.set_xlabel("virtual time [s]")
    axes[0].set_ylabel("requests arriving [1/s]")
    axes[1].legend()
    fig.suptitle("Pacing on the headers: the same 60 replies, no 429s", fontweight="bold")
plt.show()

# %% [markdown]
# Try it: change `burst=10` to `burst=60` in `run`, then run that cell, the comparison
# and the plot again. With a full minute of burst, the naive client sees no 429 at all for
# these 60 jobs, and the pacer never waits: pacing only costs time when you are really at
# the limit.
#
# Another way to pace is a token bucket of your own, on the client side, set a little under
# the limit: `resilience.TokenBucket` (see `resilience/ratelimit.py`; `RateLimited` uses the
# same class as its server). It needs no headers, but it does not know about the other
# clients sharing your organization's limit; the headers do.

# %% [markdown]
# ## Exercise 03.1: read the rate-limit headers
#
# Write `parse_ratelimit(headers, now)`. It returns `(limit, remaining, reset_in)`:
# the first two as integers, and `reset_in` as the seconds from `now` until the reset date.
# `now` is Unix time in seconds. The checker tries six sets of headers, one of them from a
# real SDK response. It runs your function three times: in your machine's timezone, in New
# York's and in India's. A reset date read without its zone would be off by hours.

# %%
def parse_ratelimit(headers, now):
    raise NotImplementedError


check_parse_ratelimit(parse_ratelimit)

# %% [markdown]
# **Hint**: `datetime.fromisoformat` reads RFC 3339 dates; replace a trailing `Z` with
# `+00:00` first to be safe. `.timestamp()` turns the date into Unix seconds.
#
# ## Exercise 03.2: pace on the headers
#
# Write `wait_before_next(headers, now)`: given the headers of the last answer, how many
# seconds to wait before the next request. The checker sends requests one after another
# against `RateLimited` (two different limits) and waits as you say. It passes if no
# request gets a 429 and the run is not much slower than a perfect pacer. You may use
# your `parse_ratelimit`.

# %%
def wait_before_next(headers, now):
    raise NotImplementedError


check_wait_before_next(wait_before_next)

# %% [markdown]
# **Hint**: while `remaining > 0`, there is no reason to wait: return 0. At 0, one request
# comes back every `60 / limit` seconds. Waiting until `reset` also passes, but more
# slowly: the reset date is when the *whole* allowance is back.
#
# ## Recap
#
# - A 429 carries `retry-after`, and every answer carries `anthropic-ratelimit-*` headers
#   (`limit`, `remaining`, `reset`); the `x-ratelimit-*` names some guides use do not exist.
# - `with_raw_response.create(...)` gives you the headers of a successful answer too.
# - The SDK waits exactly `retry-after` after a 429, and reads none of the other headers:
#   it reacts, it does not pace.
# - Pacing on `remaining` sent the same 60 requests with zero 429s, in the same time as a
#   client that drew 29 of them.
#
# **Next:** [Lesson 04: Overloaded and server errors](04_overloaded_and_server_errors.ipynb)
