#!/usr/bin/env bash
# Step 3: export the config's models to .pte + ETRecord (cached). Usage: 03_export.sh [CONFIG.json]
exec sme2tui export ${1:+--config "$1"} "${@:2}"
