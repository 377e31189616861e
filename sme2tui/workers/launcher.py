"""The parent side: start a worker module with a job file, relay its events, surface its failures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sme2tui.errors import Interrupted, Sme2Error
from sme2tui.events import Event, LogLine, Step, from_json


class WorkerFailed(Exception):
    """The worker exited non-zero. Carries its exit code and the tail of its stderr."""

    def __init__(self, returncode: int, stderr_tail: str) -> None:
        super().__init__(f"worker exited with {returncode}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


def run_worker(
    module: str,
    job: dict[str, Any],
    *,
    step: Step,
    cancel: threading.Event | None = None,
    stderr_log: Path | None = None,
    error_factory: Callable[[str, str], Sme2Error] | None = None,
) -> Iterator[Event]:
    """Run `python -m module JOB.json`, yielding the events it prints.

    stderr (library noise, C++ logs) goes to `stderr_log` and is relayed as debug log lines. A worker that
    reports a user error writes it as `{"user_error": {...}}` on its last line; we re-raise it here.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
        job_path = Path(handle.name)
    log_handle = stderr_log.open("ab") if stderr_log else None
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Our worker must import this very sme2tui, also when it is not installed (tests, a source checkout).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, str(job_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # Ctrl-C reaches us, not the worker: we decide how to stop it
    )
    stderr_tail: list[str] = []
    user_error: dict[str, Any] | None = None

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            if log_handle:
                log_handle.write(raw)
                log_handle.flush()
            stderr_tail.append(raw.decode(errors="replace").rstrip())
            del stderr_tail[:-40]

    pump = threading.Thread(target=pump_stderr, daemon=True)
    pump.start()
    watcher_stop = threading.Event()

    def watch_cancel() -> None:
        while cancel is not None and not watcher_stop.wait(0.1):
            if cancel.is_set():
                _terminate(proc)
                return

    watcher = threading.Thread(target=watch_cancel, daemon=True)
    watcher.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if line.startswith('{"user_error"'):
                user_error = json.loads(line)["user_error"]
                continue
            try:
                yield from_json(line)
            except (ValueError, KeyError, TypeError):
                yield LogLine(step, line, "debug", module)
        proc.wait()
    except (KeyboardInterrupt, GeneratorExit):
        _terminate(proc)
        raise
    finally:
        watcher_stop.set()
        if proc.poll() is None:
            _terminate(proc)
        pump.join(timeout=2)
        if log_handle:
            log_handle.close()
        job_path.unlink(missing_ok=True)
    if cancel is not None and cancel.is_set():
        raise Interrupted("cancelled", fix="resume the run with --resume RUN_DIR")
    if user_error is not None:
        if error_factory is not None:
            raise error_factory(user_error.get("what", ""), user_error.get("fix", ""))
        raise Sme2Error(user_error.get("what", "worker failed"), where=user_error.get("where"),
                        fix=user_error.get("fix"))
    if proc.returncode != 0:
        raise WorkerFailed(proc.returncode, "\n".join(stderr_tail[-15:]))


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def report_user_error(what: str, where: str | None = None, fix: str | None = None) -> None:
    """Worker side: report an error the user can fix (printed on the event channel, then exit 3)."""
    from sme2tui.workers.protocol import open_channel

    channel = open_channel()
    channel.write(json.dumps({"user_error": {"what": what, "where": where, "fix": fix}}) + "\n")
    channel.flush()
