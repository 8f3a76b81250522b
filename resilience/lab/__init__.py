"""The simulation lab: thundering herds, jitter and retry storms, on virtual time.

Every experiment drives the real :mod:`resilience` objects (backoff strategies through
``next_delay``, :class:`~resilience.RetryBudget`, :class:`~resilience.CircuitBreaker`,
:class:`~resilience.AdaptiveThrottle`, :class:`~resilience.VirtualClock`), takes an explicit
``seed`` and returns tidy rows (frozen dataclasses; :func:`to_csv` writes them).

=================  ===============================================================
experiment         source
=================  ===============================================================
brooker2015        Brooker, "Exponential Backoff And Jitter" (AWS, 2015)
herd               a thundering herd against a Claude-like server (529 then 429)
amplification      retries at every layer (Google SRE book; Amazon Builders' Library)
openloop           Brooker, "What is Backoff For?" (2022)
budgets            Brooker, "Fixing retries with token buckets and circuit breakers"
                   (2022); Google SRE "Handling Overload"
=================  ===============================================================

Every experiment checks its arguments with :mod:`resilience._check` (wrong type:
TypeError; wrong value: ValueError naming the range) and refuses sizes too big for this
machine before allocating (:mod:`.sizing`).

This package needs NumPy (``pip install resilient-claude[lab]``); ``import resilience``
does not.
"""

from .amplification import AmplificationRow, amplification, expected_calls
from .brooker2015 import STRATEGIES as BROOKER_STRATEGIES
from .brooker2015 import Brooker2015Row, brooker2015, brooker2015_runs
from .budgets import POLICIES as BUDGET_POLICIES
from .budgets import BudgetRow, budgets, expected_load
from .engine import EventQueue, Lockstep
from .herd import STRATEGIES as HERD_STRATEGIES
from .herd import HerdResult, herd, herd_sweep
from .openloop import OpenLoopRow, openloop
from .series import geometric_series
from .tidy import to_csv

__all__ = [
    "BROOKER_STRATEGIES",
    "BUDGET_POLICIES",
    "HERD_STRATEGIES",
    "AmplificationRow",
    "Brooker2015Row",
    "BudgetRow",
    "EventQueue",
    "HerdResult",
    "Lockstep",
    "OpenLoopRow",
    "amplification",
    "brooker2015",
    "brooker2015_runs",
    "budgets",
    "expected_calls",
    "expected_load",
    "geometric_series",
    "herd",
    "herd_sweep",
    "openloop",
    "to_csv",
]
