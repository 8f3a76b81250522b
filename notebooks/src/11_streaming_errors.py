# %% [markdown]
# # Lesson 11: Streaming errors
#
# A streamed answer can fail halfway. The API sends `200 OK`, the first words reach your
# user, and then an `overloaded_error` arrives inside the stream. Nothing about the HTTP
# status says so: it was 200. Retry code built around status codes misses it, the SDK does
# not retry it, and the words already on screen have to be dealt with. This lesson takes the
# failure apart, shows the other way a stream breaks (the connection drops, and the error
# is not even an `anthropic` one), and gives you three honest ways to handle both.
#
# **In this lesson you will**
#
# - see an overload arrive after a 200, while you iterate the stream, not from `create()`
# - check that neither `max_retries` nor a timeout helps, and why status checks misjudge it
# - classify it by `e.type`, and retry the whole stream with `resilience.retry`
# - catch a connection dropped mid-stream, which raises a raw `httpx2` error
# - reconcile the partial text: restart, continue, or stop and say so
# - plot what each choice shows your user, and what it wastes

# %%
import json
import random

import anthropic
import httpx2
import matplotlib.pyplot as plt
from course.lesson11 import check_answer_or_partial, check_is_retryable

from resilience import MODEL, VirtualClock, classify, retry
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FakeClaude, dropped_stream, ok, stream_error

clock = VirtualClock()
QUESTION = "Say hello."
PROMPT = [{"role": "user", "content": QUESTION}]

# %% [markdown]
# A raw stream from `messages.create(stream=True)` is a sequence of events. The text sits
# in the `content_block_delta` events. This small generator yields just the text pieces;
# the rest of the lesson uses it.

# %%
def texts(stream):
    """The text pieces of a raw stream from `messages.create(stream=True)`."""
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            yield event.delta.text


# %% [markdown]
# ## An error after a 200
#
# `stream_error("overloaded_error", after_chunks=2)` tells the simulated API to answer
# `200`, send two pieces of text, then an `event: error` frame, as the real API does when it
# runs out of capacity mid-answer. Look at where the exception comes from: `create()`
# returns a `Stream` without complaint; the error is raised by the `for` loop.

# %%
with FakeClaude(clock=clock, seed=0) as api:
    api.respond(stream_error("overloaded_error", after_chunks=2))
    stream = api.client().messages.create(model=api.model, max_tokens=256, messages=PROMPT,
                                          stream=True)
    print("create() returned a", type(stream).__name__)
    shown = []
    try:
        for piece in texts(stream):
            shown.append(piece)
    except anthropic.APIStatusError as e:
        error = e
print("on screen when it failed:", repr("".join(shown)))

# %% [markdown]
# Now look at the exception itself. It is a bare `APIStatusError`, not an
# `OverloadedError`, and not even an `InternalServerError`: an `except` clause written for
# those classes lets it through. Its `status_code` is the stream's 200. Only `type`, read
# from the error frame's body, says what happened.

# %%
print("class:", type(error).__name__, "| status_code:", error.status_code,
      "| type:", error.type)
print("request id:", error.request_id)
print("an OverloadedError?", isinstance(error, anthropic.OverloadedError))
print("an InternalServerError?", isinstance(error, anthropic.InternalServerError))

# %% [markdown]
# ## Does `max_retries` help? Does a timeout?
#
# Users ask exactly this on the SDK's issue tracker (anthropic-sdk-python #688). The
# function below reads one failing stream with a client built from `options`, and
# returns how many requests reached the API and the status the exception carried.

# %%
def requests_for_one_stream(**options):
    with FakeClaude(clock=clock, seed=0) as api:
        api.respond("stream_overloaded")
        client = api.client(**options)
        try:
            for _ in texts(client.messages.create(model=api.model, max_tokens=256,
                                                  messages=PROMPT, stream=True)):
                pass
        except anthropic.APIStatusError as e:
            return len(api.calls), e.status_code


# %% [markdown]
# Look for the first number: one request every time. Ten retries, or a 5 s timeout,
# change nothing.

# %%
for options in ({}, {"max_retries": 10}, {"timeout": 5.0}):
    requests, status = requests_for_one_stream(**options)
    print(f"{options!s:22} -> {requests} request, error with status {status}")

# %% [markdown]
# Compare a 529 that arrives *before* the stream starts: the SDK sees the status and retries
# it itself (twice by default). The difference is timing. The SDK decides about retries
# when the response headers arrive; once it has handed you a 200 stream, that decision is
# made, and the error in the body is yours to handle.

# %%
with FakeClaude(clock=clock, seed=0) as api:
    api.respond("overloaded_error", "overloaded_error", "ok")
    stream = api.client().messages.create(model=api.model, max_tokens=256, messages=PROMPT,
                                          stream=True)
    text = "".join(texts(stream))
print([call.status for call in api.calls], "->", repr(text))

# %% [markdown]
# ## Status codes misjudge it
#
# Many retry loops decide on `e.status_code`: a list of statuses, or `>= 500`. Here is one
# in the style of a popular guide: five attempts, retry only statuses in a list. Run it on
# a stream that fails once and would then succeed. Look for the number of requests it made
# before giving up.

# %%
def retry_by_status(client, attempts=5):
    for n in range(attempts):
        try:
            stream = client.messages.create(model=MODEL, max_tokens=256, messages=PROMPT,
                                            stream=True)
            return "".join(texts(stream))
        except anthropic.APIStatusError as e:
            if n == attempts - 1 or e.status_code not in (429, 500, 502, 503, 529):
                raise
            clock.sleep(1.0)


# %% [markdown]
# It gives up after one request: 200 is not in its list, so it treats a passing overload as
# a permanent failure. The next answer, `"ok"`, was one request away.

# %%
with FakeClaude(clock=clock, seed=0) as api:
    api.respond("stream_overloaded", "ok")
    try:
        retry_by_status(api.client())
    except anthropic.APIStatusError as e:
        print(f"gave up: status {e.status_code}, type {e.type}, "
              f"after {len(api.calls)} request(s); still queued: {api.pending}")

# %% [markdown]
# `classify` reads `type` when the status is 200 (rule 5 in `resilience/classification.py`):
# an overload inside a stream is as retryable as a 529. An error frame with a type that no
# retry can fix, such as `invalid_request_error`, stays not retryable.

# %%
print("status list says retryable:", error.status_code in (429, 500, 502, 503, 529))
print("status >= 500 says retryable:", error.status_code >= 500)
verdict = classify(error)
print("classify:", verdict, "| category:", verdict.category, "| type:", verdict.error_type)

# %% [markdown]
# ## A connection that drops mid-stream
#
# A stream can also break with no error frame at all: the connection closes halfway
# through the body. `dropped_stream(after_chunks=2)` tells the simulated API to do that
# after two pieces of text. The loop below catches `Exception` on purpose, to see what
# arrives. Look at its class, and at whether `except anthropic.APIError` would catch it.

# %%
with FakeClaude(clock=clock, seed=0) as api:
    api.respond(dropped_stream(after_chunks=2), "ok")
    stream = api.client().messages.create(model=api.model, max_tokens=256, messages=PROMPT,
                                          stream=True)
    shown = []
    try:
        for piece in texts(stream):
            shown.append(piece)
    except Exception as e:  # on purpose: see what arrives
        dropped = e
print("raised:", type(dropped).__name__, "| on screen:", repr("".join(shown)))

# %% [markdown]
# Now place it. Is it an `httpx2` error or an `anthropic` one? And did the SDK try again?
# The `"ok"` still queued tells you.

# %%
print("an httpx2.TransportError?", isinstance(dropped, httpx2.TransportError))
print("an anthropic.APIError?", isinstance(dropped, anthropic.APIError))
print("requests:", len(api.calls), "| still queued:", api.pending)

# %% [markdown]
# It is `httpx2.RemoteProtocolError`, from the HTTP library under the SDK, raised as is.
# The SDK wraps transport failures in `APIConnectionError` only inside `create()`; once it
# has handed you the stream, it neither wraps nor retries them. So `except
# anthropic.APIStatusError`, and even `except anthropic.APIError`, let it through, and
# your program crashes with the text half shown. Catch `httpx2.TransportError` too (it
# covers every dropped or timed-out read). `classify` knows httpx2's errors:

# %%
print("classify:", classify(dropped))

# %% [markdown]
# ## Retry the whole stream yourself
#
# Since the SDK will not retry it, put the retry around *reading* the stream, not around
# `create()` alone: the error comes from the loop. Build the client with `max_retries=0` so
# there is one retry layer, not two. `resilience.retry` retries what `classify` calls
# retryable, with full jitter, a deadline, and a hook that runs before each wait (here it
# tells the user what is going on).

# %%
def tell_user(attempt, delay, verdict):
    print(f"  [attempt {attempt} failed: {verdict}; trying again in {delay:.3f} s]")


# %% [markdown]
# Decorate the function that creates the stream *and* reads it to the end. It waits on a
# fresh virtual clock, `fresh`, which starts at 0, so the times below read from the start
# of the call.

# %%
fresh = VirtualClock()


@retry(attempts=3, deadline=30.0, clock=fresh, rng=random.Random(7), on_retry=tell_user)
def answer(client):
    stream = client.messages.create(model=MODEL, max_tokens=256, messages=PROMPT,
                                    stream=True)
    return "".join(texts(stream))

# %% [markdown]
# Now run it on a stream that fails once, with the simulated API on the same clock. Look for
# two requests in the log: both answered 200, the first with the error frame, the second
# with the whole answer, after the wait the hook announced.

# %%
with FakeClaude(clock=fresh, seed=0) as api:
    api.respond("stream_overloaded", "ok")
    print(repr(answer(api.client(max_retries=0))))  # one retry layer: ours
for call in api.calls:
    print(call)

# %% [markdown]
# The SDK's `messages.stream(...)` helper raises the same bare `APIStatusError` with status
# 200 from inside its `with` block, and the same raw `httpx2` error when the connection
# drops, so the same decorator works around it. Here `get_final_text()` reads the stream to
# the end. This time the stream fails twice: an overload, then a dropped connection.

# %%
with FakeClaude(clock=clock, seed=0) as api:
    client = api.client(max_retries=0)
    api.respond("stream_overloaded", "stream_dropped", "ok")

    @retry(attempts=3, deadline=30.0, clock=clock, rng=random.Random(7), on_retry=tell_user)
    def answer_with_helper():
        with client.messages.stream(model=api.model, max_tokens=256, messages=PROMPT) as s:
            return s.get_final_text()

    print(repr(answer_with_helper()))
print([f"{call.status} {call.outcome}" for call in api.calls])

# %% [markdown]
# Try it: add a third `"stream_overloaded"` before `"ok"`. With `attempts=3` the decorator
# gives up and re-raises the last error, with the attempt history in its notes.
#
# ## What was shown must be reconciled
#
# The retries above joined the text before showing it, so a failed attempt left nothing on
# screen. A chat app shows each piece as it arrives. When the stream breaks, the user has
# already read part of an answer. You have three honest choices:
#
# | strategy | what the user sees | cost |
# |---|---|---|
# | (a) restart | a fresh answer replaces the partial text; a notice | the partial text twice |
# | (b) continue | the partial text stays; the rest is appended | the partial text as input |
# | (c) stop | the partial text stays, marked incomplete | an incomplete answer |
#
# A `Screen` stands for your UI. It keeps the text shown, every change as
# `(time, characters shown)`, the failures and the notices. The simulated API sends a whole
# stream at once, so `show` moves the virtual clock 0.5 s per piece, as a model generating
# text would.

# %%
class Screen:
    def __init__(self, clock):
        self.clock, self.text, self.received = clock, "", 0
        self.trace, self.failures, self.notices = [(clock.now(), 0)], [], []

    def show(self, piece):
        self.clock.advance(0.5)
        self.text, self.received = self.text + piece, self.received + len(piece)
        self.trace.append((self.clock.now(), len(self.text)))

# %% [markdown]
# When a stream breaks, a strategy calls `screen.fail(notice)`. It records when, and how
# many characters were on screen, and keeps the notice the user sees. The last line adds it
# to `Screen` as a method.

# %%
def fail(self, notice):
    self.failures.append((self.clock.now(), len(self.text)))
    self.notices.append(notice)


Screen.fail = fail


# %% [markdown]
# **(a) Restart.** Each attempt clears the screen first, so the new answer replaces the
# old one. The `on_retry` hook records the failure and the notice the user sees.

# %%
def restart(client, screen):
    @retry(attempts=3, deadline=30.0, clock=screen.clock, rng=random.Random(7),
           on_retry=lambda n, delay, v: screen.fail("[interrupted: restarting the answer]"))
    def attempt():
        screen.text = ""  # discard what was shown: the answer starts over
        screen.trace.append((screen.clock.now(), 0))
        for piece in texts(client.messages.create(model=MODEL, max_tokens=256,
                                                  messages=PROMPT, stream=True)):
            screen.show(piece)
    attempt()


# %% [markdown]
# **(b) Continue.** Send the cut-off answer back and ask for the rest. Older guides end the
# request with the partial text as the *assistant* turn (a "prefill"), so the model
# continues it directly. Anthropic's migration guide for the Claude 4.6 models says a
# prefilled assistant turn returns a 400 on them, and the course's model is one:

# %%
print(MODEL)

# %% [markdown]
# So the request below ends with a *user* turn: the question, the cut-off answer as an
# ordinary assistant turn, then a request to go on. Read the shape it prints.

# %%
def continue_messages(question, partial):
    return [{"role": "user", "content": question},
            {"role": "assistant", "content": partial},
            {"role": "user", "content": "Your answer was cut off. Continue exactly where it "
                                        "stops, without repeating any of it."}]


print(json.dumps(continue_messages(QUESTION, "Hello from the simulated"), indent=1))

# %% [markdown]
# The strategy sends the plain question while nothing has been shown yet, and the
# continuation request once there is text to keep. The model's continuation may not join
# the cut-off text perfectly (a repeated word, a missing space): check the seam in a real
# app. The simulated API answers whatever you script: here, the missing end of the sentence.

# %%
def continue_(client, screen):
    @retry(attempts=3, deadline=30.0, clock=screen.clock, rng=random.Random(7),
           on_retry=lambda n, delay, v: screen.fail("[interrupted: continuing]"))
    def attempt():
        messages = continue_messages(QUESTION, screen.text) if screen.text else PROMPT
        for piece in texts(client.messages.create(model=MODEL, max_tokens=256,
                                                  messages=messages, stream=True)):
            screen.show(piece)
    attempt()


# %% [markdown]
# **(c) Stop and say so.** No retry: keep what was shown and mark it as incomplete. This is
# right when a retry would cost more than it is worth, or the deadline has passed.

# %%
def stop(client, screen):
    try:
        for piece in texts(client.messages.create(model=MODEL, max_tokens=256,
                                                  messages=PROMPT, stream=True)):
            screen.show(piece)
    except (anthropic.APIStatusError, httpx2.TransportError) as e:
        screen.fail(f"[the answer was cut off ({classify(e).category}); ask again]")


# %% [markdown]
# Each strategy meets the same failure: a stream that breaks after two pieces
# (`"Hello from the simulated"`), then whatever the next request gets. Restart is answered
# with the whole text again; continue with only the missing end.

# %%
def run(strategy, *then):
    screen = Screen(VirtualClock())
    with FakeClaude(clock=screen.clock, seed=0) as api:
        api.respond(stream_error("overloaded_error", after_chunks=2), *then)
        strategy(api.client(max_retries=0), screen)
    return screen


screens = {"restart": run(restart, "ok"),
           "continue": run(continue_, ok(" Claude API.", chunks=1)),
           "stop": run(stop)}

# %% [markdown]
# Look at the last three columns. Restart generated 60 characters to show 36: the first 24
# were thrown away, after the user had read them. Continue generated each character once.
# Stop is cheapest and incomplete.

# %%
print(f"{'strategy':9} {'final text':40} {'received':>8} {'shown':>6} {'wasted':>7}")
for name, s in screens.items():
    print(f"{name:9} {s.text!r:40} {s.received:8d} {len(s.text):6d} "
          f"{s.received - len(s.text):7d}")
    print(f"{'':9} notices: {s.notices}")

# %% [markdown]
# To plot the traces, turn each into two lists, times and characters on screen. Each is
# held to the same end, half a second after the last change, so every line reaches the
# right edge.

# %%
end = max(s.trace[-1][0] for s in screens.values()) + 0.5
traces = {name: list(zip(*s.trace, (end, len(s.text)), strict=True))
          for name, s in screens.items()}

# %% [markdown]
# The plot traces the characters on screen against virtual time, with the failure marked.
# Look for the drop to zero in the restart line: that is the user watching text vanish
# and reappear. The continue line picks up where it broke.

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    for (name, (times, chars)), style in zip(traces.items(), ["-", "-", "--"], strict=True):
        ax.step(times, chars, where="post", linestyle=style, label=name)
    fail_t, fail_n = screens["restart"].failures[0]
    ax.plot(fail_t, fail_n, "X", color="#d62728", markersize=12, label="error mid-stream")
    ax.set_xlabel("virtual time [s]")
    ax.set_ylabel("characters on screen [chars]")
    ax.set_title("Restarting wipes what the user read; continuing keeps it")
    ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# Try it: change `after_chunks=2` in `run` to `1`, and the continuation to
# `ok("he simulated Claude API.", chunks=1)`. Restart wastes less when the stream breaks early; the
# later the break, the more a restart throws away.
#
# ## Exercise 11.1: retryable, mid-stream or not
#
# Write `is_retryable(exc)` for an `anthropic.APIStatusError`, without calling `classify`.
# Return True for a 408, 409, 429 and any status >= 500 but 501; for an error inside a 200
# stream, decide by `exc.type`: retry `overloaded_error`, `api_error`, `rate_limit_error`,
# `timeout_error` and `conflict_error`, nothing else. A spend limit is never retryable,
# whatever its status and type say: its `exc.error_code` ends in `spend_limit_reached`.
# The checker compares your answer with `classify(exc).retryable` on thirteen real SDK
# exceptions, from plain HTTP errors and from streams. In two of them status and type
# disagree: a proxy's 502 is an HTML page with no `type` at all, and the spend-limit 429
# has the type `rate_limit_error`.

# %%
def is_retryable(exc):
    raise NotImplementedError


check_is_retryable(is_retryable)

# %% [markdown]
# **Hint**: rule out the spend limit first
# (`(exc.error_code or "").endswith("spend_limit_reached")`), then branch on
# `exc.status_code == 200`. For that case, test `exc.type in {...}`; otherwise test the
# status: `status in (408, 409, 429) or (status >= 500 and status != 501)`.
#
# ## Exercise 11.2: stop and say so, but only mid-stream
#
# Write `answer_or_partial(client, model, messages)`. Stream the answer with
# `client.messages.create(..., stream=True)` and return `(text, complete)`:
#
# - the whole text and `True` when the stream ends normally;
# - the text received so far and `False` when the stream breaks after some text arrived:
#   an `APIStatusError` (an error frame) or an `httpx2.TransportError` (a dropped
#   connection);
# - when the error comes before any text (from `create()`, or from an empty stream), there is
#   nothing to show: let the exception propagate, so a retry layer can handle it.

# %%
def answer_or_partial(client, model, messages):
    raise NotImplementedError


check_answer_or_partial(answer_or_partial)

# %% [markdown]
# **Hint**: collect the pieces in a list inside `try:`; in
# `except (anthropic.APIStatusError, httpx2.TransportError)` re-raise with a bare `raise` if
# the list is empty, else return `("".join(pieces), False)`.
#
# ## Recap
#
# - An error after a 200 is raised while you iterate the stream, as a bare `APIStatusError`
#   with `status_code == 200`; only `e.type` says it is an overload.
# - The SDK never retries it: `max_retries` and timeouts do not help. Retry around the
#   *reading* of the stream, with the client at `max_retries=0`.
# - A connection dropped mid-stream raises the raw `httpx2` exception (for example
#   `RemoteProtocolError`), not an `anthropic.APIError`: catch `httpx2.TransportError` as
#   well as `anthropic.APIStatusError` around the loop.
# - Decide with `classify` (or `e.type`), never with a list of status codes.
# - Text already shown must be reconciled: restart with a notice, continue in a new user
#   turn (prefill returns a 400 on the 4.6 models), or stop and mark the answer incomplete.
#
# **Next:** [Lesson 12: Retry storms and budgets](12_retry_storms_and_budgets.ipynb)
