#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy --strict, and the whole test suite.
# Live-capture tests build their own network namespaces and need root (they skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check capsvc tests bench
.venv/bin/ruff format --check capsvc
.venv/bin/mypy
bash scripts/mypy_tests.sh
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
