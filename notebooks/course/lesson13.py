"""Checkers for lesson 13, "Putting it together".

* ``make_ask(api, clock)``: a function ``ask(prompt) -> str`` with one retry layer
  (``resilience.retry`` on a client with ``max_retries=0``), at most 4 attempts, a deadline
  of at most 60 s, waiting on ``clock``, never sooner than a ``retry-after`` asks.
* ``make_chain(api, clock)``: a :class:`~resilience.Fallback` from ``MODEL`` to
  ``FALLBACK_MODEL`` to a static message, that falls back at once (one attempt per model:
  no SDK retries stacked under the chain) and never on a 4xx.

Each check runs the learner's builder against a fresh simulated API and virtual clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from course import exercise
from resilience.clock import VirtualClock
from resilience.models import FALLBACK_MODEL, MODEL

if TYPE_CHECKING:
    from resilience.testing import Scenario

__all__ = ["CHECKS", "check_make_ask", "check_make_chain"]


def _fake() -> Any:
    from resilience.testing import FakeClaude

    return FakeClaude(clock=VirtualClock(), seed=0)


@exercise("13.1", "one retry layer")
def check_make_ask(solution: Callable[..., Any]) -> None:
    """Recovers from two 529s with 3 attempts and no SDK retries; gives up after at most 4
    attempts with the original error; never retries a 400; waits at least a 429's
    ``retry-after``; respects a deadline."""
    import anthropic

    from resilience.testing import error
    from resilience.testing.responses import DEFAULT_TEXT

    with _fake() as api:
        api.respond("overloaded_error", "overloaded_error", "ok")
        got = solution(api, api.clock)("Hello")
        assert got == DEFAULT_TEXT, (
            f"after two 529s and a success, ask('Hello') returned {got!r}; expected the "
            f"answer's text, {DEFAULT_TEXT!r} (message.content[0].text).")
        counts = [call.retry_count for call in api.calls]
        assert counts == [0, 0, 0], (
            f"the SDK's retry counts were {counts}: the SDK retried too. Build the client "
            "with api.client(max_retries=0), so resilience.retry is the only layer.")
        assert api.clock.now() > 0, (
            "no virtual time passed between attempts: pass clock=clock to retry(...), so "
            "it waits on the virtual clock (and jitters its waits).")
    with _fake() as api:
        api.respond(*["overloaded_error"] * 10)
        try:
            solution(api, api.clock)("Hello")
        except anthropic.OverloadedError:
            pass
        except Exception as e:
            raise AssertionError(
                f"when every attempt gets a 529, let the original OverloadedError out; you "
                f"raised {type(e).__name__}.") from None
        else:
            raise AssertionError("every attempt got a 529, yet ask() returned: re-raise.")
        assert 2 <= len(api.calls) <= 4, (
            f"with nothing but 529s, {len(api.calls)} attempts reached the API; expected "
            "2 to 4 (attempts=4 at most, and do retry).")
    with _fake() as api:
        api.respond("invalid_request_error", "ok")
        try:
            solution(api, api.clock)("Hello")
        except anthropic.BadRequestError:
            pass
        else:
            raise AssertionError("a 400 must surface as BadRequestError, not be answered.")
        assert len(api.calls) == 1, (
            f"a 400 was sent {len(api.calls)} times; it is not retryable: send it once.")
    with _fake() as api:
        api.respond(error("rate_limit_error", retry_after=3), "ok")
        try:
            got = solution(api, api.clock)("Hello")
        except anthropic.RateLimitError:
            raise AssertionError(
                "a 429 with retry-after: 3 reached the caller: a 429 is transient, so retry "
                "it, after at least the 3 s it asks for.") from None
        assert got == DEFAULT_TEXT, f"after a 429 and a success, ask() returned {got!r}."
        gap = api.calls[1].time - api.calls[0].time if len(api.calls) > 1 else 0.0
        assert gap >= 3.0, (
            f"the 429 said retry-after: 3 and you retried after {gap:.2f} s: take "
            "retry-after as the floor of your wait (resilience.retry does).")
    with _fake() as api:
        api.respond(error("rate_limit_error", retry_after=120), "ok")
        try:
            solution(api, api.clock)("Hello")
        except anthropic.RateLimitError:
            pass
        else:
            raise AssertionError(
                "a 429 asked for a 120 s wait and you waited it out: set a deadline of at "
                "most 60 s (retry(deadline=...)) so no request waits that long.")
        assert api.clock.now() <= 60.0, f"the call took {api.clock.now():.0f} s; at most 60."


@exercise("13.2", "a fallback chain")
def check_make_chain(solution: Callable[..., Any]) -> None:
    """Main model first; the smaller model when it is down; a static message when both
    are; a 400 or a 401 raises instead of falling back."""
    import anthropic

    from resilience.testing import ForModel, Outage
    from resilience.testing.responses import DEFAULT_TEXT

    cases: list[tuple[str, list[Scenario], int]] = [
        ("nothing is down", [], 0),
        ("the main model is down", [ForModel(MODEL, Outage(0.0, 1e9))], 1),
        ("every model is down", [Outage(0.0, 1e9)], 2)]
    for what, scenarios, index in cases:
        with _fake() as api:
            api.scenario(*scenarios)
            served = solution(api, api.clock).call("Hello")
        main = [call.retry_count for call in api.calls if call.model == MODEL]
        assert len(main) <= 1, (
            f"when {what}, {MODEL} got {len(main)} attempts (SDK retry counts {main}) before "
            "the chain moved on: the SDK's retries are stacked under your chain. Build the "
            "steps on api.client(max_retries=0), so each model gets one attempt.")
        got = getattr(served, "index", None)
        assert got == index, (
            f"when {what}, step {got} answered; expected step {index} "
            f"(0 {MODEL}, 1 {FALLBACK_MODEL}, 2 the static message). Return a Fallback.")
        value = served.value
        assert isinstance(value, str) and value, (
            f"when {what}, the answer was {value!r}; return text (a non-empty string).")
        if index < 2:
            assert value == DEFAULT_TEXT, (
                f"when {what}, a model step returned {value!r}; return "
                "message.content[0].text.")
    for name, kind in [("invalid_request_error", anthropic.BadRequestError),
                       ("authentication_error", anthropic.AuthenticationError)]:
        with _fake() as api:
            api.respond(name)
            try:
                served = solution(api, api.clock).call("Hello")
            except kind:
                continue
            raise AssertionError(
                f"a {kind.__name__} was answered by step {getattr(served, 'step', served)!r}: "
                "a 4xx is your bug, so it must raise, not fall back.")


CHECKS = {"make_ask": check_make_ask, "make_chain": check_make_chain}
