# %% [markdown]
# # Lesson 10: Fallbacks and graceful degradation
#
# Sometimes retries are not enough: the main model is overloaded for minutes, and every
# attempt fails. Your user would rather get an answer from a smaller model, or an answer you
# saved earlier, or at least a clear "try again soon", than an error page. A fallback chain
# tries these in order and tells you which one answered. But some errors must never be
# hidden behind a fallback: a bad request or a wrong key needs a person, not a detour.
#
# **In this lesson you will**
#
# - build a chain with `resilience.Fallback`: main model, smaller model, cached answer,
#   static message
# - read a `Served` answer: which step served it, and what failed before
# - see why a 400, 401 or 403 must surface, and what a catch-all fallback hides
# - measure availability over 200 requests with and without the chain
# - put a circuit breaker on the main model, so a model that is down is skipped at once

# %%
import random
from collections import Counter

import anthropic
import matplotlib.pyplot as plt
from course.lesson10 import check_model_chain, check_remembering

# %% [markdown]
# From the course's package: the chain, a breaker, the two model ids, a plot, and the
# simulated API with its scenarios.
# %%
from resilience import CircuitBreaker, Fallback, VirtualClock, classify, may_fall_back
from resilience.lab.plots import plot_fallback_steps
from resilience.models import FALLBACK_MODEL, MODEL
from resilience.testing import FailureRates, FakeClaude, ForModel, Outage

clock = VirtualClock()
SEED = 0

# %% [markdown]
# ## The steps
#
# Each model step is one call through the SDK. The simulated API echoes the model you asked
# for, so `ask` puts the model id in front of the text: you will see who answered.
# (`max_retries=0` below: one attempt per step, so you can count the calls. In production a
# step may retry a little first; lesson 12 shows how to budget that.)

# %%
def ask(client, model, prompt):
    reply = client.messages.create(model=model, max_tokens=256,
                                   messages=[{"role": "user", "content": prompt}])
    return f"{reply.model}: {reply.content[0].text}"

# %% [markdown]
# Your users ask ten questions. The cache holds answers saved earlier for the first
# three; `STATIC` is the last resort.

# %%
QUESTIONS = [f"Question {i} about your order" for i in range(10)]
CACHE = {q: f"(saved answer to {q!r})" for q in QUESTIONS[:3]}
STATIC = "Sorry, answers are slow right now. Please try again in a few minutes."

# %% [markdown]
# A cache miss raises `CacheMiss`, so that the chain moves on to the next step.

# %%
class CacheMiss(Exception):
    """No saved answer for this prompt."""


def from_cache(prompt):
    if prompt not in CACHE:
        raise CacheMiss(prompt)
    return CACHE[prompt]

# %% [markdown]
# ## The chain
#
# `Fallback` takes `(name, callable)` steps in order of preference and calls each with the
# same arguments until one answers. Which failures may move on is a parameter. The default,
# `may_fall_back`, allows only transient failures (what `classify` calls retryable: 429,
# 5xx, 529, timeouts, connection errors) and an open circuit. You add `CacheMiss` to it.
# See `resilience/fallback.py`.

# %%
def falls_back(e):
    return may_fall_back(e) or isinstance(e, CacheMiss)


def build_chain(client, main=None):
    main = main or (lambda prompt: ask(client, MODEL, prompt))
    return Fallback([("main", main),
                     ("smaller", lambda prompt: ask(client, FALLBACK_MODEL, prompt)),
                     ("cache", from_cache),
                     ("static", lambda prompt: STATIC)], should_fall_back=falls_back)

# %% [markdown]
# To break one model and not the other, you need a scenario that looks at the model each
# request asks for. A `FakeClaude` scenario is any object with a `decide(exchange, rng)`
# method: return an outcome to fail the request, or None to let it pass. The package has
# one for this: `ForModel(model, *scenarios)` runs its scenarios only on requests that ask
# for `model`, and lets every other request pass. Its `decide` is a few lines; read it in
# `resilience/testing/scenarios.py`.
#
# `DOWN` is an outage that never ends. On its own it fails every request; inside
# `ForModel`, only that model's. Try a request for each model:

# %%
DOWN = Outage(0, float("inf"))
with FakeClaude(clock=clock, seed=SEED) as api:
    api.scenario(ForModel(MODEL, DOWN))
    client = api.client(max_retries=0)
    for model in (MODEL, FALLBACK_MODEL):
        try:
            print(ask(client, model, "Hi"))
        except anthropic.APIStatusError as e:
            print(f"{model}: {type(e).__name__} {e.status_code}")

# %% [markdown]
# Now try the chain in three situations, with a question that is in the cache and one
# that is not. Look at the `step` column: each pair of rows goes one step further down the
# chain, and `calls` counts the requests that reached the API.

# %%
situations = {"healthy": [], "main down": [ForModel(MODEL, DOWN)], "both down": [DOWN]}
for name, scenarios in situations.items():
    for prompt in (QUESTIONS[0], QUESTIONS[9]):
        with FakeClaude(clock=clock, seed=SEED) as api:
            api.scenario(*scenarios)
            served = build_chain(api.client(max_retries=0)).call(prompt)
        cached = "cached" if prompt in CACHE else "new"
        print(f"{name:9} {cached:6} step={served.step:7} calls={len(api.calls)}  "
              f"{served.value[:40]}")

# %% [markdown]
# ## What `Served` tells you
#
# The chain returns a `Served`: the answer (`value`), the step that produced it (`step`,
# `index`), whether that was not the first choice (`degraded`), and the failures before it,
# each with its `classify` verdict. Log these: a service that is degraded half the time
# looks healthy to users, and only your logs will tell you. Here the main model is down.

# %%
with FakeClaude(clock=clock, seed=SEED) as api:
    api.scenario(ForModel(MODEL, DOWN))
    served = build_chain(api.client(max_retries=0)).call(QUESTIONS[9])
print(f"step={served.step!r} index={served.index} degraded={served.degraded}")
for step, verdict in served.failures:
    print(f"  {step} failed: {verdict} | {verdict.advice}")

# %% [markdown]
# ## What must never fall back
#
# A 400 says *this request* is wrong. A 401 says your API key is wrong; a 403 says the key
# may not do this. The smaller model would get the same request with the same key; a
# cached or static answer would hide the problem from the one person who can fix it. So
# these surface at once. Look at `calls`: the chain stopped after the first step.

# %%
for error in ("invalid_request_error", "authentication_error", "permission_error"):
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(error)
        try:
            build_chain(api.client(max_retries=0)).call(QUESTIONS[9])
        except anthropic.APIStatusError as e:
            print(f"{type(e).__name__:21} {e.status_code} surfaced, calls={len(api.calls)}"
                  f", may fall back: {may_fall_back(e)}")

# %% [markdown]
# ### A catch-all fallback hides what a person must fix
#
# A widely shared guide to Claude API errors shows "graceful degradation" as one function
# that catches every `Exception`, prints it, and returns a friendly apology. Here is the
# same idea in our own code.

# %%
def catch_all(client, prompt):
    try:
        return ask(client, MODEL, prompt)
    except Exception:
        return STATIC

# %% [markdown]
# Run it against a revoked key (401), and against a model id that has been retired (404:
# the guide's function hard-codes a model id, and ids do retire). No error, no status,
# nothing to alert on: every user gets "try again in a few minutes", forever, because no
# retry fixes either. The second line of each pair is what `classify` would have told a
# person.

# %%
for error, status in (("authentication_error", 401), ("not_found_error", 404)):
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.respond(error)
        print(f"{status}: the user sees: {catch_all(api.client(max_retries=0), 'Hi')}")
    print(f"     what happened: {classify(status).advice}")

# %% [markdown]
# ## 200 requests on a bad day
#
# Now a realistic mix, one request a second for 200 s, each asking one of the ten
# questions at random. The main model fails 5 % of calls (529s, 500s and 429s), and is down
# from t = 60 s to t = 140 s. The smaller model, taking the extra load, fails 10 % of its
# calls. `bad_day` sends every request through the chain and records the step that served
# it; it also returns `api.calls`, every request that reached the API. Pass `guard=True`
# to put a circuit breaker on the main step (later in this lesson).

# %%
BAD_DAY = [ForModel(MODEL, Outage(60, 140),
                    FailureRates({"overloaded_error": 0.03, "api_error": 0.01,
                                  "rate_limit_error": 0.01})),
           ForModel(FALLBACK_MODEL, FailureRates({"overloaded_error": 0.1}))]

# %%
def bad_day(guard=False, requests=200):
    clock, picks = VirtualClock(), random.Random(SEED)
    breaker = CircuitBreaker(5, 20.0, clock=clock) if guard else None
    with FakeClaude(clock=clock, seed=SEED) as api:
        api.scenario(*BAD_DAY)
        client = api.client(max_retries=0)
        main = breaker(lambda prompt: ask(client, MODEL, prompt)) if guard else None
        chain, steps = build_chain(client, main), []
        for _ in range(requests):
            steps.append(chain.call(picks.choice(QUESTIONS)).step)
            clock.advance(1.0)
    return steps, api.calls, breaker

# %% [markdown]
# Every request got a reply of some kind. Without the chain, a request succeeds only
# when the main model answers: that is the `main` share, the availability you would have
# had with the main model alone (the main call is the same either way: it comes first).

# %%
steps, calls, _ = bad_day()
served_by = Counter(steps)
print({step: served_by[step] for step in ("main", "smaller", "cache", "static")})
share = {step: count / len(steps) for step, count in served_by.items()}
print(f"main model alone: {share['main']:.1%} answered")
print(f"with the chain:   {share['main'] + share['smaller']:.1%} answered by a model, "
      f"{share['cache']:.1%} from the cache, {share['static']:.1%} got the apology")

# %% [markdown]
# Some requests fall back *before* the outage, too. That is not a bug: on a bad day the
# main model also fails 5 % of its calls at random (the `FailureRates` in `BAD_DAY`), all
# day long, and each of those falls back like any other failure. `before` counts them.

# %%
before = Counter(steps[:60])
print(f"before the outage: {dict(before)}; main failed {60 - before['main']} of 60")

# %% [markdown]
# The plot groups the requests in blocks of 20 s. Look at the outage (t = 60 to 140 s):
# the main model's share drops to zero and the smaller model carries almost everything;
# the cache and the static message catch the few requests the smaller model failed. The
# arrow points at the everyday fallbacks.

# %%
fig = plot_fallback_steps(steps, outage=(60, 140),
                          title="While the main model is down, the smaller model answers")
fig.axes[0].annotate("main's everyday 5 % failures\nfall back too", xy=(9, 19),
                     xytext=(2, 22.5), arrowprops={"arrowstyle": "->"}, fontsize=9)
plt.show()

# %% [markdown]
# ## Skip a model that is down, at once
#
# During the outage every request still tried the main model first, and failed. Here each
# failure came back at once; in real life each one costs a user a timeout or a few
# retries before the chain moves on. A circuit breaker on the main step (lesson 08) stops
# that: once it is open, the main step raises `CircuitOpenError` without a call, and
# `may_fall_back` lets it fall through to the smaller model.
#
# Count the requests that reached the main model while it was down, with and without
# the breaker (5 failures in a row, 20 s recovery timeout). Each of `api.calls` records
# the `model` the request asked for and the `time` it arrived.

# %%
guarded, guarded_calls, breaker = bad_day(guard=True)
for name, made in {"without a breaker": calls, "with a breaker": guarded_calls}.items():
    hits = sum(call.model == MODEL and 60 <= call.time < 140 for call in made)
    print(f"{name:18}: {hits:2d} calls to the main model during its outage")
print("served:", dict(Counter(guarded)))

# %% [markdown]
# The breaker's history shows it open for most of the outage, with a trial call every 20 s,
# and closed again soon after the outage ends. Availability barely changes: the breaker
# saves the calls and the waiting, while the chain keeps the answers coming.

# %%
for t, state in breaker.history:
    print(f"t={t:5.1f} s  {state}")

# %% [markdown]
# ## Exercise 10.1: a cache that fills itself
#
# The cache above was filled by hand. Write `remembering(step, cache)`: return a new step
# (a function of `prompt`) that calls `step(prompt)`, saves the answer in `cache[prompt]`,
# and returns it. When `step` raises, the new step must raise the same exception and leave
# the cache alone. The checker wraps a real model step on `FakeClaude`, then uses yours in
# a chain: the second time the model is down, the saved answer must serve.

# %%
def remembering(step, cache):
    raise NotImplementedError


check_remembering(remembering)

# %% [markdown]
# **Hint**: define an inner `def remembered(prompt):` that sets
# `answer = step(prompt)`, then `cache[prompt] = answer`, then `return answer`; return
# `remembered`. Do not catch anything: an exception should pass straight through. In the
# chain, use it as `("main", remembering(main, CACHE))`.
#
# ## Exercise 10.2: a chain over any list of models
#
# Write `model_chain(client, models, static_text)`: a `Fallback` with one step per model
# id in `models`, named by the id and returning the reply text
# (`reply.content[0].text`), then a last step named `"static"` that returns
# `static_text`. Keep the default `should_fall_back`. The checker breaks models one at a
# time and checks which step served, and which model each request asked for.

# %%
def model_chain(client, models, static_text):
    raise NotImplementedError


check_model_chain(model_chain)

# %% [markdown]
# **Hint**: build the steps in a loop. Watch out: `lambda prompt: ask(model, prompt)` in a
# loop sees the *last* `model` when it is called later, so every step would ask the same
# model. Bind the value now: `lambda prompt, model=model: ...`, or a small function that
# returns the step.
#
# ## Recap
#
# - A fallback chain serves the next best answer: a smaller model, a saved answer, a
#   static message. `Fallback` tries the steps in order; `Served` says which one answered
#   (`step`, `degraded`) and what failed before (`failures`).
# - Only transient failures fall back (`may_fall_back`). A 400, 401 or 403 surfaces at
#   once; a catch-all `except Exception` turns a revoked key into an endless apology.
# - On a bad day the chain answered 95.5 % of requests with a model, where the main model
#   alone answered 57.5 %; log degraded answers so you know how often it happens.
# - A breaker on the main step skips a model that is down, without a call.
#
# **Next:** [Lesson 11: Streaming errors](11_streaming_errors.ipynb)
