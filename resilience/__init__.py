"""Resilient Claude: classify Claude API errors, retry them well, and stop when it is time.

The core (this package's top level) imports nothing outside the standard library:

* :func:`classify` -> :class:`Verdict`: what went wrong and whether to retry.
* :mod:`resilience.backoff`: exponential, full/equal/decorrelated jitter, the SDK's schedule,
  each also by name (``backoff.by_name("full_jitter")``; ``backoff.NAMES``).
* :func:`retry`: a decorator with bounded attempts, a deadline, budgets and honest errors;
  :class:`RetryPolicy` is its checked settings and its decision rule (``decide``), which the
  lab's simulations share.
* :class:`CircuitBreaker`, :class:`Fallback`, :class:`RetryBudget`, :class:`AdaptiveThrottle`,
  :class:`TokenBucket` (a rate limit with bursts).
* :class:`SystemClock`, :class:`VirtualClock`: time as a parameter.

Every constructor checks its arguments (``resilience._check``): a wrong type raises
``TypeError`` naming the argument, a value out of range ``ValueError`` naming the range.

The simulated Claude API (``resilience.testing``) and the simulation lab
(``resilience.lab``) are separate modules that build on this core.
"""

from . import backoff
from .breaker import CircuitBreaker, CircuitOpenError
from .budget import AdaptiveThrottle, RetryBudget
from .catalogue import ERRORS, ErrorSpec
from .classification import Verdict, classify, parse_retry_after
from .clock import Clock, SystemClock, VirtualClock
from .fallback import Fallback, Served, may_fall_back
from .models import FALLBACK_MODEL, MODEL
from .ratelimit import TokenBucket
from .retrying import RetryPolicy, retry

__all__ = [
    "ERRORS",
    "FALLBACK_MODEL",
    "MODEL",
    "AdaptiveThrottle",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ErrorSpec",
    "Fallback",
    "RetryBudget",
    "RetryPolicy",
    "Served",
    "SystemClock",
    "TokenBucket",
    "Verdict",
    "VirtualClock",
    "backoff",
    "classify",
    "may_fall_back",
    "parse_retry_after",
    "retry",
]

__version__ = "0.1.0"
