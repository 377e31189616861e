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
MAX_SYNC_DATA = 1024 * 1024  # newer adbd may send bigger blocks than SYNC_CHUNK; never more than its max payload
MAX_FAIL_MESSAGE = 64 * 1024


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


class Garbled(EOFError):
    """The other side sent something adbd never sends (a wrong reply id, an absurd length)."""


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
        length = _recv_exact(sock, 4)
        try:
            size = int(length, 16)
        except ValueError:
            raise Garbled(f"unreadable FAIL length {length!r}") from None
        raise Refused(_recv_exact(sock, size).decode(errors="replace"))
    if status != b"OKAY":
        raise Garbled(f"unexpected reply {status!r}")


def read_block(sock: socket.socket) -> bytes:
    """A host service's answer after OKAY: 4 hex digits of length, then that many bytes."""
    length = _recv_exact(sock, 4)
    try:
        size = int(length, 16)
    except ValueError:
        raise Garbled(f"unreadable length {length!r}") from None
    return _recv_exact(sock, size)


@dataclass(frozen=True)
class ShellOutput:
    exit_code: int
    stdout: bytes
    stderr: bytes
    dropped: int = 0  # bytes left out of the middle of stdout/stderr to keep memory bounded


class Overflow(Exception):
    """The command printed more than the caller allows. Carries the first bytes that arrived."""

    def __init__(self, message: str, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


class CappedBuffer:
    """Keeps at most `limit` bytes of a stream: the first half and the latest half, counting what was dropped
    in between (the start says what a program was doing, the end why it stopped)."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.half:  # trim in bulk: amortised O(1) per byte
                cut = len(self.tail) - self.half
                del self.tail[:cut]
                self.dropped += cut

    def value(self) -> bytes:
        tail = self.tail[-self.half :] if len(self.tail) > self.half else self.tail
        dropped = self.dropped + len(self.tail) - len(tail)
        if not dropped:
            return bytes(self.head + tail)
        return bytes(self.head) + f"\n[... {dropped} bytes left out by sme2tui ...]\n".encode() + bytes(tail)

    @property
    def left_out(self) -> int:
        return self.dropped + max(len(self.tail) - self.half, 0)


def read_shell_v2(
    sock: socket.socket, deadline: float, *, limit: int = 16 << 20, truncate: bool = False
) -> ShellOutput:
    """Collect stdout/stderr packets until the exit packet, or raise Cut/Deadline with the partial output.

    Memory stays bounded whatever the device sends: packets are read in pieces, and once stdout+stderr
    pass `limit` bytes either `Overflow` is raised at once (`truncate=False`: a query whose answer cannot
    be that long) or the middle of each stream is dropped (`truncate=True`: a program's log)."""
    stdout, stderr = CappedBuffer(limit), CappedBuffer(limit)
    streams = {1: stdout, 2: stderr}

    def partial() -> tuple[bytes, bytes]:
        return stdout.value(), stderr.value()

    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            packet_id, size = struct.unpack("<BI", _recv_exact(sock, 5))
            if packet_id == 3:
                data = _recv_exact(sock, min(size, 4)) if size else b""
                if size != len(data):
                    raise Garbled(f"malformed exit packet ({size} bytes)")
                dropped = stdout.left_out + stderr.left_out
                return ShellOutput(data[0] if data else 255, stdout.value(), stderr.value(), dropped)
            sink = streams.get(packet_id)
            while size:  # in pieces: the length field alone must not decide how much memory we take
                piece = _recv_exact(sock, min(size, SYNC_CHUNK))
                size -= len(piece)
                if sink is not None:
                    sink.add(piece)
            if not truncate and stdout.total + stderr.total > limit:
                raise Overflow(f"the command printed more than {limit} bytes", *partial())
    except TimeoutError as exc:
        raise Deadline("no exit status before the deadline", *partial()) from exc
    except (EOFError, OSError) as exc:
        raise Cut(f"connection cut during the command: {exc}", *partial()) from exc


def _sync_request(sock: socket.socket, ident: bytes, payload: str) -> None:
    data = payload.encode()
    sock.sendall(ident + struct.pack("<I", len(data)) + data)


def _sync_fail_message(sock: socket.socket) -> str:
    size = struct.unpack("<I", _recv_exact(sock, 4))[0]
    if size > MAX_FAIL_MESSAGE:  # adbd's reasons are one line; a huge length is not adbd talking
        raise Garbled(f"sync FAIL message of {size} bytes")
    return _recv_exact(sock, size).decode(errors="replace")


def sync_stat(sock: socket.socket, path: str) -> tuple[int, int, int]:
    """(mode, size, mtime); all zero when the path does not exist."""
    _sync_request(sock, b"STAT", path)
    reply = _recv_exact(sock, 16)
    if reply[:4] != b"STAT":
        raise Garbled(f"unexpected sync reply {reply[:4]!r}")
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
        raise Garbled(f"unexpected sync reply {status!r}")
    _recv_exact(sock, 4)
    return sent


class TooLarge(Exception):
    """A pulled file is larger than the caller allows (the transfer was stopped there)."""


def sync_recv(
    sock: socket.socket, remote: str, sink: BinaryIO, *, max_bytes: int | None = None, deadline: float | None = None
) -> int:
    """Stream `remote` into `sink`; returns bytes received. SyncFailed when adbd cannot read it, TooLarge
    past `max_bytes`, Garbled for a DATA block larger than adbd ever sends, TimeoutError past `deadline`
    (a monotonic time: the socket timeout only bounds silence, a trickle could last forever)."""
    _sync_request(sock, b"RECV", remote)
    received = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{remote}: {received} bytes arrived before the deadline, not the whole file")
        ident = _recv_exact(sock, 4)
        if ident == b"DONE":
            _recv_exact(sock, 4)
            return received
        if ident == b"FAIL":
            raise SyncFailed(_sync_fail_message(sock))
        if ident != b"DATA":
            raise Garbled(f"unexpected sync reply {ident!r}")
        size = struct.unpack("<I", _recv_exact(sock, 4))[0]
        if size > MAX_SYNC_DATA:
            raise Garbled(f"sync DATA block of {size} bytes (adbd sends at most {SYNC_CHUNK})")
        if max_bytes is not None and received + size > max_bytes:
            raise TooLarge(f"{remote} is larger than {max_bytes} bytes")
        sink.write(_recv_exact(sock, size))
        received += size


def sync_quit(sock: socket.socket) -> None:
    sock.sendall(b"QUIT" + struct.pack("<I", 0))
