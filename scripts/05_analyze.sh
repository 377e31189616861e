#!/usr/bin/env bash
# Step 5: analyze a run folder again (e.g. with your own category rules: --categories FILE).
exec sme2tui analyze "$@"
