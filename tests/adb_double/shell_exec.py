"""`shell:` and `shell,v2:` services: run the command for real and stream its output like adbd does.

v1 (`shell:`) sends stdout and stderr merged as raw bytes and closes; there is no exit status.
v2 (`shell,v2:`) frames output as packets (1 stdout, 2 stderr) and ends with packet 3 carrying one byte of
exit status; a command killed by signal N reports 128+N, as adbd does.
When the client goes away (closes, or gives up after its timeout) the command's process group is killed
(`FakeDevice.kill_on_hangup`, default on); turn it off to model adbd leaving a pty-less command running,
so that a client's own clean-up can be tested.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import struct
import subprocess
from typing import TYPE_CHECKING

from tests.adb_double import wire

if TYPE_CHECKING:
    import socket
    import threading
    from collections.abc import Callable

    from tests.adb_double.device import FakeDevice


class OutputUnmapper:
    """Remove the device root from streamed output, also when it straddles two chunks."""

    def __init__(self, root: bytes) -> None:
        self._root = root
        self._tail = b""

    def feed(self, data: bytes) -> bytes:
        data = self._tail + data
        # Hold back the longest tail that could be the start of the root (or the whole root, which may
        # still be followed by "/" in the next chunk); release the rest.
        hold = 0
        for k in range(min(len(self._root), len(data)), 0, -1):
            if self._root.startswith(data[-k:]):
                hold = k
                break
        # A complete root right before the held part: whether it is followed by "/" is not known yet.
        if data[: len(data) - hold].endswith(self._root):
            hold += len(self._root)
        ready, self._tail = data[: len(data) - hold], data[len(data) - hold :]
        return self._unmap(ready)

    def flush(self) -> bytes:
        data, self._tail = self._tail, b""
        return self._unmap(data)

    def _unmap(self, data: bytes) -> bytes:
        return data.replace(self._root + b"/", b"/").replace(self._root, b"/")


def _kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _hang_up(device: FakeDevice, proc: subprocess.Popen[bytes], stop: threading.Event) -> None:
    """The client left while the command ran. With `kill_on_hangup` the whole group dies at once; without it
    (what adbd does for a shell without a pty) only the pipes close, and the command lives on until it
    ends, writes into a closed pipe, or someone kills it — the server's stop() at the latest."""
    if device.kill_on_hangup:
        _kill_group(proc)
        proc.wait(timeout=5)
        return
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    while proc.poll() is None and not stop.wait(0.05):
        pass


def wait_for_hangup(sock: socket.socket, stop: threading.Event) -> None:
    """Answer nothing until the client closes (or times out and closes) or the server stops."""
    sock.settimeout(0.05)
    while not stop.is_set():
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return
        if not data:
            return


def _flood(sock: socket.socket, *, v2: bool, stop: threading.Event, claim: int) -> None:
    """Output without end (until the client leaves or the server stops), or one packet that claims
    `claim` bytes and then sends a few: what a client must survive without taking unbounded memory."""
    chunk = b"A" * 65536
    if claim:
        wire.send_all(sock, struct.pack("<BI", 1, claim) + chunk[:100])
        wait_for_hangup(sock, stop)
        return
    while not stop.is_set():
        wire.send_all(sock, wire.shell_v2_packet(1, chunk) if v2 else chunk)


def run_shell(
    device: FakeDevice,
    sock: socket.socket,
    command: str,
    *,
    v2: bool,
    stop: threading.Event,
    track: Callable[[subprocess.Popen[bytes] | None, subprocess.Popen[bytes]], None],
) -> None:
    """Run `command` on `device`, streaming to `sock`.

    `track(None, p)` registers a started process with the server, `track(p, p)` forgets it.
    """
    device.record_shell(command)
    fault = device.take_shell_fault(command)
    if fault is not None and fault.action == "hang":
        wait_for_hangup(sock, stop)
        return
    if fault is not None and fault.action == "flood":
        _flood(sock, v2=v2, stop=stop, claim=fault.after_output)
        return
    proc = subprocess.Popen(
        ["/bin/sh", "-c", device.rewrite_command(command)],
        cwd=device.root,
        env=device.shell_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if v2 else subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a hang-up can kill the whole tree
    )
    track(None, proc)
    cut_after: int | None = None
    if fault is not None and fault.action in ("drop", "vanish", "reconnect"):
        cut_after = fault.after_output
    try:
        if fault is not None and fault.action == "signal":
            _kill_group(proc, fault.signal)
        outcome = _stream(device, sock, proc, v2=v2, stop=stop, cut_after=cut_after)
        if outcome == "cut":
            assert fault is not None
            if fault.action == "vanish":
                device.unplug()
            elif fault.action == "reconnect":
                device.blip(fault.state)
            wire.abort(sock)
            _hang_up(device, proc, stop)
        elif outcome == "done":
            code = proc.wait(timeout=30)
            status = 128 - code if code < 0 else code
            if v2:
                wire.send_all(sock, wire.shell_v2_packet(3, bytes([status & 0xFF])))
        else:
            _hang_up(device, proc, stop)
    except wire.PeerGone:
        _hang_up(device, proc, stop)
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        track(proc, proc)


def _stream(
    device: FakeDevice,
    sock: socket.socket,
    proc: subprocess.Popen[bytes],
    *,
    v2: bool,
    stop: threading.Event,
    cut_after: int | None,
) -> str:
    """Forward output until the command's pipes close ("done"), the client leaves or the server stops
    ("left"), or `cut_after` bytes of output have been forwarded ("cut": an injected drop)."""
    assert proc.stdout is not None
    pipes: dict[int, int] = {proc.stdout.fileno(): 1}
    if v2:
        assert proc.stderr is not None
        pipes[proc.stderr.fileno()] = 2
    unmappers = {fd: OutputUnmapper(device.root_bytes) for fd in pipes}
    sel = selectors.DefaultSelector()
    for fd in pipes:
        sel.register(fd, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    open_pipes = set(pipes)
    forwarded = 0

    def emit(fd: int, data: bytes) -> None:
        nonlocal forwarded
        if data:
            wire.send_all(sock, wire.shell_v2_packet(pipes[fd], data) if v2 else data)
            forwarded += len(data)

    try:
        while open_pipes:
            if cut_after is not None and forwarded >= cut_after:
                return "cut"
            if stop.is_set():
                return "left"
            for key, _ in sel.select(timeout=0.05):
                if key.fileobj is sock:
                    try:
                        if not sock.recv(4096):  # stdin packets are ignored; EOF means the client left
                            return "left"
                    except OSError:
                        return "left"
                    continue
                fd = int(key.fd)
                chunk = os.read(fd, 65536)
                if chunk:
                    emit(fd, unmappers[fd].feed(chunk))
                else:
                    emit(fd, unmappers[fd].flush())
                    sel.unregister(fd)
                    open_pipes.discard(fd)
        return "cut" if cut_after is not None else "done"
    finally:
        sel.close()
