"""Fallbacks: when the first choice fails, serve the next best answer, and say which.

A :class:`Fallback` is an ordered chain of steps, for example the main model, a smaller
model, a cached answer, a static message. It calls them in order and returns the first
answer, wrapped in a :class:`Served` that names the step that produced it.

Only some failures may fall back. By default a step falls through on what
:func:`resilience.classify` calls retryable (overload, rate limit, 5xx, timeouts,
connection errors) and on an open circuit. Everything else (400 invalid request, 401
authentication, 402 billing, 403 permission, 404 not found, a bug in your code) surfaces
at once: a fallback would hide a problem a person has to fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import _check
from .classification import Verdict, classify

__all__ = ["Fallback", "Served", "may_fall_back"]

T = TypeVar("T")


def may_fall_back(exc: BaseException) -> bool:
    """The default predicate: a transient failure or an open circuit, nothing else."""
    verdict = classify(exc)
    return verdict.retryable or verdict.category == "circuit_open"


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """An answer and where it came from.

    Attributes:
        value: what the serving step returned.
        step: the name of the step that served it.
        index: its position in the chain (0 is the first choice).
        failures: ``(step name, verdict)`` for each step that failed before it.
    """

    value: T
    step: str
    index: int
    failures: tuple[tuple[str, Verdict], ...] = ()

    @property
    def degraded(self) -> bool:
        """True when the answer did not come from the first choice."""
        return self.index > 0


class Fallback(Generic[T]):
    """An ordered chain of alternatives, tried until one answers.

    >>> chain = Fallback([("sonnet", ask_sonnet), ("haiku", ask_haiku),
    ...                   ("static", lambda q: "Sorry, try again in a minute.")])
    >>> served = chain.call("Hello")          # or: await chain.acall("Hello")
    >>> served.step, served.value

    Args:
        steps: callables, or ``(name, callable)`` pairs, in order of preference; each is
            called with the arguments given to :meth:`call`. At least one.
        should_fall_back: which exceptions may move on to the next step;
            :func:`may_fall_back` by default. Others are re-raised at once.

    When every step fails, the last step's exception is raised, with a note per step.
    """

    __slots__ = ("should_fall_back", "steps")

    def __init__(self, steps: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]],
                 should_fall_back: Callable[[BaseException], bool] = may_fall_back) -> None:
        if isinstance(steps, str | bytes) or not isinstance(steps, Iterable):
            raise TypeError(f"steps must be a list of callables or (name, callable) pairs, "
                            f"got {steps!r}")
        named: list[tuple[str, Callable[..., Any]]] = []
        for i, step in enumerate(steps):
            if isinstance(step, tuple):
                if len(step) != 2 or not isinstance(step[0], str) or not callable(step[1]):
                    raise TypeError(f"steps[{i}] must be a callable or a (name, callable) "
                                    f"pair, got {step!r}")
                named.append(step)
            elif callable(step):
                named.append((getattr(step, "__name__", f"step {i}"), step))
            else:
                raise TypeError(f"steps[{i}] must be a callable or a (name, callable) pair, "
                                f"got {step!r}")
        if not named:
            raise ValueError("steps must hold at least one step, got none")
        _check.function("should_fall_back", should_fall_back)
        self.steps: tuple[tuple[str, Callable[..., Any]], ...] = tuple(named)
        self.should_fall_back = should_fall_back

    def _failed(self, index: int, exc: Exception,
                failures: list[tuple[str, Verdict]]) -> None:
        """Record a failure, or re-raise when it may not fall back or nothing is left."""
        name = self.steps[index][0]
        failures.append((name, classify(exc)))
        if not self.should_fall_back(exc):
            raise exc
        if index == len(self.steps) - 1:
            for step, verdict in failures:
                exc.add_note(f"resilience.fallback: step '{step}' failed: {verdict}")
            raise exc

    def call(self, *args: Any, **kwargs: Any) -> Served[T]:
        """Try each step in order with these arguments; return the first answer."""
        failures: list[tuple[str, Verdict]] = []
        for index, (name, fn) in enumerate(self.steps):
            try:
                value = fn(*args, **kwargs)
            except Exception as exc:
                self._failed(index, exc, failures)
                continue
            return Served(value, name, index, tuple(failures))
        raise AssertionError("unreachable: the last step either answers or raises")

    async def acall(self, *args: Any, **kwargs: Any) -> Served[T]:
        """Like :meth:`call`, awaiting steps that are coroutine functions."""
        failures: list[tuple[str, Verdict]] = []
        for index, (name, fn) in enumerate(self.steps):
            try:
                value = fn(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                self._failed(index, exc, failures)
                continue
            return Served(value, name, index, tuple(failures))
        raise AssertionError("unreachable: the last step either answers or raises")
