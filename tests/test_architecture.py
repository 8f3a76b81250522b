"""The plan of the house, as tests: who may import whom, and what installing the library costs.

Three rooms: the library (the modules directly in ``resilience/``), the test kit
(``resilience.testing``) and the lab (``resilience.lab``); the course lives outside the
package (``notebooks/course``, imported as ``course``). Every module is parsed with ``ast``,
so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "resilience"

GROUND_FLOOR = {"resilience.errors", "resilience._check", "resilience.models",
                "resilience.catalogue"}
"""Modules every other module may import: they import nothing from the package but each
other."""
OFF_LIMITS_FOR_THE_LIBRARY = ("resilience.testing", "resilience.lab", "course")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
LIBRARY = {name for name, path in MODULES.items()
           if path.parent == PACKAGE and name != "resilience.__main__"}


def imports(name: str) -> set[str]:
    """Every module ``name`` imports, anywhere in the file, as absolute dotted names.

    ``from . import x`` counts as importing ``package.x`` when that is a module.
    """
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & set(MODULES)
            found.update(submodules)
            if node.module or len(submodules) < len(node.names):
                found.add(target)   # a name defined in the module itself
    return found


def within(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def test_the_parser_sees_function_level_and_relative_imports() -> None:
    # The checks below are only as good as this reading of the source.
    assert "resilience.lab.cli" in imports("resilience.__main__")
    assert "resilience.backoff" in imports("resilience")            # from . import backoff
    assert "resilience._check" in imports("resilience.lab.herd")    # from .._check import ...
    assert "tqdm" in imports("resilience.lab.cli")                  # inside a function
    assert {"resilience", "resilience.errors", "resilience._check"} <= set(MODULES) | {
        "resilience"}
    assert "resilience.retrying" in LIBRARY and "resilience.testing.fake" not in LIBRARY


@pytest.mark.parametrize("name", sorted(GROUND_FLOOR))
def test_the_ground_floor_imports_nothing_above_it(name: str) -> None:
    above = {t for t in imports(name) if within(t, "resilience") and t not in GROUND_FLOOR}
    assert not above, f"{name} is on the ground floor but imports {sorted(above)}"


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_the_library_never_imports_the_test_kit_the_lab_or_the_course(name: str) -> None:
    bad = {t for t in imports(name)
           if any(within(t, room) for room in OFF_LIMITS_FOR_THE_LIBRARY)}
    assert not bad, f"{name} is in the library but imports {sorted(bad)}"


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` meets, each as a closed path."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}   # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_there_are_no_import_cycles() -> None:
    graph = {name: {t for t in imports(name) if t in MODULES and t != name} for name in MODULES}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_a_cycle_would_be_found() -> None:
    # The check must be able to fail: the loop issue 9 removed, where classification
    # imported CircuitOpenError from breaker inside a function.
    graph = {"resilience.breaker": {"resilience.classification"},
             "resilience.classification": {"resilience.breaker"}, "resilience.errors": set()}
    assert find_cycles(graph) == [["resilience.breaker", "resilience.classification",
                                   "resilience.breaker"]]
    assert "resilience.classification" in imports("resilience.breaker")


def test_import_resilience_loads_no_third_party_package() -> None:
    code = ("import sys, resilience; "
            "print(sorted(m for m in ('numpy', 'matplotlib', 'anthropic', 'httpx2', 'respx', "
            "'tqdm') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_installing_the_library_pulls_in_nothing() -> None:
    requirements = importlib.metadata.requires("resilient-claude") or []
    assert requirements, "the extras (testing, lab, course) should be declared"
    unconditional = [r for r in requirements if "extra ==" not in r]
    assert unconditional == []


def test_the_pytest_plugin_costs_nothing_until_a_test_asks_for_the_fixture() -> None:
    # The pytest11 entry point loads the plugin in every pytest run of a project that installs
    # the package, even with no extras: it must not import the SDK, respx or the fake.
    code = ("import sys, resilience.testing.pytest_plugin; "
            "print(sorted(m for m in ('anthropic', 'httpx2', 'respx', 'numpy', "
            "'resilience.testing.fake', 'resilience.middleware') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]"
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert [e.value for e in entry_points if e.name == "resilience"] == [
        "resilience.testing.pytest_plugin"]
