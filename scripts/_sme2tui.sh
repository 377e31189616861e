#!/usr/bin/env bash
# Sourced by the step scripts (01_…05_): run this checkout's sme2tui whether or not its venv is active.
# Order: the checkout's .venv (made by scripts/setup.sh), then an `sme2tui` program on PATH; else say how to get one.
sme2tui_exec() {
  local root found
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ -x "$root/.venv/bin/sme2tui" ]; then
    exec "$root/.venv/bin/sme2tui" "$@"
  fi
  found="$(type -P sme2tui || true)"  # a program file only: never the sme2tui/ source folder
  if [ -n "$found" ]; then
    exec "$found" "$@"
  fi
  echo "error: sme2tui is not installed: no $root/.venv/bin/sme2tui and no sme2tui on PATH" >&2
  echo "  where: $root" >&2
  echo "  fix:   bash scripts/setup.sh (creates .venv and installs sme2tui), or activate the environment it is installed in" >&2
  exit 3
}
