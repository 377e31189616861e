"""The parent side: start a worker module with a job file, relay its events, surface its failures."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sme2tui.errors import Interrupted, Sme2Error
from sme2tui.events import Event, LogLine, Step, from_json

MAX_EVENT_LINE = 4 * 2**20  # an event line is a few hundred bytes; a flood without newlines is cut, not held
_STDERR_TAIL_BYTES = 16 * 1024


class WorkerFailed(Exception):
    """The worker exited non-zero (or was stopped at its timeout). Carries its exit code and stderr's tail."""

    def __init__(self, returncode: int, stderr_tail: str, *, timed_out: bool = False) -> None:
        super().__init__(f"worker exited with {returncode}" + (" (timeout)" if timed_out else ""))
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out


def _bounded_lines(stream: Any, limit: int) -> Iterator[bytes]:
    """Lines of a byte stream, each cut at `limit` bytes (the rest of an overlong line is read and dropped)."""
    while True:
        line = stream.readline(limit)
        if not line:
            return
        if len(line) >= limit and not line.endswith(b"\n"):
            while True:  # skip to the end of this line
                rest = stream.readline(limit)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def run_worker(
    module: str,
    job: dict[str, Any],
    *,
    step: Step,
    cancel: threading.Event | None = None,
    stderr_log: Path | None = None,
    error_factory: Callable[[str, str], Sme2Error] | None = None,
    timeout_s: float | None = None,
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
    tail = bytearray()
    user_error: dict[str, Any] | None = None

    def pump_stderr() -> None:
        # Chunks, not lines: a worker that floods stderr (without newlines, even) costs a bounded tail here,
        # and a log that cannot be written (full disk) never stops the draining (the worker would block).
        nonlocal log_handle
        stream = proc.stderr
        assert isinstance(stream, io.BufferedReader)
        while chunk := stream.read1(1 << 16):
            if log_handle:
                try:
                    log_handle.write(chunk)
                    log_handle.flush()
                except OSError:
                    with contextlib.suppress(OSError):
                        log_handle.close()
                    log_handle = None
            tail.extend(chunk)
            del tail[:-_STDERR_TAIL_BYTES]

    pump = threading.Thread(target=pump_stderr, daemon=True)
    pump.start()
    watcher_stop = threading.Event()
    timed_out = threading.Event()
    started = time.monotonic()

    def watch_cancel() -> None:
        while (cancel is not None or timeout_s is not None) and not watcher_stop.wait(0.1):
            if cancel is not None and cancel.is_set():
                _terminate(proc)
                return
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                timed_out.set()
                _terminate(proc)
                return

    watcher = threading.Thread(target=watch_cancel, daemon=True)
    watcher.start()
    try:
        assert proc.stdout is not None
        for raw in _bounded_lines(proc.stdout, MAX_EVENT_LINE):
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if line.startswith('{"user_error"'):
                with contextlib.suppress(ValueError, KeyError, TypeError):
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
            with contextlib.suppress(OSError):
                log_handle.close()
        job_path.unlink(missing_ok=True)
    if cancel is not None and cancel.is_set():
        raise Interrupted("cancelled", fix="resume the run with --resume RUN_DIR")
    if user_error is not None:
        if error_factory is not None:
            raise error_factory(str(user_error.get("what", "")), str(user_error.get("fix", "")))
        raise _user_error_class(user_error.get("exit_code"), step)(
            str(user_error.get("what", "worker failed")), where=user_error.get("where"), fix=user_error.get("fix"))
    stderr_tail = "\n".join(tail.decode(errors="replace").rstrip().splitlines()[-15:])
    if timed_out.is_set():
        raise WorkerFailed(proc.returncode, stderr_tail, timed_out=True)
    if proc.returncode != 0:
        raise WorkerFailed(proc.returncode, stderr_tail)


def _user_error_class(code: Any, step: str) -> type[Sme2Error]:
    """The error class for a worker's user error: its own exit code if it said one, else its step's."""
    from sme2tui.errors import AnalysisError, ConfigError, EnvironmentProblem, ExportError, RunError

    by_code: dict[int, type[Sme2Error]] = {2: ConfigError, 3: EnvironmentProblem, 4: ExportError, 5: RunError,
                                           6: AnalysisError}
    if isinstance(code, int) and code in by_code:
        return by_code[code]
    return ExportError if step == "export" else RunError


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # children it left behind in its group
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def report_user_error(what: str, where: str | None = None, fix: str | None = None,
                      exit_code: int | None = None) -> None:
    """Worker side: report an error the user can fix (printed on the event channel, then exit 3).
    `exit_code` picks the documented code (default: the step's, export 4 / run 5)."""
    from sme2tui.workers.protocol import open_channel

    channel = open_channel()
    channel.write(json.dumps({"user_error": {"what": what, "where": where, "fix": fix, "exit_code": exit_code}})
                  + "\n")
    channel.flush()
