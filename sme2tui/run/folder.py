"""The run folder: `runs/<UTC-stamp>-<slug>/` with the manifest, the resolved config, logs, one folder per
cell, the programs that ran, and `analysis/`. The manifest is rewritten atomically after every change, so
whatever happens (crash, Ctrl-C, power loss) it describes what is on disk."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sme2tui import __version__
from sme2tui.config import RunConfig, parse_config
from sme2tui.errors import ConfigError
from sme2tui.fileio import sha256_file, write_json_atomic
from sme2tui.hostinfo import collect_host_facts
from sme2tui.run.cells import Cell, plan_cells
from sme2tui.versions import package_version

MANIFEST = "manifest.json"
CONFIG = "config.json"
MANIFEST_SCHEMA_VERSION = 1


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


class RunFolder:
    """Owns one run folder and its manifest (thread-safe: Android devices may report cells concurrently)."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self._lock = threading.Lock()

    # --- creation / opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, config: RunConfig, *, output_root: Path, config_source: str | None) -> RunFolder:
        slug = re.sub(r"[^a-z0-9-]+", "-", config.name.lower()).strip("-") or "run"
        root = output_root / f"{_stamp()}-{slug}"
        suffix = 1
        while root.exists():
            suffix += 1
            root = output_root / f"{_stamp()}-{slug}-{suffix}"
        (root / "logs").mkdir(parents=True)
        write_json_atomic(root / CONFIG, json.loads(config.canonical_json()))
        executorch, torch = package_version("executorch"), package_version("torch")
        manifest: dict[str, Any] = {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "tool": {"name": "sme2tui", "version": __version__},
            "status": "running",
            "created_utc": utc_now(),
            "updated_utc": utc_now(),
            "finished_utc": None,
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "config_file": CONFIG,
            "config_source": config_source,
            "config_hash": config.config_hash(),
            "versions": {
                "sme2tui": __version__,
                "executorch": {"version": executorch.version, "git_commit": executorch.git_commit},
                "torch": {"version": torch.version, "git_commit": torch.git_commit},
                "python": sys.version.split()[0],
            },
            "host": collect_host_facts().to_dict(),
            "target": config.target.kind,
            "device": None,
            "comparison": None,
            "exports": {},
            "runners": {},
            "cells": {
                cell.id: {"model": cell.model, "dtype": cell.dtype, "variant": cell.variant,
                          "threads": cell.threads, "status": "queued"}
                for cell in plan_cells(config)
            },
            "checkpoints": [],
            "warnings": [],
            "accepted_warnings": [],
            "resumed": [],
            "files": [],
        }
        folder = cls(root, manifest)
        folder.save()
        return folder

    @classmethod
    def open(cls, root: Path) -> tuple[RunFolder, RunConfig]:
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise ConfigError(f"{root} is not a run folder (no {MANIFEST})", where=str(root),
                              fix="pass a folder under runs/ that sme2tui created")
        try:
            manifest = json.loads(manifest_path.read_text())
            config = parse_config(json.loads((root / CONFIG).read_text()), source=str(root / CONFIG))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the run folder: {exc}", where=str(root),
                              fix="the manifest or config.json is damaged; start a new run") from None
        return cls(root, manifest), config

    # --- updates --------------------------------------------------------------------------------------

    def save(self) -> None:
        with self._lock:
            self.manifest["updated_utc"] = utc_now()
            write_json_atomic(self.root / MANIFEST, self.manifest)

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.manifest.update(fields)
        self.save()

    def set_cell(self, cell_id: str, **fields: Any) -> None:
        with self._lock:
            self.manifest["cells"].setdefault(cell_id, {}).update(fields)
        self.save()

    def add_checkpoint(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.manifest["checkpoints"].append(record)
            if record.get("status") == "warn":
                self.manifest["warnings"].append(f"{record.get('name')}: {record.get('detail')}")

    def add_warning(self, text: str) -> None:
        with self._lock:
            if text not in self.manifest["warnings"]:
                self.manifest["warnings"].append(text)

    def record_runner(self, binary: Path) -> None:
        """Put a runner's build manifest (flags, ExecuTorch commit, sha256, architecture) into the run's."""
        from sme2tui.runners.manifest import read_manifest

        key = str(binary)
        if key in self.manifest["runners"]:
            return
        with self._lock:
            self.manifest["runners"][key] = read_manifest(binary) or {
                "binary": key, "sha256": sha256_file(binary), "build": "unknown",
                "note": "adopted runner: built outside sme2tui (no build manifest beside it), so its flags, "
                        "ExecuTorch commit and SME2 switches are unknown"}
        self.save()

    def accept_warnings(self, texts: list[str]) -> None:
        """Warnings a person accepted explicitly (the wizard's "accept"), kept in the manifest."""
        with self._lock:
            accepted = self.manifest.setdefault("accepted_warnings", [])
            accepted.extend(t for t in texts if t not in accepted)
        self.save()

    def cell_dir(self, cell: Cell | str) -> Path:
        return self.root / "cells" / (cell if isinstance(cell, str) else cell.id)

    def pending_cells(self, cells: list[Cell]) -> list[Cell]:
        return [c for c in cells if self.manifest["cells"].get(c.id, {}).get("status") != "done"]

    def finish(self, status: str) -> None:
        """Record the final status and the list of files with their hashes."""
        files = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and path.name != MANIFEST and not path.name.startswith("."):
                files.append({"path": path.relative_to(self.root).as_posix(), "bytes": path.stat().st_size,
                              "sha256": sha256_file(path)})
        with self._lock:
            self.manifest["status"] = status
            self.manifest["finished_utc"] = utc_now()
            self.manifest["files"] = files
        self.save()

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return os.path.relpath(path, self.root)
