"""Small file helpers: atomic writes (temp file + rename, so a crash never leaves half a manifest) and
hashing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
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


class UnreadableOutput(ValueError):
    """A file a runner, device or emulator produced cannot be read within bounds: not a regular file (a FIFO
    could block forever, a link to /dev/zero never ends) or larger than the limit for its kind."""


def _open_regular(path: Path, what: str) -> int:
    """A read-only fd of `path`, refusing what is not a regular file without blocking on it (FileNotFoundError
    and other OSErrors propagate)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableOutput(f"{what} is not a regular file (it was not read: it could be endless)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """A whole (small) file, or UnreadableOutput when it is more than `limit` bytes or not a regular file:
    never more than `limit` + 1 bytes are read, whatever the file claims or does while it is read."""
    fd = _open_regular(path, what)
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableOutput(f"{what} is larger than {_size(limit)}")
    return data


def iter_text_chunks(path: Path, limit: int, what: str, *, chunk: int = 1 << 20,
                     max_line: int = 1 << 16) -> Iterator[str]:
    """A (possibly huge) text file as chunks that end at line ends, read 1 MB at a time: memory stays at a chunk
    whatever the file's size. Lines longer than `max_line` are cut. UnreadableOutput once more than `limit`
    bytes have been read (a log that is too big, or one still being written that never ends)."""
    fd = _open_regular(path, what)
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            carry = b""
            seen = 0
            while block := handle.read(chunk):
                seen += len(block)
                if seen > limit:
                    raise UnreadableOutput(f"{what} is larger than {_size(limit)}")
                block = carry + block
                cut = block.rfind(b"\n") + 1
                if cut == 0 and len(block) < max_line:
                    carry = block
                    continue
                head, carry = (block[:cut], block[cut:]) if cut else (block, b"")
                yield head.decode("utf-8", errors="replace")
            if carry:
                yield carry.decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    return f"{limit / 2**20:,.0f} MB" if limit >= 2**20 else f"{limit:,} bytes"
