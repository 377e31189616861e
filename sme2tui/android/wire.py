"""The two device services we speak ourselves over an adbutils transport socket: shell,v2 and sync.

Why not adbutils' `shell2`/`sync.push`: its push reads only the 4-byte FAIL and drops adbd's reason
(so "No space left on device" would be lost), its pull writes straight into the destination file, and
its shell timeout only bounds silence between packets. Here a command has a real deadline, partial
output survives a cut connection (for the error message), and every failure keeps adbd's words.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

SYNC_CHUNK = 64 * 1024  # adbd's SYNC_DATA_MAX


class Cut(Exception):
    """The connection ended before the service finished. Carries what arrived until then."""

    def __init__(self, message: str, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


class Deadline(Exception):
    """The deadline passed. Carries what arrived until then."""

    def __init__(self, message: str, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


class SyncFailed(Exception):
    """adbd answered FAIL; the message is adbd's reason (e.g. "... No space left on device")."""


class Refused(Exception):
    """adbd refused to open the service (FAIL after the service request)."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def request(sock: socket.socket, service: str) -> None:
    """Send one service request (4 hex digits + text) and require OKAY."""
    data = service.encode()
    if len(data) > 0xFFFF:
        raise ValueError(f"a service request is limited to 65535 bytes, this one has {len(data)}")
    sock.sendall(f"{len(data):04x}".encode() + data)
    status = _recv_exact(sock, 4)
    if status == b"FAIL":
        size = int(_recv_exact(sock, 4), 16)
        raise Refused(_recv_exact(sock, size).decode(errors="replace"))
    if status != b"OKAY":
        raise EOFError(f"unexpected reply {status!r}")


@dataclass(frozen=True)
class ShellOutput:
    exit_code: int
    stdout: bytes
    stderr: bytes


def read_shell_v2(sock: socket.socket, deadline: float) -> ShellOutput:
    """Collect stdout/stderr packets until the exit packet, or raise Cut/Deadline with the partial output."""
    stdout, stderr = bytearray(), bytearray()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            packet_id, size = struct.unpack("<BI", _recv_exact(sock, 5))
            data = _recv_exact(sock, size) if size else b""
            if packet_id == 1:
                stdout += data
            elif packet_id == 2:
                stderr += data
            elif packet_id == 3:
                return ShellOutput(data[0] if data else 255, bytes(stdout), bytes(stderr))
    except TimeoutError as exc:
        raise Deadline("no exit status before the deadline", bytes(stdout), bytes(stderr)) from exc
    except (EOFError, OSError) as exc:
        raise Cut(f"connection cut during the command: {exc}", bytes(stdout), bytes(stderr)) from exc


def _sync_request(sock: socket.socket, ident: bytes, payload: str) -> None:
    data = payload.encode()
    sock.sendall(ident + struct.pack("<I", len(data)) + data)


def _sync_fail_message(sock: socket.socket) -> str:
    size = struct.unpack("<I", _recv_exact(sock, 4))[0]
    return _recv_exact(sock, size).decode(errors="replace")


def sync_stat(sock: socket.socket, path: str) -> tuple[int, int, int]:
    """(mode, size, mtime); all zero when the path does not exist."""
    _sync_request(sock, b"STAT", path)
    reply = _recv_exact(sock, 16)
    if reply[:4] != b"STAT":
        raise EOFError(f"unexpected sync reply {reply[:4]!r}")
    mode, size, mtime = struct.unpack("<III", reply[4:])
    return mode, size, mtime


def sync_send(
    sock: socket.socket,
    source: BinaryIO,
    remote: str,
    mode: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Stream `source` to `remote` with permission bits `mode`; returns bytes sent. SyncFailed on FAIL."""
    _sync_request(sock, b"SEND", f"{remote},{0o100000 | (mode & 0o7777)}")
    sent = 0
    while chunk := source.read(SYNC_CHUNK):
        sock.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        sent += len(chunk)
        if progress is not None:
            progress(sent)
    sock.sendall(b"DONE" + struct.pack("<I", int(time.time())))
    status = _recv_exact(sock, 4)
    if status == b"FAIL":
        raise SyncFailed(_sync_fail_message(sock))
    if status != b"OKAY":
        raise EOFError(f"unexpected sync reply {status!r}")
    _recv_exact(sock, 4)
    return sent


def sync_recv(sock: socket.socket, remote: str, sink: BinaryIO) -> int:
    """Stream `remote` into `sink`; returns bytes received. SyncFailed when adbd cannot read it."""
    _sync_request(sock, b"RECV", remote)
    received = 0
    while True:
        ident = _recv_exact(sock, 4)
        if ident == b"DONE":
            _recv_exact(sock, 4)
            return received
        if ident == b"FAIL":
            raise SyncFailed(_sync_fail_message(sock))
        if ident != b"DATA":
            raise EOFError(f"unexpected sync reply {ident!r}")
        size = struct.unpack("<I", _recv_exact(sock, 4))[0]
        sink.write(_recv_exact(sock, size))
        received += size


def sync_quit(sock: socket.socket) -> None:
    sock.sendall(b"QUIT" + struct.pack("<I", 0))
