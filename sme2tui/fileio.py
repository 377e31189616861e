"""Small file helpers: atomic writes (temp file + rename, so a crash never leaves half a manifest) and
hashing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask, read without changing it where the OS tells (Linux /proc), else set-and-restore."""
    try:
        with Path("/proc/self/status").open(encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The mode a plain `open(path, "w")` would leave: the existing file's, else 0666 minus the umask
    (mkstemp's temp files are 0600, which would make every run folder private by accident)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk must not keep half a temp file on it
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_chunks_atomic(path: Path, chunks: Iterable[str]) -> None:
    """`write_text_atomic` for text produced piece by piece (e.g. a large JSON streamed while it is built),
    so the whole text never has to be in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any, *, sort_keys: bool = False) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_tail(path: Path, chars: int = 2000) -> str:
    """The last `chars` characters of a (possibly huge) log file, read by seeking: a runner that floods
    stderr with hundreds of MB costs us a few KB, not the whole file."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4 * chars))  # UTF-8: at most 4 bytes per character
            data = handle.read(4 * chars)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")[-chars:]


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link when possible (same disk, no extra space), else copy."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
