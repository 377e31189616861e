"""The real `adb` server for tests: started on a free port, isolated, always stopped.

Each `RealAdbServer` runs `adb -P PORT start-server` with its own HOME (its RSA key is generated there,
never in the user's ~/.android) and its own TMPDIR (the server writes its log, `adb.<uid>.log`, there; the
log names the server's pid, which is how we know the server on PORT is ours and not another test worker's,
and how `stop()` makes sure it is gone). Devices come from `AdbdDouble`s attached with `adb connect`.

    with real_adb_lab(tmp_path) as lab:
        phone = lab.add(SME2_PHONE)                  # an adbd double, connected; serial "127.0.0.1:N"
        client = AndroidClient(f"127.0.0.1:{lab.port}")

The server probes 127.0.0.1:5555-5585 for emulators by itself; nothing here listens there.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.adb_double.adbd import DEFAULT_FEATURES, AdbdDouble
from tests.adb_double.device import FakeDevice

if TYPE_CHECKING:
    from collections.abc import Iterator

ADB = shutil.which("adb")
INSTALL_HINT = (
    "the real `adb` program is not installed: Debian/Ubuntu `sudo apt-get install -y adb`, Fedora "
    "`sudo dnf install android-tools`, macOS `brew install android-platform-tools`, or put Android SDK "
    "platform-tools on PATH"
)
_EMULATOR_PORTS = range(5554, 5586)
_STARTED = re.compile(r"--- adb starting \(pid (\d+)\) ---")


def free_port() -> int:
    """A TCP port nobody listens on right now (outside the server's emulator probe range)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _EMULATOR_PORTS:
            return port


class AdbServerError(RuntimeError):
    pass


class RealAdbServer:
    def __init__(self, home: Path, *, adb: str | None = None) -> None:
        if (adb or ADB) is None:
            raise AdbServerError(INSTALL_HINT)
        self.adb_path = adb or ADB or "adb"
        self.home = home
        self.port = 0
        self.pid: int | None = None
        home.mkdir(parents=True, exist_ok=True)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANDROID_", "ADB_")) and k not in ("HOME", "TMPDIR")}
        return {**env, "HOME": str(self.home), "TMPDIR": str(self.home)}

    @property
    def log_path(self) -> Path:
        return self.home / f"adb.{os.getuid()}.log"

    @property
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> RealAdbServer:
        problems = []
        for _ in range(5):  # another process may take the free port before the server binds it
            self.port = free_port()
            before = len(_STARTED.findall(self.log_text))
            result = self.run("start-server", timeout=30)
            started = _STARTED.findall(self.log_text)
            if result.returncode == 0 and len(started) > before:
                self.pid = int(started[-1])
                return self
            problems.append(f"port {self.port}: exit {result.returncode}: {result.stderr.strip()}")
        raise AdbServerError("could not start an adb server: " + "; ".join(problems))

    def stop(self) -> None:
        """kill-server, and make sure the process is gone (SIGKILL if it did not listen)."""
        if self.pid is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.run("kill-server", timeout=10)
        deadline = time.monotonic() + 5
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def _alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            status = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        # A zombie (state Z) is gone for our purposes; and the pid must still be *our* server.
        return status.split(") ", 1)[-1][:1] != "Z" and f"tcp:{self.port}".encode() in cmdline

    # ---- commands -----------------------------------------------------------------------------------
    def run(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """`adb -P PORT ARGS` against this server only."""
        return subprocess.run([self.adb_path, "-P", str(self.port), *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env(), stdin=subprocess.DEVNULL, check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """`adb -P PORT ARGS` in the background (for commands that block, like `logcat`)."""
        return subprocess.Popen([self.adb_path, "-P", str(self.port), *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True, env=self.env(), stdin=subprocess.DEVNULL)

    def connect(self, address: str) -> str:
        return self.run("connect", address).stdout.strip()

    def disconnect(self, address: str) -> str:
        return self.run("disconnect", address).stdout.strip()

    def devices(self) -> dict[str, str]:
        """serial → state, from `adb devices` (tab-separated)."""
        listing: dict[str, str] = {}
        for line in self.run("devices").stdout.splitlines()[1:]:
            serial, sep, state = line.rpartition("\t")
            if sep:
                listing[serial] = state
        return listing

    def wait_for(self, serial: str, state: str | None, timeout: float = 15) -> None:
        """Until `serial` is listed in `state` (None: until it is not listed at all)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.devices().get(serial)
            if now == state:
                return
            if time.monotonic() > deadline:
                raise AdbServerError(f"{serial} is {now!r}, not {state!r}, after {timeout} s\n{self.log_text[-3000:]}")
            time.sleep(0.05)


@dataclass
class RealAdbLab:
    server: RealAdbServer
    base: Path
    phones: dict[str, AdbdDouble] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def add(self, fixture: str, *, state: str = "device", auth: bool = True,
            features: tuple[str, ...] = DEFAULT_FEATURES, connect: bool = True) -> FakeDevice:
        """A phone double on its own port; its serial is the address the server connects to."""
        adbd = AdbdDouble(features=features, auth=auth)
        adbd.bind()
        device = FakeDevice.from_fixture(fixture, adbd.address, self.base, state=state)
        adbd.start(device)
        self.phones[device.serial] = adbd
        if connect:
            self.connect(device, expect=state)
        return device

    def adbd(self, device: FakeDevice) -> AdbdDouble:
        return self.phones[device.serial]

    def connect(self, device: FakeDevice, *, expect: str = "device") -> None:
        if expect == "offline":
            # adb connect waits 10 s for a handshake that a hung adbd never answers; the server lists the
            # device as offline at once, which is all a test needs.
            with self.server.popen("connect", device.serial) as waiting:
                try:
                    self.server.wait_for(device.serial, "offline")
                finally:
                    waiting.kill()
            return
        answer = self.server.connect(device.serial)
        # adb 29 waits for the handshake: a phone that refuses our key answers "failed to authenticate".
        accepted = ("connected to", "already connected to") + (("failed to authenticate",)
                                                                if expect == "unauthorized" else ())
        if not answer.startswith(accepted):
            raise AdbServerError(f"adb connect {device.serial}: {answer}")
        self.server.wait_for(device.serial, expect)

    def reconnect(self, device: FakeDevice) -> None:
        """What a person does after plugging a network device back in: disconnect, connect."""
        self.server.disconnect(device.serial)
        self.connect(device)

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            for adbd in self.phones.values():
                adbd.stop()


@contextmanager
def real_adb_lab(tmp_path: Path) -> Iterator[RealAdbLab]:
    """A started real adb server with no devices yet; server and phone doubles are stopped on exit."""
    base = tmp_path / "realadb"
    server = RealAdbServer(base / "server").start()
    lab = RealAdbLab(server, base / "devices")
    lab.base.mkdir(parents=True, exist_ok=True)
    try:
        yield lab
    finally:
        lab.stop()
