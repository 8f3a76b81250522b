"""Checkers for lesson 18, "Token-based limits".

* ``wait_for_tokens(headers, input_tokens, max_tokens)``: given the headers of the last
  answer, the seconds to wait before sending a request of ``input_tokens`` input tokens and
  ``max_tokens`` output tokens, so that none of the three limits (requests, input tokens,
  output tokens per minute) refuses it. Checked by sending that request after the wait.
* ``make_pacer(input_tokens_per_minute, output_tokens_per_minute)``: a client-side pacer
  that needs no headers. It returns ``wait(now, input_tokens, max_tokens)``, the seconds to
  wait before sending such a request at virtual time ``now`` (the request then counts as
  sent at ``now + wait``). Checked on a seeded workload: no 429, and nearly as fast as a
  perfect pacer.

Both run against ``RateLimited`` in the simulated API with ``max_retries=0``, so a wrong
answer meets the 429 itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

from anthropic.types import MessageParam

from course import exercise

__all__ = ["CHECKS", "check_pacer", "check_wait_for_tokens", "document", "exact_pacer",
           "workload"]

_PREFIX = "anthropic-ratelimit-"
_KINDS = ("requests", "input-tokens", "output-tokens")


def document(tokens: int, topic: int = 0) -> list[MessageParam]:
    """A user message of about ``tokens`` input tokens (four characters a token)."""
    text = f"Summarize document {topic}: " + "lorem ipsum " * max(0, (4 * tokens - 32) // 12)
    return [{"role": "user", "content": text}]


def workload(seed: int, jobs: int = 24) -> list[tuple[list[MessageParam], int]]:
    """``jobs`` seeded requests: (messages of 200-4,000 tokens, max_tokens of 256-2,048)."""
    rng = random.Random(f"lesson17-{seed}")  # the seed kept its old name
    return [(document(rng.randrange(200, 4000), i), rng.choice((256, 512, 1024, 2048)))
            for i in range(jobs)]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _message(error: Any) -> str:
    """The ``error.message`` of an API error's body."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message"))
    return str(error)


def _short_waits(headers: Mapping[str, str], input_tokens: int,
                 max_tokens: int) -> dict[str, float]:
    """The wait each limit asks for, from the headers: ``max(0, need - remaining) /
    (limit / 60)`` seconds."""
    waits = {}
    for kind, need in zip(_KINDS, (1, input_tokens, max_tokens), strict=True):
        limit = int(headers[f"{_PREFIX}{kind}-limit"])
        remaining = int(headers[f"{_PREFIX}{kind}-remaining"])
        waits[kind] = max(0, need - remaining) / (limit / 60)
    return waits


# Exercise 18.1: each case is (label, limits, requests sent first (input, max_tokens),
# the request to wait for).
_CASES: list[tuple[str, dict[str, Any], list[tuple[int, int]], tuple[int, int]]] = [
    ("nothing is short", {"requests_per_minute": 50, "input_tokens_per_minute": 30_000,
                          "output_tokens_per_minute": 8_000}, [(1000, 1024)], (1000, 1024)),
    ("the output limit is short",
     {"requests_per_minute": 50, "input_tokens_per_minute": 30_000,
      "output_tokens_per_minute": 8_000}, [(500, 1024)] * 7, (500, 1024)),
    ("the input limit is short",
     {"requests_per_minute": 50, "input_tokens_per_minute": 30_000,
      "output_tokens_per_minute": 8_000}, [(7000, 256)] * 4, (7000, 256)),
    ("both token limits are short",
     {"requests_per_minute": 50, "input_tokens_per_minute": 20_000,
      "output_tokens_per_minute": 4_000}, [(9000, 1800)] * 2, (9000, 1800)),
    ("the request limit is short",
     {"requests_per_minute": 6, "burst": 2, "input_tokens_per_minute": 30_000,
      "output_tokens_per_minute": 8_000}, [(100, 64)] * 2, (100, 64)),
]


def _request(client: Any, model: str, input_tokens: int, max_tokens: int) -> Any:
    return client.messages.with_raw_response.create(model=model, max_tokens=max_tokens,
                                                    messages=document(input_tokens))


@exercise("18.1", "the wait before a request of N tokens")
def check_wait_for_tokens(solution: Callable[..., Any]) -> None:
    """Each answer is sent after the wait: no 429, and no more than a second too slow."""
    import anthropic

    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, RateLimited

    for label, limits, before, (input_tokens, max_tokens) in _CASES:
        clock = VirtualClock()
        with FakeClaude(clock=clock, seed=0) as api:
            api.scenario(RateLimited(**limits))
            client = api.client(max_retries=0)
            for sent_in, sent_out in before:
                raw = _request(client, api.model, sent_in, sent_out)
            headers = raw.headers
            need_in = client.messages.count_tokens(model=api.model,
                                                   messages=document(input_tokens)).input_tokens
            wait = solution(headers, need_in, max_tokens)
            call = f"wait_for_tokens(headers, {need_in}, {max_tokens})"
            assert _number(wait) and wait >= 0, (
                f"{label}: {call} returned {wait!r}; expected seconds >= 0.")
            waits = _short_waits(headers, need_in, max_tokens)
            best = max(waits.values())
            clock.sleep(float(wait))
            try:
                _request(client, api.model, input_tokens, max_tokens)
            except anthropic.RateLimitError as e:
                raise AssertionError(
                    f"{label}: you waited {wait:.2f} s and the request got a 429: "
                    f"\"{_message(e)}\" (retry-after: "
                    f"{e.response.headers['retry-after']} s). Check all three limits: each "
                    "needs max(0, need - remaining) more, and refills at limit / 60 a "
                    "second; wait for the slowest.") from None
            assert wait <= best + 1.0, (
                f"{label}: no 429, but you waited {wait:.2f} s where {best:.2f} s is enough. "
                "Wait only for what is short (need - remaining, at limit / 60 a second), and "
                "take the longest of the three waits, not their sum or the time until reset.")


def exact_pacer(input_tokens_per_minute: float,
                output_tokens_per_minute: float) -> Callable[[float, int, int], float]:
    """A perfect client-side pacer: two token buckets that start full, as the API's do."""
    rates = (input_tokens_per_minute / 60, output_tokens_per_minute / 60)
    caps = (float(input_tokens_per_minute), float(output_tokens_per_minute))
    tokens = list(caps)
    last: list[float | None] = [None]

    def wait(now: float, input_tokens: int, max_tokens: int) -> float:
        needs = (input_tokens, max_tokens)
        if last[0] is not None:
            for i in range(2):
                tokens[i] = min(caps[i], tokens[i] + (now - last[0]) * rates[i])
        pause = max(max(0.0, (needs[i] - tokens[i]) / rates[i]) for i in range(2))
        for i in range(2):
            tokens[i] = min(caps[i], tokens[i] + pause * rates[i]) - needs[i]
        last[0] = now + pause
        return pause

    return wait


_ITPM, _OTPM, _LATENCY, _PAUSE_AFTER, _PAUSE = 20_000, 6_000, 1.0, 12, 150.0


def _paced_run(make_pacer: Callable[..., Any], seed: int) -> tuple[float, int, int]:
    """Run the seeded workload with the pacer: (time taken, output tokens sent, jobs)."""
    import anthropic

    from resilience.clock import VirtualClock
    from resilience.testing import FakeClaude, RateLimited, Slow

    clock = VirtualClock()
    jobs = workload(seed)
    with FakeClaude(clock=clock, seed=0) as api:
        api.scenario(RateLimited(input_tokens_per_minute=_ITPM,
                                 output_tokens_per_minute=_OTPM), Slow(_LATENCY))
        client = api.client(max_retries=0)
        pace = make_pacer(_ITPM, _OTPM)
        sent = 0
        for job, (messages, max_tokens) in enumerate(jobs):
            if job == _PAUSE_AFTER:
                clock.advance(_PAUSE)  # the app is quiet for a while
            counted = client.messages.count_tokens(model=api.model, messages=messages)
            wait = pace(clock.now(), counted.input_tokens, max_tokens)
            assert _number(wait) and 0 <= wait < math.inf, (
                f"your pacer's wait returned {wait!r}; expected a number of seconds >= 0.")
            clock.sleep(float(wait))
            try:
                client.messages.create(model=api.model, max_tokens=max_tokens,
                                       messages=messages)
            except anthropic.RateLimitError as e:
                quiet = (f" (after the app was quiet for {_PAUSE:g} s: a bucket banks at "
                         "most a minute's worth)" if job >= _PAUSE_AFTER else "")
                raise AssertionError(
                    f"job {job + 1} of {len(jobs)} ({counted.input_tokens} input tokens, "
                    f"max_tokens={max_tokens}){quiet} got a 429 at t={clock.now():.1f} s: "
                    f"\"{_message(e)}\". Keep one bucket per limit: refill it "
                    "at limit / 60 a second up to a minute's worth, take what each request "
                    "needs (its counted input tokens, its max_tokens), and wait until both "
                    "hold enough.") from None
            sent += max_tokens
    return clock.now(), sent, len(jobs)


@exercise("18.2", "pace on tokens")
def check_pacer(solution: Callable[..., Any]) -> None:
    """No 429 over two seeded workloads, and within 10 % (+2 s) of a perfect pacer's time."""
    for seed in (0, 1):
        took, sent, jobs = _paced_run(solution, seed)
        best, _, _ = _paced_run(exact_pacer, seed)
        used = sent / (took - _PAUSE) * 60 / _OTPM
        assert took <= 1.1 * best + 2, (
            f"no 429s, but the {jobs} jobs of workload {seed} took {took:.0f} s where a "
            f"perfect pacer needs {best:.0f} s (you used {used:.0%} of the output limit). "
            "Start each bucket full (a minute's worth), refill it continuously, and wait "
            "only until it holds what the request needs.")


CHECKS = {"wait_for_tokens": check_wait_for_tokens, "make_pacer": check_pacer}
