"""A fake Android device: a serial, a state, a filesystem in a temp folder, fixture facts and faults.

How shell commands run "on the device" (the approach, and its limits):
- The device filesystem is a host folder `root`. Sync requests (STAT/LIST/SEND/RECV) map any absolute
  device path into it (after normalising `..`, so they cannot escape).
- A shell command is executed by the host's `/bin/sh -c`, with cwd = `root` (adbd starts in `/`) and a
  PATH whose first entry is `root/.double/bin`: small scripts that stand in for Android-only tools
  (`getprop`, `dumpsys`, `cmd`, `settings`, `taskset`, `uname`); everything else (`sha256sum`, `chmod`,
  `mkdir`, `rm`, `mv`, `cat`, ...) is the host's real tool, which behaves like toybox for what we use.
- Before running, absolute paths that start with a device-only prefix (/data, /sdcard, /storage, /proc,
  /sys, /vendor) at a word start are rewritten to `root/<prefix>`. The rewrite only inserts characters
  from `root` (checked to be `[A-Za-z0-9_./-]`), so it never changes how the shell splits or quotes the
  line: quoting bugs in the client stay bugs here. Output has `root` removed again, so
  `sha256sum /data/local/tmp/x` prints the device path.
- Android's log (logd) is a file, `root/.double/logd`: one entry per line, tab-separated
  `MM-DD  HH:MM:SS.mmm  pid  tid  priority  tag  message`. A program on the device logs the way liblog does
  (attributed to its own pid) by appending to `$ANDROID_LOGD_DOUBLE`; the `log` tool and `FakeDevice.log`
  write there too, and the `logcat` stand-in reads it (-d, -c, --pid, -v brief|threadtime|time|raw, -t N).
  Without -d it follows the log forever, as logcat does.
- It is NOT a sandbox: a command that names a host path outside those prefixes touches the host. The
  product refuses such commands itself (and tests check the recorded command log).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tests.adb_double import wire

if TYPE_CHECKING:
    import socket

FIXTURES_DIR = Path(__file__).parent / "fixtures"
# The fixture folders shipped with the double (see fixtures/<name>/).
SME2_PHONE = "vivo_x300"
SME1_ONLY = "sme1_only_board"
EMULATOR = "emulator_x86_64"

_MAPPED_PREFIXES = ("data", "sdcard", "storage", "proc", "sys", "vendor")
# A device path at a word start: not preceded by a path/name character (so `foo/data` stays), and the
# prefix must end at a `/` or a non-name character (so `/database` stays).
_DEVICE_PATH = re.compile(r"(?<![\w.~/}$-])/(" + "|".join(_MAPPED_PREFIXES) + r")(?![\w.-])")
_SAFE_ROOT = re.compile(r"^[A-Za-z0-9_./-]+$")
_FACT_FILES = ("getprop.txt", "uname.txt", "dumpsys_thermalservice.txt")
VALID_STATES = ("device", "unauthorized", "offline")


@dataclass
class ShellFault:
    """What happens to shell commands whose device-side text matches `pattern` (re.search).

    action: "drop"   — the command starts, and once `after_output` bytes of its output have been forwarded
                       (0 = at once) the connection is cut: no exit status; the command then meets
                       the device's hang-up policy (`kill_on_hangup`);
            "vanish" — like drop, and the device disappears from `host:devices` (cable pulled);
            "reconnect" — like drop, and the device's whole link is cut and comes back at once (a Wi-Fi blip,
                       a USB reset): through the real server the transport reconnects; with `state`
                       the device comes back in that state ("unauthorized": authorizations were revoked,
                       "offline": adbd hangs);
            "hang"   — the command never runs and nothing is answered until the client gives up;
            "flood"  — the command never runs; stdout data streams without end until the client leaves
                       (a hostile or broken device; with `after_output` > 0 one v2 packet instead claims
                       that many bytes and sends only the first few);
            "signal" — the command starts and is killed with `signal` (exit status 128+signal).
    times: how many matching commands it affects (None = all).
    """

    pattern: str
    action: str
    signal: int = 9
    times: int | None = None
    after_output: int = 0
    state: str | None = None


@dataclass
class TransferFault:
    """Cut the sync connection after `after_bytes` bytes of file data (push: received; pull: sent), for
    transfers whose device path matches `pattern` (re.search; None = any)."""

    after_bytes: int
    vanish: bool = False
    times: int | None = None
    pattern: str | None = None


@dataclass
class Faults:
    shell: list[ShellFault] = field(default_factory=list)
    push: TransferFault | None = None
    pull: TransferFault | None = None
    # Bytes that SEND may still write to the device; None = unlimited. Exceeding it → FAIL "No space...".
    free_bytes: int | None = None

    def clear(self) -> None:
        self.shell.clear()
        self.push = None
        self.pull = None
        self.free_bytes = None


@dataclass(frozen=True)
class ReceivedFile:
    """One successful SEND: the device path, how many bytes arrived, the mode requested."""

    path: str
    size: int
    mode: int


def _matches(fault: TransferFault | None, path: str) -> bool:
    return fault is not None and (fault.pattern is None or re.search(fault.pattern, path) is not None)


def _take(fault: TransferFault | ShellFault | None) -> bool:
    """Consume one use of a fault; False when it is used up."""
    if fault is None:
        return False
    if fault.times is None:
        return True
    if fault.times <= 0:
        return False
    fault.times -= 1
    return True


class FakeDevice:
    def __init__(self, serial: str, root: Path, *, state: str = "device", fixture: str | None = None) -> None:
        if state not in VALID_STATES:
            raise ValueError(f"state must be one of {VALID_STATES}, not {state!r}")
        root = root.resolve()
        if not _SAFE_ROOT.match(str(root)):
            # The command rewrite relies on this: see the module docstring.
            raise ValueError(f"device root {root} must only contain [A-Za-z0-9_./-]")
        self.serial = serial
        self.root = root
        self.fixture = fixture
        self.faults = Faults()
        self.present = True
        # Whether a command dies when its client hangs up (see shell_exec._hang_up).
        self.kill_on_hangup = True
        self.transport_id = 0  # assigned by the server that hosts it
        self._state = state
        self._lock = threading.Lock()
        self._shell_log: list[str] = []
        self._sync_log: list[tuple[str, str]] = []
        self._received: list[ReceivedFile] = []
        self._send_bytes = 0
        self._live: set[socket.socket] = set()
        self._root_bytes = str(root).encode()
        for sub in ("data/local/tmp", "sdcard", "proc", "sys", ".double/state", ".double/settings"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.logd_path.touch()
        self._install_tools()

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_fixture(cls, name: str, serial: str, base_dir: Path, *, state: str = "device") -> FakeDevice:
        """A device whose /proc, /sys, getprop, uname and dumpsys come from fixtures/<name>/."""
        src = FIXTURES_DIR / name
        if not src.is_dir():
            raise ValueError(f"no fixture {name!r} under {FIXTURES_DIR}")
        root = base_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", serial)
        root.mkdir(parents=True, exist_ok=False)
        for item in src.iterdir():
            if item.name in _FACT_FILES:
                continue
            shutil.copytree(item, root / item.name, dirs_exist_ok=True)
        double = root / ".double"
        double.mkdir()
        for fact in _FACT_FILES:
            shutil.copyfile(src / fact, double / fact)
        return cls(serial, root, state=state, fixture=name)

    def _install_tools(self) -> None:
        bin_dir = self.root / ".double" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        double = self.root / ".double"
        possible = self.root / "sys/devices/system/cpu/possible"  # e.g. "0-7"
        ncpu = int(possible.read_text().strip().split("-")[-1]) + 1 if possible.exists() else 8
        for name, body in _tools(str(double), ncpu).items():
            path = bin_dir / name
            path.write_text(body)
            path.chmod(0o755)

    # ---- state --------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @state.setter
    def state(self, value: str) -> None:
        if value not in VALID_STATES:
            raise ValueError(f"state must be one of {VALID_STATES}, not {value!r}")
        with self._lock:
            self._state = value

    def unplug(self) -> None:
        """The device is gone: it leaves `host:devices` and every open connection to it is cut."""
        with self._lock:
            self.present = False
            live = list(self._live)
            self._live.clear()
        for sock in live:
            wire.hang_up(sock)  # the thread serving it notices and closes it

    def blip(self, state: str | None = None) -> None:
        """The link drops and comes straight back (the device stays present), optionally in a new state."""
        if state is not None:
            self.state = state
        with self._lock:
            live = list(self._live)
            self._live.clear()
        for sock in live:
            wire.hang_up(sock)

    def replug(self) -> None:
        with self._lock:
            self.present = True

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.add(sock)

    def detach(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.discard(sock)

    # ---- properties and the log ----------------------------------------------------------------------
    def prop(self, key: str) -> str:
        """A property straight from the fixture dump (no command runs on the device)."""
        path = self.root / ".double" / "getprop.txt"
        if not path.exists():
            return ""
        needle = f"[{key}]: ["
        for line in path.read_text().splitlines():
            if line.startswith(needle):
                return line[len(needle) :].rstrip("]")
        return ""

    def banner_properties(self) -> dict[str, str]:
        """What adbd puts in its CNXN banner (the server shows them in `adb devices -l`)."""
        keys = ("ro.product.name", "ro.product.model", "ro.product.device")
        return {k: v for k in keys if (v := self.prop(k))}

    @property
    def logd_path(self) -> Path:
        return self.root / ".double" / "logd"

    def log(self, pid: int, priority: str, tag: str, message: str) -> None:
        """Append an entry to the device log as process `pid` would through liblog."""
        stamp = time.strftime("%m-%d\t%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        with self._lock, self.logd_path.open("a") as log:
            log.write(f"{stamp}\t{pid}\t{pid}\t{priority}\t{tag}\t{message}\n")

    @property
    def log_entries(self) -> list[list[str]]:
        if not self.logd_path.exists():
            return []
        return [line.split("\t", 6) for line in self.logd_path.read_text().splitlines()]

    def set_thermal_status(self, status: int) -> None:
        path = self.root / ".double" / "dumpsys_thermalservice.txt"
        text = re.sub(r"^Thermal Status: \d+$", f"Thermal Status: {status}", path.read_text(), flags=re.M)
        path.write_text(text)

    @property
    def fixed_performance_mode(self) -> str | None:
        """What `cmd power set-fixed-performance-mode-enabled` last set ("true"/"false"), None if never."""
        path = self.root / ".double" / "state" / "fixed_performance_mode"
        return path.read_text().strip() if path.exists() else None

    # ---- fault injection ----------------------------------------------------------------------------
    def fail_shell(
        self, pattern: str, action: str, *, signal: int = 9, times: int | None = None, after_output: int = 0,
        state: str | None = None,
    ) -> None:
        if action not in ("drop", "vanish", "reconnect", "hang", "signal", "flood"):
            raise ValueError(f"unknown shell fault action {action!r}")
        if state is not None and (action != "reconnect" or state not in VALID_STATES):
            raise ValueError("state goes with the reconnect action: one of " + ", ".join(VALID_STATES))
        with self._lock:
            self.faults.shell.append(ShellFault(pattern, action, signal, times, after_output, state))

    def drop_push_after(self, nbytes: int, *, vanish: bool = False, times: int | None = 1,
                        pattern: str | None = None) -> None:
        with self._lock:
            self.faults.push = TransferFault(nbytes, vanish, times, pattern)

    def drop_pull_after(self, nbytes: int, *, vanish: bool = False, times: int | None = 1,
                        pattern: str | None = None) -> None:
        with self._lock:
            self.faults.pull = TransferFault(nbytes, vanish, times, pattern)

    def set_free_bytes(self, nbytes: int | None) -> None:
        with self._lock:
            self.faults.free_bytes = nbytes

    def take_shell_fault(self, command: str) -> ShellFault | None:
        with self._lock:
            for fault in self.faults.shell:
                if re.search(fault.pattern, command) and _take(fault):
                    return fault
        return None

    def take_push_fault(self, path: str = "") -> TransferFault | None:
        with self._lock:
            return self.faults.push if _matches(self.faults.push, path) and _take(self.faults.push) else None

    def take_pull_fault(self, path: str = "") -> TransferFault | None:
        with self._lock:
            return self.faults.pull if _matches(self.faults.pull, path) and _take(self.faults.pull) else None

    def reserve_space(self, nbytes: int) -> bool:
        """Account for `nbytes` written by SEND; False when the device has no room for them."""
        with self._lock:
            if self.faults.free_bytes is None:
                return True
            if nbytes > self.faults.free_bytes:
                return False
            self.faults.free_bytes -= nbytes
            return True

    # ---- records ------------------------------------------------------------------------------------
    def record_shell(self, command: str) -> None:
        with self._lock:
            self._shell_log.append(command)

    def record_sync(self, ident: str, path: str) -> None:
        with self._lock:
            self._sync_log.append((ident, path))

    @property
    def sync_log(self) -> list[tuple[str, str]]:
        """Every sync request received: (id such as "STAT", "STA2", "SEND", path)."""
        with self._lock:
            return list(self._sync_log)

    @property
    def shell_log(self) -> list[str]:
        """Every shell command received, as the client sent it (before any path rewrite)."""
        with self._lock:
            return list(self._shell_log)

    def record_received(self, item: ReceivedFile) -> None:
        with self._lock:
            self._received.append(item)

    @property
    def received(self) -> list[ReceivedFile]:
        with self._lock:
            return list(self._received)

    @property
    def bytes_received(self) -> int:
        """File bytes that arrived through SEND, counting aborted and refused transfers too."""
        with self._lock:
            return self._send_bytes

    def count_send_bytes(self, nbytes: int) -> None:
        with self._lock:
            self._send_bytes += nbytes

    # ---- paths --------------------------------------------------------------------------------------
    def host_path(self, device_path: str) -> Path:
        """Where a device path lives on the host (never outside `root`)."""
        normal = PurePosixPath("/" + device_path.lstrip("/"))
        parts = [p for p in normal.parts[1:] if p not in ("", ".")]
        resolved: list[str] = []
        for part in parts:
            if part == "..":
                if resolved:
                    resolved.pop()
            else:
                resolved.append(part)
        return self.root.joinpath(*resolved)

    def rewrite_command(self, command: str) -> str:
        return _DEVICE_PATH.sub(lambda m: f"{self.root}/{m.group(1)}", command)

    def shell_env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.root}/.double/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "TMPDIR": f"{self.root}/data/local/tmp",
            "LANG": "C.UTF-8",
            "ANDROID_SERIAL_FOR_TESTS": self.serial,
            "ANDROID_LOGD_DOUBLE": str(self.logd_path),
        }

    @property
    def root_bytes(self) -> bytes:
        return self._root_bytes

    def read(self, device_path: str) -> bytes:
        return self.host_path(device_path).read_bytes()

    def write(self, device_path: str, data: bytes, mode: int = 0o644) -> None:
        path = self.host_path(device_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)

    def exists(self, device_path: str) -> bool:
        return self.host_path(device_path).exists()

    def __repr__(self) -> str:
        return f"FakeDevice({self.serial!r}, state={self.state!r}, fixture={self.fixture!r})"


def _tools(double: str, ncpu: int) -> dict[str, str]:
    """Shell scripts standing in for Android-only tools; `double` is root/.double (a safe path)."""
    return {
        "getprop": f"""#!/bin/sh
# Android getprop over the fixture dump: no argument lists all, NAME prints the value, NAME DEFAULT too.
props='{double}/getprop.txt'
if [ $# -eq 0 ]; then exec cat "$props"; fi
v=$(awk -v k="[$1]: [" \\
  'index($0, k) == 1 {{ s = substr($0, length(k) + 1); sub(/\\]$/, "", s); print s; exit }}' "$props")
if [ -z "$v" ] && [ $# -ge 2 ]; then v=$2; fi
printf '%s\\n' "$v"
""",
        "dumpsys": f"""#!/bin/sh
case "$1" in
  thermalservice) exec cat '{double}/dumpsys_thermalservice.txt' ;;
  *) echo "Can't find service: $1"; exit 0 ;;
esac
""",
        "cmd": f"""#!/bin/sh
# Only the power service's fixed-performance switch is simulated; it is remembered in .double/state.
if [ "$1" = power ] && [ "$2" = set-fixed-performance-mode-enabled ]; then
  case "$3" in
    true|false) printf '%s\\n' "$3" > '{double}/state/fixed_performance_mode'; exit 0 ;;
  esac
  echo "Error: invalid argument: $3" >&2; exit 255
fi
if [ "$1" = power ]; then echo "Unknown command: $2" >&2; exit 255; fi
echo "cmd: Can't find service: $1" >&2
exit 20
""",
        "settings": f"""#!/bin/sh
d='{double}/settings'
case "$1" in
  get) cat "$d/$2/$3" 2>/dev/null || echo null ;;
  put) mkdir -p "$d/$2" && printf '%s\\n' "$4" > "$d/$2/$3" ;;
  delete) rm -f "$d/$2/$3" ;;
  *) echo "usage: settings get|put|delete NAMESPACE KEY [VALUE]" >&2; exit 255 ;;
esac
""",
        "taskset": f"""#!/bin/sh
# toybox `taskset MASK CMD...`: the mask must name CPUs this device has ({ncpu}); then CMD runs.
case "$1" in -*|'') echo "taskset: only 'taskset MASK CMD...' is simulated" >&2; exit 1 ;; esac
mask=${{1#0x}}; shift
case "$mask" in *[!0-9a-fA-F]*) echo "taskset: bad mask '$mask'" >&2; exit 1 ;; esac
m=$(( 0x$mask ))
if [ "$m" -eq 0 ] || [ $(( m >> {ncpu} )) -ne 0 ]; then
  echo "taskset: sched_setaffinity: Invalid argument" >&2; exit 1
fi
[ $# -gt 0 ] || {{ echo "taskset: needs a command" >&2; exit 1; }}
exec "$@"
""",
        "log": f"""#!/bin/sh
# Android's `log [-p PRIORITY] [-t TAG] MESSAGE...`: one entry in the device log, under this process's pid.
p=I; t=log
while [ $# -gt 0 ]; do
  case "$1" in
    -p) p=$(printf '%s' "$2" | tr '[:lower:]' '[:upper:]' | cut -c1); shift 2 ;;
    -t) t=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "log: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$(date +%m-%d)" "$(date +%H:%M:%S.%3N)" $$ $$ "$p" "$t" "$*" \\
  >> '{double}/logd'
""",
        "logcat": f"""#!/bin/sh
# logcat over the device log file: -d (dump and exit; without it, follow forever), -c (clear),
# --pid=N / --pid N, -v brief|threadtime|time|raw|tag|process, -t N (last N entries), -b BUFFER (ignored).
log='{double}/logd'
dump=0; pid=''; fmt=threadtime; last=''
while [ $# -gt 0 ]; do
  case "$1" in
    -d) dump=1 ;;
    -c) : > "$log"; exit 0 ;;
    --pid=*) pid=${{1#--pid=}} ;;
    --pid) pid=$2; shift ;;
    -v) fmt=$2; shift ;;
    -v*) fmt=${{1#-v}} ;;
    -t) last=$2; shift ;;
    -b) shift ;;
    -b*) ;;
    *) echo "logcat: unknown option -- '$1'" >&2; exit 1 ;;
  esac
  shift
done
case "$pid" in *[!0-9]*) echo "logcat: invalid pid '$pid'" >&2; exit 1 ;; esac
case "$fmt" in brief|threadtime|time|raw|tag|process) ;; *) echo "logcat: unknown format '$fmt'" >&2; exit 1 ;; esac
show() {{
  awk -F '\\t' -v pid="$pid" -v fmt="$fmt" '
    pid != "" && $3 != pid {{ next }}
    fmt == "threadtime" {{ printf "%s %s %5d %5d %s %-8s: %s\\n", $1, $2, $3, $4, $5, $6, $7; fflush(); next }}
    fmt == "brief" {{ printf "%s/%-8s(%5d): %s\\n", $5, $6, $3, $7; fflush(); next }}
    fmt == "time" {{ printf "%s %s %s/%-8s(%5d): %s\\n", $1, $2, $5, $6, $3, $7; fflush(); next }}
    fmt == "tag" {{ printf "%s/%-8s: %s\\n", $5, $6, $7; fflush(); next }}
    fmt == "process" {{ printf "%s(%5d) %s  (%s)\\n", $5, $3, $7, $6; fflush(); next }}
    {{ print $7; fflush() }}'
}}
echo '--------- beginning of main'
if [ "$dump" = 1 ]; then
  if [ -n "$last" ]; then tail -n "$last" "$log" | show; else show < "$log"; fi
else
  tail -n +1 -f "$log" | show
fi
""",
        "uname": f"""#!/bin/sh
# toybox uname over the fixture's `uname -a` line: sysname node release version... machine Toybox.
line=$(cat '{double}/uname.txt')
case "$1" in
  -a) printf '%s\\n' "$line" ;;
  -r) printf '%s\\n' "$line" | awk '{{print $3}}' ;;
  -m) printf '%s\\n' "$line" | awk '{{print $(NF-1)}}' ;;
  -n) printf '%s\\n' "$line" | awk '{{print $2}}' ;;
  ''|-s) echo Linux ;;
  *) echo "uname: unknown option $1" >&2; exit 1 ;;
esac
""",
    }
