#!/usr/bin/env bash
# Set up atlas_ray on a fresh Debian machine: a virtual environment at .venv with the package and its
# dev tools, at exactly the versions in requirements/lock.txt (compiled from pyproject.toml; see the
# README's "Dependencies and the lock"). Idempotent: a second run installs nothing new; a change to
# pyproject.toml or the lock installs again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOCK=requirements/lock.txt
stamp=.venv/.atlas_ray_installed
if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ] && [ ! "$LOCK" -nt "$stamp" ]; then
  exit 0
fi
if [ ! -f "$stamp" ]; then
  echo "setting up .venv from $LOCK: about 2 minutes the first time"
else
  echo "updating .venv from $LOCK"
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# uv installs the locked set (pip would take minutes longer); uv itself comes at the lock's version.
# (grep drops this machine's pip-config notices about absent local indexes; pipefail keeps pip's status)
uv_pin=$(grep -E '^uv==' "$LOCK")
.venv/bin/python -m pip install -q "$uv_pin" 2>&1 | { grep -v "^WARNING: Location" || true; }
# sync: the venv holds the lock's packages and nothing else; then atlas_ray itself, editable
.venv/bin/uv pip sync --quiet --python .venv/bin/python "$LOCK"
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
touch "$stamp"
