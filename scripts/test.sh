#!/usr/bin/env bash
# Set up and run every check: ruff and mypy over the package, then the whole test suite on a real local
# Ray cluster with the real market data in ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
.venv/bin/ruff check atlas_ray tests benchmarks specs
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
