#!/usr/bin/env bash
# Step 5: analyze a run folder again (e.g. with your own category rules: --categories FILE).
source "$(dirname "$0")/_sme2tui.sh"
sme2tui_exec analyze "$@"
