"""Run a lesson's own code, so the fact tests check what the lesson runs, not a copy of it.

``run_lesson("08_circuit_breakers")`` executes the code cells of
``notebooks/src/08_circuit_breakers.py`` in order, in one namespace, with their printed
output swallowed, and returns the namespace. Plot cells (``plt.show()``) and exercise
stubs (``NotImplementedError``) are skipped; a cell may ``await`` at top level, as in
Jupyter. The same parser builds the notebooks (``scripts/build_notebooks.py``), so the
cells are exactly the notebook's.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import inspect
import io
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from build_notebooks import parse  # noqa: E402


@functools.cache
def _namespace(stem: str) -> dict[str, Any]:
    source = ROOT / "notebooks" / "src" / f"{stem}.py"
    namespace: dict[str, Any] = {"__name__": f"lesson_{stem}"}
    for cell in parse(source.read_text()):
        code = cell.source
        if cell.cell_type != "code" or "plt.show()" in code or "NotImplementedError" in code:
            continue
        compiled = compile(code, str(source), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        with contextlib.redirect_stdout(io.StringIO()):
            result = eval(compiled, namespace)  # a coroutine when the cell awaits, as in Jupyter
            if inspect.iscoroutine(result):
                asyncio.run(result)
    return namespace


def run_lesson(stem: str) -> dict[str, Any]:
    """The namespace after the lesson's code cells ran (run once per test process)."""
    return _namespace(stem)
