#!/usr/bin/env bash
# Step 4: export if needed, run every cell (host or Android, per the config), analyze, report.
exec sme2tui --auto ${1:+--config "$1"} "${@:2}"
