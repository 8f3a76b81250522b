#!/usr/bin/env bash
# Refresh the locks to today's newest releases, rebuild the notebooks' stored outputs, and run
# every test: the one command a maintainer runs after editing requirements*.in, or to move the
# course to a new SDK release on purpose.
#
#   bash scripts/refresh_lock.sh            # newest releases of everything
#   bash scripts/refresh_lock.sh --keep     # keep today's pins; only add what the .in files gained
#
# The locks are made by uv (`uv pip compile --universal`), valid for every supported Python
# (3.11 to 3.13): requirements.txt for learners from requirements.in, then requirements-dev.txt
# from requirements-dev.in, held to the same versions of everything the two share.
set -euo pipefail
cd "$(dirname "$0")/.."

upgrade=(--upgrade)
[[ "${1:-}" == "--keep" ]] && upgrade=()

python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q uv

compile=(uv pip compile -q --universal --python-version 3.11 "${upgrade[@]}"
         --custom-compile-command "bash scripts/refresh_lock.sh")
"${compile[@]}" requirements.in -o requirements.txt
mkdir -p build
grep -v '^-e ' requirements.txt > build/learner-pins.txt
"${compile[@]}" requirements-dev.in -c build/learner-pins.txt -o requirements-dev.txt

# Install exactly the new lock, rebuild every notebook's stored outputs, run every test.
uv pip sync -q --compile-bytecode requirements-dev.txt
python scripts/build_notebooks.py
ruff check . && mypy && pytest -n auto --dist loadscope
git status --short -- requirements.txt requirements-dev.txt notebooks/*.ipynb
