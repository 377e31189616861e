"""Runner processes are started in their own session (`start_new_session=True`), so their process group holds
exactly what we started: the runner, or QEMU and the guest program it runs, plus anything either spawned.
Killing the group on a timeout, Ctrl-C, cancel or a closed consumer leaves no orphan behind, whatever the
target (host or emulated)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole group (it was started in its own session): no orphans."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def end_group(proc: subprocess.Popen[bytes]) -> int:
    """Kill the group and reap the leader; its exit code (negative: the signal that ended it)."""
    kill_group(proc)
    return proc.wait()
