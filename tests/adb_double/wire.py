"""Byte-level helpers for the ADB host protocol as the server side sees it.

Every read is bounded by the socket's timeout (set by the server on accept), so a test can never hang on a
half-spoken conversation; `PeerGone` means the client closed or the read timed out.
"""

from __future__ import annotations

import contextlib
import socket
import struct


class PeerGone(Exception):
    """The client went away (EOF, reset or timeout) before a complete message arrived."""


def read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except (OSError, TimeoutError) as exc:
            raise PeerGone(str(exc)) from exc
        if not chunk:
            raise PeerGone(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_request(sock: socket.socket) -> str:
    """A host request: 4 hex digits of length, then that many bytes."""
    size = int(read_exact(sock, 4).decode("ascii"), 16)
    return read_exact(sock, size).decode("utf-8", errors="replace")


def send_all(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        raise PeerGone(str(exc)) from exc


def block(text: str | bytes) -> bytes:
    """A length-prefixed string block (4 hex digits + payload), as host services answer."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return f"{len(data):04x}".encode("ascii") + data


def okay(sock: socket.socket, payload: str | None = None) -> None:
    send_all(sock, b"OKAY" + (block(payload) if payload is not None else b""))


def fail(sock: socket.socket, message: str) -> None:
    send_all(sock, b"FAIL" + block(message))


def shell_v2_packet(packet_id: int, data: bytes) -> bytes:
    """shell,v2 framing: 1-byte id (1 stdout, 2 stderr, 3 exit) + u32 LE length + data."""
    return struct.pack("<BI", packet_id, len(data)) + data


def hang_up(sock: socket.socket) -> None:
    """End a connection from any thread, as the adb server does when the device or its link goes away:
    the client still receives what was already sent, then EOF. (shutdown, unlike close, also wakes a
    thread blocked on the socket.)"""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def abort(sock: socket.socket) -> None:
    """hang_up, then release the socket (for the thread that owns it)."""
    hang_up(sock)
    with contextlib.suppress(OSError):
        sock.close()
