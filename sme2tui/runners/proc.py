"""Run one external command, stream its output as build LogLine events, and honour cancellation.

Kept separate from the build logic so every build (host runner, source pairs, git) gets the same
cancel/terminate behaviour and the same out-of-disk detection.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from typing import TYPE_CHECKING

from sme2tui.errors import EnvironmentProblem, Interrupted
from sme2tui.events import LogLevel, LogLine

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping, Sequence
    from pathlib import Path

# Substrings compilers, linkers, CMake and git print when a write fails because the disk is full.
_DISK_FULL_MARKERS = ("No space left on device", "ENOSPC", "Disk quota exceeded")


class CommandFailed(Exception):
    """A command exited non-zero; carries the tail of its output for the caller's error message."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: list[str]) -> None:
        super().__init__(f"{argv[0]} exited with {returncode}")
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = tail


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    # A reader thread, so the caller can poll the cancel flag while the command is silent.
    assert hasattr(stream, "readline")
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def _terminate(proc: subprocess.Popen[str]) -> None:
    # The command runs in its own session, so the group holds exactly what we started (cmake, ninja,
    # the compilers); signalling the group stops them all without touching anything else.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stream_command(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    source: str = "cmake",
    tail_lines: int = 40,
) -> Generator[LogLine, None, None]:
    """Yield each output line of `argv` as a LogLine(step="build").

    Raises `Interrupted` when `cancel` is set (after terminating the command), `EnvironmentProblem` when
    the output shows the disk is full, and `CommandFailed` on any other non-zero exit.
    """
    if cancel is not None and cancel.is_set():
        raise Interrupted("build cancelled before it started", where=" ".join(argv[:2]))
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    tail: list[str] = []
    disk_full = False
    try:
        while True:
            if cancel is not None and cancel.is_set():
                _terminate(proc)
                raise Interrupted("build cancelled; the command was stopped", where=" ".join(argv[:2]))
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            text = line.rstrip("\n")
            tail = [*tail[-(tail_lines - 1) :], text]
            disk_full = disk_full or any(marker in text for marker in _DISK_FULL_MARKERS)
            level: LogLevel = "error" if ("error:" in text.lower() or "CMake Error" in text) else "info"
            yield LogLine(step="build", text=text, level=level, source=source)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            _terminate(proc)
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
    if disk_full:
        raise EnvironmentProblem(
            "the disk filled up during the build",
            where=str(cwd) if cwd else argv[0],
            fix="free some space (or point the build folder at a bigger disk) and run the build again; "
            "the build folder is reused, so finished work is kept",
        )
    if returncode != 0:
        raise CommandFailed(argv, returncode, tail)
