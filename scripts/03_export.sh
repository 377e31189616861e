#!/usr/bin/env bash
# Step 3: export the config's models to .pte + ETRecord (cached). Usage: 03_export.sh [CONFIG.json]
source "$(dirname "$0")/_sme2tui.sh"
sme2tui_exec export ${1:+--config "$1"} "${@:2}"
