"""Every exercise checker passes its model answer, and can fail.

For each ``course.lessonNN`` module there is ``notebooks/solutions/lessonNN.py`` with
a model answer per exercise. Each checker must: pass the model answer, say "not attempted
yet" for a stub that raises NotImplementedError, and fail a wrong answer.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path
from typing import Any

import course
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(m.name for m in pkgutil.iter_modules(course.__path__))
CASES = [(lesson, name) for lesson in LESSONS
         for name in importlib.import_module(f"course.{lesson}").CHECKS]


def solution(lesson: str, name: str) -> Any:
    path = ROOT / "notebooks" / "solutions" / f"{lesson}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{lesson}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def checker(lesson: str, name: str) -> Any:
    return importlib.import_module(f"course.{lesson}").CHECKS[name]


def test_every_lesson_module_has_exercises() -> None:
    assert all(importlib.import_module(f"course.{m}").CHECKS for m in LESSONS)


@pytest.mark.parametrize(("lesson", "name"), CASES)
def test_model_answer_passes(lesson: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert checker(lesson, name)(solution(lesson, name)) is True
    assert capsys.readouterr().out.rstrip().endswith(": pass.")


@pytest.mark.parametrize(("lesson", "name"), CASES)
def test_untouched_stub_is_not_attempted(lesson: str, name: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    assert checker(lesson, name)(stub) is None
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize(("lesson", "name"), CASES)
def test_wrong_answer_fails(lesson: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    def wrong(*args: Any, **kwargs: Any) -> Any:
        return None

    assert checker(lesson, name)(wrong) is False
    assert "not yet" in capsys.readouterr().out
