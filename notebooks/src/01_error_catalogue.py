# %% [markdown]
# # Lesson 01: The error catalogue
#
# Before you can handle an error you must know which one it is. The Claude API names each
# error twice: by its HTTP status and by `error.type` in the body. The SDK adds a third
# name, its exception class. This lesson lays the three side by side for every error the
# course uses, and asks of each one the question that matters most: will trying again help?
#
# **In this lesson you will**
#
# - read the error catalogue: status, `error.type`, SDK class, category, retryable, advice
# - raise every catalogued error through the real SDK and check its class
# - use `classify()` and read the fields of its `Verdict`
# - see how the SDK picks one of its hundred-odd exception classes, and why `except`
#   order matters
# - break a hand-written list of retryable statuses with a 529

# %%
import dataclasses

import anthropic
import httpx
import matplotlib.pyplot as plt
from course.lesson01 import check_action_for, check_should_retry

from resilience import ERRORS, MODEL, VirtualClock, classify
from resilience.catalogue import STATUS_CATEGORIES
from resilience.lab.plots import WIDE, course_style
from resilience.testing import FakeClaude

clock = VirtualClock()
SEED = 0
HELLO = [{"role": "user", "content": "Hello, Claude"}]

# %% [markdown]
# ## The catalogue, as data
#
# Every fact about an error lives once, in `resilience.ERRORS` (see
# `resilience/catalogue.py`). The classifier, the simulated API, the tests and this table
# all read it. The first eleven rows are the API's documented errors; the last five are
# variants and errors met in the field (two spend limits, a 422, a 503 and a proxy's 502).
# Look at the last column: which errors are worth a retry?

# %%
print(f"{'name':22} {'status':>6}  {'error.type':22} {'SDK class':31} {'category':18} retry")
for spec in ERRORS.values():
    print(f"{spec.name:22} {spec.status:6d}  {spec.error_type:22} {spec.sdk_class:31} "
          f"{spec.category:18} {'yes' if spec.retryable else 'no'}")

# %% [markdown]
# Which statuses does the API's own error list document? Count them:

# %%
documented = [spec.status for spec in ERRORS.values() if spec.documented]
print(len(documented), "documented statuses:", documented)

# %% [markdown]
# Two statuses carry two names each. A 429 `rate_limit_error` is either a rate limit (worth
# a retry) or the usage tier's monthly spend cap, `spend_limit_reached` (not). A 400
# `invalid_request_error` is either a request to fix or a spend limit *you* set on a
# workspace, `workspace_spend_limit`. Each category comes with one sentence of advice for a
# person.

# %%
for spec in ERRORS.values():
    print(f"{spec.category:18} {spec.advice}")

# %% [markdown]
# ## Each one, through the real SDK
#
# A table is a claim. Here you test it: queue each error on the simulated API, call the SDK
# with its retries off, and catch what it raises. `match` says whether the SDK raised the
# class the catalogue names. The last column is the verdict of `classify()`.

# %%
caught = {}
with FakeClaude(clock=clock, seed=SEED) as api:
    client = api.client(max_retries=0)
    for name, spec in ERRORS.items():
        api.respond(name)
        try:
            client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
        except anthropic.APIStatusError as e:
            caught[name] = e
            match = type(e).__name__ == spec.sdk_class
            print(f"{name:22} {type(e).__name__:31} match={match}  {classify(e)}")

# %% [markdown]
# Every one matches. Note `bad_gateway`: the SDK has no class of its own for a 502, so it
# raises the `InternalServerError` every other 5xx gets.
#
# ## `classify()` and its verdict
#
# `classify()` (see `resilience/classification.py`) takes an SDK exception, an HTTP
# response, a bare status code or any other exception, and never raises. It returns a
# `Verdict`. Here is every field for the 429 you caught above. Look at `retry_after`: the
# server's `retry-after: 5` header, read as seconds.

# %%
verdict = classify(caught["rate_limit_error"])
for field in dataclasses.fields(verdict):
    print(f"{field.name:12} {getattr(verdict, field.name)!r}")

# %% [markdown]
# `str(verdict)` is the short form you saw in the table. For the proxy's 502 (an HTML page,
# no JSON body) `classify` still gives a verdict, from the status alone:

# %%
print(classify(caught["bad_gateway"]))
print("error type:", classify(caught["bad_gateway"]).error_type)

# %% [markdown]
# ## Why some errors are retryable and others not
#
# The rule is short. A 4xx means *your request* is the problem: the same bytes sent again
# fail the same way. A 5xx means the *server* had a problem, which may pass. Three 4xx are
# exceptions because they describe a moment, not the request: 408 (the server gave up
# waiting), 409 (a conflict with another change) and 429 (too many requests right now).
# One 5xx is an exception too: 501 says the server does not support the request at all.
#
# Rather than trust that paragraph, scan every status from 400 to 599 with `classify`:

# %%
retryable_4xx = [s for s in range(400, 500) if classify(s).retryable]
fatal_5xx = [s for s in range(500, 600) if not classify(s).retryable]
print("retryable 4xx:    ", retryable_4xx)
print("not retryable 5xx:", fatal_5xx)

# %% [markdown]
# One more exception cuts across the statuses: a spend limit. It comes in two shapes. The
# usage tier's monthly cap is a 429 whose body says
# `error_code: enforced_spend_limit_reached`. A limit you set yourself is a plain 400
# `invalid_request_error`: only its message ("You have reached your specified ... API usage
# limits") tells. No short wait lifts either, so `classify` calls both not retryable:

# %%
for name in ("spend_limit_reached", "workspace_spend_limit"):
    print(f"{name:22} {type(caught[name]).__name__:31} {classify(caught[name])}")

# %% [markdown]
# Lesson 02 shows that the SDK retries the 429 anyway.
#
# ## The SDK's hundred-odd exception classes
#
# The SDK does not stop at one class per status. Walk the tree below `APIStatusError`.
# The exact count changes from one SDK release to the next (new error codes get new
# classes), so the cell asks a question whose answer does not: are there more than a
# hundred?

# %%
def descendants(cls):
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | descendants(sub)
    return found


status_classes = descendants(anthropic.APIStatusError)
print("more than 100 classes below APIStatusError:", len(status_classes) > 100)

# %% [markdown]
# Most are narrow subclasses of the status classes. Each class the course relies on sits
# under the status class you would guess, one level or more down:

# %%
for narrow, base in [(anthropic.EnforcedSpendLimitReachedError, anthropic.RateLimitError),
                     (anthropic.OverloadedError, anthropic.InternalServerError)]:
    print(f"{narrow.__name__:32} is below {base.__name__:20} {narrow in descendants(base)}")

# %% [markdown]
# The SDK picks a class from two things: the status and, if the body has one,
# `error.details.error_code`. A known pair gets its own class; otherwise the status alone
# decides; an unknown 5xx becomes `InternalServerError`, and an unknown 4xx the bare
# `APIStatusError`. The helper sends one hand-made response through the real SDK.

# %%
def sdk_class_for(status, error_code=None):
    details = {"details": {"error_code": error_code}} if error_code else {}
    body = {"type": "error", "error": {"type": "api_error", "message": "x", **details}}
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(httpx.Response(status, json=body))
        try:
            api.client(max_retries=0).messages.create(model=MODEL, max_tokens=64,
                                                      messages=HELLO)
        except anthropic.APIStatusError as e:
            return type(e).__name__

# %% [markdown]
# Look at the two 429s: same status, different classes. And look at 520, a status Cloudflare
# proxies send, and at 418, which no table lists.

# %%
for status, code in [(429, None), (429, "enforced_spend_limit_reached"), (529, None),
                     (529, "compaction_unavailable"), (520, None), (418, None)]:
    print(f"{status} {code or '-':30} -> {sdk_class_for(status, code)}")

# %% [markdown]
# ## `OverloadedError` is an `InternalServerError`
#
# In SDK 2.x, `OverloadedError` (529) is a subclass of `InternalServerError`. So is
# `ServiceUnavailableError` (503), and `GatewayTimeoutError` (504).

# %%
for cls in (anthropic.OverloadedError, anthropic.ServiceUnavailableError,
            anthropic.GatewayTimeoutError, anthropic.RateLimitError):
    print(f"{cls.__name__:24} is an InternalServerError: "
          f"{issubclass(cls, anthropic.InternalServerError)}")

# %% [markdown]
# That matters for `except` clauses: Python runs the *first* one that matches. Here is a
# handler that wants to back off longer on an overload, written in the wrong order.

# %%
def handle_wrong_order(error):
    try:
        raise error
    except anthropic.InternalServerError:
        return "server error: retry in a moment"
    except anthropic.OverloadedError:
        return "overloaded: back off longer, or fall back to a smaller model"

# %% [markdown]
# Run it on a real 529, raised by the SDK. Which branch ran?

# %%
def raise_one(name):
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(name)
        try:
            api.client(max_retries=0).messages.create(model=MODEL, max_tokens=64,
                                                      messages=HELLO)
        except anthropic.APIStatusError as e:
            return e


print(handle_wrong_order(raise_one("overloaded_error")))

# %% [markdown]
# The overload branch can never run: `InternalServerError` catches every 529 first. Put
# the most specific class first.

# %%
def handle(error):
    try:
        raise error
    except anthropic.OverloadedError:
        return "overloaded: back off longer, or fall back to a smaller model"
    except anthropic.InternalServerError:
        return "server error: retry in a moment"


print(handle(raise_one("overloaded_error")))
print(handle(raise_one("api_error")))

# %% [markdown]
# The same trap waits one level down: `EnforcedSpendLimitReachedError` is a
# `RateLimitError`, so an `except RateLimitError` meant for "wait and retry" also catches
# a spend limit that no wait will lift. Exercise 01.2 asks you to get both right.
#
# ## A hand-written list breaks on 529
#
# A common way to decide what to retry is a set of statuses written by hand. A bug report
# against one agent framework (huggingface/tau, issue 333) describes such a set that stops
# at 504: every 529 overload was treated as fatal. The guide this course corrects has a
# list too, with 529 but without 504. Here are both, beside `classify`.

# %%
STOPS_AT_504 = {429, 500, 502, 503, 504}
GUIDE_LIST = {429, 500, 502, 503, 529}
print(f"{'status':>6} {'stops at 504':>13} {'guide list':>11} {'classify':>9}")
for status in (503, 504, 520, 524, 529):
    print(f"{status:6d} {status in STOPS_AT_504!s:>13} {status in GUIDE_LIST!s:>11} "
          f"{classify(status).retryable!s:>9}")

# %% [markdown]
# Both lists miss statuses the API or its proxies really send. Count the misses over every
# status from 400 to 599:

# %%
statuses = range(400, 600)
should = {s for s in statuses if classify(s).retryable}
print("retryable statuses:", len(should))
print("missed by the list that stops at 504:", len(should - STOPS_AT_504))
print("missed by the guide's list:          ", len(should - GUIDE_LIST))

# %% [markdown]
# The fix is the rule, not a longer list: retry 408, 409, 429 and every status `>= 500`
# except 501, as `classify` does. The plot shows the statuses you are likely to meet. Green
# means the row retries it; red marks a status it should retry but does not.

# %%
seen = sorted(set(STATUS_CATEGORIES) | {520, 521, 522, 523, 524})
rows = {"stops at 504": STOPS_AT_504.__contains__, "guide list": GUIDE_LIST.__contains__,
        "classify()": lambda s: classify(s).retryable}
COLOURS = {"retried": "#2ca02c", "not retried": "#d9d9d9", "missed": "#d62728"}


def verdict_of(retries, status):
    if retries(status):
        return "retried"
    return "missed" if classify(status).retryable else "not retried"

# %% [markdown]
# Each row becomes a strip of colours, one per status in `seen`: the colour of its verdict.

# %%
strips = {name: [COLOURS[verdict_of(retries, s)] for s in seen]
          for name, retries in rows.items()}

# %% [markdown]
# Now draw the strips, one row each. Look for red: the statuses each hand-written list misses.

# %%
with course_style():
    fig, ax = plt.subplots(figsize=WIDE, layout="constrained")
    for y, colours in enumerate(strips.values()):
        ax.bar(range(len(seen)), 0.8, bottom=y - 0.4, color=colours, edgecolor="white")
    for label, colour in COLOURS.items():
        ax.bar([0], [0], color=colour, label=label)
    ax.set_xticks(range(len(seen)), [str(s) for s in seen], rotation=60)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set(xlabel="HTTP status", title="Hand-written lists miss 529 or 504, and every 52x")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.08), ncols=3)
    ax.grid(False)
plt.show()

# %% [markdown]
# ## Exercise 01.1: should this status be retried?
#
# Write `should_retry(status)`: `True` if a response with this HTTP status is worth
# retrying, else `False`, without calling `classify`. The checker compares your answer
# with `classify(status).retryable` for every status from 400 to 599.

# %%
def should_retry(status):
    raise NotImplementedError


check_should_retry(should_retry)

# %% [markdown]
# **Hint**: three 4xx, then a range with one hole:
# `status in (408, 409, 429) or (status >= 500 and status != 501)`.
#
# ## Exercise 01.2: one action per exception
#
# Write `action_for(e)`: given an `anthropic.APIStatusError`, return one of these strings:
#
# | the error | action |
# |---|---|
# | a 529 overload (any `OverloadedError`) | `"overloaded"` |
# | any other 5xx | `"server_error"` |
# | a spend limit: the tier's 429, or the 400 of a limit you set | `"spend_limit"` |
# | any other 429 | `"rate_limit"` |
# | anything else | `"fix_request"` |
#
# The checker feeds it fourteen errors raised by the SDK, among them a
# `CompactionUnavailableError` (a 529 subclass), a 520 from a proxy and both spend limits.

# %%
def action_for(e):
    raise NotImplementedError


check_action_for(action_for)

# %% [markdown]
# **Hint**: `isinstance` checks run in order, like `except` clauses: test
# `anthropic.OverloadedError` before `anthropic.InternalServerError`, and the spend limit
# before `anthropic.RateLimitError`. `EnforcedSpendLimitReachedError` finds only the 429:
# the 400 has no class of its own, so ask `classify(e).category == "spend_limit"`.
#
# ## Recap
#
# - Each error has a status, an `error.type` and an SDK class; `resilience.ERRORS` holds
#   them once, with a category, a retry verdict and advice.
# - Retry 408, 409, 429 and every status `>= 500` except 501; never a spend limit. A hand
#   list of statuses misses 529 or 504, and the 52x errors from proxies.
# - The SDK picks its class by status and `error_code`; well over a hundred classes hang
#   below `APIStatusError`, and each release adds some.
# - `OverloadedError` is an `InternalServerError`, and the tier's spend cap is a
#   `RateLimitError`: put the most specific `except` first. A spend limit you set is a
#   plain 400 `BadRequestError`, known only by its message.
#
# **Next:** [Lesson 02: Errors you fix, not retry](02_errors_you_fix.ipynb)
