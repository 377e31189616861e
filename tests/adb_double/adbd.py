"""A device-side double: adbd's *transport* protocol over TCP, for the real `adb` server to `adb connect` to.

The real server (Debian's adb 29.0.6 here) speaks to a network device exactly like this: 24-byte message
headers (command, arg0, arg1, length, checksum, magic = command ^ 0xffffffff) followed by a payload.
  CNXN  version, max payload, "host::features=..." / "device::ro.product.name=...;features=..."
  AUTH  TOKEN (device → host, 20 random bytes), SIGNATURE (host → device), RSAPUBLICKEY (host → device)
  OPEN  host's stream id, 0, "service\0"        → OKAY(device id, host id) or CLSE(0, host id) to refuse
  WRTE  sender id, receiver id, data               → OKAY from the receiver before the next WRTE
  CLSE  sender id, receiver id                     (either side; the other answers CLSE)
The device's CNXN banner carries `features=`: the server reports them (`host-serial:<s>:features`) and
decides shell v2 / stat v2 from them.

Services are the same code as the host-protocol double's (shell_exec.run_shell, sync_service.serve_sync),
run against one end of a socket pair per stream; this module only pumps bytes between that pair and the
transport's WRTE/OKAY/CLSE messages. So every FakeDevice fault (drop, vanish, hang, signal, storage full,
kill_on_hangup) means the same thing here, but what the client sees is now decided by the real server.

Device states, as a phone produces them:
  "device"        AUTH token → any signature is accepted → CNXN (`auth=False`: CNXN at once, no AUTH)
  "unauthorized"  every signature is refused and the offered public key is not accepted until the state
                  becomes "device" (the person taps "Allow")
  "offline"       the TCP connection is accepted but adbd does not answer while the state stays "offline"
and `FakeDevice.unplug()` cuts the TCP connection and refuses new ones (Wi-Fi gone) until `replug()`.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.adb_double import wire
from tests.adb_double.shell_exec import _kill_group, run_shell
from tests.adb_double.sync_service import serve_sync

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    from tests.adb_double.device import FakeDevice

A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_VERSION = 0x01000001  # "skip checksum" version, what adbd of this era sends
MAX_PAYLOAD = 1024 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
_HEADER = struct.Struct("<6I")

# What adbd of Android 10+ advertises, minus what this double does not serve (abb, sendrecv_v2, ...).
# `stat_v2` is advertised and served (STA2/LST2/LIS2), so the server and any client may use it.
DEFAULT_FEATURES = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir", "fixed_push_symlink_timestamp")


class TransportGone(Exception):
    """The TCP connection to the server ended (EOF, reset, or our own hang-up)."""


@dataclass
class _Stream:
    local_id: int
    remote_id: int
    ours: socket.socket  # the pump's end; the service runs on the other end of the pair
    ready: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)


def _checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


class AdbdDouble:
    """One fake device reachable at 127.0.0.1:<port> for `adb connect`. Its serial on the server is that
    address, so bind first, name the FakeDevice after `address`, then start with it (see `RealAdbLab.add`)."""

    def __init__(
        self,
        *,
        features: tuple[str, ...] = DEFAULT_FEATURES,
        auth: bool = True,
        io_timeout: float = 20.0,
    ) -> None:
        self._device: FakeDevice | None = None
        self.features = features
        self.auth = auth
        self.io_timeout = io_timeout
        self.port = 0
        self.connections = 0  # TCP connections accepted while present (handshakes attempted)
        self.opened: list[str] = []  # every service the server opened, in order
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()
        self._procs: set[subprocess.Popen[bytes]] = set()

    # ---- lifecycle ----------------------------------------------------------------------------------
    def bind(self) -> int:
        """Reserve the port (so the device can be named after it) without serving yet."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        port = int(listener.getsockname()[1])
        if 5554 <= port <= 5585:  # the server probes these for emulators by itself: never answer there
            listener.close()
            return self.bind()
        listener.listen(8)
        listener.settimeout(0.05)
        self._listener = listener
        self.port = port
        return port

    @property
    def device(self) -> FakeDevice:
        assert self._device is not None, "start(device) first"
        return self._device

    def start(self, device: FakeDevice) -> AdbdDouble:
        self._device = device
        if self._listener is None:
            self.bind()
        self._spawn(self._accept_loop, f"adbd-double-{self.port}")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns, procs, threads = list(self._conns), list(self._procs), list(self._threads)
        for conn in conns:
            wire.hang_up(conn)
        for proc in procs:
            _kill_group(proc)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running_commands(self) -> int:
        with self._lock:
            return sum(1 for p in self._procs if p.poll() is None)

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> threading.Thread:
        def body() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=body, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _track(self, old: subprocess.Popen[bytes] | None, new: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if old is None:
                self._procs.add(new)
            else:
                self._procs.discard(old)

    # ---- connections --------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.device.present:  # unplugged: like a phone that left the network
                wire.abort(conn)
                continue
            conn.settimeout(None)  # a transport idles for as long as the server keeps it
            with self._lock:
                self._conns.add(conn)
                self.connections += 1
            self._spawn(self._serve, f"adbd-double-{self.port}-conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        link = _Link(conn)
        self.device.attach(conn)  # unplug() hangs it up
        streams: dict[int, _Stream] = {}
        try:
            if not self.device.present:
                return
            if not self._handshake(link):
                return
            self._loop(link, streams)
        except (TransportGone, wire.PeerGone):
            pass
        finally:
            self.device.detach(conn)
            for stream in list(streams.values()):
                wire.abort(stream.ours)  # the services see their client leave
                stream.closed.set()
                stream.ready.set()
            wire.abort(conn)
            with self._lock:
                self._conns.discard(conn)

    def _banner(self) -> bytes:
        props = self.device.banner_properties()
        parts = [f"{k}={v}" for k, v in props.items()]
        parts.append("features=" + ",".join(self.features))
        return ("device::" + ";".join(parts)).encode()

    def _handshake(self, link: _Link) -> bool:
        """Until the device is usable. False when it never will be on this connection.

        A device that is "offline" (hung adbd) or "unauthorized" (nobody taps "Allow") keeps the connection
        waiting; when a test sets its state back to "device" it carries on — the prompt was accepted."""
        command, _version, max_payload, _payload = link.read()
        if command != A_CNXN:
            return False
        link.max_payload = min(max_payload or MAX_PAYLOAD, MAX_PAYLOAD)
        while self.device.state == "offline":
            if self._stop.is_set():
                return False
            link.poll(0.05)  # whatever the server sends, a hung adbd ignores
        if not self.auth:
            link.send(A_CNXN, A_VERSION, MAX_PAYLOAD, self._banner())
            return True
        link.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
        offered_key = False
        while not self._stop.is_set():
            if offered_key and self.device.state == "device":  # the person tapped "Allow"
                break
            message = link.poll(0.05)
            if message is None or message[0] != A_AUTH:
                continue
            if message[1] == AUTH_SIGNATURE and self.device.state == "device":
                break  # any key is "known"
            if message[1] == AUTH_SIGNATURE:
                link.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))  # refused: try your next key
            elif message[1] == AUTH_RSAPUBLICKEY:
                offered_key = True  # a phone now shows "Allow USB debugging?"
        else:
            return False
        link.send(A_CNXN, A_VERSION, MAX_PAYLOAD, self._banner())
        return True

    def _loop(self, link: _Link, streams: dict[int, _Stream]) -> None:
        next_id = 1
        while not self._stop.is_set():
            command, arg0, arg1, payload = link.read()
            if command == A_OPEN:
                service = payload.rstrip(b"\x00").decode("utf-8", errors="replace")
                with self._lock:
                    self.opened.append(service)
                stream = self._open(link, next_id, arg0, service)
                if stream is not None:
                    streams[stream.local_id] = stream
                    next_id += 1
            elif command == A_WRTE:
                found = streams.get(arg1)
                if found is None:
                    link.send(A_CLSE, 0, arg0)
                    continue
                with contextlib.suppress(OSError):  # the service ended; its CLSE is on the way
                    found.ours.sendall(payload)
                link.send(A_OKAY, found.local_id, found.remote_id)
            elif command == A_OKAY:
                found = streams.get(arg1)
                if found is not None:
                    found.ready.set()
            elif command == A_CLSE:
                found = streams.pop(arg1, None)
                if found is not None:
                    found.closed.set()
                    found.ready.set()
                    wire.hang_up(found.ours)  # the service sees its client leave

    def _open(self, link: _Link, local_id: int, remote_id: int, service: str) -> _Stream | None:
        handler = self._service(service)
        if handler is None:
            link.send(A_CLSE, 0, remote_id)  # adbd refuses an unknown service by closing at once
            return None
        ours, theirs = socket.socketpair()
        theirs.settimeout(self.io_timeout)
        stream = _Stream(local_id, remote_id, ours)
        link.send(A_OKAY, local_id, remote_id)
        stream.ready.set()
        self._spawn(self._run_service, f"adbd-double-{self.port}-svc", handler, theirs)
        self._spawn(self._pump, f"adbd-double-{self.port}-pump", link, stream)
        return stream

    def _service(self, service: str) -> Callable[[socket.socket], None] | None:
        device = self.device
        if service == "sync:":
            return lambda sock: serve_sync(device, sock, stat_v2="stat_v2" in self.features)
        name, sep, command = service.partition(":")
        options = name.split(",")
        if sep and options[0] == "shell" and command:
            v2 = "v2" in options[1:]
            if v2 and "shell_v2" not in self.features:
                return None
            return lambda sock: run_shell(device, sock, command, v2=v2, stop=self._stop, track=self._track)
        return None

    def _run_service(self, handler: Callable[[socket.socket], None], sock: socket.socket) -> None:
        try:
            handler(sock)
        except wire.PeerGone:
            pass
        finally:
            wire.abort(sock)

    def _pump(self, link: _Link, stream: _Stream) -> None:
        """Service output → WRTE messages, one at a time (each waits for the server's OKAY) → CLSE at EOF."""
        try:
            while True:
                try:
                    data = stream.ours.recv(link.max_payload)
                except OSError:
                    data = b""
                if not data or stream.closed.is_set():
                    break
                stream.ready.wait()
                if stream.closed.is_set():
                    break
                stream.ready.clear()
                link.send(A_WRTE, stream.local_id, stream.remote_id, data)
            if not stream.closed.is_set():
                stream.closed.set()
                link.send(A_CLSE, stream.local_id, stream.remote_id)
        except (TransportGone, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                stream.ours.close()


class _Link:
    """The TCP connection to the server: whole messages in, whole messages out (writes serialised)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.max_payload = MAX_PAYLOAD
        self._send_lock = threading.Lock()

    def read(self) -> tuple[int, int, int, bytes]:
        header = self._exact(_HEADER.size)
        command, arg0, arg1, length, _check, magic = _HEADER.unpack(header)
        if magic != command ^ 0xFFFFFFFF or length > MAX_PAYLOAD:
            raise TransportGone(f"corrupt message header {header.hex()}")
        return command, arg0, arg1, self._exact(length) if length else b""

    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"") -> None:
        header = _HEADER.pack(command, arg0, arg1, len(payload), _checksum(payload), command ^ 0xFFFFFFFF)
        with self._send_lock:
            try:
                self.conn.sendall(header + payload)
            except OSError as exc:
                raise TransportGone(str(exc)) from exc

    def poll(self, timeout: float) -> tuple[int, int, int, bytes] | None:
        """The next message if one starts arriving within `timeout`, else None."""
        readable, _, _ = select.select([self.conn], [], [], timeout)
        return self.read() if readable else None

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.conn.recv(n - len(buf))
            except OSError as exc:
                raise TransportGone(str(exc)) from exc
            if not chunk:
                raise TransportGone("EOF")
            buf += chunk
        return bytes(buf)

