#!/usr/bin/env bash
# Set up and run every check: ruff and mypy over the package, then the whole test suite on a real local
# Ray cluster with the real market data in ../shared/data.
#   scripts/test.sh            every test (what CI runs: .ci/run)
#   scripts/test.sh --quick    the inner loop: the same ruff and mypy, then every test not marked `slow`
#                              (unit tests and the fast integration tests; <= 4 minutes on the 2-core
#                              machine when it is not shared, see the README's "Which tests to run when")
# Further arguments go to pytest (scripts/test.sh --quick tests/featurestore -x).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
if [ "${1:-}" = "--quick" ]; then
  quick=(-m "not slow")
  shift
fi
bash scripts/setup.sh
bash scripts/services.sh
.venv/bin/ruff check atlas_ray tests benchmarks specs
.venv/bin/mypy
.venv/bin/python -m pytest "${quick[@]}" "$@"
