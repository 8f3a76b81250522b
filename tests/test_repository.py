"""The repository keeps its promises to a newcomer: two commands, and CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks if "venv" in b]


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert "requirements.txt" in commands[0] and "jupyter lab" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1].split("&& ", 2)[-1]  # after making the venv
    assert test_command in (ROOT / ".ci" / "run").read_text()


def pins(lock: str) -> dict[str, str]:
    """``{name: version}`` of a lock file; fails on any requirement that is not ``==``."""
    found: dict[str, str] = {}
    for line in (ROOT / lock).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line == "-e .":
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^ ;]+)( ;.*)?", line)
        assert match, f"{lock}: not an exact pin: {line!r}"
        name = match[1].lower().replace("_", "-")
        if match[3]:  # one version per Python range (a universal lock); keep them apart
            name = f"{name} ;{match[3].strip(' ;')}"
        found[name] = match[2]
    return found


def inputs(path: str) -> set[str]:
    """The package names an input file asks for (following ``-r``)."""
    names: set[str] = set()
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= inputs(line[3:].strip())
        elif line and not line.startswith("-"):
            names.add(re.split(r"[<>=\[ ;]", line)[0].lower())
    return names


def test_requirements_hold_what_a_learner_needs() -> None:
    wanted = {"jupyterlab", "anthropic", "matplotlib", "respx", "nbval", "pytest", "hypothesis"}
    names = {name.split(" ;")[0] for name in pins("requirements.txt")}
    assert wanted <= names
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()


@pytest.mark.parametrize(("lock", "source"), [("requirements.txt", "requirements.in"),
                                              ("requirements-dev.txt", "requirements-dev.in")])
def test_every_install_is_locked_to_exact_versions(lock: str, source: str) -> None:
    locked = pins(lock)  # every line an exact pin, transitive dependencies included
    names = {name.split(" ;")[0] for name in locked}
    assert "anthropic" in locked and "httpx2" in locked, "the SDK and its transport are pinned"
    missing = inputs(source) - names
    assert not missing, f"{source} asks for {sorted(missing)}: run bash scripts/refresh_lock.sh"
    assert "bash scripts/refresh_lock.sh" in (ROOT / lock).read_text().splitlines()[1]


def test_learners_and_developers_get_the_same_versions() -> None:
    learner, developer = pins("requirements.txt"), pins("requirements-dev.txt")
    differ = {name: (v, developer.get(name)) for name, v in learner.items()
              if developer.get(name) != v}
    assert not differ, f"the two locks disagree: {differ}"


def test_the_workflow_runs_the_same_ci_script_on_the_oldest_and_newest_python() -> None:
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "bash .ci/run" in workflow
    assert '["3.11", "3.13"]' in workflow
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()


def test_the_drift_alarm_runs_the_suite_unlocked_weekly_and_on_demand() -> None:
    workflow = (ROOT / ".github" / "workflows" / "drift.yml").read_text()
    assert "schedule:" in workflow and "workflow_dispatch:" in workflow
    assert "bash scripts/drift.sh" in workflow
    script = (ROOT / "scripts" / "drift.sh").read_text()
    assert "-r requirements-dev.in" in script and "requirements-dev.txt" not in script
    for package in ("anthropic", "httpx2", "respx", "nbval", "matplotlib", "jupyterlab"):
        assert package in script
    assert "pytest" in script
