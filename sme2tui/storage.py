"""Disks and paths as the user hands them to us: I/O failures become user errors, never exit 1.

A full or read-only disk, a folder the user may not write, a path that is too long, or a file where a folder
must be: none of these is a bug in sme2tui. `storage_error` turns such an `OSError` into a `Sme2Error` that
says what happened, where, and how to fix it; the layers that know more (the run folder, the pipeline) pass
the context ("the run is kept, continue with --resume"), and `cli.main` applies it to any such error that
escapes a command.

Exit codes: the disk refuses (full, over quota, read-only, not permitted, I/O error) → 3, like any other
broken environment; the path cannot be what it must be (too long, a file where a folder must be) → 2.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from sme2tui.errors import ConfigError, EnvironmentProblem, Sme2Error

# The disk refuses the write: exit 3.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_ERRNOS = DISK_FULL_ERRNOS | {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
# The path cannot be used as given: exit 2.
PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EEXIST})
USER_ERRNOS = DISK_ERRNOS | PATH_ERRNOS

# What a full disk looks like in the output of programs we run (runners, compilers, git).
DISK_FULL_MARKERS = ("No space left on device", "ENOSPC", "Disk quota exceeded", "EDQUOT")


class StorageError(EnvironmentProblem):
    """The disk refused: full, over quota, read-only, not permitted, I/O error (exit 3)."""


class DiskFull(StorageError):
    """No space left (or quota exceeded): free space, then resume."""


class BadPath(ConfigError):
    """A path that cannot be used: too long, a file where a folder must be, a symlink loop (exit 2)."""


def is_user_oserror(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in USER_ERRNOS


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (what `statvfs` and `access` can be asked about)."""
    probe = path
    for _ in range(4096):
        try:
            if probe.exists() or probe == probe.parent:
                return probe
        except OSError:  # a component is a file (ENOTDIR) or too long: ask about its parent
            pass
        probe = probe.parent
    return probe


def is_read_only(path: Path) -> bool:
    """True when the file system holding `path` is mounted read-only (whoever we are, root included)."""
    try:
        return bool(os.statvfs(nearest_existing(path)).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(nearest_existing(path)).free
    except OSError:
        return None


def looks_full(path: Path, *, below: int = 1 << 20) -> bool:
    """Less than `below` bytes free where `path` lives: after a failed write, the likely reason."""
    free = free_bytes(path)
    return free is not None and free < below


def _what_is(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError:
        return "missing"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file or folder"


def _blocking_component(path: Path) -> Path | None:
    """For ENOTDIR/EEXIST on a path we wanted as (inside) a folder: the ancestor that is not a folder."""
    for parent in [path, *path.parents]:
        try:
            if parent.exists() and not parent.is_dir():
                return parent
        except OSError:
            continue
    return None


def storage_error(exc: OSError, *, action: str, path: Path | str | None = None, what_path: str = "",
                  after: str = "") -> Sme2Error:
    """An `OSError` on a user path as a user error.

    `action` says what we were doing ("write the run manifest"), `path` where (default: the error's own
    filename), `what_path` how the user set it ("output_root", "--runners-dir"), `after` what to do once
    fixed ("then continue with: sme2tui --auto --resume RUN").
    """
    target = Path(path) if path is not None else Path(exc.filename) if exc.filename else None
    where = str(target) if target is not None else action
    named = f" ({what_path})" if what_path else ""
    then = f"; {after}" if after else ""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in DISK_FULL_ERRNOS:
        free = free_bytes(target) if target is not None else None
        left = f" ({free // 2**20} MiB left)" if free is not None else ""
        what = ("the disk quota is used up" if code == errno.EDQUOT else "the disk is full") + \
            f" while trying to {action}{left}"
        return DiskFull(what, where=where, fix=f"free some space on that disk (or choose a folder on a bigger one"
                        f"{named}){then}")
    if code == errno.EROFS or (target is not None and code in (errno.EACCES, errno.EPERM) and is_read_only(target)):
        return StorageError(f"cannot {action}: the file system is read-only", where=where,
                            fix=f"choose a writable folder{named}, or remount the disk read-write{then}")
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(f"cannot {action}: permission denied", where=where,
                            fix=f"choose a folder you may write{named}, or change its permissions{then}")
    if code == errno.EIO:
        return StorageError(f"cannot {action}: the disk reported an I/O error", where=where,
                            fix=f"check the disk (dmesg, fsck) or use another one{named}{then}")
    if code == errno.ENAMETOOLONG:
        return BadPath(f"cannot {action}: the path is too long for the file system", where=where,
                       fix=f"use a shorter path{named} (at most 255 bytes per name, 4096 in all)")
    if code in (errno.ENOTDIR, errno.EEXIST) and target is not None:
        blocker = _blocking_component(target)
        if blocker is not None:
            return BadPath(f"cannot {action}: {blocker} is {_what_is(blocker)}, not a folder", where=str(blocker),
                           fix=f"choose a folder path{named}, or move that file out of the way{then}")
    if code == errno.EISDIR:
        return BadPath(f"cannot {action}: {where} is a folder where a file must be", where=where,
                       fix=f"move the folder out of the way{then}")
    if code == errno.ELOOP:
        return BadPath(f"cannot {action}: symbolic links loop at {where}", where=where,
                       fix=f"fix or remove the symbolic link{named}")
    return StorageError(f"cannot {action}: {reason}", where=where, fix=f"check the path{named} and its disk{then}")


def require_writable_folder(path: Path, *, what_path: str, action: str) -> None:
    """Create `path` (and parents) or fail with a user error: a file in the way, read-only, not permitted."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, action=action, path=path, what_path=what_path) from None
    if not path.is_dir():
        raise BadPath(f"cannot {action}: {path} is {_what_is(path)}, not a folder", where=str(path),
                      fix=f"choose a folder path ({what_path})")
    if is_read_only(path):
        raise StorageError(f"cannot {action}: the file system is read-only", where=str(path),
                           fix=f"choose a writable folder ({what_path}), or remount the disk read-write")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(f"cannot {action}: permission denied", where=str(path),
                           fix=f"choose a folder you may write ({what_path}), or change its permissions")
