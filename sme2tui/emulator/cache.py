"""Where the emulator's parts live (the user cache) and the state file that says what was verified there.

`emulator.json` is written by `sme2tui setup emulator` only after every part checked out (QEMU probed, wheel
hashed and unpacked), so its presence means "set up"; a part that vanished since is caught when it is used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sme2tui.fileio import write_json_atomic

STATE_FILE = "emulator.json"
STATE_SCHEMA = "sme2tui.emulator/1"


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/sme2tui/emulator` (default `~/.cache/sme2tui/emulator`)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sme2tui" / "emulator"


def read_state(root: Path | None = None) -> dict[str, Any] | None:
    path = (root or cache_root()) / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("schema") == STATE_SCHEMA else None


def write_state(state: dict[str, Any], root: Path | None = None) -> Path:
    path = (root or cache_root()) / STATE_FILE
    write_json_atomic(path, {"schema": STATE_SCHEMA, **state})
    return path
