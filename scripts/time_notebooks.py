"""Execute every course notebook in a fresh kernel and print how long each takes.

The course's budget: every notebook under 10 s, the whole course under 60 s on a 2-core
machine. Usage: ``python scripts/time_notebooks.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def main() -> None:
    total = 0.0
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        elapsed = time.perf_counter() - started
        total += elapsed
        flag = "  OVER 10 s" if elapsed > 10 else ""
        print(f"{path.name:45} {elapsed:6.1f} s{flag}")
    print(f"{'total':45} {total:6.1f} s")


if __name__ == "__main__":
    main()
