"""Build the course notebooks from their sources and store fresh outputs.

Each lesson is written as a plain Python file in ``notebooks/src/`` in the "percent"
format (reviewable diffs, no JSON):

    # %% [markdown]
    # # Title
    # Prose...

    # %%
    code()

    # %% tags=["raises-exception"]
    code_that_is_meant_to_fail()

This script turns each into ``notebooks/NN_name.ipynb``, runs it top to bottom in a fresh
``python3`` kernel (the working directory is ``notebooks/``) and stores the outputs, so the
course reads well on a code host and strict ``pytest --nbval`` has outputs to compare.
``tests/test_notebook_sources.py`` checks every notebook still matches its source.

Usage::

    python scripts/build_notebooks.py            # all lessons
    python scripts/build_notebooks.py 03 07      # lessons whose names start with 03 or 07
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks" / "src"
NOTEBOOKS = ROOT / "notebooks"
_MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?P<rest>.*)$")


def parse(text: str) -> list[nbformat.NotebookNode]:
    """Split a percent-format source into notebook cells."""
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []  # type: ignore[var-annotated]

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                             for line in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        match = _MARKER.match(line)
        if match:
            flush()
            kind = "markdown" if match["md"] else "code"
            rest = match["rest"].strip()
            tags = ast.literal_eval(rest.split("=", 1)[1]) if rest.startswith("tags=") else []
            lines = []
        else:
            lines.append(line)
    flush()
    return cells


def stable_ids(cells: list[nbformat.NotebookNode]) -> None:
    """Give each cell an id made from its kind and source, not a random one, so a rebuild
    leaves an unchanged cell's id alone and the stored notebook's diff shows only what
    changed. Cells with the same kind and source get -2, -3, ... after the first."""
    seen: dict[str, int] = {}
    for cell in cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:12]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tidy_outputs(cells: list[nbformat.NotebookNode]) -> None:
    """Make stored outputs the same on every build.

    * Consecutive writes to one stream become one output: the kernel flushes stdout on a
      timer, so a ``print`` can land as two pieces in one run and one in the next.
    * A widget's view (a random model id) is dropped; its text stays, saying what the
      playground does. The widget comes alive when the learner runs the cell.
    """
    for cell in cells:
        if cell.cell_type != "code":
            continue
        tidy: list[nbformat.NotebookNode] = []
        for out in cell.outputs:
            if WIDGET_VIEW in out.get("data", {}):
                del out.data[WIDGET_VIEW]
            previous = tidy[-1] if tidy else None
            if (out.output_type == "stream" and previous is not None
                    and previous.output_type == "stream" and previous.name == out.name):
                previous.text += out.text
                continue
            tidy.append(out)
        cell.outputs = tidy


def build(source: Path) -> float:
    """Build and execute one lesson; return the seconds it took."""
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source.read_text())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    started = time.perf_counter()
    # No widget state in the stored notebook: it is tens of KB of random model ids per
    # build; a playground's stored text says what it does, and it comes alive when run.
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    elapsed = time.perf_counter() - started
    for cell in nb.cells:  # keep stored notebooks free of run-specific metadata
        cell.metadata.pop("execution", None)
    stable_ids(nb.cells)
    tidy_outputs(nb.cells)
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, NOTEBOOKS / f"{source.stem}.ipynb")
    return elapsed


def main(prefixes: list[str]) -> None:
    sources = sorted(p for p in SOURCES.glob("*.py")
                     if not prefixes or p.stem.startswith(tuple(prefixes)))
    for source in sources:
        print(f"{source.stem:40} {build(source):6.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
