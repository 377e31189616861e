#!/usr/bin/env bash
# Step 1: is this machine ready? (tools, packages, NDK, adb, SME2)
exec sme2tui doctor "$@"
