"""The seed's TypeScript ``retryWithBackoff`` and its fix, run by Node's test runner.

``npm test --prefix ts`` compiles ``ts/`` with ``tsc`` and runs ``node --test``: the tests
start the chaos server (``python -m resilience chaos --port 0``, with this interpreter) and
drive it with the official ``@anthropic-ai/sdk``. This test needs Node (20 or later) and
``ts/node_modules`` (``npm ci --prefix ts``, from the committed lockfile). Without them it
FAILS and says what to install: it never skips, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import resilience

ROOT = Path(__file__).resolve().parent.parent
TS = ROOT / "ts"


def missing_prerequisite(node: str | None, npm: str | None, ts: Path) -> str | None:
    """What is missing to run the TypeScript tests, said so a person can fix it; None if
    nothing is."""
    if node is None or npm is None:
        return ("Node.js 20+ and npm are needed for the TypeScript tests (ts/): install "
                "Node, then run `npm ci --prefix ts`.")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        return f"the TypeScript tests need Node 20 or later (node:test); found {version}"
    if not (ts / "node_modules" / "@anthropic-ai" / "sdk").is_dir():
        return ("ts/node_modules is missing: run `npm ci --prefix ts` (installs the "
                "TypeScript SDK and tsc from the committed ts/package-lock.json)")
    return None


def test_the_typescript_tests_pass_under_node() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    problem = missing_prerequisite(node, npm, TS)
    assert problem is None, problem
    assert node is not None and npm is not None
    env = {**os.environ, "PYTHON": sys.executable, "RESILIENCE_MODEL": resilience.MODEL}
    done = subprocess.run([npm, "test", "--prefix", str(TS)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    report = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"npm test --prefix ts failed:\n{report}"
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, report


def test_a_missing_node_or_install_fails_with_what_to_run(tmp_path: Path) -> None:
    assert "install Node" in str(missing_prerequisite(None, "npm", TS))
    assert "install Node" in str(missing_prerequisite("node", None, TS))
    node = shutil.which("node")
    if node is not None:  # with Node present, an uninstalled ts/ is named (never skipped)
        assert "npm ci --prefix ts" in str(missing_prerequisite(node, "npm", tmp_path))
