#!/usr/bin/env bash
# Step 2: build runners. host (default) | android | macos
exec sme2tui build "${1:-host}" "${@:2}"
