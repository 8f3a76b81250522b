"""The stored notebooks match their sources in notebooks/src and keep the course's rules."""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from build_notebooks import parse, stable_ids  # noqa: E402

SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))


def test_there_is_a_course() -> None:
    assert len(SOURCES) >= 13
    assert SOURCES[0].stem.startswith("00_")


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_notebook_matches_its_source(source: Path) -> None:
    notebook = ROOT / "notebooks" / f"{source.stem}.ipynb"
    assert notebook.exists(), f"run: python scripts/build_notebooks.py {source.stem[:2]}"
    stored = nbformat.read(notebook, as_version=4)
    expected = parse(source.read_text())
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in expected], (
        f"{notebook.name} is stale: run python scripts/build_notebooks.py {source.stem[:2]}")
    stable_ids(expected)  # ids from the content, so a rebuild's diff shows only what changed
    assert [c.id for c in stored.cells] == [c.id for c in expected], (
        f"{notebook.name} was not built by scripts/build_notebooks.py (cell ids)")


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_lesson_follows_the_template(source: Path) -> None:
    nb = json.loads((ROOT / "notebooks" / f"{source.stem}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert markdown.startswith("# "), "a title first"
    assert "In this lesson you will" in markdown
    assert "Recap" in markdown
    assert markdown.count("Exercise") >= 2
    assert "Hint" in markdown
    assert all(c["execution_count"] is not None for c in code if "".join(c["source"]).strip())
    if source != SOURCES[-1]:  # every lesson but the last links to the next one
        nxt = f"{int(source.stem[:2]) + 1:02d}_"
        assert re.search(rf"\]\({nxt}\w+\.ipynb\)", markdown), "a link to the next lesson"
    images = sum(1 for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 1, "at least one plot"
    for cell in code:
        text = "".join(cell["source"])
        assert "time.sleep(" not in text, "use the virtual clock"
        outputs = cell.get("outputs", [])
        # Stored outputs repeat on every build (scripts/build_notebooks.py tidies them).
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for o in outputs), f"a widget's random model id is stored: {text[:60]}"
        names = [o.get("name") if o["output_type"] == "stream" else None for o in outputs]
        assert not any(a is not None and a == b for a, b in itertools.pairwise(names)), (
            f"one stream split in two outputs: {text[:60]}")
        for out in cell.get("outputs", []):
            assert out.get("name") != "stderr", f"stderr output in: {text[:60]}"
            if out.get("output_type") == "error":
                assert "raises-exception" in cell["metadata"].get("tags", []), text[:60]


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_link_to_a_notebook_or_file_leads_somewhere(source: Path) -> None:
    markdown = "\n".join(c.source for c in parse(source.read_text()) if c.cell_type == "markdown")
    for target in re.findall(r"\]\(([^)#\s]+)", markdown):
        if "://" in target:
            continue
        assert (ROOT / "notebooks" / target).exists(), f"{source.stem}: broken link {target}"


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_code_cells_are_short(source: Path) -> None:
    # The template asks for about 4 lines a cell; 12 is the most, and 20 for the setup cell
    # (imports and seeds) that opens a lesson.
    code = [c.source.strip() for c in parse(source.read_text()) if c.cell_type == "code"]
    lengths = [len(cell.splitlines()) for cell in code]
    assert lengths[0] <= 20, f"{source.stem}: the setup cell has {lengths[0]} lines"
    long = [(i, n) for i, n in enumerate(lengths[1:], start=1) if n > 12]
    assert not long, f"{source.stem}: code cells (index, lines) over 12 lines: {long}"
    assert sorted(lengths)[len(lengths) // 2] <= 8, f"{source.stem}: the median cell is long"
