"""The run folder: `runs/<UTC-stamp>-<slug>/` with the manifest, the resolved config, logs, one folder per
cell, the programs that ran, and `analysis/`. The manifest is rewritten atomically after every change, so
whatever happens (crash, Ctrl-C, power loss, a full disk) it describes what is on disk.

Trust rules, enforced when a folder is opened (`analyze`, `report`, `--resume`):
- the manifest must have the shape sme2tui writes (`manifest_shape`), else the folder is *damaged* (exit 6);
- `config.json` must hash to the manifest's `config_hash`: the manifest decides what the folder holds, and an
  edited config (which would silently re-label or re-plan the measured cells) is refused, nothing written;
- one process at a time works in a folder (`lock`, see `sme2tui.run.lock`).
A small reserve file keeps room for the last manifest write when the disk fills up mid-run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sme2tui import __version__
from sme2tui.config import RunConfig, parse_config
from sme2tui.errors import AnalysisError, ConfigError
from sme2tui.events import warning_text
from sme2tui.fileio import sha256_file, write_json_atomic
from sme2tui.hostinfo import collect_host_facts
from sme2tui.run.cells import Cell, plan_cells
from sme2tui.run.lock import FolderLock
from sme2tui.run.manifest_shape import check_manifest
from sme2tui.storage import is_disk_full, require_writable_folder, storage_error
from sme2tui.versions import package_version

MANIFEST = "manifest.json"
CONFIG = "config.json"
RESERVE = ".reserve"
MANIFEST_SCHEMA_VERSION = 1
MAX_MANIFEST_BYTES = 64 * 2**20  # bounded read: ~24 KB for 2 cells; the largest allowed config stays far below
MAX_CONFIG_BYTES = 4 * 2**20
_RESERVE_MIN = 2 * 2**20


class RunFolderDamaged(AnalysisError):
    """A run folder whose manifest, config or analysis cannot be read or has the wrong shape (exit 6)."""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def resume_hint(root: Path) -> str:
    return f"then continue with: sme2tui --auto --resume {root}"


def read_json_file(path: Path, *, limit: int, what: str, damaged_fix: str) -> Any:
    """A JSON file of a run folder: bounded, regular files only, UTF-8; any damage is a `RunFolderDamaged`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise RunFolderDamaged(f"{what} is missing", where=str(path), fix=damaged_fix) from None
    except OSError as exc:
        raise RunFolderDamaged(f"cannot open {what}: {exc.strerror}", where=str(path), fix=damaged_fix) from None
    try:
        info = os.fstat(fd)
        if not _is_regular(info.st_mode):
            kind = "a folder" if _is_dir(info.st_mode) else "not a regular file"
            raise RunFolderDamaged(f"{what} is {kind}", where=str(path), fix=damaged_fix)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise RunFolderDamaged(f"cannot read {what}: {exc.strerror}", where=str(path), fix=damaged_fix) from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise RunFolderDamaged(f"{what} is larger than {limit // 2**20} MB, far more than sme2tui writes",
                               where=str(path), fix=damaged_fix)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunFolderDamaged(f"{what} is not UTF-8 text (byte {exc.start})", where=str(path),
                               fix=damaged_fix) from None
    if not text.strip():
        raise RunFolderDamaged(f"{what} is empty", where=str(path), fix=damaged_fix)
    try:
        return json.loads(text)
    except RecursionError:
        raise RunFolderDamaged(f"{what} nests too deeply", where=str(path), fix=damaged_fix) from None
    except ValueError as exc:  # JSONDecodeError, and numbers Python refuses to convert
        line = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise RunFolderDamaged(f"{what} is not valid JSON{line}: {str(exc).split(':')[0]}", where=str(path),
                               fix=damaged_fix) from None


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _is_dir(mode: int) -> bool:
    import stat

    return stat.S_ISDIR(mode)


def raw_config_hash(data: Any) -> str:
    """The hash of config.json as stored. It equals the manifest's `config_hash` (sha256 of the resolved
    config's canonical JSON) for an untouched folder, whatever defaults a later sme2tui would add."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class RunFolder:
    """Owns one run folder and its manifest (thread-safe: Android devices may report cells concurrently)."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self._lock = threading.Lock()
        self.folder_lock: FolderLock | None = None

    # --- creation / opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, config: RunConfig, *, output_root: Path, config_source: str | None) -> RunFolder:
        slug = re.sub(r"[^a-z0-9-]+", "-", config.name.lower()).strip("-") or "run"
        require_writable_folder(output_root, what_path="output_root in the config, or --output-root",
                                action="create a run folder")
        root = output_root / f"{_stamp()}-{slug}"
        suffix = 1
        while True:
            try:
                root.mkdir()
                break
            except FileExistsError:
                suffix += 1
                root = output_root / f"{_stamp()}-{slug}-{suffix}"
            except OSError as exc:
                raise storage_error(exc, action="create the run folder", path=root,
                                    what_path="output_root in the config, or --output-root") from None
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
        try:
            folder.lock("run")
            (root / "logs").mkdir()
            write_json_atomic(root / CONFIG, json.loads(config.canonical_json()))
            folder.make_reserve()
            folder.save()
        except BaseException as exc:
            # Nothing was measured yet: a half-made folder is only in the way.
            folder.unlock()
            shutil.rmtree(root, ignore_errors=True)
            if isinstance(exc, OSError):
                raise storage_error(exc, action="create the run folder", path=root,
                                    what_path="output_root in the config, or --output-root") from None
            raise
        return folder

    @classmethod
    def open(cls, root: Path) -> tuple[RunFolder, RunConfig]:
        """Open a run folder for reading: its manifest checked for shape, its config for the recorded hash.

        Raises ConfigError (exit 2) for a path that is not a run folder or whose config was edited, and
        RunFolderDamaged (exit 6) for an unreadable or malformed manifest or config.
        """
        if not root.exists():
            raise ConfigError(f"no such run folder: {root}", where=str(root),
                              fix="pass a folder under runs/ that sme2tui created (ls runs/)")
        if not root.is_dir():
            raise ConfigError(f"{root} is not a folder", where=str(root),
                              fix="pass a run folder (runs/<stamp>-<name>), not a file")
        manifest_path = root / MANIFEST
        if not manifest_path.exists() and not manifest_path.is_symlink():
            raise ConfigError(f"{root} is not a run folder (no {MANIFEST})", where=str(root),
                              fix="pass a folder under runs/ that sme2tui created")
        damaged_fix = (f"restore the run folder from a copy (git checkout, backup), or start a new run with its "
                       f"config: sme2tui --auto --config {root / CONFIG}")
        manifest = read_json_file(manifest_path, limit=MAX_MANIFEST_BYTES, what=MANIFEST, damaged_fix=damaged_fix)
        problems = check_manifest(manifest)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise RunFolderDamaged(f"{MANIFEST} is damaged: {shown}", where=str(manifest_path), fix=damaged_fix)
        if manifest["schema_version"] > MANIFEST_SCHEMA_VERSION:
            raise ConfigError(f"this run folder was written by a newer sme2tui (manifest schema "
                              f"{manifest['schema_version']}, this one reads up to {MANIFEST_SCHEMA_VERSION})",
                              where=str(manifest_path), fix="update sme2tui (pip install -U sme2tui)")
        config_path = root / CONFIG
        config_fix = (f"restore {CONFIG} from a copy (git checkout, backup); to measure another config, start a "
                      "new run with it: sme2tui --auto --config FILE")
        data = read_json_file(config_path, limit=MAX_CONFIG_BYTES, what=CONFIG, damaged_fix=config_fix)
        if raw_config_hash(data) != manifest["config_hash"]:
            raise ConfigError(
                f"{CONFIG} was changed after the run was made: it no longer matches the manifest's config hash "
                f"({manifest['config_hash'][:16]}…), so the measured cells may not be what it says; nothing was "
                "written", where=str(config_path),
                fix=f"undo the edit (git checkout / a backup of {CONFIG}); to measure the edited config, copy it out "
                f"and start a new run: cp {config_path} my.json && sme2tui --auto --config my.json")
        config = parse_config(data, source=str(config_path))
        folder = cls(root, manifest)
        for cell in plan_cells(config):  # a planned cell the manifest lost is simply not measured yet
            manifest["cells"].setdefault(cell.id, {"model": cell.model, "dtype": cell.dtype, "variant": cell.variant,
                                                   "threads": cell.threads, "status": "queued"})
        return folder, config

    # --- one process at a time ----------------------------------------------------------------------------

    def lock(self, purpose: str) -> FolderLock:
        """Take the folder's lock (FolderBusy if a live process holds it; a stale one is taken over)."""
        if self.folder_lock is None:
            self.folder_lock = FolderLock.acquire(self.root, purpose=purpose)
        return self.folder_lock

    def unlock(self) -> None:
        if self.folder_lock is not None:
            self.folder_lock.release()
            self.folder_lock = None

    # --- room for the last words on a full disk -------------------------------------------------------------

    def make_reserve(self) -> None:
        """Set aside a little space so the manifest can still say "disk full" when the disk fills up."""
        size = max(_RESERVE_MIN, 4 * len(json.dumps(self.manifest, default=str)))
        path = self.root / RESERVE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            return
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, size)
            else:
                os.write(fd, b"\0" * size)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()  # no room even for the reserve: the run will say so at its first write
        finally:
            os.close(fd)

    def release_reserve(self) -> bool:
        try:
            (self.root / RESERVE).unlink()
        except OSError:
            return False
        return True

    # --- updates --------------------------------------------------------------------------------------

    def save(self) -> None:
        with self._lock:
            self.manifest["updated_utc"] = utc_now()
            path = self.root / MANIFEST
            try:
                write_json_atomic(path, self.manifest)
                return
            except OSError as exc:
                if not (is_disk_full(exc) and self.release_reserve()):
                    raise storage_error(exc, action="write the run manifest", path=path,
                                        after=resume_hint(self.root)) from None
                first = exc
            # The disk filled up: the reserve made room for this write; then stop the run (the next file
            # would not fit), and the manifest now says how far it got.
            try:
                write_json_atomic(path, self.manifest)
            except OSError as exc:
                raise storage_error(exc, action="write the run manifest", path=path,
                                    after=resume_hint(self.root)) from None
            raise storage_error(first, action="write the run manifest", path=path, after=resume_hint(self.root))

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
            text = warning_text(str(record.get("name")), str(record.get("detail")),
                                str(record.get("subject") or ""))
            if record.get("status") == "warn" and text not in self.manifest["warnings"]:
                self.manifest["warnings"].append(text)  # a resumed run repeats its checks: listed once

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

    # --- resume: what is really on disk -----------------------------------------------------------------

    def damaged_cells(self, cells: list[Cell]) -> dict[str, str]:
        """Done cells whose files are gone or changed since they were measured: cell id → what is wrong.

        A cell's own `files` list says what it wrote; the manifest's `files` (written whenever the run
        stopped) has their sizes and sha256s.
        """
        recorded = {f.get("path"): f for f in self.manifest.get("files", []) if isinstance(f, dict)}
        damaged: dict[str, str] = {}
        for cell in cells:
            record = self.manifest["cells"].get(cell.id, {})
            if record.get("status") != "done":
                continue
            cell_dir = self.cell_dir(cell)
            if not cell_dir.is_dir():
                damaged[cell.id] = f"its folder cells/{cell.id} is missing"
                continue
            for rel in record.get("files") or []:
                path = self.root / str(rel)
                problem = _file_problem(path, recorded.get(rel))
                if problem:
                    damaged[cell.id] = f"{rel} {problem}"
                    break
        return damaged

    def requeue(self, cell_id: str, reason: str) -> str | None:
        """Put a damaged done cell back in the queue; its remains are moved aside (never deleted)."""
        cell_dir = self.cell_dir(cell_id)
        moved: str | None = None
        if cell_dir.exists() or cell_dir.is_symlink():
            target = cell_dir.with_name(f"{cell_id}.damaged-{_stamp()}")
            try:
                cell_dir.rename(target)
            except OSError as exc:
                raise storage_error(exc, action=f"move the damaged cell folder {cell_dir.name} aside",
                                    path=cell_dir) from None
            moved = self.rel(target)
        with self._lock:
            record = self.manifest["cells"][cell_id]
            keep = {k: record[k] for k in ("model", "dtype", "variant", "threads") if k in record}
            self.manifest["cells"][cell_id] = {**keep, "status": "queued",
                                               "remeasured": {"reason": reason, "old_files": moved}}
        self.save()
        return moved

    def record_analysis(self, summary: dict[str, Any]) -> None:
        """The pipeline's copy of its own analysis into the manifest (comparison, pairs, per-cell statistics),
        so the manifest alone tells the result as the run finished. `sme2tui analyze` never calls this: a
        re-analysis writes analysis/ only, and analysis/summary.json is the current word."""
        with self._lock:
            self.manifest["comparison"] = summary.get("comparison")
            self.manifest["pairs"] = [
                {"model": p["model"], "dtype": p["dtype"], "threads": p["threads"], "speedup": p["speedup"],
                 "baseline_median_ms": p["baseline_median_ms"], "candidate_median_ms": p["candidate_median_ms"]}
                for p in summary.get("pairs", [])]
            for cell_id, cell in summary.get("cells", {}).items():
                if cell_id in self.manifest["cells"]:
                    self.manifest["cells"][cell_id]["stats"] = {
                        "latency_ms": cell["latency"], "source": cell["source"], "categories_ms": cell["categories_ms"]}
            for cell_id, error in summary.get("cell_errors", {}).items():
                if cell_id in self.manifest["cells"]:
                    self.manifest["cells"][cell_id]["analysis_error"] = error
        self.save()

    def finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Record the final status and the list of files with their hashes."""
        files = []
        for path in sorted(self.root.rglob("*")):
            try:
                if path.is_file() and path.name != MANIFEST and not path.name.startswith("."):
                    files.append({"path": path.relative_to(self.root).as_posix(), "bytes": path.stat().st_size,
                                  "sha256": sha256_file(path)})
            except OSError:
                continue  # vanished or unreadable: not listed
        with self._lock:
            self.manifest["status"] = status
            self.manifest["finished_utc"] = utc_now()
            self.manifest["files"] = files
            if error is not None:
                self.manifest["error"] = error
            else:
                self.manifest.pop("error", None)
        self.save()
        self.release_reserve()

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return os.path.relpath(path, self.root)


def _file_problem(path: Path, recorded: dict[str, Any] | None) -> str | None:
    try:
        if not path.is_file():
            return "is missing" if not path.exists() else "is not a file any more"
        size = path.stat().st_size
        if recorded is None:
            return None
        if isinstance(recorded.get("bytes"), int) and size != recorded["bytes"]:
            return f"changed size ({recorded['bytes']} → {size} bytes)"
        if isinstance(recorded.get("sha256"), str) and sha256_file(path) != recorded["sha256"]:
            return "changed since it was measured (sha256 differs)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None

