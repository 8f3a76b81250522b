# %% [markdown]
# # Lesson 20: Batches
#
# The Message Batches API takes up to 100,000 requests at once and answers them within 24
# hours, at half the price. Nothing fails loudly there: `create()` returns at once, and
# hours later you fetch a file of results in which some requests succeeded and others
# `errored`, `expired` or were `canceled`. No exception tells you, and the SDK retries
# none of them. This lesson reads each kind of result, decides which requests are worth
# sending again, polls without hammering the API, and resubmits only what failed, keyed by
# `custom_id`, so that no request is ever paid for twice. Everything runs on the test kit's
# simulated Batches API (`FakeBatches`), through the real SDK, on virtual time: a day
# passes in a blink.
#
# **In this lesson you will**
#
# - create a batch, follow its `processing_status` and `request_counts`, and read its
#   results by `custom_id`
# - tell `errored`, `expired` and `canceled` apart, and judge each error with `classify`
# - poll with backoff on virtual time: few requests, and still soon after the end
# - resubmit only the failed requests, in rounds, with a ledger keyed by `custom_id`, so a
#   second run does no work twice

# %%
from collections import Counter
from contextlib import ExitStack

import httpx2
import matplotlib.pyplot as plt
from course.lesson20 import check_finish, check_to_resubmit, request

from resilience import MODEL, classify
from resilience.catalogue import ERRORS, RETRYABLE_TYPES
from resilience.lab.plots import FIGSIZE, course_style
from resilience.testing import FakeBatches, FakeClaude

# %% [markdown]
# ## A batch from start to end
#
# Each request in a batch is a `custom_id` and the `params` of an ordinary
# `messages.create`. `request(i, model)` (from `course/lesson20.py`) builds the lesson's
# requests, `q00` to `q11`:

# %%
REQUESTS = [request(i, MODEL) for i in range(12)]
KINDS = ["succeeded", "errored", "expired", "canceled"]
print(REQUESTS[3])


def tally(counts):
    """A batch's request_counts, in a fixed order."""
    return ", ".join(f"{name} {getattr(counts, name)}" for name in ["processing", *KINDS])

# %% [markdown]
# The simulated API stays open for most of the lesson. `FakeBatches` adds the Batches
# routes to it: here 15 % of requests error with `api_error`, 5 % with `overloaded_error`,
# 10 % expire, and `q03` is a broken request (`invalid_request_error`). The draws are
# seeded.

# %%
session = ExitStack()
api = session.enter_context(FakeClaude(seed=8))
batches = FakeBatches(api, rates={"api_error": 0.15, "overloaded_error": 0.05,
                                  "expired": 0.1})
batches.plan("q03", "invalid_request_error")
client = api.client()

# %% [markdown]
# `create()` returns at once. Look at the status, the counts and the deadline: every
# request is `processing`, and the batch expires 24 hours after it was created.

# %%
batch = client.messages.batches.create(requests=REQUESTS)
print(batch.id, batch.processing_status, batch.request_counts.processing, "processing")
print("expires", batch.expires_at - batch.created_at, "after it was created")

# %% [markdown]
# This simulated batch needs an hour of work. An hour later it is still `in_progress`,
# and the counts still say nothing: they stay at `processing` until the whole batch ends.
# One request that is never processed holds the batch until it expires.

# %%
api.clock.advance(3600)
status = client.messages.batches.retrieve(batch.id)
print(f"t={api.clock.now() / 3600:.0f} h:", status.processing_status, "|",
      tally(status.request_counts))

# %% [markdown]
# At the 24-hour mark it ends. Now the counts add up, and `results_url` appears.

# %%
api.clock.advance(24 * 3600 - api.clock.now())
status = client.messages.batches.retrieve(batch.id)
counts = status.request_counts
print(f"t={api.clock.now() / 3600:.0f} h:", status.processing_status, "|", tally(counts))
print("counts add up:", counts.succeeded + counts.errored + counts.expired
      + counts.canceled == len(REQUESTS), "| results_url set:", status.results_url is not None)

# %% [markdown]
# `results()` streams the results file, one line per request. Look at the order: it is not
# the order you sent, so match each line to its request by `custom_id`, never by position.

# %%
round_1 = list(client.messages.batches.results(batch.id))
for line in round_1:
    error = line.result.error.error.type if line.result.type == "errored" else ""
    print(f"{line.custom_id}  {line.result.type:9} {error}")

# %% [markdown]
# ## Four kinds of result
#
# | `result.type` | what happened | what it holds |
# |---|---|---|
# | `succeeded` | the request ran | `result.message`, the same `Message` a call returns |
# | `errored` | processing the request failed | `result.error`, an error body as the API sends it |
# | `expired` | the batch reached its 24 hours first | nothing: the request never ran |
# | `canceled` | you canceled the batch first | nothing: the request never ran |
#
# The documentation says you are not billed for a request that errored, expired or was
# canceled. An `errored` result is an ordinary error body, the one a 4xx or 5xx would have
# carried, with its own `request_id`:

# %%
failed = {line.custom_id: line.result for line in round_1 if line.result.type == "errored"}
body = failed["q03"].error
print(f"type={body.type!r} error.type={body.error.type!r} error.message={body.error.message!r}")
print(f"request_id={body.request_id!r}")

# %% [markdown]
# ## Which errors are worth sending again
#
# The rule is the one you know: a request at fault (`invalid_request_error`) fails the same
# way every time; a server-side error (`api_error`, `overloaded_error`) may pass next time.
# `classify` judges a response by its status, and an error body inside a 200 answer by its
# `error.type` (as with lesson 11's errors mid-stream). A results file is a 200 answer,
# so wrap the body in one:

# %%
def verdict(body):
    """classify() on an error body that arrived inside a 200 answer."""
    return classify(httpx2.Response(200, json=body))


# %% [markdown]
# Look at the second column for each error the simulated API can put in a batch. (The
# catalogue's `RETRYABLE_TYPES` is the same rule as a set of `error.type` names.)

# %%
for name in ["invalid_request_error", "request_too_large", "not_found_error",
             "api_error", "overloaded_error", "timeout_error"]:
    body = ERRORS[name].body()
    print(f"{name:22} {verdict(body)!s:32} in RETRYABLE_TYPES: "
          f"{body['error']['type'] in RETRYABLE_TYPES}")

# %% [markdown]
# Applied to this batch's errors:

# %%
for custom_id, result in sorted(failed.items()):
    print(custom_id, result.error.error.type, "->", verdict(result.error.to_dict()))

# %% [markdown]
# `expired` and `canceled` requests never ran, so they are worth sending again as they
# are, if you still want their answers. What you do with an error that is not retryable is
# up to you: fix the request (then it is a new request) or report it.
#
# ## Cancel is not undo
#
# Canceling stops requests that have not run yet. The batch is `canceling` for a moment,
# then `ended`; what finished before stays finished (and paid for). Here a second batch is
# canceled halfway through its hour, on a separate simulated API:

# %%
with FakeClaude(seed=0) as other:
    other_client = other.client()
    FakeBatches(other, cancel_time=60.0)
    doomed = other_client.messages.batches.create(requests=REQUESTS)
    other.clock.advance(1800)
    print(other_client.messages.batches.cancel(doomed.id).processing_status)
    other.clock.advance(60)
    print(tally(other_client.messages.batches.retrieve(doomed.id).request_counts))

# %% [markdown]
# ## Exercise 20.1: pick the requests to send again
#
# Write `to_resubmit(results)`. `results` is the list of lines from
# `client.messages.batches.results(batch_id)`. Return the set of `custom_id`s worth sending
# again unchanged: every `expired` and `canceled` one, and every `errored` one whose error
# `classify` calls retryable. Never a `succeeded` one.
#
# The checker runs it on two batches from the simulated API: one with every kind of error,
# and one canceled halfway.

# %%
def to_resubmit(results):
    raise NotImplementedError


check_to_resubmit(to_resubmit)

# %% [markdown]
# **Hint**: loop over the lines; `line.result.type` is `"succeeded"`, `"errored"`,
# `"expired"` or `"canceled"`. For an errored one, use
# `verdict(line.result.error.to_dict(warnings=False)).retryable`: `warnings=False` keeps
# pydantic quiet about error types the SDK does not list, such as `request_too_large`.
#
# ## Polling with backoff
#
# A batch takes minutes to hours. Poll it too often and you send hundreds of requests that
# say "not yet"; too rarely and you learn of the end long after it came. Backoff does both
# jobs: start at 60 s and double the wait, up to a cap. The cap bounds how late you can be.
# `wait_for` polls one batch and returns the times it polled:

# %%
def wait_for(client, batch_id, clock, first=60.0, factor=2.0, cap=3600.0):
    polls, wait = [], first
    while True:
        clock.sleep(wait)
        polls.append(clock.now())
        if client.messages.batches.retrieve(batch_id).processing_status == "ended":
            return polls
        wait = min(wait * factor, cap)


# %% [markdown]
# Run it on a batch that takes an hour. Look at the times: each wait is twice the last,
# so the polls thin out as the batch gets older.

# %%
with FakeClaude(seed=0) as sim:
    FakeBatches(sim, processing_time=3600.0)
    one = sim.client().messages.batches.create(requests=REQUESTS[:2])
    polls = wait_for(sim.client(), one.id, sim.clock)
print("polled at", [f"{t / 60:g} min" for t in polls], f"| {polls[-1] - 3600:.0f} s late")

# %% [markdown]
# How does that compare with a fixed schedule? You rarely know how long a batch will take,
# so compare over lengths from 5 minutes to the full 24 hours. `poll_times` is `wait_for`'s
# arithmetic without the API (it gives the same times for the batch above).

# %%
def poll_times(end, first, factor, cap=3600.0):
    times, wait = [first], first
    while times[-1] < end:
        wait = min(wait * factor, cap)
        times.append(times[-1] + wait)
    return times


print("same as the simulated API saw:", poll_times(3600.0, 60.0, 2.0) == polls)

# %% [markdown]
# Look at the two numbers per cell: polls sent, and how late the poller noticed the end.

# %%
SCHEDULES = {"every 60 s": (60.0, 1.0), "every 15 min": (900.0, 1.0),
             "backoff 60 s x2, cap 1 h": (60.0, 2.0)}
LENGTHS = {"5 min": 300.0, "1 h": 3600.0, "24 h": 86400.0}
print(f"{'schedule':25}" + "".join(f"{name:>18}" for name in LENGTHS))
for label, (first, factor) in SCHEDULES.items():
    cells = [poll_times(end, first, factor) for end in LENGTHS.values()]
    print(f"{label:25}" + "".join(f"{len(t):6,} polls {t[-1] - end:4.0f} s"
                                  for t, end in zip(cells, LENGTHS.values(), strict=True)))

# %% [markdown]
# The plot runs the same comparison over 26 lengths, each 25 % longer than the last, from
# 5 minutes to about 22 hours:

# %%
ends = [300.0 * 1.25 ** k for k in range(26)]
hours = [end / 3600 for end in ends]

# %% [markdown]
# Look at the left panel: fixed schedules poll in proportion to the length; backoff grows
# slowly, then by one poll an hour. On the right, the price: backoff may be late by up to
# its cap (the dashed line), and a fixed schedule by up to its interval.

# %%
with course_style():
    fig, (left, right) = plt.subplots(1, 2, figsize=FIGSIZE, layout="constrained")
    for label, (first, factor) in SCHEDULES.items():
        runs = [poll_times(end, first, factor) for end in ends]
        left.plot(hours, [len(times) for times in runs], label=label)
        right.plot(hours, [(t[-1] - e) / 60 for t, e in zip(runs, ends, strict=True)])
    left.set(xscale="log", yscale="log", xlabel="batch length [h]", ylabel="polls")
    right.axhline(60, color="black", ls="--", lw=1)
    right.set(xscale="log", xlabel="batch length [h]", ylabel="noticed late by [min]")
    left.legend()
    fig.suptitle("Backoff polls a few times at any length; its cap bounds the delay")
plt.show()

# %% [markdown]
# Try it: give `poll_times` a cap of 900 s in the plot cell (`poll_times(end, first,
# factor, 900.0)`) and run it again. Backoff is then never more than 15 minutes late, like
# the fixed 15-minute schedule, and still notices a 5-minute batch within 2 minutes; on a
# 24-hour batch it polls about as often (99 times against 96). The cap is the trade.
#
# ## Resubmit only what failed, in rounds
#
# Back to the first batch. A ledger keyed by `custom_id` holds every answer you have. It is
# what makes a resubmission safe: a request goes out only if the ledger lacks it.

# %%
ledger = {line.custom_id: line.result.message.content[0].text
          for line in round_1 if line.result.type == "succeeded"}
print(len(ledger), "answers;", ledger["q01"])

# %% [markdown]
# Round 2 sends only the retryable failures. `retryable` is the rule of exercise 20.1,
# for one line:

# %%
def retryable(line):
    result = line.result
    return result.type in ("expired", "canceled") or (
        result.type == "errored" and verdict(result.error.to_dict()).retryable)


# %% [markdown]
# `run_round` sends a list of requests as one batch, polls it with backoff, files each
# answer in the ledger, and returns the results.

# %%
def run_round(todo):
    sent = client.messages.batches.create(requests=todo)
    wait_for(client, sent.id, api.clock)
    lines = list(client.messages.batches.results(sent.id))
    ledger.update({line.custom_id: line.result.message.content[0].text
                   for line in lines if line.result.type == "succeeded"})
    return lines


# %% [markdown]
# Look at what each round sends and what comes back: fewer requests each time, and `q03`
# (broken) never again.

# %%
rounds, lines = [round_1], round_1
while any(retryable(line) for line in lines):
    again = {line.custom_id for line in lines if retryable(line)}
    lines = run_round([r for r in REQUESTS if r["custom_id"] in again])
    rounds.append(lines)
for k, lines in enumerate(rounds, 1):
    kinds = Counter(line.result.type for line in lines)
    print(f"round {k}: sent {len(lines):2} |", ", ".join(f"{kinds[s]} {s}" for s in KINDS))

# %% [markdown]
# The plot stacks each round's requests by result. Look at the red: the failures of one
# round are the next round's whole bar, except the broken `q03`, red once and never sent
# again.

# %%
STATES = {"succeeded": "#2ca02c", "errored": "#d62728", "expired": "#7f7f7f"}
with course_style():
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    bottom = [0] * len(rounds)
    for state, colour in STATES.items():
        height = [sum(line.result.type == state for line in lines) for lines in rounds]
        ax.bar(range(1, len(rounds) + 1), height, bottom=bottom, color=colour, label=state)
        bottom = [b + h for b, h in zip(bottom, height, strict=True)]
    ax.set(xticks=range(1, len(rounds) + 1), xlabel="round", ylabel="requests sent")
    ax.set_title(f"Each round resends only what failed: {len(ledger)} of 12 answered")
    ax.legend()
plt.show()

# %% [markdown]
# The simulated API counts the work: `batches.submitted` (how often each `custom_id` was
# sent) and `batches.succeeded` (how often it succeeded, which is what you pay for).

# %%
print("sent more than once:", {k: n for k, n in sorted(batches.submitted.items()) if n > 1})
print("succeeded more than once:", {k: n for k, n in batches.succeeded.items() if n > 1})
print("answers:", len(ledger), "| no answer:", sorted(set(batches.submitted) - set(ledger)))

# %% [markdown]
# ## Idempotent: a second run does no work twice
#
# Jobs crash and get restarted; two workers pick up the same job. A naive resubmission
# sends the same failed set twice. Here the retryable failures of round 1 go out twice,
# as two careless workers would send them:

# %%
failed_once = {line.custom_id for line in round_1 if retryable(line)}
again = [r for r in REQUESTS if r["custom_id"] in failed_once]
for _worker in range(2):
    run_round(again)
print("succeeded more than once:", {k: n for k, n in sorted(batches.succeeded.items())
                                    if n > 1})

# %% [markdown]
# Every one of those already had its answer in the ledger, and now each has been paid for
# two or three times. The batch API does not deduplicate: two batches are two batches, even with the
# same `custom_id`s. The key is yours to check, in two places:
#
# - **done**: skip every `custom_id` already in the ledger (no request is ever repeated
#   after it succeeded);
# - **in flight**: note the batch each `custom_id` went out in (`pending`), and skip those
#   too; a restarted job polls that batch instead of sending the requests again.
#
# `submit_once` does both, and creates no batch at all when nothing is left:

# %%
pending = {}


def submit_once(todo):
    fresh = [r for r in todo if r["custom_id"] not in ledger | pending]
    if not fresh:
        return None
    sent = client.messages.batches.create(requests=fresh)
    pending.update(dict.fromkeys((r["custom_id"] for r in fresh), sent.id))
    return sent.id


# %% [markdown]
# Send the same failed set twice: nothing goes out, since every request has its answer.

# %%
created = len(batches.batches)
print(submit_once(again), submit_once(again), "| new batches:", len(batches.batches) - created)
session.close()

# %% [markdown]
# (`ledger | pending` is a new dict whose keys are both sets of `custom_id`s. In a real job
# the ledger and `pending` live in a database, written before and after each step, so a
# restart reads them back.)
#
# ## Exercise 20.2: resubmit until done, idempotently
#
# Write `finish(client, requests, ledger, clock, rounds)`. `requests` is a list like
# `REQUESTS`; `ledger` is a dict of `custom_id` -> answer text, possibly already holding
# answers from an earlier run. Then:
#
# - send, as one batch, every request the ledger lacks; poll it with backoff on `clock`
#   (wait 60 s, then double the wait, at most 3,600 s) until it has ended;
# - put each succeeded answer's text (`result.message.content[0].text`) in the ledger;
# - next round, send only the requests worth sending again (exercise 20.1's rule);
# - stop after `rounds` batches, or as soon as nothing is left to send (never an empty
#   batch); return the ledger.
#
# The checker runs it against the simulated API: it must finish every request that can
# succeed, send none twice after it succeeded, send a broken one once, stop after
# `rounds` batches, and do nothing on a second run.

# %%
def finish(client, requests, ledger, clock, rounds):
    raise NotImplementedError


check_finish(finish)

# %% [markdown]
# **Hint**: `todo = [r for r in requests if r["custom_id"] not in ledger]`, then
# `for _ in range(rounds):` with `if not todo: break` first. Poll as `wait_for` does (or
# call it). After the results, `todo = [r for r in todo if r["custom_id"] in again]`, where
# `again` is your `to_resubmit(lines)`.
#
# ## Recap
#
# - A batch answers in a file, not with exceptions: each line is `succeeded`, `errored`,
#   `expired` or `canceled`, in no particular order; match lines to requests by
#   `custom_id`.
# - `expired` and `canceled` requests never ran; an `errored` one carries an ordinary error
#   body. Resend those `classify` calls retryable (`api_error`, `overloaded_error`), never a
#   request at fault (`invalid_request_error`) unless you fix it.
# - Poll with backoff and a cap: the cap bounds how late you notice the end.
# - Resubmit in rounds, only what failed, with a ledger of answers and a note of what is
#   in flight, both keyed by `custom_id`: the API never deduplicates, so your key must.
#
# This is the last lesson. Back to the [course map](../README.md#course-map), or to
# [lesson 13](13_putting_it_together.ipynb)'s production checklist.
