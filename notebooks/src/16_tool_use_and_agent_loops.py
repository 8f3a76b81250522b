# %% [markdown]
# # Lesson 16: Tool use and agent loops
#
# An agent does things. Claude asks for a tool, your code runs it: it charges a card,
# sends an email, writes a row. Then a request fails, and the retry habit of the earlier
# lessons does harm. Retry the whole agent and every tool it already ran runs again: the
# customer pays twice and gets two receipts. Some failures do not even raise: a 200 whose
# `stop_reason` says the answer was cut short, refused or paused. This lesson runs an
# agent loop through the real SDK, breaks it on purpose, and puts each retry at the one
# level where it is safe.
#
# **In this lesson you will**
#
# - watch a retry of the whole loop charge a card twice, and see why the model's new
#   `tool_use` ids hide the repeat
# - see that the guide's `idempotency_key` parameter does not exist, and key each tool run
#   by its `tool_use` id instead
# - put each retry at its level: the SDK retries one request, your loop never re-runs a
#   tool
# - handle the 200s that are not finished answers: `max_tokens`, `refusal`, `pause_turn`

# %%
import contextlib

import anthropic
import matplotlib.pyplot as plt
from course.lesson16 import CONTINUE, TOOLS, Planner, Refused, check_agent, check_finish

from resilience import MODEL, VirtualClock, retry
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FailureRates, FakeClaude, ok

TASK = [{"role": "user", "content": "Charge Ana 42.00 and email her the receipt."}]

# %% [markdown]
# ## An agent loop
#
# Two tools with side effects. Each appends to `ledger`, the record of what really
# happened in the world. (`TOOLS`, from `course/lesson16.py`, describes them to the model.)

# %%
ledger = []


def charge_card(cents):
    ledger.append(f"charged {cents} cents")
    return f"charged {cents} cents"


def send_email(to):
    ledger.append(f"emailed {to}")
    return f"emailed {to}"


# %% [markdown]
# `run_tool` runs the function a `tool_use` block names, with the block's input.

# %%
def run_tool(tools, block):
    tool = tools[block.name]
    return tool(**block.input)


# %% [markdown]
# The loop most tutorials show. Ask; while the model answers with `stop_reason ==
# "tool_use"`, run each `tool_use` block and send the results back as `tool_result` blocks,
# each naming the `tool_use_id` it answers. `ask` is the function that sends one request.

# %%
def agent_loop(ask, tools):
    messages = list(TASK)
    while True:
        message = ask(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
        if message.stop_reason != "tool_use":
            return message.content[0].text
        results = [{"type": "tool_result", "tool_use_id": block.id,
                    "content": run_tool(tools, block)}
                   for block in message.content if block.type == "tool_use"]
        messages += [{"role": "assistant", "content": message.content},
                     {"role": "user", "content": results}]


# %% [markdown]
# `Planner` plays the model: turn 1 calls `charge_card`, turn 2 `send_email`, then it
# answers. It reads the conversation each request carries, as the real model does. Look
# at the three requests and the ledger: one charge, one email.

# %%
TOOL_FUNCTIONS = {"charge_card": charge_card, "send_email": send_email}
STEPS = [[("charge_card", {"cents": 4200})], [("send_email", {"to": "ana@example.com"})]]
with FakeClaude(seed=0) as api:
    api.scenario(Planner(STEPS))
    print(agent_loop(api.client().messages.create, TOOL_FUNCTIONS))
print([call.outcome for call in api.calls], ledger)

# %% [markdown]
# ## A retry that re-runs a turn
#
# Now the third request fails: three 529s in a row (`fail_at` numbers the requests), so
# the SDK's two retries run out and it raises `OverloadedError`. Following the seed
# article, you wrap the whole agent in a retry. `logged` notes the id of each `tool_use`
# block the model sends. Look at the ledger.

# %%
def logged(create, ids):
    def ask(**request):
        message = create(**request)
        ids.extend(block.id for block in message.content if block.type == "tool_use")
        return message
    return ask


# %%
ledger.clear()
with FakeClaude(seed=0) as api:
    api.scenario(Planner(STEPS, fail_at=frozenset({3, 4, 5})))
    run_again, ids = retry(attempts=2, clock=api.clock)(agent_loop), []
    print(run_again(logged(api.client().messages.create, ids), TOOL_FUNCTIONS))
print(ledger)

# %% [markdown]
# Ana paid twice and got two receipts. The SDK's own retries of request 3 did no harm: a
# request that fails changes nothing in the world, and the model's answer has no side
# effects. Your retry did: it started the task again, so turns 1 and 2 ran again, and so
# did their tools. Look at the requests, and at the `tool_use` ids: the second charge has
# a new id, so to your code it looks like a new request from the model.

# %%
print([call.outcome for call in api.calls])
print(ids)

# %% [markdown]
# ## The `idempotency_key` that does not exist
#
# The seed article advises an `idempotency_key` parameter for critical operations. Try it:

# %%
with FakeClaude(seed=0) as api:
    try:
        api.client().messages.create(model=MODEL, max_tokens=64, messages=TASK,
                                     idempotency_key="charge-ana-42")
    except TypeError as e:
        print(f"{type(e).__name__}: {e}")
print("requests sent:", len(api.calls))

# %% [markdown]
# A `TypeError` before any request ([lesson 02](02_errors_you_fix.ipynb) met it too). And
# even if it existed, it would guard the wrong thing: a request to the model is safe to
# repeat (it costs tokens, nothing more); your tools are not. Idempotency is your code's
# job.
#
# ## A key per `tool_use` id
#
# The API gives each `tool_use` block an id. Run a block at most once by recording the ids
# you ran, with their results, in a store that outlives the retry: here a dict, in
# production a database row written with the side effect.

# %%
def run_tools(blocks, tools, done):
    results = []
    for block in (b for b in blocks if b.type == "tool_use"):
        if block.id not in done:  # the key: this tool_use id
            done[block.id] = run_tool(tools, block)
        results.append({"type": "tool_result", "tool_use_id": block.id,
                        "content": done[block.id]})
    return results


# %% [markdown]
# Where it matters: one turn calls both tools at once, and the mail server fails the
# first time. `flaky_email` raises `ConnectionError` on its first call.

# %%
mail_tries = []


def flaky_email(to):
    mail_tries.append(to)
    if len(mail_tries) == 1:
        raise ConnectionError("the mail server did not answer")
    return send_email(to)


# %% [markdown]
# First the turn: the model calls both tools in one message, each block with its own id.

# %%
BOTH = [[("charge_card", {"cents": 4200}), ("send_email", {"to": "ana@example.com"})]]
with FakeClaude(seed=0) as api:
    api.scenario(Planner(BOTH))
    turn = api.client().messages.create(model=MODEL, max_tokens=1024, tools=TOOLS,
                                        messages=TASK)
print([(block.name, block.id) for block in turn.content])

# %% [markdown]
# `run_twice` runs the tool step, and once more if it raised, as any retry would: with no
# memory of what ran (a fresh `done` each try), or with one `done` for both tries.

# %%
def run_twice(fresh_memory):
    ledger.clear()
    mail_tries.clear()
    done, tools = {}, {"charge_card": charge_card, "send_email": flaky_email}
    for _ in range(2):
        try:
            run_tools(turn.content, tools, {} if fresh_memory else done)
        except ConnectionError:
            continue
        return list(ledger)


# %% [markdown]
# Look at the charges.

# %%
print("no key:", run_twice(fresh_memory=True))
print("keyed: ", run_twice(fresh_memory=False))

# %% [markdown]
# Keyed, the charge runs once and only the email runs again. Note what the key does not
# cover: a turn sent again gets *new* ids (the ids you saw above differed), so a key per
# id cannot stop a retry of the whole loop. It guards the tool step; the transcript
# guards the rest.
#
# ## What to retry, at which level
#
# | level | who retries | safe to repeat? |
# |---|---|---|
# | one HTTP request | the SDK (`max_retries`) | yes: no side effects of yours |
# | one model call in your loop | the SDK, or `@retry` on `ask` | yes, with the transcript kept |
# | one tool call | your code | only keyed by its `tool_use` id |
# | the whole loop | nobody | no: every tool runs again |
#
# Keep one retry layer per request ([lesson 05](05_what_the_sdk_does.ipynb): 3 x 5 = 15).
# Here is the same loop with the retry moved inside it: `ask` is now the retried call,
# and `max_retries=0` keeps it to one layer.

# %%
ledger.clear()
with FakeClaude(seed=0) as api:
    api.scenario(Planner(STEPS, fail_at=frozenset({3, 4, 5})))
    ask = retry(attempts=5, clock=api.clock)(api.client(max_retries=0).messages.create)
    print(agent_loop(ask, TOOL_FUNCTIONS))
print(ledger, "| requests:", len(api.calls))

# %% [markdown]
# Same failures, one charge, one email. Now many tasks. The two places for the retry, as
# functions of the client's `create` and a retry decorator:

# %%
def whole_loop(create, retried):
    return retried(agent_loop)(create, TOOL_FUNCTIONS)


def each_call(create, retried):
    return agent_loop(retried(create), TOOL_FUNCTIONS)


# %% [markdown]
# `side_effects` runs 8 tasks with each request failing at `rate` (a 529). It returns
# the card charges per task, and the share of tasks that finished.

# %%
def side_effects(rate, where, tasks=8):
    ledger.clear()
    finished = 0
    with FakeClaude(clock=VirtualClock(), seed=1) as api:
        api.scenario(FailureRates({"overloaded_error": rate}), Planner(STEPS))
        create = api.client(max_retries=0).messages.create
        retried = retry(attempts=4, deadline=None, clock=api.clock)
        for _ in range(tasks):
            with contextlib.suppress(anthropic.APIError):  # a task that gave up
                finished += where(create, retried) == "Done."
    return ledger.count("charged 4200 cents") / tasks, finished / tasks


# %% [markdown]
# The plot sweeps the failure rate. Look at the left panel: retried around the whole
# loop, the card is charged more often the worse the day; retried around each call, at
# most once. The right panel shows that the safe place also finishes more tasks.

# %%
RATES = [0.0, 0.15, 0.3, 0.45]
runs = {where.__name__.replace("_", " "): [side_effects(rate, where) for rate in RATES]
        for where in (whole_loop, each_call)}
for where, values in runs.items():
    print(f"{where:10}", "  ".join(f"{c:.2f} charges, {f:4.0%} done" for c, f in values))

# %%
with course_style():
    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE, layout="constrained")
    for (where, values), marker in zip(runs.items(), "os", strict=True):
        for ax, ys, scale in zip(axes, zip(*values, strict=True), (1, 100), strict=True):
            ax.plot([100 * r for r in RATES], [y * scale for y in ys], marker=marker,
                    label=f"retry around {where}")
    axes[0].axhline(1.0, color="black", ls="--", lw=1)
    axes[0].set(xlabel="requests failing with 529 [%]", ylabel="card charges per task")
    axes[1].set(xlabel="requests failing with 529 [%]", ylabel="tasks finished [%]", ylim=(0, 105))
    axes[0].legend()
    fig.suptitle("Retrying the whole loop repeats side effects; retrying each call does not")
plt.show()

# %% [markdown]
# Try it: change `attempts=4` to `attempts=2` in `side_effects` and run the two cells
# again. Fewer attempts mean fewer repeats and more tasks that never finish, in both
# places; only moving the retry makes it safe.
#
# ## Exercise 16.1: a loop that can be run again
#
# A job runner runs your agent again when it raises, with the same `messages` (the
# transcript) and the same `done` (a dict: `tool_use` id -> its result). Write
# `agent(client, model, messages, tools, done)`:
#
# - loop until the model's `stop_reason` is not `"tool_use"`, and return the text;
# - append to `messages` as you go, the model's turn *before* you run its tools;
# - when `messages` ends with the model's turn (a `tool_use` message), finish its tools
#   instead of asking again;
# - run each `tool_use` id at most once: record it in `done` when its tool returns, and
#   send the recorded result for ids already there.
#
# The checker runs it as a job: a request that fails after the charge, and a turn with two
# tools whose email fails once. Pass `tools=TOOLS` to `create()`.

# %%
def agent(client, model, messages, tools, done):
    raise NotImplementedError


check_agent(agent)

# %% [markdown]
# **Hint**: `while True:` then `last = messages[-1]`. If `last["role"] == "user"`, ask;
# return the text if `stop_reason != "tool_use"`, else make `last = {"role": "assistant",
# "content": message.content}` and append it. Then `messages.append({"role": "user",
# "content": run_tools(last["content"], tools, done)})`.
#
# ## Failures that arrive as a 200
#
# Some answers are not finished, and nothing raises: the status is 200 and `stop_reason`
# tells you. `ok(..., stop_reason=...)` makes the simulated API send one. Look at the
# status and the text: each looks like a success to a retry.

# %%
REPLIES = {"max_tokens": ok("The answer is", stop_reason="max_tokens"),
           "refusal": ok("I can't help with that.", stop_reason="refusal"),
           "pause_turn": ok("Searching. ", stop_reason="pause_turn")}
with FakeClaude(seed=0) as api:
    api.respond(*REPLIES.values())
    got = {reason: api.client().messages.create(model=MODEL, max_tokens=64, messages=TASK)
           for reason in REPLIES}
for message in got.values():
    print(f"{message.stop_reason:10} {message.content[0].text!r}")
print("statuses:", [call.status for call in api.calls])

# %% [markdown]
# The loop above would have returned each as the answer. What each means, and what to do:
#
# | `stop_reason` | what happened | what to do |
# |---|---|---|
# | `end_turn` | a finished answer | use it |
# | `tool_use` | the model calls tools | run each once, send the results |
# | `max_tokens` | cut short at your `max_tokens` | continue it, or ask again with more |
# | `refusal` | the model declined | stop and tell the user |
# | `pause_turn` | the API paused a long turn | send it back as it is |
#
# Never run a `tool_use` block from an answer cut at `max_tokens`: its input may be
# incomplete. A refusal is the model's answer, not a fault, so sending it again does not
# help; tell the user, or fall back to another model ([lesson 10](10_fallbacks.ipynb)).
# A `pause_turn` comes with server tools such as web search, when the API stops a long
# turn part way; send the paused content back and the API continues it.
#
# To continue after `max_tokens`, send the partial answer back and ask the model to go
# on, as [lesson 15](15_long_requests_and_streams.ipynb) resumed a broken stream:

# %%
def continued(messages, message):
    return [*messages, {"role": "assistant", "content": message.content},
            {"role": "user", "content": CONTINUE}]


# %% [markdown]
# A paused turn goes back as it is, with no new user message. Look at the last role of
# each follow-up request.

# %%
def resumed(messages, message):
    return [*messages, {"role": "assistant", "content": message.content}]


with FakeClaude(seed=0) as api:
    api.respond(REPLIES["max_tokens"], REPLIES["pause_turn"])
    cut, paused = (api.client().messages.create(model=MODEL, max_tokens=64, messages=TASK)
                   for _ in range(2))
print("after max_tokens:", [m["role"] for m in continued(TASK, cut)])
print("after pause_turn:", [m["role"] for m in resumed(TASK, paused)])

# %% [markdown]
# A refusal needs no retry and no continuation: raise something your app turns into a
# message for the user. `Refused` (from `course/lesson16.py`) is one.

# %%
def stop_on_refusal(message):
    if message.stop_reason == "refusal":
        raise Refused("the model declined: tell the user, do not send it again")
    return message


try:
    stop_on_refusal(got["refusal"])
except Refused as e:
    print(f"{type(e).__name__}: {e}")

# %% [markdown]
# ## Exercise 16.2: finish an answer, whatever its `stop_reason`
#
# Write `finish(client, model, messages, limit)`. Send `messages` (do not change the list
# you are given) and return the answer's text, joining the text blocks of every part:
#
# - `end_turn`: return the text;
# - `max_tokens`: continue it as `continued` does, and send again;
# - `pause_turn`: send it back as `resumed` does;
# - `refusal`: raise `Refused` at once;
# - after `limit` requests with no finished answer, raise `RuntimeError`.

# %%
def finish(client, model, messages, limit):
    raise NotImplementedError


check_finish(finish)

# %% [markdown]
# **Hint**: `messages, pieces = list(messages), []` then `for _ in range(limit):`. After
# each `create()`, add `[b.text for b in message.content if b.type == "text"]` to
# `pieces`, then branch on `message.stop_reason`. `raise RuntimeError(...)` after the loop.
#
# ## Recap
#
# - A retry around the whole agent re-runs every turn, and every tool in it: the model
#   makes new `tool_use` ids, so the repeat looks new.
# - `messages.create(idempotency_key=...)` is a `TypeError`. Key each tool run by its
#   `tool_use` id in a store that outlives the retry, and reuse the recorded result.
# - One retry layer, at the level of one request: the SDK's, or `@retry` around the call
#   with `max_retries=0`. Keep the transcript; a loop run again resumes from it.
# - A 200 is not always an answer: continue after `max_tokens`, stop and tell the user on
#   `refusal`, send a `pause_turn` back as it is.
#
# **Next:** [Lesson 17: Async and concurrency](17_async_and_concurrency.ipynb)
