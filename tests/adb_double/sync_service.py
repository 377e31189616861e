"""The `sync:` service: STAT, LIST (DENT/DONE), SEND (DATA*/DONE → OKAY|FAIL), RECV (DATA*/DONE|FAIL), QUIT,
and with stat v2 (a device that advertises `stat_v2`/`ls_v2`): STA2, LST2 (72-byte stat records with an
errno) and LIS2 (DNT2 records, then DONE).

Each request is 4-byte id + u32 LE length + payload. Inside sync, FAIL carries a u32 LE length (not the
4-hex-digit length of host replies). Behaviour follows adbd's file_sync_service:
- SEND creates missing parent directories, writes the file with the requested permission bits, and on a
  write error (here: the injected free-space limit) deletes what it wrote and answers FAIL after DONE.
- A connection cut mid-SEND leaves the partial file in place, as a real cut does.
"""

from __future__ import annotations

import os
import stat
import struct
from typing import TYPE_CHECKING

from tests.adb_double import wire
from tests.adb_double.device import FakeDevice, ReceivedFile

if TYPE_CHECKING:
    from socket import socket

_CHUNK = 64 * 1024


def _sync_fail(sock: socket, message: str) -> None:
    data = message.encode()
    wire.send_all(sock, b"FAIL" + struct.pack("<I", len(data)) + data)


def serve_sync(device: FakeDevice, sock: socket, *, stat_v2: bool = False) -> None:
    while True:
        try:
            header = wire.read_exact(sock, 8)
        except wire.PeerGone:
            return
        ident, size = header[:4], struct.unpack("<I", header[4:])[0]
        if ident == b"QUIT":
            return
        path = wire.read_exact(sock, size).decode("utf-8", errors="replace")
        device.record_sync(ident.decode("ascii", errors="replace"), path)
        if ident == b"STAT":
            _stat(device, sock, path)
        elif ident == b"LIST":
            _list(device, sock, path)
        elif stat_v2 and ident in (b"STA2", b"LST2"):
            _stat2(device, sock, path, follow=ident == b"STA2")
        elif stat_v2 and ident == b"LIS2":
            _list2(device, sock, path)
        elif ident == b"SEND":
            if not _send(device, sock, path):
                return
        elif ident == b"RECV":
            if not _recv(device, sock, path):
                return
        else:
            _sync_fail(sock, f"unsupported sync command {ident!r}")
            return


def _stat(device: FakeDevice, sock: socket, path: str) -> None:
    try:
        st = os.lstat(device.host_path(path))
        values = (st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
    except OSError:
        values = (0, 0, 0)  # adbd answers a missing path with an all-zero STAT
    wire.send_all(sock, b"STAT" + struct.pack("<III", *values))


# adbd's sync_stat_v2 / sync_dent_v2 after the 4-byte id: error, dev, ino, mode, nlink, uid, gid, size,
# atime, mtime, ctime (dent_v2 adds the name length).
_STAT2 = struct.Struct("<IQQIIIIQqqq")


def _stat2_fields(st: os.stat_result | None, error: int = 0) -> bytes:
    if st is None:
        return _STAT2.pack(error, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT2.pack(0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
                       int(st.st_atime), int(st.st_mtime), int(st.st_ctime))


def _stat2(device: FakeDevice, sock: socket, path: str, *, follow: bool) -> None:
    ident = b"STA2" if follow else b"LST2"
    try:
        target = device.host_path(path)
        st = target.stat() if follow else target.lstat()
    except OSError as exc:
        wire.send_all(sock, ident + _stat2_fields(None, exc.errno or 2))
        return
    wire.send_all(sock, ident + _stat2_fields(st))


def _list2(device: FakeDevice, sock: socket, path: str) -> None:
    base = device.host_path(path)
    try:
        entries = [(".", os.lstat(base)), ("..", os.lstat(base.parent))]
        entries.extend((e.name, e.stat(follow_symlinks=False)) for e in os.scandir(base))
    except OSError:
        entries = []
    for name, st in entries:
        raw = name.encode()
        wire.send_all(sock, b"DNT2" + _stat2_fields(st) + struct.pack("<I", len(raw)) + raw)
    wire.send_all(sock, b"DONE" + bytes(_STAT2.size + 4))


def _list(device: FakeDevice, sock: socket, path: str) -> None:
    base = device.host_path(path)
    entries: list[tuple[str, os.stat_result]] = []
    try:
        entries.append((".", os.lstat(base)))
        entries.append(("..", os.lstat(base.parent)))
        entries.extend((e.name, e.stat(follow_symlinks=False)) for e in os.scandir(base))
    except OSError:
        entries = []
    for name, st in entries:
        raw = name.encode()
        wire.send_all(
            sock,
            b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw)) + raw,
        )
    wire.send_all(sock, b"DONE" + bytes(16))


def _send(device: FakeDevice, sock: socket, spec: str) -> bool:
    """Receive one file. False when the connection was cut (by the client or by an injected fault)."""
    path, _, mode_text = spec.rpartition(",")
    mode = int(mode_text) if mode_text.isdigit() else 0o644
    target = device.host_path(path)
    fault = device.take_push_fault(path)
    error: str | None = None
    received = 0
    handle = None
    if target.is_dir():
        error = f"couldn't create file: {path}: Is a directory"
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = target.open("wb")
        except OSError as exc:
            error = f"couldn't create file: {path}: {exc.strerror}"
    try:
        while True:
            ident = wire.read_exact(sock, 4)
            size = struct.unpack("<I", wire.read_exact(sock, 4))[0]
            if ident == b"DONE":
                mtime = size
                break
            if ident != b"DATA":
                _sync_fail(sock, f"unexpected {ident!r} during SEND")
                return False
            data = wire.read_exact(sock, size)
            device.count_send_bytes(len(data))
            received += len(data)
            if fault is not None and received >= fault.after_bytes:
                if handle is not None:
                    handle.write(data[: len(data) - (received - fault.after_bytes)])
                    handle.close()
                if fault.vanish:
                    device.unplug()
                wire.abort(sock)
                return False
            if error is None and not device.reserve_space(len(data)):
                error = f"write failed: {path}: No space left on device"
            if error is None and handle is not None:
                handle.write(data)
    except wire.PeerGone:
        if handle is not None:
            handle.close()
        return False
    if handle is not None:
        handle.close()
    if error is not None:
        if handle is not None:
            target.unlink(missing_ok=True)
        _sync_fail(sock, error)
        return True
    target.chmod(stat.S_IMODE(mode))
    os.utime(target, (mtime, mtime))
    device.record_received(ReceivedFile(path, received, stat.S_IMODE(mode)))
    wire.send_all(sock, b"OKAY" + bytes(4))
    return True


def _recv(device: FakeDevice, sock: socket, path: str) -> bool:
    source = device.host_path(path)
    fault = device.take_pull_fault(path)
    try:
        handle = source.open("rb")
    except IsADirectoryError:
        _sync_fail(sock, f"{path}: Is a directory")
        return True
    except OSError as exc:
        _sync_fail(sock, f"{path}: {exc.strerror}")
        return True
    sent = 0
    with handle:
        while chunk := handle.read(_CHUNK):
            if fault is not None and sent + len(chunk) >= fault.after_bytes:
                part = chunk[: max(fault.after_bytes - sent, 0)]
                if part:
                    wire.send_all(sock, b"DATA" + struct.pack("<I", len(chunk)) + part)
                if fault.vanish:
                    device.unplug()
                wire.abort(sock)
                return False
            wire.send_all(sock, b"DATA" + struct.pack("<I", len(chunk)) + chunk)
            sent += len(chunk)
    wire.send_all(sock, b"DONE" + bytes(4))
    return True
