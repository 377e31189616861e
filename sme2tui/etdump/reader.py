"""`read_etdump`: file -> `EtdumpTrace`, with every failure turned into an `EtdumpError` naming the file.

Hostile or accidental inputs are refused before they can cost memory or time: the path must be a
regular file (after following symlinks: a link to /dev/zero or a FIFO is refused without reading, and
the file is opened non-blocking and checked again with fstat, so a swap in between changes nothing); the
12-byte header is checked first; a file larger than the size limit (`SME2TUI_ETDUMP_MAX_MB`, default
1024 MB, ~14M events) is refused with a message that says how to raise it. The file is memory-mapped and
decoded in chunks, and the pages of a finished chunk are handed back, so memory follows the events kept
(~40 bytes each), not the file size.

A mapped file that another process truncates (a resumed run rewriting it, a runner writing to the same path)
would kill this process with SIGBUS at the next access. So the mapping is never of the file itself: a small file
(up to IN_MEMORY_BYTES) is read into memory, a larger one is first copied in the kernel (copy_file_range, a few
GB/s) into an unlinked temporary file only this process can reach (in TMPDIR), and that copy is mapped. A file
that shrinks while it is read or copied is refused ("changed while it was read"). Only when no copy can be
made (no room in TMPDIR) is the file mapped in place, as before.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from sme2tui.errors import ConfigError
from sme2tui.etdump.allocator import tune_allocator
from sme2tui.etdump.assemble import assemble
from sme2tui.etdump.bytesview import FlatbufferFormatError
from sme2tui.etdump.decode import Decoded, Release, decode
from sme2tui.etdump.errors import EtdumpError
from sme2tui.etdump.flatbuf import HEADER_BYTES, Header, parse_header
from sme2tui.etdump.model import EtdumpTrace

# The runtimes this tool drives (ExecuTorch's Python runtime and native runners on Linux/Android/macOS)
# use the POSIX PAL, whose ticks are nanoseconds (et_pal_ticks_to_ns_multiplier = 1/1); Inspector
# assumes the same (source_time_scale=NS). The tests check it against wall-clock time.
TICKS_PER_NS = 1.0

MAX_MB_VARIABLE: Final = "SME2TUI_ETDUMP_MAX_MB"
DEFAULT_MAX_MB: Final = 1024
IN_MEMORY_BYTES = 8 * 2**20  # smaller files are read into memory; larger ones are copied, then mapped
_COPY_BLOCK = 64 * 2**20

_CORRUPT_FIX = (
    "re-run the cell to write a fresh ETDump; if it happens again, check that the runner finished "
    "(a crashed or killed runner can leave a partial file) and that the file was copied completely"
)
_FILE_TYPES: Final = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def max_bytes() -> int:
    """The size limit for ETDump files, from SME2TUI_ETDUMP_MAX_MB (megabytes, 10**6 bytes)."""
    raw = os.environ.get(MAX_MB_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_MB * 10**6
    if not raw.isdigit() or len(raw) > 9 or int(raw) == 0:
        raise ConfigError(
            f"{MAX_MB_VARIABLE}={raw[:40]!r} is not a size in megabytes",
            where=f"environment variable {MAX_MB_VARIABLE}",
            fix=f"set it to a whole number of megabytes, e.g. {MAX_MB_VARIABLE}=4096, or unset it "
            f"(default {DEFAULT_MAX_MB})",
        )
    return int(raw) * 10**6


def read_etdump(path: Path | str) -> EtdumpTrace:
    """Read every profile event of an ETDump file into iterations (see the package docstring)."""
    path = Path(path)
    where = _describe(path)
    limit = max_bytes()
    _refuse_non_regular(path, where, os.stat)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _missing(path, where) from None
    except OSError as exc:
        raise _unreadable(path, where, exc) from None
    try:
        _refuse_non_regular(path, where, lambda _: os.fstat(fd))
        size = os.fstat(fd).st_size
        if size == 0:
            raise EtdumpError(f"ETDump file {path.name} is empty", where=where, fix=_CORRUPT_FIX)
        header = _header(path, where, os.pread(fd, HEADER_BYTES, 0), size)
        if header.end > limit:
            raise EtdumpError(
                f"ETDump file {path.name} is {header.end / 1e6:,.0f} MB, more than the {limit // 10**6:,} MB "
                f"limit for ETDumps ({MAX_MB_VARIABLE}, a bound against runaway or hostile files)",
                where=where,
                fix=f"if it is a genuine ETDump, raise the limit: {MAX_MB_VARIABLE}={_suggest_mb(header.end)} "
                "sme2tui analyze … (memory use is at most about the file size)",
            )
        if header.end <= IN_MEMORY_BYTES:
            data = _read_into_memory(fd, header.end, path, where)
        else:
            mapped = _map_private_copy(fd, header.end, path, where)
    except OSError as exc:
        raise _unreadable(path, where, exc) from None
    finally:
        os.close(fd)
    if header.end <= IN_MEMORY_BYTES:
        return _parse(data, header, path, where, None)
    try:
        return _parse(mapped, header, path, where, _releaser(mapped))
    finally:
        _close(mapped)


def _read_into_memory(fd: int, size: int, path: Path, where: str) -> bytes:
    """The first `size` bytes of the file, or EtdumpError when it has fewer now (it shrank since its header)."""
    parts: list[bytes] = []
    done = 0
    while done < size:
        part = os.pread(fd, size - done, done)
        if not part:
            raise _changed(path, where, done, size)
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _map_private_copy(fd: int, size: int, path: Path, where: str) -> mmap.mmap:
    """A read-only map of a private copy of the file's first `size` bytes (nobody else can truncate it); the file
    itself only when no copy can be made here (no room in TMPDIR, which is kept usable for others)."""
    try:
        with tempfile.TemporaryFile(prefix="sme2tui-etdump-") as copy:  # unlinked at once (O_TMPFILE on Linux)
            if _free_bytes(copy.fileno()) >= size + 64 * 2**20:
                _copy_range(fd, copy.fileno(), size, path, where)
                return _map(copy.fileno(), size)  # the map keeps the copy alive after it is closed
    except OSError:
        pass
    return _map(fd, size)


def _free_bytes(fd: int) -> int:
    info = os.fstatvfs(fd)
    return info.f_bavail * info.f_frsize


def _copy_range(source: int, target: int, size: int, path: Path, where: str) -> None:
    """Copy in the kernel (no bytes through this process); EtdumpError if the source ends early."""
    done = 0
    copy_range = getattr(os, "copy_file_range", None)
    while done < size:
        want = min(_COPY_BLOCK, size - done)
        try:
            if copy_range is None:
                raise OSError("no copy_file_range")
            count = copy_range(source, target, want, done, done)
        except OSError:  # another file system, an old kernel: sendfile copies file to file too
            copy_range = None
            os.lseek(target, done, os.SEEK_SET)
            count = os.sendfile(target, source, done, want)
        if count == 0:
            raise _changed(path, where, done, size)
        done += count
    if os.fstat(source).st_size < size:  # shrank behind the copy: the copy may mix old and new bytes
        raise _changed(path, where, os.fstat(source).st_size, size)


def _map(fd: int, size: int) -> mmap.mmap:
    mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_WILLNEED"):
        # Start reading a file that is not in the page cache yet while the first chunks decode.
        mapped.madvise(mmap.MADV_WILLNEED)
    return mapped


def _changed(path: Path, where: str, now: int, expected: int) -> EtdumpError:
    return EtdumpError(
        f"ETDump file {path.name} changed while it was read: it has {now:,} bytes, its header says {expected:,} "
        "(another process is writing or truncating it)",
        where=where,
        fix="wait until the program writing it has finished (a run or resume still in progress), or analyze a "
        "copy made after it finished",
    )


def parse_etdump(data: bytes, path: Path | str) -> EtdumpTrace:
    """`read_etdump` for bytes already in memory (e.g. pulled from a device); `path` names them in errors."""
    path = Path(path)
    where = str(path)
    if not data:
        raise EtdumpError(f"ETDump file {path.name} is empty", where=where, fix=_CORRUPT_FIX)
    header = _header(path, where, data[:HEADER_BYTES], len(data))
    return _parse(data if header.end == len(data) else data[: header.end], header, path, where, None)


def _parse(buffer: bytes | mmap.mmap, header: Header, path: Path, where: str, release: Release | None) -> EtdumpTrace:
    tune_allocator()
    try:
        decoded: Decoded = decode(buffer, header, release)
        events, load, bounds = assemble(decoded.columns)
    except (FlatbufferFormatError, ValueError, OverflowError, IndexError) as exc:
        # ValueError also covers bad UTF-8; IndexError cannot happen past the bounds checks but would
        # mean the same thing: an offset that leads outside the file.
        raise EtdumpError(
            f"ETDump file {path.name} is truncated, corrupt or not an ETDump: {_explain(exc)}",
            where=where,
            fix=_CORRUPT_FIX,
        ) from None
    return EtdumpTrace(
        path=path,
        version=decoded.version,
        ticks_per_ns=TICKS_PER_NS,
        names=tuple(decoded.names.texts),
        events=events,
        bounds=bounds,
        load=load,
    )


def _header(path: Path, where: str, head: bytes, size: int) -> Header:
    try:
        return parse_header(head, size)
    except FlatbufferFormatError as exc:
        raise EtdumpError(
            f"ETDump file {path.name} is truncated, corrupt or not an ETDump: {exc}", where=where, fix=_CORRUPT_FIX
        ) from None


def _refuse_non_regular(path: Path, where: str, stat_of: object) -> None:
    try:
        info = stat_of(path)  # type: ignore[operator]
    except FileNotFoundError:
        raise _missing(path, where) from None
    except OSError as exc:
        raise _unreadable(path, where, exc) from None
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise EtdumpError(
            f"{path.name} is a folder, not an ETDump file",
            where=where,
            fix="pass the .etdp file inside it, or pass the run folder itself to `sme2tui analyze`",
        )
    kind = next((label for test, label in _FILE_TYPES if test(mode)), "not a regular file")
    raise EtdumpError(
        f"{path.name} is {kind}, not an ETDump file; it was not read (it could be endless or block forever)",
        where=where,
        fix="copy the ETDump to a regular file first and analyze the copy",
    )


def _describe(path: Path) -> str:
    """The path, plus where a symlink leads (the target is what gets checked and read)."""
    try:
        if path.is_symlink():
            return f"{path} (a symlink to {os.path.realpath(path)})"
    except OSError:
        pass
    return str(path)


def _missing(path: Path, where: str) -> EtdumpError:
    return EtdumpError(
        f"ETDump file {path.name} does not exist",
        where=where,
        fix="check the path; a run writes one ETDump per cell, next to its stdout/stderr",
    )


def _unreadable(path: Path, where: str, exc: OSError) -> EtdumpError:
    return EtdumpError(
        f"cannot read ETDump file {path.name}: {exc.strerror or exc}",
        where=where,
        fix="check that the path is a readable file",
    )


def _suggest_mb(size: int) -> int:
    return max(DEFAULT_MAX_MB, -(-size // 10**8) * 100)  # rounded up to the next 100 MB


def _releaser(mapped: mmap.mmap) -> Release | None:
    """Give back the file pages of decoded chunks (they stay in the page cache; a re-read refaults)."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or not hasattr(mapped, "madvise"):
        return None
    page = mmap.PAGESIZE

    def release(low: int, high: int) -> None:
        start = low - low % page
        stop = high - high % page
        if stop > start:
            mapped.madvise(advice, start, stop - start)

    return release


def _close(mapped: mmap.mmap) -> None:
    # BufferError: an array still views the map (e.g. held by a traceback); it is unmapped when that goes.
    with contextlib.suppress(BufferError):
        mapped.close()


def _explain(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "a name is not valid UTF-8"
    return str(exc)
