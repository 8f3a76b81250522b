# %% [markdown]
# # Lesson 19: Observability
#
# Everything in this course so far happened where you could see it: a plot, a printed
# list of attempts. In production it happens at 3 a.m., and all you have is what your app
# wrote down. This lesson writes down the right things. A log line per attempt that names
# its `request-id` (what Anthropic's support needs to find it) and never the key. The
# SDK's own OpenTelemetry span for each call, and the attempts it leaves out. Counters fed
# by the breaker and the budget. And the picture an on-call engineer opens first: a bad
# hour on one time axis.
#
# **In this lesson you will**
#
# - log each attempt as one JSON line with its request id, status and retry count, and
#   prove the key is not in the log by searching it
# - read the SDK's own span: one per call, covering every retry and the whole stream,
#   and add the attempts to it with `AttemptLog`
# - count breaker changes and budget decisions with listeners
# - draw a bad hour as on-call sees it: requests, errors by type, breaker state and
#   budget tokens over time

# %%
import io
import json
import logging
from collections import Counter

import anthropic
import matplotlib.pyplot as plt
from course.lesson19 import During, check_on_call, check_prepare
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# %% [markdown]
# And the course's own pieces: the library, the lab's plot style, the test kit.
# %%
from resilience import CircuitBreaker, CircuitOpenError, RetryBudget, VirtualClock
from resilience.lab.plots import OUTAGE_COLOUR, course_style
from resilience.middleware import AttemptLog, BreakerMiddleware, BudgetMiddleware
from resilience.testing import FAKE_API_KEY, FailureRates, FakeClaude, Outage

PROMPT = [{"role": "user", "content": "Hi"}]

# %% [markdown]
# ## One line per attempt, with its request id
#
# A log line is read by a search box before a person. So make each one a JSON object
# whose fields you can search by: the level, the message, and the request's
# `request_id`, `status` and `retry` count. This formatter writes one per record and
# reads the fields from the record, where `extra={...}` puts them.

# %%
class JsonLines(logging.Formatter):
    def format(self, record):
        line = {"level": record.levelname, "msg": record.getMessage()}
        for name in ("request_id", "status", "retry"):
            line[name] = getattr(record, name, None)
        return json.dumps(line)


# %% [markdown]
# The handler writes to a buffer, `LOGS`, so the lesson can print and search what was
# logged. In your app it would be standard output or a file.

# %%
LOGS = io.StringIO()
handler = logging.StreamHandler(LOGS)
handler.setFormatter(JsonLines())
log = logging.getLogger("app")
log.handlers, log.propagate = [handler], False
log.setLevel(logging.INFO)

# %% [markdown]
# `drain()` returns what was logged so far and empties the buffer.

# %%
def drain():
    text = LOGS.getvalue()
    LOGS.seek(0)
    LOGS.truncate()
    return text


# %% [markdown]
# Where do you get one record per attempt? The SDK retries inside `create()`, so your
# code after it sees only the last one. `AttemptLog` (lesson 05's middleware) runs inside
# the SDK's retry loop and calls you back once per attempt:

# %%
def log_attempt(attempt):
    log.info("attempt", extra={"request_id": attempt.request_id, "status": attempt.status,
                               "retry": attempt.retry})


# %% [markdown]
# Two 529s, then an answer. Look for three lines with three request ids: the one to quote
# to support is the last, but the first two are what tell you the service was overloaded.

# %%
with FakeClaude(seed=0) as api:
    api.respond("overloaded_error", "overloaded_error", "ok")
    client = api.client(middleware=[AttemptLog(log_attempt, clock=api.clock)])
    client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
print(drain(), end="")

# %% [markdown]
# The SDK logs too, to the logger named `anthropic`. Send it to the same handler at
# `INFO` and run the call again. Look at its lines between yours: each retry and its
# delay, and no request id.

# %%
sdk_log = logging.getLogger("anthropic")
sdk_log.handlers, sdk_log.propagate = [handler], False
sdk_log.setLevel(logging.INFO)
with FakeClaude(seed=0) as api:
    api.respond("overloaded_error", "overloaded_error", "ok")
    client = api.client(middleware=[AttemptLog(log_attempt, clock=api.clock)])
    client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
print(drain(), end="")

# %% [markdown]
# At `DEBUG` (what `ANTHROPIC_LOG=debug` turns on) the SDK writes much more, request ids
# included. Is the key in it? And the prompt? Search the text and see:

# %%
sdk_log.setLevel(logging.DEBUG)
secret = [{"role": "user", "content": "My card number is 4111 1111 1111 1111"}]
with FakeClaude(seed=0) as api:
    api.client().messages.create(model=api.model, max_tokens=64, messages=secret)
debug_text = drain()
sdk_log.setLevel(logging.WARNING)
print("key in the SDK's debug log:   ", FAKE_API_KEY in debug_text)
print("prompt in the SDK's debug log:", "4111 1111" in debug_text)
print("request id in it:             ", "req_fake_000001" in debug_text)

# %% [markdown]
# So the SDK keeps the key out of its logs, but `DEBUG` writes your users' prompts: turn
# it on to debug, never in production.
#
# ## Never the key
#
# Your own lines are the risk. The key travels in every request, in the `authorization`
# header, and every `APIStatusError` carries its request. `httpx2` hides that header when
# it prints the headers object; a plain `dict` of the same headers does not. Look for
# where the key got through:

# %%
with FakeClaude(seed=0) as api:
    err = api.raised("authentication_error")
log.error("call failed: %s", err.request.headers, extra={"request_id": err.request_id})
log.error("call failed: %s", dict(err.request.headers), extra={"request_id": err.request_id})
print("key in each line:", [FAKE_API_KEY in line for line in drain().splitlines()])

# %% [markdown]
# The same data, written two ways, and one of them leaks. You cannot review every log call
# in a codebase, but you can search the output: in a test, log the worst you can think of
# and assert the key is not in the text, as the cell just did. And you can put a filter on
# the handler that cleans every record before it is written. That is the exercise.
#
# ## Exercise 19.1: log the request id, never the key
#
# Write `prepare(record, key)`, a logging filter (the checker adds it to a handler as
# `lambda record: prepare(record, key)`). For each record:
#
# - set `record.request_id`: keep one given with `extra=`; else use the `request_id` of
#   the exception being logged (`record.exc_info`), if it has one; else `None`;
# - replace the key with `"[REDACTED]"` wherever it would appear in the message, which is
#   `record.getMessage()`: the key may hide in `record.msg` or in `record.args`;
# - return `True`: keep every record.
#
# The checker logs eight records through it, some with the key in the message, in its
# arguments and in a mapping of arguments, and some with a real SDK error attached.

# %%
def prepare(record, key):
    raise NotImplementedError


check_prepare(prepare)

# %% [markdown]
# **Hint**: `getattr(record, "request_id", None)` reads a field given with `extra=`;
# `record.exc_info` is `None` or `(type, error, traceback)`. Build the message once with
# `record.getMessage()`, replace the key in it, then store it as `record.msg` and set
# `record.args = ()`, so the formatter does not apply the arguments a second time.
#
# ## The SDK's own spans
#
# A log line is one moment. A trace shows how long each step took and which call it
# belonged to. The SDK comes with OpenTelemetry built in: it opens one span for each API
# call. To see them you need the OpenTelemetry SDK (`opentelemetry-sdk`), a tracer
# provider, and somewhere to send the spans. Here that is `InMemorySpanExporter`, a list
# you can read back.

# %%
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
TRACED = {"open_telemetry": {"tracer_provider": provider}}

# %% [markdown]
# An app registers its provider once at startup, `trace.set_tracer_provider(provider)`,
# and every client uses it. OpenTelemetry allows that once per process, so this notebook
# hands its provider to each client instead, with the SDK's `open_telemetry` option
# (`TRACED`). In your app, send the spans to your tracing backend with an OTLP exporter.
#
# A span has a name, a kind, a status and attributes. Its ids and times change on every
# run, so `show` prints only what does not, sorted:

# %%
SHOWN = ("anthropic.request.id", "error.type", "gen_ai.operation.name",
         "gen_ai.request.model", "http.request.resend_count", "http.response.status_code")


def show(span):
    print(span.name, span.kind.name, span.status.status_code.name)
    for name in sorted(set(SHOWN) & set(span.attributes)):
        print(f"  {name} = {span.attributes[name]}")


# %% [markdown]
# The same call as before: two 529s, then an answer. Count the attempts and the spans.

# %%
with FakeClaude(seed=0) as api:
    api.respond("overloaded_error", "overloaded_error", "ok")
    api.client(**TRACED).messages.create(model=api.model, max_tokens=64, messages=PROMPT)
finished = spans.get_finished_spans()
print("attempts:", len(api.calls), "| spans:", len(finished))
show(finished[0])

# %% [markdown]
# One span for three attempts. It says the SDK sent the request again twice
# (`http.request.resend_count`), and it names the last attempt's status and request id.
# It does not say what the first two got. When every attempt fails, the span is an error,
# and `error.type` is the API's error type:

# %%
spans.clear()
with FakeClaude(seed=0) as api:
    api.raised("overloaded_error", "overloaded_error", "overloaded_error", max_retries=2,
               **TRACED)
show(spans.get_finished_spans()[0])

# %% [markdown]
# A streamed call's span stays open while you read the stream, so its length is what your
# user waited. Look at the count before and after the loop:

# %%
spans.clear()
with FakeClaude(seed=0) as api:
    stream = api.client(**TRACED).messages.create(model=api.model, max_tokens=64,
                                                  messages=PROMPT, stream=True)
    print("spans finished after create():", len(spans.get_finished_spans()))
    words = [event.delta.text for event in stream if event.type == "content_block_delta"]
    print("spans finished after reading: ", len(spans.get_finished_spans()))

# %% [markdown]
# ## Attempts inside the span
#
# One span per call, not per attempt: the SDK's choice, and the waits between attempts
# and what each one got are missing from it. `AttemptLog` fills the gap. The SDK makes the
# call's span the current one while it retries, so the callback can add each attempt to
# it as a span event. (The OpenTelemetry specification does not define `None` as a value,
# so `add_to_span` leaves out the fields an attempt does not have; it also rounds the
# wait.)

# %%
def add_to_span(attempt):
    fields = {"retry": attempt.retry, "status": attempt.status,
              "request_id": attempt.request_id,
              "wait_s": None if attempt.wait is None else round(attempt.wait, 3)}
    event = {name: value for name, value in fields.items() if value is not None}
    trace.get_current_span().add_event("attempt", event)


# %% [markdown]
# Look at the span's events: each attempt with its status, its request id and the SDK's
# wait before it.

# %%
spans.clear()
with FakeClaude(seed=0) as api:
    api.respond("overloaded_error", "overloaded_error", "ok")
    client = api.client(middleware=[AttemptLog(add_to_span, clock=api.clock)], **TRACED)
    client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
for event in spans.get_finished_spans()[0].events:
    print(event.name, {name: event.attributes[name] for name in sorted(event.attributes)})

# %% [markdown]
# ## Metrics from listeners
#
# Logs and traces answer "what happened to this request?". A dashboard answers "what is
# happening?": counts over time. The breaker and the budget tell you about each of their
# decisions through listeners: the breaker calls `listener(breaker, old, new)` on each
# change of state, the budget calls `listener(budget, event)` with `"granted"` or
# `"denied"` on each retry it is asked to pay for. Here they feed one `Counter`, as they
# would feed a metrics library's counters, and the budget's also samples its tokens.

# %%
METRICS, TOKENS, CLOCK = Counter(), [], VirtualClock()


def on_breaker(breaker, old, new):
    METRICS[f"breaker {old} -> {new}"] += 1


def on_budget(budget, event):
    METRICS[f"budget {event}"] += 1
    TOKENS.append((CLOCK.now(), budget.tokens))


# %% [markdown]
# A listener runs inside your request path, so keep it cheap. It cannot break a call:
# both classes log a listener that raises and carry on. The third source is `AttemptLog`
# again, counting attempts by what they got. Its callback has the same guard: one that
# raises is logged and the call carries on. Still, keep it to a counter.

# %%
def on_attempt(attempt):
    what = str(attempt.status or attempt.error)
    METRICS[f"attempt {what}" if attempt.sent else "attempt refused"] += 1


# %% [markdown]
# ## A bad hour
#
# Now the hour the on-call engineer gets paged for, on virtual time. One call every 20
# seconds. In the background, 2 % of calls get a 429 and 2 % a 500. From minute 10 to
# minute 20 the API browns out: 40 % of calls get a 529. From minute 30 to minute 42 it is
# down: every call gets a 529. (`During` from `course/lesson19.py` applies a scenario
# only between two times.)

# %%
BAD_HOUR = [During(600, 1200, FailureRates({"overloaded_error": 0.4})),
            Outage(start=1800, end=2520),
            FailureRates({"rate_limit_error": 0.02, "api_error": 0.02})]

# %% [markdown]
# The client is built like lesson 13's: the SDK's two retries, with a breaker
# (5 failures in a row open it for 60 s) and a budget (5 tokens, 0.1 per call) inside
# them. `AttemptLog` goes first, so it also sees the attempts the breaker refuses.

# %%
def wire(api):
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=60.0, clock=api.clock,
                             listeners=[on_breaker])
    budget = RetryBudget(capacity=5, ratio=0.1, listeners=[on_budget])
    attempts = AttemptLog(on_attempt, clock=api.clock)
    middleware = [attempts, BreakerMiddleware(breaker), BudgetMiddleware(budget)]
    return api.client(middleware=middleware), breaker, budget, attempts


# %% [markdown]
# Run the hour: 180 calls, each at its slot (or as soon as the one before it is done).

# %%
FAILED = Counter()
with FakeClaude(clock=CLOCK, seed=0) as api:
    api.scenario(*BAD_HOUR)
    client, breaker, budget, attempts = wire(api)
    for i in range(180):
        CLOCK.advance(max(0.0, 20.0 * i - CLOCK.now()))
        TOKENS.append((CLOCK.now(), budget.tokens))
        try:
            client.messages.create(model=api.model, max_tokens=64, messages=PROMPT)
        except (anthropic.APIError, CircuitOpenError) as e:
            FAILED[type(e).__name__] += 1
print("calls that failed, by what your code caught:", dict(sorted(FAILED.items())))

# %% [markdown]
# And the counters the listeners filled during the hour:

# %%
for name in sorted(METRICS):
    print(f"{name:28} {METRICS[name]:4d}")

# %% [markdown]
# Read them as the on-call engineer would. The budget paid for 12 retries and refused 24.
# The breaker opened once, then went half-open and back to open 12 times, once a minute:
# each trial call failed, until the 13th closed it. The 30 refused
# attempts are the 30 `CircuitOpenError`s your code caught: calls that failed at once and
# cost the API nothing. Totals do not say *when*, though. For that you need the timeline.
#
# ## The timeline on-call opens first
#
# Three rows on one time axis, in minutes. `per_bin` counts the attempts of one kind (a
# status, or `"refused"`) in each 2-minute bin.

# %%
KINDS = {"200": ("#2ca02c", "200 answer"), "429": ("#ff7f0e", "429"),
         "500": ("#9467bd", "500"), "529": ("#d62728", "529"),
         "refused": ("#7f7f7f", "refused by the breaker")}
BIN = 2


def per_bin(kind):
    counts = Counter(int(a.time // 60 // BIN) for a in attempts.attempts
                     if (str(a.status) if a.sent else "refused") == kind)
    return [counts[i] for i in range(60 // BIN)]


# %% [markdown]
# `shade` marks the brown-out in orange and the outage in red, on any row.

# %%
def shade(ax):
    ax.axvspan(10, 20, color="#ff7f0e", alpha=0.1, zorder=0)
    ax.axvspan(30, 42, color=OUTAGE_COLOUR, alpha=0.1, zorder=0)


# %% [markdown]
# The top row stacks the attempts in each bin by what they got: an answer (200), an error
# by status, or refused (grey) by the breaker. `draw_attempts` draws it:

# %%
def draw_attempts(ax):
    edges, floor = [i * BIN for i in range(60 // BIN)], [0] * (60 // BIN)
    for kind, (colour, label) in KINDS.items():
        counts = per_bin(kind)
        ax.bar(edges, counts, BIN, bottom=floor, align="edge", color=colour, label=label)
        floor = [a + b for a, b in zip(floor, counts, strict=True)]
    ax.set(ylabel=f"attempts per {BIN} min", ylim=(0, 12))
    ax.legend(ncol=5, loc="upper left")


# %% [markdown]
# The middle row is the breaker's state, from its `history`. The bottom row is the
# budget's tokens, as the listener and the loop sampled them.

# %%
LEVEL = {"closed": 0, "half_open": 1, "open": 2}


def draw_breaker(ax):
    times = [t / 60 for t, _ in breaker.history] + [60.0]
    levels = [LEVEL[state] for _, state in breaker.history]
    ax.step(times, levels + levels[-1:], where="post", color="#1f77b4")
    ax.set(yticks=list(LEVEL.values()), yticklabels=list(LEVEL), ylabel="breaker")


# %% [markdown]
# The bottom row is a step line too: tokens only change when a call deposits or a retry
# spends.

# %%
def draw_tokens(ax):
    ax.step([t / 60 for t, _ in TOKENS], [n for _, n in TOKENS], where="post", color="#9467bd")
    ax.set(ylabel="budget tokens", xlabel="virtual time [min]", ylim=(0, 5.5))


# %% [markdown]
# Read the rows together, left to right. In the brown-out (orange), attempts first climb
# above the 6 calls in each bin as the SDK retries, then fall back to 6 as the budget
# empties: each call now gets one attempt, and its 529 goes to your user. The breaker
# stays closed: the 529s never come five in a row. In the outage (red) the breaker opens
# after five 529s in a row and the attempts turn grey: refused locally, at no cost to the
# API, with one trial a minute. Look at the purple bar: the first trial after the outage
# drew one of the background 500s, so the breaker stayed open a minute longer than the
# outage. That is what a single trial call costs. The budget then refills slowly, 0.1
# tokens a call.

# %%
with course_style():
    fig, axes = plt.subplots(3, 1, figsize=(9.0, 7.0), sharex=True, layout="constrained",
                             height_ratios=[3, 1, 1.4])
    for ax, draw in zip(axes, [draw_attempts, draw_breaker, draw_tokens], strict=True):
        shade(ax)
        draw(ax)
    axes[0].set_title("A bad hour: the budget holds back the brown-out, the breaker the outage")
plt.show()

# %% [markdown]
# ## Exercise 19.2: the on-call numbers
#
# Write `on_call(attempts, history, until)`. `attempts` is an `AttemptLog`'s list,
# `history` a breaker's `(time, state)` list, `until` the end of the period. Return a
# dict with:
#
# - `"calls"`: first attempts (`retry == 0`), sent or not: the calls your app made;
# - `"retries"`: attempts with `retry > 0` that were sent: the extra load on the API;
# - `"refused"`: attempts that were not sent (`attempt.sent` is False);
# - `"errors"`: sent attempts that failed (no status, or a status of 400 and up), counted
#   by `str(status)` (`"529"`), or by the error's name when there is no status;
# - `"opened"`: how many times the breaker changed into `"open"`;
# - `"open_seconds"`: the time spent `"open"` (half-open is not open), up to `until`.
#
# The checker runs it on a hand-made log and on a short run through the simulated API.

# %%
def on_call(attempts, history, until):
    raise NotImplementedError


check_on_call(on_call)

# %% [markdown]
# **Hint**: `sent = [a for a in attempts if a.sent]` first. `Counter(...)` counts the
# errors; return `dict(...)` of it. For the time open, pair each history entry with the
# time of the next one (`until` for the last): `zip(history, [t for t, _ in history[1:]] +
# [until])`, and add `end - start` where the state is `"open"`. Then try
# `on_call(attempts.attempts, breaker.history, 3600.0)` on the bad hour.
#
# ## Recap
#
# - Log one JSON line per attempt with `request_id`, `status` and `retry`; `AttemptLog`
#   gives you each attempt, which code after `create()` never sees.
# - Search your log output for the key in a test. `httpx2` masks the `authorization`
#   header only when it prints its own headers object; a filter on the handler cleans
#   every record. The SDK's `DEBUG` log holds no key but does hold your users' prompts.
# - The SDK opens one `CLIENT` span per call, over every retry and the whole stream, with
#   the resend count, the last status and request id, and `error.type`. Add the attempts
#   to it as events from `AttemptLog`.
# - Breaker and budget listeners feed counters; keep them cheap. A timeline of
#   attempts by kind, breaker state and budget tokens tells a bad hour's story at a glance.
#
# **Next:** [Lesson 20: Batches](20_batches.ipynb)
