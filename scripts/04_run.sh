#!/usr/bin/env bash
# Step 4: export if needed, run every cell (host or Android, per the config), analyze, report.
source "$(dirname "$0")/_sme2tui.sh"
sme2tui_exec --auto ${1:+--config "$1"} "${@:2}"
