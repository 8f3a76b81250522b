"""Scenarios: how the simulated API behaves beyond a script, on the virtual clock.

A scenario looks at each request that the script (``api.respond``) does not answer and
either returns an :class:`~resilience.testing.outcomes.Outcome` (the request fails) or
None (it passes on to the next scenario; if all pass, it succeeds). Scenarios compose in
the order given::

    api.scenario(Slow(2.0), RateLimited(requests_per_minute=50),
                 Outage(start=10, end=40), FailureRates({"overloaded_error": 0.1}))

=================  ============================================================
scenario           behaviour
=================  ============================================================
FailureRates       each request fails with a given probability per outcome
ForModel           other scenarios, applied only to the requests for one model
Outage             every request fails between two virtual times
RateLimited        token buckets of requests, input tokens and output tokens per
                   minute: 429 with an accurate ``retry-after`` when one is short;
                   ``anthropic-ratelimit-*`` headers on every answer
Slow               each answer takes ``seconds``; past the read timeout, it times out
=================  ============================================================

Randomness comes from the ``random.Random`` the fake passes in, seeded from its ``seed``.

Any object with a ``decide(exchange, rng)`` method is a scenario (:class:`Scenario`): these
classes are examples as much as tools.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from ..ratelimit import TOLERANCE, TokenBucket
from . import responses
from .outcomes import Exchange, Outcome, Timeout, error, outcome

__all__ = ["FailureRates", "ForModel", "Outage", "RateLimited", "Scenario", "Slow"]



class Scenario(Protocol):
    """What the fake asks a scenario about each request."""

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """The outcome for this request, or None to let it pass."""
        ...


class FailureRates:
    """Each request fails with a fixed probability per outcome, independently.

    Args:
        rates: outcome (any name :meth:`FakeClaude.respond` accepts) -> probability;
            the probabilities must add up to at most 1.

    Example: ``FailureRates({"overloaded_error": 0.2, "rate_limit_error": 0.05})``.
    """

    __slots__ = ("_table", "rates")

    def __init__(self, rates: Mapping[str, float]) -> None:
        if any(not 0 <= p <= 1 for p in rates.values()) or sum(rates.values()) > 1 + 1e-12:
            raise ValueError(f"rates must be probabilities adding up to at most 1: {rates!r}")
        self.rates = MappingProxyType(dict(rates))
        self._table = [(p, outcome(name)) for name, p in rates.items()]

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """One uniform draw picks the outcome (or none) by cumulative probability."""
        u = rng.random()
        for p, chosen in self._table:
            if u < p:
                return chosen
            u -= p
        return None

    def __repr__(self) -> str:
        return f"FailureRates({dict(self.rates)!r})"


class ForModel:
    """Scenarios that apply only to the requests for one model; other requests pass.

    The simulated API answers any model id, so a fallback to a smaller model needs one
    model broken and the other healthy::

        api.scenario(ForModel(MODEL, Outage(100, 140)))  # MODEL down; FALLBACK_MODEL fine

    For a request that asks for ``model`` the scenarios decide in order, and the first
    outcome that is not None wins (as in :meth:`FakeClaude.scenario`); any other request
    passes untouched, so its scenarios draw nothing from ``rng``.

    Args:
        model: the model id, as the request's ``model`` field names it.
        *scenarios: at least one scenario (anything with a ``decide`` method).

    Raises:
        ValueError: for an empty or non-string ``model``, no scenarios, or a scenario
            without a ``decide`` method.
    """

    __slots__ = ("model", "scenarios")

    def __init__(self, model: str, *scenarios: Scenario) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty model id, got {model!r}")
        if not scenarios:
            raise ValueError("scenarios: give at least one scenario to apply to the model")
        for scenario in scenarios:
            if not callable(getattr(scenario, "decide", None)):
                raise ValueError(f"scenarios: {scenario!r} is not a scenario "
                                 "(it has no decide method)")
        self.model = model
        self.scenarios: tuple[Scenario, ...] = scenarios

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """The first outcome of the scenarios for a request for ``model``; else None."""
        if exchange.requested_model != self.model:
            return None
        for scenario in self.scenarios:
            decided = scenario.decide(exchange, rng)
            if decided is not None:
                return decided
        return None

    def __repr__(self) -> str:
        return f"ForModel({', '.join(map(repr, (self.model, *self.scenarios)))})"


@dataclass(frozen=True, slots=True)
class Outage:
    """Every request fails with ``error`` from virtual time ``start`` until ``end``.

    Attributes:
        start: when the outage begins, in virtual seconds.
        end: when it ends (a request at exactly ``end`` succeeds).
        error: the outcome of each request meanwhile (default ``"overloaded_error"``, a 529).
    """

    start: float
    end: float
    error: str = "overloaded_error"

    def __post_init__(self) -> None:
        if not self.start <= self.end:
            raise ValueError(f"an outage must start before it ends: {self.start} > {self.end}")
        outcome(self.error)  # fail now, not at the first request, on a bad name

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """The error while ``start <= now < end``."""
        now = exchange.clock.now()
        return outcome(self.error) if self.start <= now < self.end else None


class RateLimited:
    """A server with limited capacity: token buckets on the virtual clock.

    Up to three limits, as the Claude API has, each its own bucket:

    * ``requests_per_minute``: each request takes one token from a bucket of ``burst``
      (default: a minute's worth), refilled at ``requests_per_minute / 60`` a second;
    * ``input_tokens_per_minute``: each request takes its input tokens, the estimate its
      reply's ``usage.input_tokens`` and ``count_tokens`` report
      (:func:`~resilience.testing.responses.estimate_tokens` of its messages), from a bucket
      of a minute's worth;
    * ``output_tokens_per_minute``: each request takes its ``max_tokens`` when it starts,
      from a bucket of a minute's worth. (The real API also counts ``max_tokens`` at the
      start, then gives back what the answer did not use; this simulation keeps the whole
      reservation, so an inflated ``max_tokens`` costs what it reserves.)

    A request passes only when every bucket holds what it needs; then it takes from all of
    them. Otherwise it takes nothing and the answer is a 429 ``rate_limit_error`` whose
    ``retry-after`` is the whole number of seconds until every bucket holds enough (never
    too early), and whose ``error.message`` names the limit that takes longest. A request
    that needs more than a bucket can ever hold gets a 429 with ``x-should-retry: false``
    (the simulation's choice: no wait can help it). Every answer, success or 429, carries
    the API's pacing headers for each limit set, ``limit``, ``remaining`` (whole tokens
    left) and ``reset`` (when the bucket will be full again, RFC 3339 on the virtual
    calendar of :func:`~resilience.testing.responses.rfc3339`):

    * ``anthropic-ratelimit-requests-{limit,remaining,reset}``;
    * ``anthropic-ratelimit-input-tokens-*`` and ``anthropic-ratelimit-output-tokens-*``;
    * ``anthropic-ratelimit-tokens-*``: the token limit with the fewest tokens remaining
      (the most restrictive one now), when a token limit is set.

    The SDK reads only ``retry-after``; pacing on the other headers is the caller's job.

    Args:
        requests_per_minute: the request limit (> 0), or None for none.
        burst: the request bucket's size (>= 1; default ``requests_per_minute``).
        input_tokens_per_minute: the input token limit (>= 1), or None for none.
        output_tokens_per_minute: the output token limit (>= 1), or None for none.

    Example: ``RateLimited(50, input_tokens_per_minute=30_000,
    output_tokens_per_minute=8_000)``.
    """

    __slots__ = ("_limits", "burst", "input_tokens_per_minute", "output_tokens_per_minute",
                 "requests_per_minute")

    def __init__(self, requests_per_minute: float | None = None, burst: float | None = None,
                 *, input_tokens_per_minute: float | None = None,
                 output_tokens_per_minute: float | None = None) -> None:
        given = {"requests_per_minute": requests_per_minute, "burst": burst,
                 "input_tokens_per_minute": input_tokens_per_minute,
                 "output_tokens_per_minute": output_tokens_per_minute}
        for name, value in given.items():
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise TypeError(f"{name} must be a number or None, got {value!r}")
        if requests_per_minute is None and input_tokens_per_minute is None and (
                output_tokens_per_minute is None):
            raise ValueError("RateLimited needs a limit: requests_per_minute, "
                             "input_tokens_per_minute or output_tokens_per_minute")
        self._limits: list[_Limit] = []
        self.requests_per_minute = requests_per_minute
        self.burst: float | None = None
        if requests_per_minute is not None:
            if not requests_per_minute > 0:
                raise ValueError(f"requests_per_minute must be > 0, got {requests_per_minute!r}")
            self.burst = float(requests_per_minute if burst is None else burst)
            if not self.burst >= 1:
                raise ValueError(f"burst must be at least 1 request, got {burst!r}")
            self._limits.append(_Limit("requests", requests_per_minute, self.burst))
        elif burst is not None:
            raise ValueError("burst sizes the request bucket: give requests_per_minute too")
        self.input_tokens_per_minute = input_tokens_per_minute
        self.output_tokens_per_minute = output_tokens_per_minute
        for kind, per_minute in (("input tokens", input_tokens_per_minute),
                                 ("output tokens", output_tokens_per_minute)):
            if per_minute is None:
                continue
            if not 1 <= per_minute < math.inf:
                setting = kind.replace(" ", "_") + "_per_minute"
                raise ValueError(f"{setting} must be a finite number >= 1, got {per_minute!r}")
            self._limits.append(_Limit(kind, per_minute, float(per_minute)))

    @property
    def rate(self) -> float:
        """Requests added per second (0.0 without a request limit)."""
        return 0.0 if self.requests_per_minute is None else self.requests_per_minute / 60.0

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """Take what the request needs from every bucket, or answer 429 with the exact wait."""
        now = exchange.clock.now()
        needs = [limit.need(exchange) for limit in self._limits]
        for limit in self._limits:
            limit.bucket.refill(now)
        short = [(limit.seconds_until(need), i)
                 for i, (limit, need) in enumerate(zip(self._limits, needs, strict=True))
                 if limit.bucket.tokens < need - TOLERANCE]
        if not short:  # every bucket has room: the request takes from each
            for limit, need in zip(self._limits, needs, strict=True):
                if need > 0:
                    limit.bucket.take(now, need)
        exchange.headers.update(self._headers(now))
        if not short:
            return None
        # retry-after in whole seconds, never too early (with the bucket's float tolerance)
        wait, binding = max(short)
        retry_after = max(1, math.ceil(wait))
        for limit, need in zip(self._limits, needs, strict=True):
            if need > limit.bucket.capacity + TOLERANCE:
                return error("rate_limit_error", retry_after=retry_after, should_retry=False,
                             message=limit.too_large(need))
        return error("rate_limit_error", retry_after=retry_after,
                     message=self._limits[binding].message)

    @property
    def message(self) -> str:
        """The 429's ``error.message`` for the first limit set: it names the limit, as the
        real API names yours."""
        return self._limits[0].message

    def _headers(self, now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for limit in self._limits:
            headers.update(limit.headers(now))
        tokens = [limit for limit in self._limits if limit.kind != "requests"]
        if tokens:
            tightest = min(tokens, key=lambda limit: math.floor(limit.bucket.tokens))
            for name, value in tightest.headers(now).items():
                headers[name.replace(tightest.header, "tokens")] = value
        return headers

    def __repr__(self) -> str:
        parts = []
        if self.requests_per_minute is not None:
            parts.append(f"requests_per_minute={self.requests_per_minute!r}, "
                         f"burst={self.burst!r}")
        for name in ("input_tokens_per_minute", "output_tokens_per_minute"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"RateLimited({', '.join(parts)})"


class _Limit:
    """One of :class:`RateLimited`'s limits: its bucket, what a request needs, its headers."""

    __slots__ = ("bucket", "header", "kind", "per_minute")

    def __init__(self, kind: str, per_minute: float, capacity: float) -> None:
        self.kind = kind  # "requests", "input tokens" or "output tokens"
        self.header = kind.replace(" ", "-")
        self.per_minute = per_minute
        self.bucket = TokenBucket(per_minute / 60.0, capacity)

    def need(self, exchange: Exchange) -> float:
        """What the request takes from this bucket."""
        if self.kind == "requests":
            return 1.0
        if self.kind == "input tokens":
            return float(responses.estimate_tokens(exchange.prompt))
        max_tokens = exchange.body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            return 0.0  # a malformed request: the real API answers 400 before any limit
        return float(max_tokens)

    def seconds_until(self, need: float) -> float:
        """Seconds until the bucket holds ``need`` (or is full, if it never can)."""
        target = min(need, self.bucket.capacity) - TOLERANCE
        return max(0.0, (target - self.bucket.tokens) / self.bucket.rate)

    @property
    def message(self) -> str:
        return ("This request would exceed the rate limit for your organization of "
                f"{self.per_minute:g} {self.kind} per minute.")

    def too_large(self, need: float) -> str:
        return (f"This request needs {need:g} {self.kind}, more than the rate limit for your "
                f"organization of {self.per_minute:g} {self.kind} per minute allows at once.")

    def headers(self, now: float) -> dict[str, str]:
        prefix = f"anthropic-ratelimit-{self.header}-"
        return {
            prefix + "limit": str(int(self.per_minute)),
            prefix + "remaining": str(math.floor(self.bucket.tokens)),
            prefix + "reset": responses.rfc3339(now + self.bucket.full_in()),
        }


@dataclass(frozen=True, slots=True)
class Slow:
    """Answers take ``seconds`` of virtual time; past the client's read timeout, a timeout.

    With probability ``probability`` (default: always) a request is slow: the clock moves
    on by ``seconds`` and the request continues; if ``seconds`` exceeds the request's read
    timeout (``client(timeout=...)``), the clock moves on by the timeout instead and the SDK
    sees ``httpx2.ReadTimeout`` (it raises ``APITimeoutError`` and retries).

    Under :meth:`FakeClaude.run <resilience.testing.FakeClaude.run>` (many async clients on
    one virtual-time loop) the latency is that request's own: it waits on a timer while the
    other requests go on, instead of moving the clock for everyone.

    Attributes:
        seconds: the latency of a slow answer.
        probability: the chance that a request is slow.
    """

    seconds: float
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {self.seconds!r}")
        if not 0 <= self.probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """Move the clock by the latency, or time out."""
        if self.probability < 1 and rng.random() >= self.probability:
            return None
        limit = exchange.read_timeout
        if limit is not None and self.seconds > limit:
            return Timeout(limit)
        exchange.clock.advance(self.seconds)
        return None
