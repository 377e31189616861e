"""The runner manifest: `runner_manifest.json` beside each runner binary, saying exactly how it was built.

Written atomically (temp file + rename) so a reader never sees half a manifest, and carrying the binary's
sha256 so `find_*` can tell a manifest that no longer describes the binary beside it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from sme2tui.fileio import sha256_file
from sme2tui.fileio import write_json_atomic as write_json

MANIFEST_NAME = "runner_manifest.json"
SCHEMA = "sme2tui.runner_manifest/1"


sha256_of = sha256_file  # one implementation for the whole tool (sme2tui.fileio)


def sha256_of_tree(root: Path) -> str:
    """One hash over every file under `root` (relative path + content), e.g. the runner's sources."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def host_facts() -> dict[str, str]:
    return {"system": platform.system(), "machine": platform.machine(), "release": platform.release()}


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    write_json(path, payload, sort_keys=True)


def read_manifest(binary: Path) -> dict[str, Any] | None:
    """The manifest beside `binary` if it exists, parses, and its sha256 matches the binary."""
    path = binary.parent / MANIFEST_NAME
    if not binary.is_file() or not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("schema") != SCHEMA or data.get("sha256") != sha256_of(binary):
        return None
    return data
