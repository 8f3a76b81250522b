# %% [markdown]
# # Lesson 04: Overloaded and server errors
#
# Some failures are nobody's fault on your side: the API is overloaded (529), something
# broke inside it (500), a proxy in between failed (502), the service is briefly away (503),
# or a gateway gave up (504). Sometimes no answer comes at all: the connection drops, or the
# answer takes longer than you are willing to wait. All of these are worth another try,
# and all of them come in episodes: an outage of half a minute, or a long overload. This
# lesson shows each one, then rides out an outage with a retry loop.
#
# **In this lesson you will**
#
# - see 500, 502 (an HTML page), 503, 504 and 529 as the SDK raises them
# - find what a hand-written list of retryable statuses misses
# - tell a timeout from a connection error, and see what a hung request costs
# - ride out a 30 s outage with `resilience.retry`, and plot every attempt
# - show progress while retrying through a long overload, as users want to see it

# %%
import random
from functools import partial

import anthropic
import httpx
import httpx2
import matplotlib.pyplot as plt
from course.lesson04 import check_is_retryable, check_patient

from resilience import MODEL, VirtualClock, backoff, classify, retry
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FakeClaude, Outage, Slow

clock = VirtualClock()
SEED = 0
MESSAGES = [{"role": "user", "content": "Hi"}]

# %% [markdown]
# ## Five server errors, seen
#
# `raised(outcome)` sends one request to the simulated API with a client that does not
# retry (`max_retries=0`), and returns the exception the SDK raised. You will use it for
# every kind of failure in this lesson.

# %%
def raised(outcome, **options):
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(outcome)
        client = api.client(max_retries=0, **options)
        try:
            client.messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
        except anthropic.APIError as e:
            return e

# %% [markdown]
# For each error, look at the SDK's class, `e.type` (from the JSON body) and the verdict of
# `resilience.classify` (see `resilience/classification.py`). The 502 is special: it comes
# from a proxy, as an HTML page, so there is no JSON body and `e.type` is `None`. The
# classifier still gets it right, from the status.

# %%
for name in ["api_error", "bad_gateway", "service_unavailable", "timeout_error",
             "overloaded_error"]:
    e = raised(name)
    print(f"{e.status_code} {type(e).__name__:24} type={e.type!s:17} {classify(e)}")
print(repr(raised("bad_gateway").body))

# %% [markdown]
# Every server error is an `InternalServerError`, including `OverloadedError` (529), and
# also the one you must not retry, `HTTPNotImplementedError` (501). So the order of your
# `except` clauses matters: an `except anthropic.InternalServerError` placed first also
# catches every 529, and every 501.

# %%
for cls in (anthropic.OverloadedError, anthropic.GatewayTimeoutError,
            anthropic.HTTPNotImplementedError):
    print(f"{cls.__name__:24} is an InternalServerError:",
          issubclass(cls, anthropic.InternalServerError))

# %% [markdown]
# ## A hand-written list misses some
#
# A popular guide retries only when the status is in a list: 429, 500, 502, 503 and 529.
# Another project's list stopped at 504 and so treated every 529 as fatal (huggingface/tau
# issue 333). Below is a retry loop in that style, in our own words: it catches
# `APIStatusError` and retries if the status is in `LISTED`. Watch what it does with a 504.

# %%
LISTED = {429, 500, 502, 503, 529}


def listed_retry(fn, attempts=5):
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except anthropic.APIStatusError as e:
            if e.status_code not in LISTED or attempt == attempts:
                raise

# %% [markdown]
# The fake answers one 504 and then success. A retry would have worked; the loop gives up
# after one attempt. Then a connection error: the loop does not catch it at all.

# %%
for first in ["timeout_error", "connection_error"]:
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(first, "ok")
        send = partial(api.client(max_retries=0).messages.create, model=api.model,
                       max_tokens=64, messages=MESSAGES)
        try:
            listed_retry(send)
        except anthropic.APIError as e:
            print(f"{first}: gave up after {len(api.calls)} attempt: {type(e).__name__}")

# %% [markdown]
# Compare the list with the rule "every status >= 500 is worth a retry" (the classifier
# makes one exception: 501 Not Implemented). Proxies in front of an API also send 520-524.

# %%
print("status  in the list  classify says retry")
for status in [500, 502, 503, 504, 520, 522, 524, 529]:
    print(f"{status:6}  {status in LISTED!s:>11}  {classify(status).retryable!s:>19}")

# %% [markdown]
# Four statuses missing. Retry on `status >= 500`, never on a list; better still, ask
# `classify(e).retryable`, which also knows about 408, 409, 429 and connection errors.
#
# ## No answer at all: connection errors and timeouts
#
# A connection error has no status and no body: the network failed before an answer came.
# A timeout is the client giving up on an answer that is too slow. In the SDK,
# `APITimeoutError` is a *subclass* of `APIConnectionError`, so catch the timeout first.
# Look at the clock: `raised` turns the SDK's retries off, and one attempt at a hung
# request still costs 600 s.

# %%
for outcome in ["connection_error", "timeout"]:
    before = clock.now()
    e = raised(outcome)
    print(f"{type(e).__name__:18} status={getattr(e, 'status_code', None)} "
          f"waited {clock.now() - before:5.1f} s  {classify(e)}")
print(issubclass(anthropic.APITimeoutError, anthropic.APIConnectionError))

# %% [markdown]
# That was one attempt. The default client makes three. Read its defaults first:

# %%
limits = anthropic.DEFAULT_TIMEOUT
print(f"read timeout: {limits.read:.0f} s | connect timeout: {limits.connect:.0f} s | "
      f"retries: {anthropic.DEFAULT_MAX_RETRIES}")

# %% [markdown]
# The read timeout bounds the *silence between two reads*, not the whole request: an
# answer that trickles in never trips it, and a request that hangs trips it once per
# attempt. The SDK retries a timeout like any connection error. So a hung request on the
# default client costs three read timeouts plus two short backoffs. Send one and time it:

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    api.respond("timeout", "timeout", "timeout")
    try:
        api.client().messages.create(model=api.model, max_tokens=64, messages=MESSAGES)
    except anthropic.APITimeoutError as e:
        hung = api.clock.now()
        print(f"{type(e).__name__} after {len(api.calls)} attempts and {hung:.1f} s "
              f"({hung / 60:.0f} minutes)")

# %% [markdown]
# Half an hour before your code hears anything. For a short request, set your own
# timeout. Here the simulated API takes 30 s to answer (`Slow(30)`) and the client waits
# at most 5 s. The SDK retries timeouts by itself: look at the three attempts, 5 s each
# plus its short backoff.

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    api.scenario(Slow(30))
    try:
        api.client(timeout=5.0).messages.create(model=api.model, max_tokens=64,
                                                messages=MESSAGES)
    except anthropic.APITimeoutError as e:
        print(type(e).__name__, f"after {api.clock.now():.2f} s")
for call in api.calls:
    print(call)

# %% [markdown]
# One trap when you write your own test doubles. The SDK (2.x) sends through `httpx2`, a
# fork of `httpx`. It recognizes only `httpx2`'s timeout: the same timeout raised as an
# `httpx` exception becomes a plain connection error. Here are two fake transports that
# each raise a read timeout, one from each package.

# %%
def sdk_error_for(timeout_error):
    def handler(request):
        raise timeout_error
    client = anthropic.Anthropic(api_key="test", max_retries=0, http_client=httpx2.Client(
        transport=httpx2.MockTransport(handler)))
    try:
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    except anthropic.APIConnectionError as e:
        return type(e).__name__

# %% [markdown]
# Now raise the same read timeout from each package. Look at the class the SDK turns each
# one into.

# %%
print("httpx.ReadTimeout  ->", sdk_error_for(httpx.ReadTimeout("slow")))
print("httpx2.ReadTimeout ->", sdk_error_for(httpx2.ReadTimeout("slow")))

# %% [markdown]
# (`resilience.testing` does this conversion for you: see `resilience/testing/bridge.py`.)
#
# ## Riding out an outage
#
# Now an episode. From t = 10 s to t = 40 s every request gets a 529
# (`Outage(start=10, end=40)`). Thirty users each ask one question, one every 2 s from
# t = 0 to t = 58. Each question goes through `resilience.retry` (see
# `resilience/retrying.py`): up to 10 attempts, full jitter from 1 s up to 30 s, within
# 90 s. The client is built with `max_retries=0`, so that there is one retry layer, not
# two (lesson 05 shows why).
#
# `one_user(start)` simulates one user whose question starts at `start`, on a clock of its
# own. It returns the attempts (`api.calls`) and whether an answer came.

# %%
def one_user(start, attempts=10):
    with FakeClaude(clock=VirtualClock(start), seed=SEED) as api:
        api.scenario(Outage(start=10, end=40))
        ask = retry(attempts=attempts, deadline=90.0, backoff=backoff.full_jitter(1.0, 30.0),
                    clock=api.clock, rng=random.Random(start))(
            api.client(max_retries=0).messages.create)
        try:
            ask(model=api.model, max_tokens=64, messages=MESSAGES)
        except anthropic.OverloadedError:
            return api.calls, False
    return api.calls, True

# %% [markdown]
# Look at the counts: every question answered, and the longest wait.

# %%
users = {start: one_user(start) for start in range(0, 60, 2)}
attempts = [call for calls, _ in users.values() for call in calls]
print(f"{sum(ok for _, ok in users.values())} of {len(users)} answered, "
      f"{len(attempts)} attempts, {sum(c.status == 529 for c in attempts)} of them 529s")
start, (calls, _) = max(users.items(), key=lambda item: item[1][0][-1].time - item[0])
print(f"longest: asked at t={start} s, {len(calls)} attempts, "
      f"answered at t={calls[-1].time:.1f} s")

# %% [markdown]
# To plot them, `draw_user` draws one user's row: a grey line through the attempts, a red
# cross at each 529, and at the end a green dot for an answer or a black square for a user
# who gave up.

# %%
def draw_user(ax, row, calls, ok):
    times = [c.time for c in calls]
    ax.plot(times, [row] * len(times), color="#7f7f7f", lw=0.8)
    ax.scatter(times[:-1] if ok else times, [row] * (len(times) - ok), marker="x",
               color="#d62728", s=20, label="529" if row == 1 else None)
    ax.scatter(times[-1], row, marker="o" if ok else "s", color="#2ca02c" if ok
               else "black", s=20, label=None if row > 1 else "answer")

# %% [markdown]
# `plot_users` draws a row per user, over a shaded band for the outage.

# %%
def plot_users(users):
    with course_style():
        fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
        ax.axvspan(10, 40, color="#d62728", alpha=0.08, label="outage (529)")
        for row, (calls, ok) in enumerate(users.values(), 1):
            draw_user(ax, row, calls, ok)
        ax.set_xlabel("virtual time [s]")
        ax.set_ylabel("user (one question each)")
        ax.set_title("Backoff with jitter carries every question across a 30 s outage")
        ax.legend(loc="lower right")
    return fig

# %% [markdown]
# The plot puts each attempt at its time, one row per user. Red crosses are 529s, green
# dots answers, a black square a user who gave up; the shaded band is the outage. Look at
# the waits inside the band: they grow, so each user sends fewer and fewer attempts, not
# a steady hammering. And look just after t = 40: the users come back spread out, thanks
# to the jitter.

# %%
plot_users(users)
plt.show()

# %% [markdown]
# Try it: run `plot_users({s: one_user(s, attempts=5) for s in range(0, 60, 2)})` in a new
# cell. With five attempts from these waits, the users who asked early in the outage give
# up (black squares). The `deadline` is the other bound: no wait may end more than 90 s
# after the first attempt.
#
# ## A long overload, with progress
#
# Overloads can last minutes. Users of a command-line agent have reported it giving up at
# "attempt 10/10", after retry messages like "Retrying in 24s" (anthropics/claude-code
# issues). Those messages matter: a person waiting wants to know that something is
# happening, why, and for how long. `retry(on_retry=...)` calls your function before each
# wait with the attempt that failed, the delay, and the verdict.

# %%
def show_progress(attempt, delay, verdict):
    print(f"attempt {attempt}/10 failed ({verdict.category}, {verdict.status}); "
          f"retrying in {delay:.1f} s")


# %% [markdown]
# Here the overload lasts an hour. The waits are random (full jitter), drawn from a range
# that doubles each time up to 30 s. After the 10th attempt the loop gives up and raises
# the real `OverloadedError`. The attempt
# history is attached to it as notes (they show under a traceback); the last one says why
# it stopped.

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    api.scenario(Outage(start=0, end=3600))
    ask = retry(attempts=10, deadline=None, backoff=backoff.full_jitter(1.0, 30.0),
                clock=api.clock, rng=random.Random(7), on_retry=show_progress)(
        api.client(max_retries=0).messages.create)
    try:
        ask(model=api.model, max_tokens=64, messages=MESSAGES)
    except anthropic.OverloadedError as e:
        print(f"{type(e).__name__} after {len(api.calls)} attempts, "
              f"{api.clock.now():.1f} s\n{e.__notes__[-1]}")

# %% [markdown]
# Ten attempts over 41 s cannot outlast an hour-long overload; no number
# will, without hammering the API. When retries run out, tell the user plainly, with the
# request id, and offer something else (lessons 08 and 10: breakers and fallbacks).

# %% [markdown]
# ## Exercise 04.1: retry on >= 500, not a list
#
# Write `is_retryable(exc)` for any exception the SDK raises: `True` when another attempt
# can succeed, else `False`. The checker runs it on real exceptions from the simulated
# API: 500, 502 (HTML), 503, 504, 520 (HTML), 529, 409, 429, connection errors, timeouts,
# and the errors you must not retry: the 4xx, and 501 Not Implemented, which the SDK also
# raises as an `InternalServerError` (its `HTTPNotImplementedError`).

# %%
def is_retryable(exc):
    raise NotImplementedError


check_is_retryable(is_retryable)

# %% [markdown]
# **Hint**: check `isinstance(exc, anthropic.APIConnectionError)` first (it covers
# timeouts). For an `APIStatusError`, use `exc.status_code`: 408, 409, 429, or `>= 500`
# except 501. `isinstance(exc, anthropic.InternalServerError)` is not enough: it retries
# 501. Or ask the package: `classify(exc).retryable`.
#
# ## Exercise 04.2: ride out an outage
#
# Write `patient(fn, clock, rng)`: return a version of `fn` that retries. The checker
# calls it with a client that does not retry by itself, during a 60 s outage of 529s. Your
# user can wait 120 s for an answer or a clear failure. The checker asks that you:
#
# - get the answer within 12 attempts and 120 s (three seeds);
# - do not retry in lockstep: ten users hit by the same outage, each with its own `rng`,
#   must send their retries at different moments;
# - try a 400 only once;
# - in an outage that never ends, give up within 12 attempts and 120 s by raising the real
#   `OverloadedError`, even when every 529 asks for `retry-after: 300`.

# %%
def patient(fn, clock, rng):
    raise NotImplementedError


check_patient(patient)

# %% [markdown]
# **Hint**: `retry(attempts=..., deadline=..., backoff=..., clock=clock, rng=rng)(fn)`.
# The defaults (5 attempts, a 60 s deadline) give up before this outage ends, and
# `attempts=12` alone does not change that. The deadline is the user's patience: it also
# stops a `retry-after` that would run past it. `backoff.exponential` has no jitter; pick a
# jittered strategy, and a first wait long enough that 12 attempts span 60 s.
#
# ## Recap
#
# - 500, 502, 503, 504 and 529 are all `InternalServerError`s in the SDK, and all worth
#   a retry; a 502 from a proxy has an HTML body and no `e.type`.
# - Retry on `status >= 500` (or `classify(e).retryable`), never on a hand-written list:
#   lists miss 504, 520-524 or 529.
# - `APITimeoutError` is an `APIConnectionError`. The 600 s read timeout bounds the silence
#   between reads, not the total: a hung request on the default client costs about
#   3 x 600 s plus backoff, half an hour. Set your own timeout. In SDK 2.x, test doubles
#   must raise `httpx2` errors.
# - Exponential backoff with jitter rode out a 30 s outage with every question answered;
#   `on_retry` tells the user what is happening while it waits.
#
# **Next:** [Lesson 05: What the SDK already does](05_what_the_sdk_does.ipynb)
