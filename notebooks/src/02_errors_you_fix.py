# %% [markdown]
# # Lesson 02: Errors you fix, not retry
#
# Some errors say "not now": wait, and the same request succeeds. Others say "not like
# this": the request itself is wrong, or your account cannot make it. Sending it again
# fails the same way, and costs you time, and a little load on the API. This lesson goes
# through the errors you fix: what each one means, what to log, what to tell the person
# in front of the screen, and the two shapes of a spend limit: a 400, and a 429 the SDK
# retries that it should not.
#
# **In this lesson you will**
#
# - raise 400, 401, 402, 403, 404, 413 and 422 through the SDK and count its attempts
# - meet a 404 from a retired model id, and keep the model id in one place
# - tell a spend limit you set (a 400) from the usage tier's cap (a 429)
# - watch the SDK spend attempts on the spend-limit 429, and stop it
# - run a guide's `idempotency_key=` argument and see it fail
# - decide what to log (never the key) and what to show a user

# %%
import json
import random
import typing

import anthropic
import matplotlib.pyplot as plt
from course.lesson02 import check_log_fields, check_user_message

from resilience import ERRORS, MODEL, VirtualClock, classify, retry
from resilience.lab.plots import WIDE, course_style
from resilience.testing import FAKE_API_KEY, FakeClaude, error

SEED = 0
HELLO = [{"role": "user", "content": "Hello, Claude"}]

# %% [markdown]
# One helper runs every experiment here: a fresh simulated API on a fresh virtual clock,
# the outcomes you queue, and one `messages.create` call with the SDK's default client
# (two retries). It returns the error (or `None`), the attempts the API saw, and the
# virtual seconds the call took.

# %%
def one_call(*outcomes, model=MODEL, max_retries=2):
    clock = VirtualClock()
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(*outcomes)
        try:
            api.client(max_retries=max_retries).messages.create(
                model=model, max_tokens=64, messages=HELLO)
        except anthropic.APIStatusError as e:
            return e, api.calls, clock.now()
    return None, api.calls, clock.now()

# %% [markdown]
# ## Seven errors, one attempt each
#
# Queue each error three times, so that a retry would meet it again, and count the
# attempts. Look at the `attempts` column, then at `classify`.

# %%
FIXABLE = ["invalid_request_error", "authentication_error", "billing_error",
           "permission_error", "not_found_error", "request_too_large", "unprocessable_entity"]
print(f"{'error':22} {'status':>6}  {'SDK class':26} attempts  classify")
for name in FIXABLE:
    err, calls, _ = one_call(*[name] * 3)
    print(f"{name:22} {err.status_code:6d}  {type(err).__name__:26} {len(calls):8d}  "
          f"{classify(err)}")

# %% [markdown]
# The SDK and `classify` agree: none of these is worth a second try. Each needs a change
# before it can succeed. `error.message` (`e.api_message`) says which one.

# %%
for name in FIXABLE:
    err, _, _ = one_call(name, max_retries=0)
    print(f"{err.status_code}  {err.api_message}")

# %% [markdown]
# | status | what to fix |
# |---|---|
# | 400 | the request: a missing or malformed field |
# | 401 | the API key: missing, mistyped or revoked |
# | 402 | billing: add credit or fix the payment method |
# | 403 | access: this key or workspace may not use the model or resource |
# | 404 | the model id or the URL |
# | 413 | the size: the Messages API accepts up to 32 MB |
# | 422 | the content: well-formed, but it cannot be processed |
#
# ## A 404 from a retired model
#
# The most common 404 in the field is a model id that has been retired. Code samples
# and courses that spell the id in every cell break this way. The catalogue's example
# 404 names such an id. The SDK lists the model ids it knows in
# `anthropic.types.ModelParam`: look for the retired id, and for this course's.

# %%
RETIRED = ERRORS["not_found_error"].message.removeprefix("model: ")
known = typing.get_args(typing.get_args(anthropic.types.ModelParam)[0])
print(f"{RETIRED} known to the SDK: {RETIRED in known}")
print(f"{MODEL} known to the SDK: {MODEL in known}")

# %% [markdown]
# The simulated API keeps no list of retired models: you tell it to answer the way the
# real API answers such a request, with a 404 `not_found_error`. Then send the retired id.

# %%
err, calls, _ = one_call("not_found_error", model=RETIRED)
print(type(err).__name__, err.status_code, err.type, "| attempts:", len(calls))
print(err.api_message)

# %% [markdown]
# No retry can fix a model id. Keep the id in one place, as this course does with
# `resilience.MODEL` (see `resilience/models.py`), and let a test fail when the SDK lists
# it as deprecated (`anthropic._data.deprecated_models.DEPRECATED_MODELS` gives the
# end-of-life dates). Then a retirement is one line to change, found before your users
# find it.
#
# ## Spend limits: a 400 and a 429
#
# A spend limit comes in two shapes. A limit *you* set on an organization or a workspace
# answers 400 `invalid_request_error`. No field is wrong, and no `error_code` marks it:
# only the message says what happened. Queue three and count the attempts.

# %%
err, calls, _ = one_call(*["workspace_spend_limit"] * 3)
print(type(err).__name__, err.status_code, err.type, "| attempts:", len(calls))
print(err.api_message)
print(classify(err))

# %% [markdown]
# One attempt: the SDK never retries a 400. `classify` reads the message and gives the
# category `spend_limit`, whose advice differs from a plain 400's: raise the limit in the
# Console, do not rewrite the request.
#
# ## A 429 that is not a rate limit
#
# A 429 usually means "too many requests right now": wait and retry. But when your
# organization reaches its usage tier's monthly spend cap, the API also answers 429
# `rate_limit_error`, with `error.details.error_code` set to
# `enforced_spend_limit_reached` and no `retry-after`. Access comes back at 00:00 UTC on
# the 1st of the month: waiting a few seconds will not lift it. Queue three and look at
# what the SDK does.

# %%
err, calls, seconds = one_call(*["spend_limit_reached"] * 3)
for call in calls:
    print(call)
print(f"{type(err).__name__} after {len(calls)} attempts and {seconds:.3f} s")

# %% [markdown]
# Three attempts, for an error that could never succeed. The SDK retries every 429 unless
# the server adds `x-should-retry: false`. Its exception class knows better, and so does
# `classify`, which reads the `error_code`:

# %%
print("error_code:", err.error_code)
print("retry-after sent:", "retry-after" in err.response.headers)
print("a RateLimitError too:", isinstance(err, anthropic.RateLimitError))
print(classify(err))

# %% [markdown]
# Note the third line: `except anthropic.RateLimitError` catches a spend limit as well
# (lesson 01). When the server does send `x-should-retry: false`, the SDK obeys it:

# %%
err, calls, seconds = one_call(*[error("spend_limit_reached", should_retry=False)] * 3)
print(f"{type(err).__name__} after {len(calls)} attempt and {seconds:.3f} s")

# %% [markdown]
# You cannot count on that header. What you control is *who* decides. Turn the SDK's
# retries off (`max_retries=0`) and let one retry layer that classifies decide: here
# `resilience.retry` (see `resilience/retrying.py`), which retries only what `classify`
# calls retryable.

# %%
clock = VirtualClock()
with FakeClaude(clock=clock, seed=SEED) as api:
    api.respond(*["spend_limit_reached"] * 3)
    ask = retry(attempts=4, clock=clock, rng=random.Random(7))(
        api.client(max_retries=0).messages.create)
    try:
        ask(model=MODEL, max_tokens=64, messages=HELLO)
    except anthropic.APIStatusError as e:
        print(f"{type(e).__name__} after {len(api.calls)} attempt and {clock.now():.3f} s")
ours = (len(api.calls), clock.now())

# %% [markdown]
# ## Stacked retries make it worse
#
# The guide this course corrects wraps the SDK in a retry loop of its own: up to five
# tries, a retry for any status in a list that includes 429, and a growing wait. Here is
# a loop written the same way (on the virtual clock). It never reads the `error_code`.

# %%
GUIDE_LIST = {429, 500, 502, 503, 529}


def guide_style_retry(call, clock, tries=5):
    for attempt in range(tries):
        try:
            return call()
        except anthropic.APIStatusError as e:
            if attempt == tries - 1 or e.status_code not in GUIDE_LIST:
                raise
            clock.sleep(2**attempt)

# %% [markdown]
# Stack it on the SDK's default client and count: five tries of the loop, each of them
# three attempts of the SDK.

# %%
clock = VirtualClock()
with FakeClaude(clock=clock, seed=SEED) as api:
    api.respond(*["spend_limit_reached"] * 15)
    client = api.client()
    try:
        guide_style_retry(lambda: client.messages.create(
            model=MODEL, max_tokens=64, messages=HELLO), clock)
    except anthropic.APIStatusError as e:
        print(f"{type(e).__name__} after {len(api.calls)} attempts and {clock.now():.3f} s")
stacked = (len(api.calls), clock.now())

# %% [markdown]
# The plot puts the four approaches side by side: attempts sent, and virtual seconds
# before your code learns the answer, which was "no" from the first attempt on.

# %%
def sdk_alone(outcome):
    _, calls, seconds = one_call(*[outcome] * 3)
    return len(calls), seconds


wasted = {"guide loop\n+ SDK": stacked,
          "SDK default": sdk_alone("spend_limit_reached"),
          "SDK +\nx-should-retry: false": sdk_alone(error("spend_limit_reached",
                                                         should_retry=False)),
          "resilience.retry\n+ max_retries=0": ours}

# %%
with course_style():
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE, layout="constrained")
    colours = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4"]
    for ax, k, unit in [(left, 0, "attempts sent [calls]"), (right, 1, "time to give up [s]")]:
        bars = ax.bar(list(wasted), [v[k] for v in wasted.values()], color=colours)
        ax.bar_label(bars, fmt="%.1f" if k else "%d")
        ax.set(ylabel=unit, xlabel="who decides to retry")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("A spend-limit 429 needs one attempt; stacked retries send 15",
                 fontweight="bold")
plt.show()

# %% [markdown]
# Try it: change `tries=5` to `tries=3` in `guide_style_retry` and run the cells again.
# The loop still multiplies the SDK's three attempts.
#
# ## A parameter that does not exist
#
# The same guide advises passing `idempotency_key=...` to `messages.create` for critical
# calls. Run it:

# %%
with FakeClaude(clock=VirtualClock(), seed=SEED) as api:
    try:
        api.client().messages.create(model=MODEL, max_tokens=64, messages=HELLO,
                                     idempotency_key="order-42")
    except TypeError as e:
        print(f"{type(e).__name__}: {e}")
    print("requests sent:", len(api.calls))

# %% [markdown]
# A `TypeError`, before any request is sent. Nor does the SDK send an idempotency header
# of its own on an ordinary call. Check the headers of one request:

# %%
err, _, _ = one_call("billing_error", max_retries=0)
print("idempotency header sent:", any("idempotency" in name for name in err.request.headers))

# %% [markdown]
# So a retry of a call that *succeeded* on the server (but whose answer was lost) runs it
# twice. If that could do harm (a payment, an email), make the side effect idempotent in
# your own code, keyed by your own id.
#
# ## What to log
#
# When an error reaches your logs, log the few fields that let you, or Anthropic's
# support, find it again: the request id, the status, the type, the error code and the
# SDK class.

# %%
err, _, _ = one_call("billing_error")
record = {"request_id": err.request_id, "status": err.status_code, "error_type": err.type,
          "error_code": err.error_code, "sdk_class": type(err).__name__}
print(json.dumps(record))

# %% [markdown]
# What you must never log is the key. It is not in the exception's message or body, but
# it *is* in the request the exception carries: SDK 2.x sends it in the `authorization`
# header. So logging `err.request.headers`, or a debugging dump of the whole exception,
# leaks it. (Here the key is the simulated API's fake one, so printing `True` is safe.)

# %%
print("key in the message:", FAKE_API_KEY in str(err))
print("key in the body:   ", FAKE_API_KEY in json.dumps(err.body))
print("key in the request:", FAKE_API_KEY in err.request.headers.get("authorization", ""))

# %% [markdown]
# ## What to show the user
#
# The person using your app needs neither the status nor the JSON. They need to know
# whether to wait, to change something, or to contact you, and an id to quote if they do.
# Each category in the catalogue has one sentence of advice: start from it, add the
# request id.

# %%
for name in ["invalid_request_error", "authentication_error", "billing_error",
             "workspace_spend_limit", "spend_limit_reached"]:
    err, _, _ = one_call(name, max_retries=0)
    print(f"{err.status_code} {classify(err).advice} (ref {err.request_id})")

# %% [markdown]
# In a public app, reword the 401 and 402 lines: they are for you, the operator, not for
# your users. Tell the user "the service is unavailable, we are on it", and page yourself.
#
# ## Exercise 02.1: the fields to log
#
# Write `log_fields(e)`: given an `anthropic.APIStatusError`, return a dict with exactly
# the keys `request_id`, `status`, `error_type`, `error_code` and `sdk_class` (the name of
# the exception's class). The checker also makes sure the key never appears in it.

# %%
def log_fields(e):
    raise NotImplementedError


check_log_fields(log_fields)

# %% [markdown]
# **Hint**: every value is an attribute the SDK already parsed: `e.request_id`,
# `e.status_code`, `e.type`, `e.error_code`, and `type(e).__name__`. Leave `e.request`
# alone.
#
# ## Exercise 02.2: a message for the user
#
# Write `user_message(e)`: a string for the person using your app. It must contain the
# catalogue's advice for the error's category and the request id, and it must not contain
# the raw SDK message (`str(e)`, with its JSON) or the key. The checker tries it on every
# error in this lesson, including both spend limits.

# %%
def user_message(e):
    raise NotImplementedError


check_user_message(user_message)

# %% [markdown]
# **Hint**: `classify(e)` returns a `Verdict` with both `advice` and `request_id`. Do not
# look the advice up by status: a spend limit and a rate limit share 429, a spend limit
# you set and a bad request share 400, and their advice differs.
#
# ## Recap
#
# - 400, 401, 402, 403, 404, 413 and 422 are fixed, not retried; the SDK and `classify`
#   agree, and `e.api_message` says what to fix.
# - A retired model id answers 404: keep the id in one place and test it against the
#   SDK's deprecation list.
# - A spend limit you set answers 400, known only by its message; the usage tier's
#   monthly cap answers 429 with `error_code: enforced_spend_limit_reached`. Neither is
#   retryable, but the SDK retries the 429 unless the server says `x-should-retry: false`;
#   a loop stacked on top multiplies the waste (15 attempts).
# - `messages.create(idempotency_key=...)` is a `TypeError`.
# - Log the request id, status, type, error code and class; never `e.request` (it holds
#   the key). Show users advice and a request id, not JSON.
#
# **Next:** [Lesson 03: Rate limits](03_rate_limits.ipynb)
