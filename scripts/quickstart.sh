#!/usr/bin/env bash
# Set up and run the whole pipeline on the built-in default (quick MobileNet, XNNPACK vs portable, this host).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sme2tui --auto "$@"
