#!/usr/bin/env bash
# The drift alarm: run every test on the newest releases, unlocked, in a venv of its own.
#
#   bash scripts/drift.sh
#
# The locks (requirements*.txt) keep learners and CI on the versions CI tested. This script
# ignores them: it installs the short input files (requirements*.in) and then the newest
# anthropic, httpx2, respx, nbval, matplotlib and jupyterlab, and runs the whole suite. When a
# release changes a fact the course teaches, a fact test fails and names the fact and the
# lesson; strict nbval shows the cells whose output moved. Then: teach the new behaviour,
# and refresh the lock (bash scripts/refresh_lock.sh). Also run weekly by
# .github/workflows/drift.yml. It never touches .venv or the locks.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv-drift
# shellcheck disable=SC1091
. .venv-drift/bin/activate
python -m pip install -q --upgrade pip
pip install -q --upgrade -r requirements-dev.in
pip install -q --upgrade anthropic httpx2 respx nbval matplotlib jupyterlab
echo "drift run on the newest releases:"
pip list 2>/dev/null | grep -iE '^(anthropic|httpx2|respx|nbval|matplotlib|jupyterlab|pytest|numpy) '
npm ci --prefix ts --no-audit --no-fund
pytest -n auto --dist loadscope
