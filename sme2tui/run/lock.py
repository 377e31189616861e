"""One process at a time in a folder (a run folder, a runner build folder).

A second `--resume` of a run that is still running would measure every cell twice and interleave two
writers of one manifest; an `analyze` while cells are measured would read half-written ETDumps; two builds in
one CMake folder corrupt each other. The lock is a file (`.lock`) held with `flock`: the kernel drops it
when the holder dies, however it dies (Ctrl-C, SIGKILL, power loss). The file also says who holds it (pid,
the process's start time, the boot id, the host, the command), which
- names the holder when the lock is busy, and
- covers file systems where `flock` does not work or is not shared between machines: a recorded holder that
  is alive (same host, same boot, same pid *and* start time) is respected even when `flock` let us in; one
  that is gone (killed, rebooted, pid reused by another program) is stale and is taken over, with a note.
The file is removed on release, so a finished run folder holds no lock file.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import socket
import stat
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sme2tui.errors import ConfigError
from sme2tui.storage import storage_error

LOCK_NAME = ".lock"
_MAX_LOCK_BYTES = 64 * 1024  # the lock file is ~300 bytes; whatever else is in there is not read whole


class FolderBusy(ConfigError):
    """Another live process works in this folder (exit 2: wait for it, or stop it)."""


@dataclass(frozen=True)
class Holder:
    pid: int
    start: str  # the process's start time in clock ticks since boot (/proc/PID/stat field 22); "" if unknown
    boot_id: str
    host: str
    command: str
    since_utc: str
    purpose: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since_utc} ({self.purpose}: `{self.command[:120]}`)"


def _read_small(path: str) -> str:
    try:
        with Path(path).open(encoding="ascii", errors="replace") as handle:
            return handle.read(4096)
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """A process's start time (clock ticks after boot), which tells a live holder from a reused pid."""
    text = _read_small(f"/proc/{pid}/stat")
    fields = text[text.rfind(")") + 2:].split() if ")" in text else []
    return fields[19] if len(fields) > 19 else ""


def boot_id() -> str:
    return _read_small("/proc/sys/kernel/random/boot_id").strip()


def me(purpose: str) -> Holder:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    program = "sme2tui" if program == "__main__.py" else program  # `python -m sme2tui`
    return Holder(pid=os.getpid(), start=process_start(os.getpid()), boot_id=boot_id(), host=socket.gethostname(),
                  command=" ".join([program, *sys.argv[1:]]),
                  since_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), purpose=purpose)


def is_alive(holder: Holder) -> bool | None:
    """True/False when it can be told from here; None for a holder on another machine."""
    if holder.host != socket.gethostname():
        return None
    if holder.boot_id and boot_id() and holder.boot_id != boot_id():
        return False  # the machine rebooted since: nothing from before is running
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    start = process_start(holder.pid)
    return not (holder.start and start and start != holder.start)


def _parse(raw: bytes) -> Holder | None:
    try:
        data: Any = json.loads(raw.decode("utf-8"))
        return Holder(pid=int(data["pid"]), start=str(data.get("start", "")), boot_id=str(data.get("boot_id", "")),
                      host=str(data.get("host", "")), command=str(data.get("command", "")),
                      since_utc=str(data.get("since_utc", "")), purpose=str(data.get("purpose", "")))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, _MAX_LOCK_BYTES)


class FolderLock:
    """Held from `acquire` to `release` (or the process's end). `taken_over` names a stale holder it replaced."""

    def __init__(self, path: Path, fd: int, taken_over: Holder | None, unreadable: bool) -> None:
        self.path = path
        self._fd: int | None = fd
        self.taken_over = taken_over
        self.unreadable_before = unreadable

    @property
    def note(self) -> str | None:
        """What a person should be told about how the lock was obtained (None: nothing unusual)."""
        if self.taken_over is not None:
            return (f"took over the lock of {self.taken_over.describe()}, which no longer runs (stopped or killed); "
                    "its completed work is kept")
        if self.unreadable_before:
            return f"replaced an unreadable lock file ({self.path}) nobody held"
        return None

    @classmethod
    def acquire(cls, folder: Path, *, purpose: str, what: str = "run folder",
                wait_hint: str = "wait for it to finish", wait_s: float = 0.0) -> FolderLock:
        """The lock, or FolderBusy; with `wait_s`, wait that long for a live holder to finish first."""
        import time

        deadline = time.monotonic() + wait_s
        while True:
            try:
                return cls._acquire(folder, purpose=purpose, what=what, wait_hint=wait_hint)
            except FolderBusy:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    @classmethod
    def _acquire(cls, folder: Path, *, purpose: str, what: str, wait_hint: str) -> FolderLock:
        path = folder / LOCK_NAME
        for _ in range(20):  # another process may unlink the file between our open and our flock
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                             0o644)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise ConfigError(f"{path} is a symbolic link", where=str(path),
                                      fix="delete it; sme2tui writes its own lock file there") from None
                raise storage_error(exc, action=f"lock the {what}", path=path) from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device put there: not a lock file
                    raise ConfigError(f"{path} is not a regular file", where=str(path),
                                      fix="delete it; sme2tui writes its own lock file there")
                flocked = _flock(fd)
                if flocked is False:
                    holder = _parse(_read_fd(fd))
                    raise _busy(path, holder, what, wait_hint)
                if not _same_file(fd, path):
                    os.close(fd)
                    continue
                raw = _read_fd(fd)
                holder = _parse(raw) if raw else None
                ours = holder is not None and holder.pid == os.getpid() and holder.start == process_start(os.getpid())
                if holder is not None and not ours and is_alive(holder) is not False:
                    # flock let us in, but the recorded holder still runs (a file system without shared
                    # flock, or a holder on another machine): respect it.
                    raise _busy(path, holder, what, wait_hint)
                taken = holder if holder is not None and not ours else None
                _write_fd(fd, me(purpose))
                lock = cls(path, fd, taken, bool(raw) and holder is None)
                atexit.register(lock.release)  # a process that ends without releasing leaves no lock file
                return lock
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise storage_error(exc, action=f"lock the {what}", path=path) from None
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
        raise FolderBusy(f"could not lock the {what}: its lock file keeps being replaced", where=str(path),
                         fix="another program is working in this folder; wait for it and try again")

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            if _same_file(fd, self.path):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(fd)  # drops the flock

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _flock(fd: int) -> bool | None:
    """True: locked. False: someone holds it. None: this file system has no flock (fall back to the content)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), path.lstat()
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _write_fd(fd: int, holder: Holder) -> None:
    data = (json.dumps(asdict(holder), indent=1) + "\n").encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


def _busy(path: Path, holder: Holder | None, what: str, wait_hint: str) -> FolderBusy:
    who = holder.describe() if holder is not None else "another process"
    alive = is_alive(holder) if holder is not None else None
    stop = f" (or stop it: kill {holder.pid})" if holder is not None and alive else ""
    elsewhere = (f"; if that process no longer runs on {holder.host}, delete {path}"
                 if holder is not None and alive is None else "")
    return FolderBusy(f"the {what} is in use by {who}", where=str(path.parent),
                      fix=f"{wait_hint}{stop}, then run the command again{elsewhere}")
