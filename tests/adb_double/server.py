"""A loopback ADB *host-protocol* server (what `adb start-server` listens with), for the real adbutils client.

One thread accepts on 127.0.0.1:<ephemeral>; one thread per connection. Every socket has a timeout and
`stop()` cuts every connection and kills every command still running, so a test can never leave work
behind. Host services answered:
  host:version · host:kill · host:devices · host:devices-l · host:connect:<addr> · host:disconnect:<addr>
  host:transport:<s> · host:tport:serial:<s> (OKAY + 8-byte transport id) · host:transport-id:<n>
  host:tport:transport-id:<n> · host:transport-any · host:tport:any
  host-serial:<s>:{features,get-state,get-serialno,get-devpath} · host-transport-id:<n>:{same}
then, on a transport: shell:<cmd> · shell,v2[,opts]:<cmd> · sync:
Failure texts are adb's own ("device 'x' not found", "device offline", "device unauthorized. ...").
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

from tests.adb_double import wire
from tests.adb_double.shell_exec import _kill_group, run_shell
from tests.adb_double.sync_service import serve_sync

if TYPE_CHECKING:
    import subprocess
    from types import TracebackType

    from tests.adb_double.device import FakeDevice

# Only what this double implements: no stat_v2/ls_v2/sendrecv_v2 (adbutils uses none of them), so a client
# that would use them falls back to the v1 sync commands served here.
FEATURES = "shell_v2,cmd,fixed_push_mkdir"
UNAUTHORIZED = (
    "device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
    "Try 'adb kill-server' if that seems wrong.\nOtherwise check for a confirmation dialog on your device."
)


class TransportError(Exception):
    """Selecting a device failed; the message is what adb answers after FAIL."""


class AdbDoubleServer:
    def __init__(self, *, version: int = 41, io_timeout: float = 20.0, host: str = "127.0.0.1") -> None:
        self.version = version  # 41 = adb 1.0.41 (tport); 40 or less makes adbutils use host:transport:
        self.io_timeout = io_timeout
        self.host = host
        self._devices: dict[str, FakeDevice] = {}
        self._network: dict[str, FakeDevice] = {}
        self._next_tid = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._clients: set[socket.socket] = set()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._requests: list[str] = []
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> AdbDoubleServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(32)
        listener.settimeout(0.05)  # so the accept loop notices stop() quickly
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name=f"adb-double-{self.port}", daemon=True)
        self._threads.add(thread)
        thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            clients, procs, threads = list(self._clients), list(self._procs), list(self._threads)
        for sock in clients:
            wire.hang_up(sock)
        for proc in procs:
            _kill_group(proc)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    def __enter__(self) -> AdbDoubleServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- devices ------------------------------------------------------------------------------------
    def add_device(self, device: FakeDevice) -> FakeDevice:
        with self._lock:
            device.transport_id = self._next_tid
            self._next_tid += 1
            self._devices[device.serial] = device
        return device

    def remove_device(self, serial: str) -> None:
        with self._lock:
            device = self._devices.pop(serial, None)
        if device is not None:
            device.unplug()

    def add_network_device(self, device: FakeDevice) -> FakeDevice:
        """A device reachable by `adb connect <serial>` (serial = "host:port"); unlisted until then."""
        with self._lock:
            self._network[device.serial] = device
        return device

    @property
    def devices(self) -> list[FakeDevice]:
        with self._lock:
            return list(self._devices.values())

    @property
    def running_commands(self) -> int:
        """Shell commands whose process has not been reaped yet."""
        with self._lock:
            return sum(1 for p in self._procs if p.poll() is None)

    @property
    def requests(self) -> list[str]:
        """Every first request of every connection (host services), in arrival order."""
        with self._lock:
            return list(self._requests)

    def _visible(self) -> list[FakeDevice]:
        with self._lock:
            return [d for d in self._devices.values() if d.present]

    # ---- serving ------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(self.io_timeout)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._clients.add(sock)
                self._threads.add(thread)
            thread.start()

    def _track(self, old: subprocess.Popen[bytes] | None, new: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if old is None:
                self._procs.add(new)
            else:
                self._procs.discard(old)

    def _serve(self, sock: socket.socket) -> None:
        device: FakeDevice | None = None
        try:
            request = wire.read_request(sock)
            with self._lock:
                self._requests.append(request)
            device = self._host_request(sock, request)
            if device is not None:
                device.attach(sock)
                if not device.present:  # unplugged between selection and attach
                    return
                self._device_service(sock, device, wire.read_request(sock))
        except wire.PeerGone:
            pass
        finally:
            if device is not None:
                device.detach(sock)
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._clients.discard(sock)
                self._threads.discard(threading.current_thread())

    def _host_request(self, sock: socket.socket, request: str) -> FakeDevice | None:
        """Answer a host service; return the device when the request switched this socket to a transport."""
        if request == "host:version":
            wire.okay(sock, f"{self.version:04x}")
        elif request == "host:kill":
            wire.okay(sock)
        elif request in ("host:devices", "host:devices-l"):
            wire.okay(sock, self._listing(long=request.endswith("-l")))
        elif request.startswith("host:connect:"):
            wire.okay(sock, self._connect(request.removeprefix("host:connect:")))
        elif request.startswith("host:disconnect:"):
            self._disconnect(sock, request.removeprefix("host:disconnect:"))
        elif request.startswith(("host-serial:", "host-transport-id:")):
            self._query(sock, request)
        else:
            return self._select_transport(sock, request)
        return None

    def _select_transport(self, sock: socket.socket, request: str) -> FakeDevice | None:
        tport = request.startswith("host:tport:")
        selector = request.removeprefix("host:tport:" if tport else "host:")
        try:
            if selector.startswith("serial:") and tport:
                device = self._resolve(serial=selector.removeprefix("serial:"))
            elif selector.startswith("transport:") and not tport:
                device = self._resolve(serial=selector.removeprefix("transport:"))
            elif selector.startswith("transport-id:"):
                device = self._resolve(tid=int(selector.removeprefix("transport-id:")))
            elif selector in ("any", "transport-any"):
                device = self._resolve()
            else:
                wire.fail(sock, f"unknown host service '{request}'")
                return None
        except TransportError as exc:
            wire.fail(sock, str(exc))
            return None
        wire.send_all(sock, b"OKAY" + (device.transport_id.to_bytes(8, "little") if tport else b""))
        return device

    def _resolve(self, *, serial: str | None = None, tid: int | None = None) -> FakeDevice:
        visible = self._visible()
        if serial is not None:
            matches = [d for d in visible if d.serial == serial]
            if not matches:
                raise TransportError(f"device '{serial}' not found")
        elif tid is not None:
            matches = [d for d in visible if d.transport_id == tid]
            if not matches:
                raise TransportError(f"no device with transport id '{tid}'")
        else:
            matches = visible
            if not matches:
                raise TransportError("no devices/emulators found")
            if len(matches) > 1:
                raise TransportError("more than one device/emulator")
        device = matches[0]
        if device.state == "unauthorized":
            raise TransportError(UNAUTHORIZED)
        if device.state == "offline":
            raise TransportError("device offline")
        return device

    def _query(self, sock: socket.socket, request: str) -> None:
        prefix, _, rest = request.partition(":")
        target, _, what = rest.rpartition(":")
        try:
            if prefix == "host-serial":
                device = self._resolve_any_state(serial=target)
            else:
                device = self._resolve_any_state(tid=int(target))
        except TransportError as exc:
            wire.fail(sock, str(exc))
            return
        if what == "get-state":
            wire.okay(sock, device.state)
            return
        if device.state != "device":
            wire.fail(sock, UNAUTHORIZED if device.state == "unauthorized" else "device offline")
            return
        answers = {"features": FEATURES, "get-serialno": device.serial, "get-devpath": "usb:1-1"}
        if what in answers:
            wire.okay(sock, answers[what])
        else:
            wire.fail(sock, f"unknown host service '{what}'")

    def _resolve_any_state(self, *, serial: str | None = None, tid: int | None = None) -> FakeDevice:
        for device in self._visible():
            if device.serial == serial or device.transport_id == tid:
                return device
        raise TransportError(f"device '{serial if serial is not None else tid}' not found")

    def _listing(self, *, long: bool) -> str:
        lines = []
        for device in self._visible():
            if not long:
                lines.append(f"{device.serial}\t{device.state}\n")
                continue
            extra = ""
            if device.state == "device":
                model = device.prop("ro.product.model").replace(" ", "_") or "unknown"
                product = device.prop("ro.product.name") or "unknown"
                name = device.prop("ro.product.device") or "unknown"
                extra = f" product:{product} model:{model} device:{name}"
            tid = device.transport_id
            lines.append(f"{device.serial:<22} {device.state} usb:1-1{extra} transport_id:{tid}\n")
        return "".join(lines)

    def _connect(self, addr: str) -> str:
        with self._lock:
            device = self._network.get(addr)
            if device is None:
                return f"failed to connect to '{addr}': Connection refused"
            if addr in self._devices:
                return f"already connected to {addr}"
        self.add_device(device)
        device.replug()
        return f"connected to {addr}"

    def _disconnect(self, sock: socket.socket, addr: str) -> None:
        with self._lock:
            known = addr in self._devices and addr in self._network
        if not known:
            wire.fail(sock, f"no such device '{addr}'")
            return
        self.remove_device(addr)
        wire.okay(sock, f"disconnected {addr}")

    def _device_service(self, sock: socket.socket, device: FakeDevice, service: str) -> None:
        if service == "sync:":
            wire.okay(sock)
            serve_sync(device, sock)
            return
        name, sep, command = service.partition(":")
        if sep and name.split(",")[0] == "shell" and command:
            v2 = "v2" in name.split(",")[1:]
            wire.okay(sock)
            run_shell(device, sock, command, v2=v2, stop=self._stop, track=self._track)
            return
        wire.fail(sock, f"unsupported service '{service}' (this double has no interactive shell)")

