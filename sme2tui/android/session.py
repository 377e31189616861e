"""Working with one chosen device: files in, commands run (pinned, timed), files out, clocks and heat.

Everything the tool writes on the device lives under its tool dir (TOOL_DIR unless configured; always below
/data/local/tmp, the one place a shell user may execute files), and `remove_tree` refuses anything else;
`cleanup` deletes exactly what the session put there.
Transfers are all-or-nothing on both sides: a push lands in `<name>.partial` and is renamed once its
sha256 matches; a pull writes a hidden temp file next to the destination and renames it when complete.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import secrets
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from adbutils import AdbConnection, AdbError

from sme2tui.android import shell, wire
from sme2tui.android.errors import AndroidDeviceError, Fault
from sme2tui.android.facts import (
    FACTS_SCRIPT,
    DeviceFacts,
    build_facts,
    core_tiers,
    cpu_mask,
    parse_cpufreq,
    parse_thermal_status,
)
from sme2tui.fileio import sha256_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from sme2tui.android.client import AndroidClient, Timeouts

TOOL_DIR = "/data/local/tmp/sme2tui"
# Output kept from one device command. A query (facts, sha256, thermal...) answers in KiB on a phone; more
# is a device we should not trust. A program (the runner) may log a lot: its middle is dropped past this.
QUERY_OUTPUT_LIMIT = 4 << 20
RUN_OUTPUT_LIMIT = 16 << 20
LOG_LIMIT = 8 << 20  # one program's Android log (XNNPACK's kernel log is KiB to a few MiB)
PULL_LIMIT = 4 << 30  # one pulled file; ETDumps of big models are tens of MiB
_TOOL_PARENT = "/data/local/tmp/"
_T = TypeVar("_T")

STORAGE_FIX = (
    "free space on the device (`adb shell df -h /data/local/tmp`); old sme2tui files can go with "
    f"`adb shell rm -r {TOOL_DIR}`"
)


@dataclass(frozen=True)
class RunResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float  # seconds, wall clock on the host, including ADB round trips
    dropped: int = 0  # output bytes left out (a program that printed more than RUN_OUTPUT_LIMIT)

    @property
    def signal(self) -> int | None:
        """N when the exit code is 128+N (how the device shell and adbd report a signal death)."""
        if 128 < self.exit_code < 128 + 65:
            return self.exit_code - 128
        return None

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self, where: str | None = None) -> RunResult:
        """Raise a classified error unless the command exited 0."""
        if self.ok:
            return self
        tail = self.stderr.strip().splitlines()[-5:]
        if self.signal is not None:
            hint = {
                9: "SIGKILL usually means the low-memory killer: close apps, use a smaller model or fewer threads",
                11: "SIGSEGV is a crash in the program: check that the runner matches the device ABI",
                6: "SIGABRT: the program aborted; its stderr says why",
            }.get(self.signal, "check the device log: `adb logcat -d | tail -50`")
            raise AndroidDeviceError(
                Fault.KILLED_BY_SIGNAL,
                f"the command was killed by {self.signal_name} (exit {self.exit_code})",
                where=where,
                phase="run",
                fix=hint,
                detail="\n".join([self.command, *tail]),
            )
        raise AndroidDeviceError(
            Fault.COMMAND_FAILED,
            f"the command exited with status {self.exit_code}",
            where=where,
            phase="run",
            fix="read its stderr (below / in the cell's log) for the reason",
            detail="\n".join([self.command, *tail]),
        )


def _require_absolute(path: str) -> str:
    if not path.startswith("/") or "\x00" in path or "\n" in path:
        raise AndroidDeviceError(
            Fault.UNSAFE,
            f"device path {path!r} must be absolute and contain no NUL or newline",
            fix=f"use a path such as {TOOL_DIR}/…",
        )
    return path


class DeviceSession:
    def __init__(
        self,
        client: AndroidClient,
        serial: str,
        *,
        timeouts: Timeouts | None = None,
        big_cores: Sequence[int] | None = None,
        tool_dir: str = TOOL_DIR,
    ) -> None:
        normal = posixpath.normpath(tool_dir) if tool_dir.startswith("/") else ""
        if normal != tool_dir.rstrip("/") or not normal.startswith(_TOOL_PARENT) or "\n" in normal:
            raise AndroidDeviceError(
                Fault.UNSAFE,
                f"device folder {tool_dir!r} must be a normalised path inside {_TOOL_PARENT}",
                fix=f"use e.g. {TOOL_DIR}: programs can only be executed below {_TOOL_PARENT} on a "
                "non-rooted phone, and sme2tui only ever deletes inside its own folder",
            )
        self.tool_dir = normal
        self.client = client
        self.serial = serial
        self.timeouts = timeouts or client.timeouts
        self._big_cores_override = tuple(big_cores) if big_cores is not None else None
        self._shell_v2_checked = False
        self._fixed_perf_enabled_by_us = False
        # What this session put (or found and used) on the device, for `cleanup`: files, folders whose whole
        # content is ours (a cell's), and folders that are removed only when empty.
        self._files: set[str] = set()
        self._trees: set[str] = set()
        self._dirs: set[str] = {self.tool_dir, f"{self.tool_dir}/.pids"}

    # ---- plumbing -----------------------------------------------------------------------------------
    def _open(self, service: str, timeout: float, phase: str) -> AdbConnection:
        try:
            conn = self.client.open_transport(self.serial, timeout)
        except (AdbError, OSError, EOFError) as exc:
            raise self.client.translate(exc, serial=self.serial, phase=phase) from exc
        try:
            wire.request(conn.conn, service)
        except wire.Refused as exc:
            conn.close()
            raise self.client.translate(AdbError(str(exc)), serial=self.serial, phase=phase) from exc
        except (OSError, EOFError) as exc:
            conn.close()
            raise self.client.translate(exc, serial=self.serial, phase=phase) from exc
        return conn

    def _require_shell_v2(self) -> None:
        if self._shell_v2_checked:
            return
        try:
            features = self.client.device(self.serial).get_features()
        except (AdbError, OSError, EOFError) as exc:
            raise self.client.translate(exc, serial=self.serial, phase="features") from exc
        if "shell_v2" not in features.split(","):
            raise AndroidDeviceError(
                Fault.UNSUPPORTED,
                f"device {self.serial} does not support ADB shell v2 (no exit codes)",
                where=self.serial,
                fix="use Android 7 (API 24) or newer; ExecuTorch needs it anyway",
            )
        self._shell_v2_checked = True

    def run_line(
        self,
        line: str,
        *,
        timeout: float | None = None,
        phase: str = "run",
        max_output: int = QUERY_OUTPUT_LIMIT,
        truncate: bool = False,
    ) -> RunResult:
        """Run an already-built command line (from `shell.command_line`). Prefer `run`.

        At most `max_output` bytes of output are kept: past it a query fails (`truncate=False`: its answer
        cannot be that long, the device is not behaving like a phone) or a program's log loses its middle."""
        self._require_shell_v2()
        limit = self.timeouts.run if timeout is None else timeout
        start = time.monotonic()
        conn = self._open(f"shell,v2:{line}", limit, phase)
        try:
            out = wire.read_shell_v2(conn.conn, start + limit, limit=max_output, truncate=truncate)
        except wire.Overflow as exc:
            raise AndroidDeviceError(
                Fault.OVERSIZED,
                f"the device answered the {phase} query with more than {max_output // 1024} KiB",
                where=self.serial,
                phase=phase,
                fix="a phone answers this in a few KiB: check the device (`adb shell` the command below) or "
                "use another one",
                detail="\n".join([line[:500], *exc.stdout[:300].decode(errors="replace").splitlines()[:5]]),
            ) from exc
        except wire.Deadline as exc:
            raise AndroidDeviceError(
                Fault.TIMEOUT,
                f"the command did not finish within {limit:g} s",
                where=self.serial,
                phase=phase,
                fix="raise the timeout for this step, or look for a hung runner (`adb shell top -n 1`)",
                detail="\n".join([line, *exc.stderr.decode(errors="replace").splitlines()[-5:]]),
            ) from exc
        except wire.Cut as exc:
            error = self.client.translate(exc.__cause__ or exc, serial=self.serial, phase=phase)
            partial = exc.stderr.decode(errors="replace").splitlines()[-5:]
            if partial:  # what the program said before the cut is often the reason for it
                error.detail = "\n".join([error.detail or "", "stderr before the cut:", *partial])
            raise error from exc
        finally:
            conn.close()
        return RunResult(
            command=line,
            exit_code=out.exit_code,
            stdout=out.stdout.decode(errors="replace"),
            stderr=out.stderr.decode(errors="replace"),
            duration=time.monotonic() - start,
            dropped=out.dropped,
        )

    def _query(self, argv: Sequence[str], phase: str) -> RunResult:
        return self.run_line(shell.join(argv), timeout=self.timeouts.query, phase=phase)

    def _sync(self, phase: str, timeout: float, action: Callable[[AdbConnection], _T]) -> _T:
        conn = self._open("sync:", timeout, phase)
        try:
            result = action(conn)
            with contextlib.suppress(OSError):
                wire.sync_quit(conn.conn)
            return result
        except wire.SyncFailed:
            raise
        except (OSError, EOFError) as exc:
            raise self.client.translate(exc, serial=self.serial, phase=phase) from exc
        finally:
            conn.close()

    # ---- commands -----------------------------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        cpu_mask: str | None = None,
        timeout: float | None = None,
        check: bool = False,
        pid_record: str | None = None,
    ) -> RunResult:
        """Run argv on the device (quoted word by word), optionally pinned with taskset to `cpu_mask`.

        On a timeout or a dropped connection the program is killed on the device, so a hung runner does not
        keep a core busy (and hot) under the next measurement. With `pid_record` (a device path) the
        program's pid is kept there, for `log_of`.
        """
        # One file per running program, so a hung one can be killed by its pid.
        pidfile = f"{self.tool_dir}/.pids/{secrets.token_hex(8)}"
        if pid_record is not None:
            _require_absolute(pid_record)
        line = shell.command_line(argv, env=env, cwd=cwd, cpu_mask=cpu_mask, pidfile=pidfile, pid_record=pid_record)
        try:
            result = self.run_line(line, timeout=timeout, max_output=RUN_OUTPUT_LIMIT, truncate=True)
        except AndroidDeviceError as exc:
            if exc.kind in (Fault.TIMEOUT, Fault.CONNECTION_LOST) and self._kill_leftover(pidfile):
                exc.detail = f"{exc.detail or ''}\n(it was still running on the device and has been killed)"
            raise
        return result.check(where=self.serial) if check else result

    def log_of(self, pid_record: str, *, max_bytes: int = LOG_LIMIT) -> tuple[int | None, str]:
        """(pid, what that process wrote to Android's log) for a program started with `pid_record`.

        `logcat -d --pid` (Android 7+) dumps the buffered log of that pid and exits; `head -c` bounds it on
        the device, and the host keeps at most `max_bytes` too. XNNPACK's kernel log (a runner built with
        XNN_LOG_LEVEL) goes here on Android, where the host build prints it on stderr."""
        record = shell.quote(_require_absolute(pid_record))
        line = (
            f'p=$(head -c 32 {record} 2>/dev/null); case "$p" in ""|*[!0-9]*) echo "no pid"; exit 3 ;; esac; '
            f'echo "pid $p"; logcat -d -v threadtime --pid="$p" 2>&1 | head -c {max_bytes}'
        )
        result = self.run_line(line, timeout=self.timeouts.query, phase="logcat", max_output=max_bytes + 4096,
                               truncate=True)
        first, _, text = result.stdout.partition("\n")
        if not result.ok or not re.fullmatch(r"pid [0-9]{1,10}", first):
            return None, ""
        return int(first.split()[1]), text

    def _kill_leftover(self, pidfile: str) -> bool:
        try:
            line = shell.kill_line(pidfile)
            result = self.run_line(line, timeout=min(self.timeouts.query, 10.0), phase="cleanup")
        except AndroidDeviceError:
            return False  # the device is unreachable; nothing more we can do from here
        return "killed" in result.stdout

    def ensure_dir(self, remote: str, *, owned: bool = False) -> None:
        """`mkdir -p`. `owned`: everything in it will be this session's (a cell's outputs), so `cleanup`
        removes it whole; otherwise `cleanup` removes it only once it is empty."""
        self._query(["mkdir", "-p", _require_absolute(remote)], "mkdir").check(self.serial)
        normal = posixpath.normpath(remote)
        if normal.startswith(self.tool_dir + "/"):
            (self._trees if owned else self._dirs).add(normal)
            parent = posixpath.dirname(normal)
            while parent.startswith(self.tool_dir + "/"):  # mkdir -p may have made these too
                self._dirs.add(parent)
                parent = posixpath.dirname(parent)

    def chmod(self, remote: str, mode: int) -> None:
        self._query(["chmod", format(mode & 0o7777, "o"), _require_absolute(remote)], "chmod").check(self.serial)

    def sha256(self, remote: str) -> str | None:
        """The device's sha256 of `remote`, None when it does not exist or is unreadable."""
        result = self._query(["sha256sum", _require_absolute(remote)], "sha256")
        return _digest_in(result.stdout) if result.ok else None

    def cleanup(self) -> None:
        """Delete what this session put on the device, and nothing else: the files it pushed (or found
        identical and used), the cell folders it made, then its folders (the tool dir included) if that
        left them empty. Files someone else put there survive, and so do the folders holding them.

        Refused when the tool dir is not a plain folder (a symlink would point the deletion elsewhere)."""
        inside = self.tool_dir + "/"
        files = sorted(p for f in self._files for p in (f, f + ".partial") if p.startswith(inside))
        trees = sorted(t for t in self._trees if t.startswith(inside))
        dirs = sorted(self._dirs, key=lambda d: d.count("/"), reverse=True)  # deepest first
        guard = (
            f'd={shell.quote(self.tool_dir)}; [ -d "$d" ] || exit 0; '
            f'[ "$(cd "$d" && pwd -P)" = "$d" ] || {{ echo "$d is not a plain folder" >&2; exit 3; }}'
        )
        steps = [["rm", "-f", "--", *files], ["rm", "-rf", "--", *trees]]
        for argv in steps:
            for batch in _batches(argv[:3], argv[3:]):
                self.run_line(f"{guard}; {shell.join(batch)}", timeout=self.timeouts.query, phase="cleanup").check(
                    self.serial
                )
        for batch in _batches(["rmdir"], dirs):
            # rmdir refuses non-empty folders: what someone else left there stays (and so do its parents).
            self.run_line(f"{guard}; for x in {shell.join(batch[1:])}; do rmdir \"$x\" 2>/dev/null; done; true",
                          timeout=self.timeouts.query, phase="cleanup").check(self.serial)
        self._files.clear()
        self._trees.clear()

    def remove_tree(self, remote: str) -> None:
        """`rm -rf` a folder, but only strictly inside the tool dir (never /data/local/tmp or anything else)."""
        normal = posixpath.normpath(_require_absolute(remote))
        if normal != remote.rstrip("/") or not normal.startswith(self.tool_dir + "/"):
            raise AndroidDeviceError(
                Fault.UNSAFE,
                f"refusing to delete {remote!r}: only folders inside {self.tool_dir}/ are deleted by sme2tui",
                where=self.serial,
                fix=f"pass a normalised path below {self.tool_dir}/",
            )
        self._query(["rm", "-rf", normal], "remove").check(self.serial)

    # ---- files --------------------------------------------------------------------------------------
    def push_if_changed(self, local: Path, remote: str, *, mode: int = 0o644) -> int:
        """Push unless the device already has identical bytes (by sha256); returns bytes pushed (0 = skip).
        The mode is applied either way, so a skipped binary is still executable."""
        _require_absolute(remote)
        digest = sha256_file(local)
        chmod_then_hash = shell.join(["chmod", format(mode & 0o7777, "o"), remote])
        check = self.run_line(
            f"{chmod_then_hash} 2>/dev/null; {shell.join(['sha256sum', remote])} 2>/dev/null",
            timeout=self.timeouts.query,
            phase="push",
        )
        self._files.add(posixpath.normpath(remote))
        if check.ok and _digest_in(check.stdout) == digest:
            return 0
        return self.push(local, remote, mode=mode, digest=digest)

    def push(self, local: Path, remote: str, *, mode: int = 0o644, digest: str | None = None) -> int:
        """Push to `<remote>.partial`, then rename over `remote` once the device's sha256 matches."""
        _require_absolute(remote)
        self._files.add(posixpath.normpath(remote))
        digest = digest or sha256_file(local)
        partial = remote + ".partial"
        with local.open("rb") as source:
            try:
                sent = self._sync(
                    "push", self.timeouts.transfer, lambda c: wire.sync_send(c.conn, source, partial, mode)
                )
            except wire.SyncFailed as exc:
                raise self._transfer_error(str(exc), "push", remote) from exc
        line = f"{shell.join(['mv', '-f', partial, remote])} && {shell.join(['sha256sum', remote])}"
        check = self.run_line(line, timeout=self.timeouts.query, phase="push")
        if not check.ok or _digest_in(check.stdout) != digest:
            raise AndroidDeviceError(
                Fault.TRANSFER_FAILED,
                f"{local.name} did not arrive intact on the device",
                where=f"{self.serial}:{remote}",
                phase="push",
                fix="retry the push; if it repeats, check free space and the cable",
                detail=f"local sha256 {digest}, device: {check.stdout.strip() or check.stderr.strip()}",
            )
        return sent

    def pull(self, remote: str, local: Path, *, max_bytes: int = PULL_LIMIT) -> int:
        """Copy a device file to `local`; `local` appears only once every byte has arrived, and only if it
        has at most `max_bytes` (a device that sends without end fills no disk)."""
        _require_absolute(remote)
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".partial", dir=local.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                try:
                    size = self._sync("pull", self.timeouts.transfer,
                                      lambda c: wire.sync_recv(c.conn, remote, sink, max_bytes=max_bytes,
                                                                deadline=time.monotonic() + self.timeouts.run))
                except wire.SyncFailed as exc:
                    raise self._transfer_error(str(exc), "pull", remote) from exc
                except wire.TooLarge as exc:
                    raise AndroidDeviceError(
                        Fault.OVERSIZED, f"{remote} on the device is larger than {max_bytes >> 20} MiB",
                        where=f"{self.serial}:{remote}", phase="pull", detail=str(exc),
                        fix="check what wrote it (`adb shell ls -l` the path); a runner's file this big means a "
                        "broken runner or device",
                    ) from exc  # fmt: skip
                sink.flush()
                os.fsync(sink.fileno())
            tmp.chmod(0o644)  # mkstemp made it 0600; a result file is an ordinary file
            tmp.replace(local)
            return size
        finally:
            tmp.unlink(missing_ok=True)

    def _transfer_error(self, message: str, phase: str, remote: str) -> AndroidDeviceError:
        where = f"{self.serial}:{remote}"
        if "No space left" in message:
            return AndroidDeviceError(
                Fault.STORAGE_FULL, "the device storage is full", where=where, phase=phase, fix=STORAGE_FIX,
                detail=message,
            )  # fmt: skip
        if "No such file" in message:
            return AndroidDeviceError(
                Fault.REMOTE_MISSING, f"{remote} does not exist on the device", where=where, phase=phase,
                fix="check the path; the program that should have written it may have failed "
                "(see its stderr)",
                detail=message,
            )  # fmt: skip
        return AndroidDeviceError(
            Fault.TRANSFER_FAILED, f"the device refused the {phase}", where=where, phase=phase,
            detail=message,
            fix=f"check permissions and that the path is under {self.tool_dir}",
        )  # fmt: skip

    # ---- CPU, clocks, heat --------------------------------------------------------------------------
    def facts(self) -> DeviceFacts:
        result = self.run_line(FACTS_SCRIPT, timeout=self.timeouts.query, phase="facts")
        return build_facts(self.serial, "device", result.stdout)

    def cpu_max_freqs(self) -> dict[int, int]:
        """{cpu: cpuinfo_max_freq in kHz} for the CPUs that expose cpufreq."""
        line = (
            "for c in /sys/devices/system/cpu/cpu[0-9]*; do "
            'echo "${c##*/} $(head -c 64 $c/cpufreq/cpuinfo_max_freq 2>/dev/null)"; done | head -c 65536'
        )
        parsed = parse_cpufreq(self.run_line(line, timeout=self.timeouts.query, phase="cpufreq").stdout)
        return {cpu: khz for cpu, (khz, _) in parsed.items() if khz}

    def big_cores(self, override: Sequence[int] | None = None) -> tuple[int, ...]:
        chosen = override if override is not None else self._big_cores_override
        if chosen is not None:
            return tuple(sorted(set(chosen)))
        big, _ = core_tiers(self.cpu_max_freqs())
        if not big:
            raise AndroidDeviceError(
                Fault.UNSUPPORTED,
                "the device does not expose CPU max frequencies, so its big cores are unknown",
                where=self.serial,
                fix="set the CPU affinity (big cores) in the config explicitly",
            )
        return big

    def big_cores_mask(self, override: Sequence[int] | None = None) -> str:
        """taskset mask of the big cores (every core above the slowest cluster), e.g. "f0"."""
        return cpu_mask(list(self.big_cores(override)))

    def thermal_status(self) -> int | None:
        # Only the top matters ("Thermal Status: N" comes first); some phones append long histories.
        line = "dumpsys thermalservice 2>/dev/null | head -c 262144"
        return parse_thermal_status(self.run_line(line, timeout=self.timeouts.query, phase="thermal").stdout)

    def set_fixed_performance_mode(self, on: bool) -> bool:
        """`cmd power set-fixed-performance-mode-enabled` (Android 11+); True if the device accepted it."""
        flag = "true" if on else "false"
        result = self._query(["cmd", "power", "set-fixed-performance-mode-enabled", flag], "performance-mode")
        accepted = result.ok and "Unknown" not in result.stdout + result.stderr
        if accepted:
            self._fixed_perf_enabled_by_us = on
        return accepted

    @contextlib.contextmanager
    def fixed_performance_mode(self) -> Iterator[bool]:
        """Enable fixed performance mode for the block (yields whether it took) and switch it off after."""
        enabled = self.set_fixed_performance_mode(True)
        try:
            yield enabled
        finally:
            if enabled:
                self.restore()

    def restore(self) -> None:
        """Undo device settings this session changed (fixed performance mode)."""
        if self._fixed_perf_enabled_by_us:
            self.set_fixed_performance_mode(False)


def _batches(head: list[str], paths: list[str], budget: int = 30_000) -> Iterator[list[str]]:
    """`head + paths` split into command lines of at most ~`budget` bytes (ADB carries 64 KiB)."""
    batch: list[str] = []
    size = 0
    for path in paths:
        if batch and size + len(path) + 3 > budget:
            yield head + batch
            batch, size = [], 0
        batch.append(path)
        size += len(shell.quote(path)) + 1
    if batch:
        yield head + batch


def _digest_in(sha256sum_output: str) -> str | None:
    """The hash from `sha256sum FILE` output. A leading backslash marks an escaped file name (one with a
    backslash in it), not part of the hash."""
    words = sha256sum_output.split()
    digest = words[0].removeprefix("\\").lower() if words else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None

