"""Self-checking exercises for the course notebooks.

Each lesson ``NN`` has a module ``course.lessonNN`` with one checker per
exercise, gathered in its ``CHECKS`` dict (exercise name -> checker). In a notebook the
learner fills in a stub and runs the checker::

    from course.lesson06 import check_guide_fixed
    check_guide_fixed(GuideFixed)

A checker prints one line, and returns True (pass), False (not yet) or None (the stub still
raises ``NotImplementedError``: "not attempted yet", so a fresh notebook runs top to bottom).
Model answers live in ``solutions/lessonNN.py`` under the same names; the tests run every
checker on its model answer, on the untouched stub, and on a wrong answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["exercise"]

Checker = Callable[[Callable[..., Any]], bool | None]


def exercise(number: str, title: str) -> Callable[[Callable[[Callable[..., Any]], None]],
                                                  Checker]:
    """Turn ``check(solution)`` (which asserts) into a checker that prints a verdict.

    ``check`` raises ``AssertionError`` with a helpful message when the answer is wrong.
    """

    def decorate(check: Callable[[Callable[..., Any]], None]) -> Checker:
        @functools.wraps(check)
        def checker(solution: Callable[..., Any]) -> bool | None:
            label = f"Exercise {number} ({title})"
            try:
                check(solution)
            except NotImplementedError:
                print(f"{label}: not attempted yet - replace the `raise NotImplementedError`.")
                return None
            except AssertionError as e:
                print(f"{label}: not yet. {e}")
                return False
            except Exception as e:  # the learner's code crashed: say how, kindly
                print(f"{label}: not yet. Your code raised {type(e).__name__}: {e}")
                return False
            print(f"{label}: pass.")
            return True

        checker.number = number  # type: ignore[attr-defined]
        return checker

    return decorate
