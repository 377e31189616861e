#!/usr/bin/env bash
# Create .venv (once) and install sme2tui with its pinned torch/executorch. Idempotent and quiet on reruns.
# Usage: bash scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" - <<'PY' || { echo "error: Python 3.11+ is required (found $("$PYTHON" --version 2>&1))" >&2; exit 3; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
stamp=".venv/.sme2tui-installed$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch and executorch are pinned in pyproject.toml (torch==2.13.0, executorch==1.5.1).
  # The UI libraries at the versions the snapshots were drawn with (scripts/constraints.txt says why).
  .venv/bin/python -m pip install --quiet -c scripts/constraints.txt -e ".$extra"
  touch "$stamp"
fi
