#!/usr/bin/env bash
# Step 2: build runners. host (default) | android | macos
source "$(dirname "$0")/_sme2tui.sh"
sme2tui_exec build "${1:-host}" "${@:2}"
