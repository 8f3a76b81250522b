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
RateLimited        a token bucket: 429 with an accurate ``retry-after`` when empty;
                   ``anthropic-ratelimit-requests-*`` headers on every answer
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
    """A server with limited capacity: a token bucket of requests on the virtual clock.

    The bucket holds ``burst`` tokens (default: a minute's worth) and refills continuously
    at ``requests_per_minute / 60`` tokens a second. Each request takes one token. With
    none left the answer is a 429 ``rate_limit_error`` whose ``retry-after`` is the whole
    number of seconds until a token is back (never too early), and whose ``error.message``
    names the limit (:attr:`message`). Every answer, success or 429, carries the API's
    pacing headers:

    * ``anthropic-ratelimit-requests-limit``: ``requests_per_minute``;
    * ``anthropic-ratelimit-requests-remaining``: whole tokens left;
    * ``anthropic-ratelimit-requests-reset``: when the bucket will be full again (RFC 3339,
      on the virtual calendar of :func:`~resilience.testing.responses.rfc3339`).

    The SDK reads only ``retry-after``; pacing on the other headers is the caller's job.

    Args:
        requests_per_minute: the limit (> 0).
        burst: the bucket's size (default ``requests_per_minute``).
    """

    __slots__ = ("_bucket", "burst", "requests_per_minute")

    def __init__(self, requests_per_minute: float, burst: float | None = None) -> None:
        if not requests_per_minute > 0:
            raise ValueError(f"requests_per_minute must be > 0, got {requests_per_minute!r}")
        self.requests_per_minute = requests_per_minute
        self.burst = float(requests_per_minute if burst is None else burst)
        if not self.burst >= 1:
            raise ValueError(f"burst must be at least 1 request, got {burst!r}")
        self._bucket = TokenBucket(self.rate, self.burst)

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.requests_per_minute / 60.0

    def decide(self, exchange: Exchange, rng: random.Random) -> Outcome | None:
        """Take a token, or answer 429 with the exact wait."""
        now = exchange.clock.now()
        taken = self._bucket.take(now) == 0.0
        exchange.headers.update(self._headers(now))
        if taken:
            return None
        # retry-after in whole seconds, never too early (with the bucket's float tolerance)
        wait = math.ceil((1 - TOLERANCE - self._bucket.tokens) / self.rate)
        return error("rate_limit_error", retry_after=max(1, wait), message=self.message)

    @property
    def message(self) -> str:
        """The 429's ``error.message``: it names this limit, as the real API names yours."""
        return ("This request would exceed the rate limit for your organization of "
                f"{self.requests_per_minute:g} requests per minute.")

    def _headers(self, now: float) -> dict[str, str]:
        full_at = now + self._bucket.full_in()
        return {
            "anthropic-ratelimit-requests-limit": str(int(self.requests_per_minute)),
            "anthropic-ratelimit-requests-remaining": str(math.floor(self._bucket.tokens)),
            "anthropic-ratelimit-requests-reset": responses.rfc3339(full_at),
        }

    def __repr__(self) -> str:
        return (f"RateLimited(requests_per_minute={self.requests_per_minute!r}, "
                f"burst={self.burst!r})")


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
