"""The repository keeps its promises to a newcomer: two commands, and CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_requirements_hold_what_a_learner_needs() -> None:
    wanted = {"jupyterlab", "anthropic", "matplotlib", "respx", "nbval", "pytest", "hypothesis"}
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    names = {re.split(r"[<>=\[ ]", line)[0] for line in lines if line and not line.startswith("#")}
    assert wanted <= names
    assert "-e ." in lines


def test_the_workflow_runs_the_same_ci_script() -> None:
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "bash .ci/run" in workflow
