"""The chaos server's profiles: named sets of ``FakeClaude`` scenarios, on real time.

A profile is a list of the test kit's own scenarios (:mod:`resilience.testing.scenarios`)
built from :class:`Settings`; the server asks them about each request exactly as
``FakeClaude`` does, so a fault means the same thing in a unit test and on the wire.

==============  ===========================================================================
profile         behaviour
==============  ===========================================================================
calm            no faults
bad-day         about ``fault_rate`` (30 %) of requests meet a fault, mixed as
                :data:`BAD_DAY_MIX` says: 529s, 500s, 503s, HTML 502s, 504s, 429s,
                ``overloaded_error`` after a 200, dropped connections (before an answer
                and mid-body), a stalled stream, a hung request and a slow first byte
outage          ``outage_error`` (529) from ``outage_start`` for ``outage_length`` seconds,
                then recovery
rate-limited    a token bucket of ``rpm`` requests a minute (default 60, ``burst`` 10):
                429 with an accurate ``retry-after`` when it is empty
==============  ===========================================================================

Every profile answers with the ``anthropic-ratelimit-requests-*`` headers (a bucket of
:data:`UNLIMITED_RPM` where the profile sets no limit), and adds ``faults`` (extra outcomes
by name and probability, e.g. ``{"authentication_error": 0.1}``) after its own scenarios.

Time is the server's: seconds since it started (or was reset), so an outage plays out in
real time. The real delays are small and set here: ``slow`` (the slow first byte) and
``hang`` (how long the server stays silent for a client that declares no read timeout;
the SDKs declare theirs in ``x-stainless-read-timeout`` and the server stays silent just
past it, so a stalled or hung request costs the client exactly its read timeout).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..outcomes import outcome
from ..scenarios import FailureRates, Outage, RateLimited, Scenario, Slow

__all__ = ["BAD_DAY_MIX", "PROFILES", "UNLIMITED_RPM", "Settings", "scenarios"]

PROFILES = ("calm", "bad-day", "outage", "rate-limited")
"""The profile names (pinned: apps and CI scripts name them)."""

UNLIMITED_RPM = 1_000_000
"""The request limit announced by profiles without a rate limit (never reached on loopback)."""

BAD_DAY_MIX: Mapping[str, float] = MappingProxyType({
    "overloaded_error": 0.25,
    "api_error": 0.10,
    "rate_limit_error": 0.10,
    "service_unavailable": 0.05,
    "bad_gateway": 0.05,
    "timeout_error": 0.05,
    "stream_overloaded": 0.10,
    "stream_dropped": 0.10,
    "connection_error": 0.05,
    "stream_stalled": 0.05,
    "timeout": 0.05,
})
"""The bad day's faults as shares of ``fault_rate`` (they add up to 0.95; a slow first
byte, drawn on its own, makes up the last 0.05). A fault meant for a stream hits a plain
request too: ``stream_overloaded`` as the plain 529, a drop or a stall in the JSON body."""

SLOW_SHARE = 0.05
"""The share of ``fault_rate`` whose first byte comes ``slow`` seconds late on a bad day."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the chaos server does: a profile, its rates and its real delays.

    Attributes:
        profile: one of :data:`PROFILES`.
        seed: seeds every random draw (the same seed and arrival order give the same faults).
        fault_rate: the bad day's probability of a fault, in [0, 1].
        faults: extra outcomes by name (anything ``FakeClaude.respond`` accepts by name) and
            probability, for any profile; with the bad day's mix they add up to at most 1.
        outage_start: when the outage begins, in seconds after start (or reset).
        outage_length: how long it lasts, in seconds.
        outage_error: the outcome during the outage (default a 529 ``overloaded_error``).
        rpm: the rate limit in requests per minute (None: 60 for ``rate-limited``, else
            :data:`UNLIMITED_RPM`).
        burst: the token bucket's size (None: 10 for ``rate-limited``, else ``rpm``).
        slow: seconds a slow first byte comes late.
        hang: seconds the server stays silent on a hung or stalled request whose client
            declares no read timeout.
        retry_after_ms: if set, every error reply also carries ``retry-after-ms`` with this
            value. The SDKs prefer it to their own backoff and to ``retry-after``, so a
            test of retry logic *on top of* an SDK does not wait for the SDK's own sleeps
            (the TypeScript SDK's cannot be moved to a virtual clock).
    """

    profile: str = "calm"
    seed: int = 0
    fault_rate: float = 0.3
    faults: Mapping[str, float] = field(default_factory=dict)
    outage_start: float = 0.0
    outage_length: float = 20.0
    outage_error: str = "overloaded_error"
    rpm: float | None = None
    burst: float | None = None
    slow: float = 0.25
    hang: float = 10.0
    retry_after_ms: float | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}; "
                             f"got {self.profile!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        _check_range("fault_rate", self.fault_rate, 0.0, 1.0)
        for name, probability in self.faults.items():
            outcome(name)  # a name that means nothing fails here, naming the allowed ones
            _check_range(f"faults[{name!r}]", probability, 0.0, 1.0)
        _check_range("outage_start", self.outage_start, 0.0, math.inf)
        _check_range("outage_length", self.outage_length, 0.0, math.inf)
        outcome(self.outage_error)
        if self.rpm is not None:
            _check_range("rpm", self.rpm, 0.0, math.inf, low_open=True)
        if self.burst is not None:
            _check_range("burst", self.burst, 1.0, math.inf)
        _check_range("slow", self.slow, 0.0, math.inf)
        _check_range("hang", self.hang, 0.0, math.inf, low_open=True)
        if self.retry_after_ms is not None:
            _check_range("retry_after_ms", self.retry_after_ms, 0.0, math.inf, low_open=True)
        object.__setattr__(self, "faults", MappingProxyType(dict(self.faults)))
        total = sum(self._rates().values())
        if total > 1 + 1e-9:
            raise ValueError(f"faults: the probabilities add up to {total:g} with the "
                             f"profile's own; they must add up to at most 1")

    def _rates(self) -> dict[str, float]:
        rates: dict[str, float] = {}
        if self.profile == "bad-day":
            rates = {name: share * self.fault_rate for name, share in BAD_DAY_MIX.items()}
        for name, probability in self.faults.items():
            rates[name] = rates.get(name, 0.0) + probability
        return rates

    def scenarios(self) -> list[Scenario]:
        """Fresh scenarios for this profile, in the order the server asks them."""
        return scenarios(self)


def _check_range(name: str, value: object, low: float, high: float, *,
                 low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high or value != value:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        allowed = bound if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def scenarios(settings: Settings) -> list[Scenario]:
    """The scenarios of ``settings.profile``, new (a fresh token bucket), in order.

    The rate limiter comes first, so every answer carries its headers and every request
    takes a token; then the profile's own faults; then ``settings.faults``.
    """
    limited = settings.profile == "rate-limited"
    rpm = settings.rpm if settings.rpm is not None else (60.0 if limited else UNLIMITED_RPM)
    burst = settings.burst if settings.burst is not None else (10.0 if limited else None)
    chain: list[Scenario] = [RateLimited(rpm, burst)]
    if settings.profile == "bad-day" and settings.fault_rate > 0 and settings.slow > 0:
        chain.append(Slow(settings.slow, probability=SLOW_SHARE * settings.fault_rate))
    if settings.profile == "outage":
        chain.append(Outage(settings.outage_start,
                            settings.outage_start + settings.outage_length,
                            settings.outage_error))
    rates = {name: p for name, p in settings._rates().items() if p > 0}
    if rates:
        chain.append(FailureRates(rates))
    return chain
