# %% [markdown]
# # Lesson 00: Start here
#
# Every Claude app meets errors: a 529 when the servers are busy, a 429 when you send too
# much, a 400 when the request is wrong. Some go away if you wait; some never will. This
# course shows you each one, then how to handle it well. You need no API key: a simulated
# Claude API answers the real `anthropic` SDK, and nothing really sleeps.
#
# **In this lesson you will**
#
# - learn how each lesson works, and find your way around the course
# - make your first call to the simulated API and read what it recorded
# - see why a plain `respx.mock` does not catch the SDK's requests, and what does
# - take one error apart: its status, type, request id, headers, body and SDK class
# - watch the SDK's own retries play out in virtual time

# %%
from itertools import pairwise

import anthropic
import httpx
import httpx2
import matplotlib.pyplot as plt
import respx
from course.lesson00 import check_attempts_made, check_describe

from resilience import MODEL, VirtualClock
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FakeClaude, LiveModeNotEnabled, is_live, live_client, sdk_client_for

clock = VirtualClock()
SEED = 0
HELLO = [{"role": "user", "content": "Hello, Claude"}]

# %% [markdown]
# ## How the course works
#
# Every lesson has the same shape: the goals at the top, then short code cells with a few
# lines of prose *before* each one that say what to look for. Read the prose, run the
# cell, check that you saw it. Then change a number and run it again.
#
# - **Exercises check themselves.** Each lesson ends with at least two. You fill in a
#   function, and the next cell runs a checker on it. It prints `pass`, or says what is
#   wrong. An untouched exercise says "not attempted yet", so the notebook still runs top
#   to bottom. Model answers are in `solutions/`.
# - **Time is virtual.** A `VirtualClock` moves forward only when someone sleeps on it,
#   and a sleep returns at once. A retry schedule of minutes runs in microseconds, and
#   every number you see repeats exactly (see `resilience/clock.py`).
# - **Nothing is real.** No key, no network, no cost. The simulated API (`FakeClaude`)
#   answers every request with the API's real status codes, bodies and headers.
#
# | no. | lesson | what you learn |
# |---|---|---|
# | 00 | [Start here](00_start_here.ipynb) | the simulated API, virtual time, one error |
# | 01 | [The error catalogue](01_error_catalogue.ipynb) | every error, its class, retry or not |
# | 02 | [Errors you fix, not retry](02_errors_you_fix.ipynb) | 400 to 422, spend limits, logging |
# | 03 | [Rate limits](03_rate_limits.ipynb) | 429, `retry-after`, rate-limit headers |
# | 04 | [Overloaded and server errors](04_overloaded_and_server_errors.ipynb) | 529, 500, 503 |
# | 05 | [What the SDK does](05_what_the_sdk_does.ipynb) | its own retries and timeouts |
# | 06 | [Backoff and jitter](06_backoff_and_jitter.ipynb) | how long to wait, and why at random |
# | 07 | [The thundering herd](07_thundering_herd.ipynb) | many clients failing together |
# | 08 | [Circuit breakers](08_circuit_breakers.ipynb) | stop calling a service that is down |
# | 09 | [Circuit breakers in practice](09_circuit_breakers_in_practice.ipynb) | bugs, defaults |
# | 10 | [Fallbacks](10_fallbacks.ipynb) | a smaller model, or a polite message |
# | 11 | [Streaming errors](11_streaming_errors.ipynb) | an error after the 200 |
# | 12 | [Retry storms and budgets](12_retry_storms_and_budgets.ipynb) | retries that multiply |
# | 13 | [Putting it together](13_putting_it_together.ipynb) | one resilient client, end to end |

# %% [markdown]
# ## Your first call
#
# `FakeClaude` is a context manager. Inside its `with` block, `api.client()` gives you a
# real `anthropic.Anthropic` client whose requests the simulated API answers. The model id
# comes from one place, `resilience.MODEL`, so no lesson spells it out. Look for the reply
# text, and the model the answer names.

# %%
with FakeClaude(clock=clock, seed=SEED) as api:
    reply = api.client().messages.create(model=MODEL, max_tokens=64, messages=HELLO)
print(reply.content[0].text)
print(reply.model, reply.stop_reason)

# %% [markdown]
# The simulated API records every HTTP attempt it received in `api.calls`: the virtual
# time, the SDK's retry count (`x-stainless-retry-count`), the status, what it did, and the
# request id. One call, one attempt, at t = 0.

# %%
for call in api.calls:
    print(call)

# %% [markdown]
# ## A pitfall: plain `respx.mock` does not see the SDK
#
# Many Python projects test HTTP code with `respx`, which patches the `httpx` library. But
# the `anthropic` SDK (1.0 and later) sends its requests through `httpx2`, a separate
# library. Look at the HTTP client inside an SDK client: which library is it from?

# %%
with FakeClaude(clock=clock, seed=SEED) as api:
    http_client = api.client()._client
print("an httpx2.Client:", isinstance(http_client, httpx2.Client))
print("an httpx.Client: ", isinstance(http_client, httpx.Client))

# %% [markdown]
# So `respx.mock` has nothing to patch. Here is the usual test written the usual way: a
# route that answers 529, and a plain SDK client. To keep the request off the internet,
# the client points at a closed port on your own machine (`127.0.0.1:9`) and makes no
# retries. Look at the exception, and whether the route was ever called.

# %%
with respx.mock(base_url="http://127.0.0.1:9", assert_all_called=False) as mock:
    route = mock.post("/v1/messages").mock(return_value=httpx.Response(529))
    plain = anthropic.Anthropic(api_key="sk-not-a-real-key", base_url="http://127.0.0.1:9",
                                max_retries=0)
    try:
        plain.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    except anthropic.APIError as e:
        print(type(e).__name__, "| route called:", route.called)

# %% [markdown]
# The route never ran. The request went to the real network stack, failed to connect, and
# came back as `APIConnectionError`, not the 529 the test wanted. Against the real API URL
# with the default `max_retries=2`, the SDK would also *retry* it, with real sleeps: the
# test is slow and fails for the wrong reason.
#
# The fix in this package is a bridge (see `resilience/testing/bridge.py`):
# `sdk_client_for(router)` gives the SDK an `httpx2` transport that lets an ordinary
# `respx.Router` answer. The same route now answers, and the SDK raises the 529's own class.

# %%
router = respx.Router(base_url="https://api.anthropic.com")
route = router.post("/v1/messages").mock(return_value=httpx.Response(529))
try:
    sdk_client_for(router, max_retries=0).messages.create(model=MODEL, max_tokens=64,
                                                          messages=HELLO)
except anthropic.APIError as e:
    print(type(e).__name__, e.status_code, "| route called:", route.called)

# %% [markdown]
# `FakeClaude` is built on the same bridge, and adds the API's exact bodies and headers, a
# request log and virtual time. You can still add your own routes on `api.router`.
#
# ## Live mode (optional)
#
# You never need the real API for this course. If you want to try a lesson against it,
# opt in on purpose: set both `ANTHROPIC_API_KEY` and `RESILIENCE_LIVE=1` in your
# environment, then use `live_client()` where a lesson uses `api.client()`. Real calls cost
# money and do not repeat exactly. The key is read by the SDK and never printed. Here live
# mode is off, and `live_client()` refuses politely.

# %%
print("live mode:", is_live())
try:
    live_client()
except LiveModeNotEnabled as e:
    print(type(e).__name__)

# %% [markdown]
# ## The anatomy of an error
#
# Now an error. `api.respond(...)` queues what the next requests get, one outcome each.
# Here: one 529 `overloaded_error`, with the SDK's retries turned off (`max_retries=0`) so
# you catch the first failure. Keep the exception as `err`.

# %%
with FakeClaude(clock=clock, seed=SEED) as api:
    api.respond("overloaded_error")
    try:
        api.client(max_retries=0).messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    except anthropic.APIStatusError as e:
        err = e

# %% [markdown]
# Four fields tell you what happened. `status_code` is the HTTP status. `type` is
# `error.type` from the body: the API's own name for the error. `api_message` is
# `error.message`. `request_id` is the id to quote when you contact support.

# %%
print("status:    ", err.status_code)
print("type:      ", err.type)
print("message:   ", err.api_message)
print("request id:", err.request_id)

# %% [markdown]
# Every response carries a `request-id` header; `err.request_id` is read from it. Some
# errors also carry `retry-after`, the server's advice on how long to wait. This 529 does
# not, so the SDK will pick its own wait.

# %%
headers = err.response.headers
print("request-id: ", headers["request-id"])
print("retry-after:", headers.get("retry-after"))

# %% [markdown]
# The body is the JSON the API sent: `type: error`, an `error` object, and the request id
# again.

# %%
print(err.body)

# %% [markdown]
# The SDK raised `OverloadedError`. Look at the classes it belongs to: it is an
# `InternalServerError`, which is an `APIStatusError`, which is an `APIError`. Lesson 01
# shows why this matters for your `except` clauses.

# %%
for cls in (anthropic.InternalServerError, anthropic.APIStatusError, anthropic.APIError):
    print(f"{type(err).__name__} is an {cls.__name__}: {isinstance(err, cls)}")

# %% [markdown]
# ## The SDK retries on its own
#
# By default the SDK retries a 529 twice before it gives up. Here you raise that to four
# (`max_retries=4`) and queue four 529s, then a success. A fresh clock starts at 0. Look at
# the times: the waits between attempts roughly double.

# %%
sdk_clock = VirtualClock()
with FakeClaude(clock=sdk_clock, seed=SEED) as api:
    api.respond(*["overloaded_error"] * 4, "ok")
    api.client(max_retries=4).messages.create(model=MODEL, max_tokens=64, messages=HELLO)
for call in api.calls:
    print(call)

# %% [markdown]
# You did not see a single error: the SDK caught the four 529s and tried again, and the
# whole thing took about 6.7 virtual seconds (and no real time). `sdk_clock.sleeps` holds
# the waits it chose.

# %%
print([round(s, 3) for s in sdk_clock.sleeps])

# %% [markdown]
# The plot puts each attempt at the time it arrived. The red crosses failed with 529; the
# green dot succeeded. Each wait is the SDK's `0.5 s * 2**n`, shortened at random by up to
# 25 % (lesson 05 takes the SDK's schedule apart). Try it: in the cell above, queue
# `error("overloaded_error", retry_after=3)` (from `resilience.testing`) instead of
# `"overloaded_error"`, and every wait becomes exactly 3 s: the SDK obeys `retry-after`.

# %%
times = [call.time for call in api.calls]
attempt = [call.retry_count + 1 for call in api.calls]
failed = [call.status != 200 for call in api.calls]


def pick(values, want_failed):
    return [v for v, f in zip(values, failed, strict=True) if f == want_failed]

# %% [markdown]
# This helper draws the attempts: a grey line through them, a red cross at each 529 and a
# green dot at the success.

# %%
def draw_attempts(ax):
    ax.plot(times, attempt, color="0.75", zorder=0)
    ax.scatter(pick(times, True), pick(attempt, True), marker="x", s=90, color="#d62728",
               label="529 overloaded_error")
    ax.scatter(pick(times, False), pick(attempt, False), s=90, color="#2ca02c", label="200 ok")

# %% [markdown]
# Now draw them, and write each wait beside the line. Look at the labels: each wait is
# about twice the one before.

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    draw_attempts(ax)
    for (t0, a0), (t1, a1) in pairwise(zip(times, attempt, strict=True)):
        ax.annotate(f"wait {t1 - t0:.2f} s", ((t0 + t1) / 2, (a0 + a1) / 2), xytext=(8, -10),
                    textcoords="offset points")
    ax.set_yticks(attempt)
    ax.set(xlabel="virtual time since the call [s]", ylabel="attempt number",
           title="The SDK retries 529s by itself, about doubling its wait")
    ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# ## Exercise 00.1: describe an error
#
# Write `describe(e)`: given an `anthropic.APIStatusError`, return the tuple
# `(status, error_type, request_id)`. The checker raises a few different errors through
# the simulated API, including a 502 from a proxy whose body is an HTML page, not JSON.

# %%
def describe(e):
    raise NotImplementedError


check_describe(describe)

# %% [markdown]
# **Hint**: the SDK has already read the body and the headers for you: `e.status_code`,
# `e.type` and `e.request_id`. Digging into `e.body["error"]["type"]` yourself crashes on
# the HTML page, where `e.body` is a string and `e.type` is `None`.
#
# ## Exercise 00.2: count the SDK's attempts
#
# Write `attempts_made(outcomes, max_retries)`: open a new `FakeClaude`, queue `outcomes`
# (a list like `["overloaded_error", "ok"]`), make one `messages.create` call with a client
# built with `max_retries`, and return how many HTTP attempts reached the API. The call may
# end in an error: catch `anthropic.APIError`. The checker tries cases such as five 529s
# with `max_retries=2`, and a 400 followed by `"ok"`.

# %%
def attempts_made(outcomes, max_retries):
    raise NotImplementedError


check_attempts_made(attempts_made)

# %% [markdown]
# **Hint**: `with FakeClaude(clock=VirtualClock()) as api:`, then `api.respond(*outcomes)`,
# then the call inside `try`/`except anthropic.APIError`, and `return len(api.calls)`.
# When it passes, think about the 400 case: why did the SDK not try again?
#
# ## Recap
#
# - `FakeClaude` answers the real SDK with the API's real errors, on a virtual clock; no
#   key, no network, no waiting.
# - The SDK sends through `httpx2`: a plain `respx.mock` never sees its requests. Use
#   `sdk_client_for(router)` or `FakeClaude`.
# - An `APIStatusError` gives you `status_code`, `type`, `api_message`, `request_id`, the
#   response headers and the body. Log the request id.
# - `OverloadedError` is an `InternalServerError`, and the SDK retries 529s on its own,
#   twice by default.
#
# **Next:** [Lesson 01: The error catalogue](01_error_catalogue.ipynb)
