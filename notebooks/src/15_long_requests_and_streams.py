# %% [markdown]
# # Lesson 15: Long requests and streams
#
# A long answer takes minutes to write. Ask for it without streaming and the SDK refuses
# before it sends a byte. Stream it and a new question appears: how long do you wait? The
# SDK's timeout is not a limit on the whole request. It bounds the silence between two
# reads, so a stream that trickles in can hold your user for as long as it likes, while one
# that goes quiet for a moment too long fails with an error that is not even an `anthropic`
# one. This lesson measures each case on virtual time and builds the watchdog a long stream
# needs. [Lesson 11](11_streaming_errors.ipynb) showed how a stream breaks; here you decide
# how long to wait, and what a restart costs when the answer is long.
#
# **In this lesson you will**
#
# - meet `ValueError("Streaming is required...")`, raised before any request, and compute
#   the `max_tokens` where it starts
# - tell the connect timeout from the read timeout, and see that a read timeout bounds each
#   silence, not the total
# - catch a stalled or dropped stream, which raises raw `httpx2` errors the SDK never retries
# - write a watchdog with a total deadline that still lets a slow, steady stream finish
# - weigh restart, resume and stop on a long answer: tokens, time, and what the user saw

# %%
import anthropic
import httpx2
import matplotlib.pyplot as plt
from anthropic._constants import MODEL_NONSTREAMING_TOKENS
from course.lesson15 import check_collect, check_watch, paced_stream

from resilience import MODEL, classify
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FakeClaude, Slow, dropped_stream, stalled_stream

PROMPT = [{"role": "user", "content": "Tell me a long story."}]

# %% [markdown]
# ## Too long to wait for: "Streaming is required"
#
# Ask for up to 64,000 tokens without `stream=True`. Look at where the error comes from:
# `create()` raises a `ValueError` (not an `anthropic.APIError`), and the simulated API saw
# no request at all.

# %%
with FakeClaude(seed=0) as api:
    try:
        api.client().messages.create(model=api.model, max_tokens=64_000, messages=PROMPT)
    except ValueError as e:
        print(f"{type(e).__name__}: {str(e).split('. ')[0]}.")
print("requests sent:", len(api.calls))

# %% [markdown]
# Where does the limit start? The SDK estimates the time an answer may take as one hour for
# 128,000 tokens, `3600 s * max_tokens / 128000`, and refuses when that exceeds its 600 s
# default timeout. The check is a private client method: fine to read, not to rely on. The
# cell below finds the smallest `max_tokens` it refuses, by bisection.

# %%
def needs_streaming(client, max_tokens, model=MODEL):
    try:
        client._calculate_nonstreaming_timeout(max_tokens, MODEL_NONSTREAMING_TOKENS.get(model))
    except ValueError:
        return True
    return False


# %% [markdown]
# Look for the first whole number above 21,333.3, where the estimate reaches 600 s.

# %%
with FakeClaude(seed=0) as api:
    client, low, high = api.client(), 1, 128_000
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if needs_streaming(client, middle) else (middle + 1, high)
print("smallest max_tokens that needs streaming:", low)

# %% [markdown]
# Some older models are capped lower: the SDK keeps a table, `MODEL_NONSTREAMING_TOKENS`.
# The course's model is not in it.

# %%
print("cap for", MODEL, "->", MODEL_NONSTREAMING_TOKENS.get(MODEL))
print("cap for claude-opus-4-0 ->", MODEL_NONSTREAMING_TOKENS.get("claude-opus-4-0"))
with FakeClaude(seed=0) as api:
    print("opus-4-0 at 8,193 tokens needs streaming:", needs_streaming(api.client(), 8_193,
                                                                       "claude-opus-4-0"))

# %% [markdown]
# The check runs only while the client has the default timeout and the call sets none. Set
# your own and the SDK trusts you: the 64,000-token request goes out. It then waits for the
# whole answer in one silence, which your timeout must cover.

# %%
with FakeClaude(seed=0) as api:
    api.client(timeout=900.0).messages.create(model=api.model, max_tokens=64_000,
                                              messages=PROMPT)
    api.client().messages.create(model=api.model, max_tokens=64_000, messages=PROMPT,
                                 timeout=900.0)
print("requests sent with a timeout of your own:", len(api.calls))

# %% [markdown]
# The way the SDK wants: stream. `messages.stream(...)` reads the stream for you, and
# `get_final_message()` returns the same `Message` a plain call would.

# %%
with FakeClaude(seed=0) as api:
    client = api.client()
    with client.messages.stream(model=api.model, max_tokens=64_000, messages=PROMPT) as stream:
        message = stream.get_final_message()
print(repr(message.content[0].text), "| requests sent:", len(api.calls))

# %% [markdown]
# ## Connect and read timeouts
#
# An SDK timeout is an `httpx2.Timeout` (`anthropic.Timeout` is the same class) with four
# parts. `connect` bounds opening the connection; `read` bounds the wait for the next bytes;
# `write` and `pool` bound sending and waiting for a free connection. A plain number sets
# all four. Compare the default with a timeout that keeps `connect` at 5 s:

# %%
for name, limits in [("default", anthropic.DEFAULT_TIMEOUT),
                     ("yours", httpx2.Timeout(60.0, connect=5.0, read=10.0))]:
    print(f"{name:8} connect={limits.connect} read={limits.read} write={limits.write} "
          f"pool={limits.pool}")
print("same class:", anthropic.Timeout is httpx2.Timeout)
READ_10 = httpx2.Timeout(60.0, connect=5.0, read=10.0)

# %% [markdown]
# The read timeout also bounds the wait for the first byte, while the server works on its
# answer. `Slow(seconds)` makes the simulated API take that long to answer. Look at the
# time of the timeout: 10 s, the read timeout, not 12 s.

# %%
for seconds in (8.0, 12.0):
    with FakeClaude(seed=0) as api:
        api.scenario(Slow(seconds))
        error = api.raised(timeout=READ_10)  # no retries
    print(f"answer ready after {seconds:4.1f} s: {type(error).__name__ if error else 'answered'}"
          f" at t={api.clock.now():.1f} s")

# %% [markdown]
# The simulated API has no network to connect to, but it can raise what a slow connect
# raises. The SDK turns `httpx2.ConnectTimeout` into `APITimeoutError` and retries it, as it
# retries any timeout before an answer. Look at the three attempts:

# %%
with FakeClaude(seed=0) as api:
    api.respond(httpx2.ConnectTimeout, httpx2.ConnectTimeout, httpx2.ConnectTimeout)
    error = api.raised(max_retries=2)
print(type(error).__name__, "|", classify(error), "| attempts:", len(api.calls))

# %% [markdown]
# Now the read timeout, on a stream. `paced_stream(gaps)` (from `course/lesson15.py`) is a
# stream whose words arrive `gaps` seconds apart on the virtual clock; `None` is a silence
# that never ends. `arrivals` reads one answer and returns when each word arrived, the
# error (if any) and when it all ended.

# %%
def arrivals(outcome, stream=True, **options):
    times, error = [], None
    with FakeClaude(seed=0) as api:
        api.respond(outcome)
        try:
            answer = api.client(max_retries=0, **options).messages.create(
                model=MODEL, max_tokens=1024, messages=PROMPT, stream=stream)
            for event in answer if stream else []:
                times += [api.clock.now()] if event.type == "content_block_delta" else []
        except Exception as e:  # on purpose: see what arrives
            error = type(e).__name__
    return times, error, api.clock.now()


# %% [markdown]
# Six words, one every 8 s, with a 10 s read timeout. Streamed, the answer takes 48 s and
# never trips the timeout: no silence lasts 10 s. The same answer not streamed is one
# silence of 48 s before the server replies, and it times out at 10 s.

# %%
steady = paced_stream([8.0] * 6)
runs = {"streamed, a word every 8 s": arrivals(steady, timeout=READ_10),
        "the same answer, not streamed": arrivals(steady, stream=False, timeout=READ_10)}
for label, (times, error, end) in runs.items():
    print(f"{label:31} words={len(times)} ended at {end:5.1f} s  error={error}")

# %% [markdown]
# Now a stream that goes silent after two words. Look at the error class, and at the time:
# 10 s after the last word with your timeout, 600 s after it with the default one. (The test
# kit's `stalled_stream(seconds, after_chunks=...)` makes the same silence with no gaps
# before it; you will meet it below. [Lesson 04](04_overloaded_and_server_errors.ipynb)
# timed a request that hangs before any answer: the SDK retries that one, 3 x 600 s.)

# %%
stalled = paced_stream([8.0, 8.0, None])
runs["streamed, silent after 2 words"] = arrivals(stalled, timeout=READ_10)
for options in ({"timeout": READ_10}, {}):
    times, error, end = arrivals(stalled, **options)
    print(f"read timeout {options.get('timeout', anthropic.DEFAULT_TIMEOUT).read:3g} s: "
          f"{error} at t={end:.0f} s after {len(times)} words")

# %% [markdown]
# The read timeout bounds each silence. So what bounds a stream that never goes quiet for
# long? Nothing: here is one that sends a word every 8 s for 160 s.

# %%
runs["streamed, a word every 8 s for 160 s"] = arrivals(paced_stream([8.0] * 20),
                                                        timeout=READ_10)
times, error, end = runs["streamed, a word every 8 s for 160 s"]
print(f"{len(times)} words, error={error}, ended at t={end:.0f} s (read timeout: 10 s)")

# %% [markdown]
# The plot puts each answer on a row, and each silence in it as a bar: from the start (or
# a word) to the next word. Every word ends one bar and starts the next, with a fresh 10 s
# allowance. Blue silences ended in time; a red one reached 10 s, and the red cross is the
# timeout. `silences` turns one answer into its bars and their colours.

# %%
def silences(times, error, end):
    spans = [(a, b - a) for a, b in zip([0.0, *times], [*times, end], strict=True)]
    return spans, ["#1f77b4"] * (len(spans) - 1) + ["#d62728" if error else "#1f77b4"]


# %% [markdown]
# Look at the top row: no bar is red, so only a deadline of your own (the dashed line)
# would stop it. (The rows run from the bottom up, in the order you ran them.)

# %%
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    for y, (times, error, end) in enumerate(runs.values()):
        spans, colours = silences(times, error, end)
        ax.broken_barh(spans, (y - 0.3, 0.6), facecolors=colours, edgecolor="white", alpha=0.5)
        ax.plot(end, y, "X" if error else "s", color="#d62728" if error else "#2ca02c", ms=10)
    ax.axvline(60.0, color="black", ls="--", lw=1)
    ax.text(62.0, 2.5, "a 60 s deadline")
    ax.set(yticks=range(len(runs)), yticklabels=list(runs), xlabel="virtual time [s]")
    ax.set_title("Each word restarts the read timeout; only a deadline bounds the total")
plt.show()

# %% [markdown]
# Try it: in the cell that made the top row, change the gaps to `[8.0] * 10 + [11.0]` and
# run the plot again. The stream ends at t=90 s with a `ReadTimeout`: one silence of 11 s
# stops a stream that 20 steady words could not.
#
# ## Stalled or dropped: raw `httpx2` errors
#
# [Lesson 11](11_streaming_errors.ipynb) showed a dropped stream raising
# `httpx2.RemoteProtocolError` from the loop. A stalled stream does the same with
# `httpx2.ReadTimeout`. The same failures in a call that does not stream happen inside the
# SDK's retry loop, so it wraps and retries them. Each row below sends one failure, then
# `"ok"`, to a client with the SDK's default two retries.

# %%
def what_happens(failure, stream):
    with FakeClaude(seed=0) as api:
        api.respond(failure, "ok")
        client = api.client(timeout=READ_10)
        try:
            answer = client.messages.create(model=MODEL, max_tokens=1024, messages=PROMPT,
                                            stream=stream)
            for _ in answer if stream else []:
                pass
        except Exception as e:  # on purpose: see what arrives
            return f"{type(e).__name__} after {len(api.calls)} request(s)"
    return f"answered after {len(api.calls)} requests"


# %% [markdown]
# Look at the streamed column: one request, and an error from `httpx2`.

# %%
print(f"{'failure':10} {'streamed':40} not streamed")
for name, failure in [("dropped", dropped_stream(after_chunks=2)),
                      ("stalled", stalled_stream(None, after_chunks=2))]:
    print(f"{name:10} {what_happens(failure, True):40} {what_happens(failure, False)}")

# %% [markdown]
# Neither raw error is an `anthropic.APIError`, so `except anthropic.APIError` lets both
# through. Both are `httpx2.TransportError`s, and `classify` calls both retryable.

# %%
for cls in (httpx2.RemoteProtocolError, httpx2.ReadTimeout):
    error = cls("[simulated]")
    print(f"{cls.__name__:19} APIError? {isinstance(error, anthropic.APIError)!s:5} "
          f"TransportError? {isinstance(error, httpx2.TransportError)}  {classify(error)}")

# %% [markdown]
# ## A watchdog: a deadline around the stream
#
# Two limits, two jobs. The read timeout bounds each silence: only a read can notice one,
# so pass it with the request (`timeout=httpx2.Timeout(..., read=10.0)`). A deadline bounds
# the total: note `clock.now()` before `create()`, and check it each time an event arrives.
#
# In synchronous code your check runs only when an event arrives, so a silence can run past
# the deadline by up to one read timeout. The worst case is `deadline + read timeout`:
#
# | limit | stops a stall | stops a trickle | longest wait |
# |---|---|---|---|
# | read timeout alone (10 s) | after 10 s of silence | never | unbounded |
# | deadline alone (60 s) | only by the default read timeout | after 60 s | 60 + 600 s |
# | both | after 10 s of silence | after 60 s | 60 + 10 = 70 s |
#
# (Async code can cancel mid-silence with `asyncio.timeout(deadline)`: see
# [lesson 17](17_async_and_concurrency.ipynb).)
#
# ## Exercise 15.1: a watchdog for a stream
#
# Write `watch(client, model, messages, clock, deadline, silence)`. Stream the answer with
# `stream=True` and return its text. Raise `TimeoutError` (the built-in) when:
#
# - the stream is silent for more than `silence` seconds (the SDK raises
#   `httpx2.ReadTimeout` mid-stream, or `anthropic.APITimeoutError` before it starts);
# - more than `deadline` seconds have passed since you were called, checked at each event.
#
# The checker runs it with `deadline=60` and `silence=10` on a steady 48 s stream (return
# its text), a stall, the 160 s trickle, and a stream the SDK reaches only after two timed
# out attempts of its own.

# %%
def watch(client, model, messages, clock, deadline, silence):
    raise NotImplementedError


check_watch(watch)

# %% [markdown]
# **Hint**: `start = clock.now()` comes first, before `create()`: the SDK's retries use
# your user's time too. Pass `timeout=httpx2.Timeout(deadline, connect=5.0, read=silence)`
# to `create()`. Inside `for event in stream:` test `clock.now() - start > deadline`, and
# wrap the whole loop in `try: ... except (httpx2.ReadTimeout, anthropic.APITimeoutError)
# as e: raise TimeoutError(...) from e`. `with client.messages.create(...) as stream:`
# closes the connection when you give up.
#
# ## With partial output in hand
#
# A long answer breaks after most of it arrived. [Lesson 11](11_streaming_errors.ipynb)
# compared restarting, continuing and stopping on a short answer. On a long one the costs
# grow with what arrived. Here the answer is 12 words, one every 2 s, 24 s in all; think of
# each word as 100 tokens. The first attempt drops after `CUT = 9` words (18 s).

# %%
FULL, CUT, TOKENS_PER_WORD = paced_stream([2.0] * 12), 9, 100
BROKEN = paced_stream([2.0] * CUT, pieces=FULL.pieces[:CUT], end="drop")
REST = paced_stream([2.0] * (12 - CUT), pieces=FULL.pieces[CUT:])
print(repr(FULL.text))

# %% [markdown]
# `read` streams into `shown` (the user's screen) and `received` (everything the model
# generated for you, which you pay for).

# %%
def read(client, messages, shown, received):
    for event in client.messages.create(model=MODEL, max_tokens=2048, messages=messages,
                                        stream=True):
        if event.type == "content_block_delta":
            shown.append(event.delta.text)
            received.append(event.delta.text)


# %% [markdown]
# A resume sends the cut-off text back. On a model that allows it, you can end the request
# with the partial text as the assistant turn (a prefill), and the model continues it
# directly. The course's model returns a 400 for a prefill (lesson 11), so here the partial
# text is an assistant turn followed by a user turn asking to go on.

# %%
def resume_messages(partial):
    return [*PROMPT, {"role": "assistant", "content": partial},
            {"role": "user", "content": "You were cut off. Continue exactly where you stopped."}]


# %% [markdown]
# The three strategies each run after the break, and return how many words they sent back
# as input. **Restart** clears the screen and asks again:

# %%
def restart(client, shown, received):
    shown.clear()  # the words on screen vanish
    read(client, PROMPT, shown, received)
    return 0


# %% [markdown]
# **Resume** keeps the screen, sends the partial text back and appends the rest. **Stop**
# keeps the screen and says the answer is incomplete.

# %%
def resume(client, shown, received):
    partial = len(shown)
    read(client, resume_messages("".join(shown)), shown, received)
    return partial


def stop(client, shown, received):
    shown.append(" [cut off: ask again]")
    return 0


# %% [markdown]
# `serve` runs the broken first attempt, then the strategy, on a fresh clock.

# %%
def serve(strategy, *then):
    shown, received, resent = [], [], 0
    with FakeClaude(seed=0) as api:
        api.respond(BROKEN, *then)
        client = api.client(max_retries=0)
        try:
            read(client, PROMPT, shown, received)
        except httpx2.TransportError:
            resent = strategy(client, shown, received)
    return "".join(shown), len(received), resent, api.clock.now()


# %% [markdown]
# Look at the tokens and the time. Restart generates the 9 words twice and keeps the user
# waiting 42 s. Resume generates each word once, sends 9 back as input (input tokens cost
# less than output tokens, but not nothing), and finishes at 24 s, as if nothing broke.
# Stop costs nothing more and leaves 3 words missing.

# %%
print(f"{'strategy':8} {'output tok':>10} {'resent tok':>10} {'done at':>8}  complete")
for strategy, then in [(restart, [FULL]), (resume, [REST]), (stop, [])]:
    text, words, resent, done = serve(strategy, *then)
    print(f"{strategy.__name__:8} {words * TOKENS_PER_WORD:10,d} "
          f"{resent * TOKENS_PER_WORD:10,d} {done:7.0f}s  {text == FULL.text}")

# %% [markdown]
# What the user saw differs too: with restart, 9 words on screen vanish at 18 s and come
# back over the next 18 s; with resume they stay; with stop they stay, marked as cut off.
# Try it: set `CUT = 2` and run the cells again. Restart then costs 200 extra tokens and
# 4 s, and a resume's seam (a repeated or missing word) may not be worth the risk. The
# later the break, the more a resume saves.
#
# ## Exercise 15.2: restart a broken stream, at most N times
#
# Write `collect(client, model, messages, restarts)`. Stream the answer and return its
# whole text. When the stream breaks with a dropped connection (`httpx2.TransportError`) or
# an `overloaded_error` inside it (`anthropic.APIStatusError` with `e.type ==
# "overloaded_error"`), start it again from the beginning, at most `restarts` times. When
# the restarts run out, re-raise the last error as it is; any other error propagates at
# once. (A real app also waits between attempts, as `resilience.retry` did in lesson 11.)

# %%
def collect(client, model, messages, restarts):
    raise NotImplementedError


check_collect(collect)

# %% [markdown]
# **Hint**: `for attempt in range(restarts + 1):` with `pieces = []` inside the loop, so
# each attempt starts afresh. `return "".join(pieces)` after the stream ends. Catch
# `anthropic.APIStatusError` and `httpx2.TransportError` in two `except` clauses; in each,
# a bare `raise` when the error is not one to restart or `attempt == restarts`.
#
# ## Recap
#
# - A call that does not stream with a large `max_tokens` (21,334 and up on the default
#   timeout) raises `ValueError("Streaming is required...")` before any request. Stream it
#   (`messages.stream(...)`, `get_final_message()`); a timeout of your own skips the check.
# - `connect` bounds opening a connection; `read` bounds each silence, not the total. A
#   steady stream outlives any read timeout; the same answer not streamed is one long
#   silence.
# - Mid-stream, a stall raises `httpx2.ReadTimeout` and a drop `httpx2.RemoteProtocolError`:
#   neither is an `anthropic.APIError`, and the SDK retries neither.
# - A watchdog needs both limits: a read timeout for stalls and a total deadline, measured
#   from your call and checked at each event, for trickles.
# - With most of a long answer shown, resume costs input tokens and keeps the text; restart
#   pays for it twice and wipes it; stop is cheapest and incomplete.
#
# **Next:** [Lesson 16: Tool use and agent loops](16_tool_use_and_agent_loops.ipynb)
