#!/usr/bin/env bash
# Step 1: is this machine ready? (tools, packages, NDK, adb, SME2)
source "$(dirname "$0")/_sme2tui.sh"
sme2tui_exec doctor "$@"
