#!/usr/bin/env bash
# Set up (with dev tools) and run every check: ruff, mypy, pytest. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check sme2tui screens tests benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"
