"""Host cells on a native runner (a process per cell and round).

A group's variants alternate between rounds (A B, then B A, …): the native runner cannot hold two
variants in one process, so interleaving happens at the process level. Each round does its own warmup in
its own process; the analysis drops it and concatenates the measured iterations of every round.

A runner is a program we do not trust blindly: it runs in its own process group (a timeout, Ctrl-C or
cancel kills the group, children included), its stderr is kept on disk and only its tail is read, and its
timing output is checked (shape, count, finite non-negative times) before a single number is used.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from sme2tui.config import RunConfig
from sme2tui.errors import Interrupted
from sme2tui.events import CellStatus, Event, LogLine
from sme2tui.fileio import read_tail, write_text_atomic
from sme2tui.run.cells import Cell
from sme2tui.run.commands import ProgressReader, flavour_of, round_overclaim, runner_argv, split_rounds
from sme2tui.run.folder import RunFolder, resume_hint, utc_now
from sme2tui.run.process_group import kill_group
from sme2tui.storage import DISK_FULL_MARKERS, DiskFull, looks_full

MAX_TIMING_BYTES = 16 * 2**20  # 100k iterations of nanosecond integers are ~2 MB
# A runner's times beyond this are not durations (2^63 ns is 292 years), whatever the JSON says.
MAX_DURATION_NS = 1 << 63
STDERR_TAIL_CHARS = 2000


class CellFailed(Exception):
    def __init__(self, cell_id: str, what: str, detail: str) -> None:
        super().__init__(what)
        self.cell_id, self.what, self.detail = cell_id, what, detail


class RunnerLied(Exception):
    """The runner exited 0 but its output cannot be what we asked for."""


def _affinity(cpus: list[int] | None) -> Any:
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def maxrss_bytes(ru_maxrss: int) -> int:
    """getrusage's ru_maxrss in bytes: the kernel counts kilobytes on Linux (and Android), bytes on macOS."""
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def vm_hwm_bytes(pid: int, name: str | None = None) -> int | None:
    """Linux: the process's own peak RSS so far (VmHWM); None once it has exited, off Linux, or (with `name`)
    while it is not yet that program (between fork and exec it is still a copy of this process).

    Not wait4's ru_maxrss: Linux keeps that maximum across execve, so a runner started from this (large) Python
    process would report at least this process's size."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if name is not None and fields.get("Name", "").strip() != name[:15]:  # the kernel keeps 15 characters
        return None
    hwm = fields.get("VmHWM")
    return int(hwm.split()[0]) * 1024 if hwm else None


def _reap(proc: subprocess.Popen[bytes]) -> int | None:
    """Like `proc.poll()`, but reaps with wait4 and returns the child's ru_maxrss in bytes once it has exited."""
    if not hasattr(os, "wait4"):
        proc.poll()
        return None
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        proc.poll()
        return None
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return maxrss_bytes(usage.ru_maxrss)


PEAK_RSS_SOURCE = ("host: the runner process's VmHWM, sampled while it runs (a lower bound)" if sys.platform.startswith(
    "linux") else "host: wait4() ru_maxrss of the runner process")


# How often a running round reports that it is alive (an upstream runner says nothing until it exits).
HEARTBEAT_S = 1.0

_PROGRESS_SUPPORT: dict[tuple[str, int, int], bool] = {}


def supports_progress(binary: Path) -> bool:
    """Whether this sme2_runner knows --progress (its --help names it). One built before the flag existed
    refuses unknown flags, so it runs without and its counts move once per round. Asked once per binary file
    (path, size and mtime: a rebuild in place is asked again)."""
    try:
        info = binary.stat()
    except OSError:
        return False
    key = (str(binary), info.st_size, info.st_mtime_ns)
    if key not in _PROGRESS_SUPPORT:
        try:
            shown = subprocess.run([str(binary), "--help"], capture_output=True, timeout=10,
                                   stdin=subprocess.DEVNULL, check=False)
            _PROGRESS_SUPPORT[key] = shown.returncode == 0 and b"--progress" in shown.stdout[:4096]
        except (OSError, subprocess.SubprocessError):
            _PROGRESS_SUPPORT[key] = False
    return _PROGRESS_SUPPORT[key]


def _run_round(argv: list[str], cell_dir: Path, round_index: int, cpus: list[int] | None,
               cancel: threading.Event | None, timeout: float, heartbeat: Callable[[float, int], Event],
               *, progress: bool = False) -> Generator[Event, None, tuple[int, float, bool, int | None]]:
    """Run one round; yields `heartbeat(elapsed seconds, measured executions so far)` about once a second and,
    with `progress` (the runner was given --progress), whenever its stdout reports more measured executions.
    Returns (exit code, seconds, timed out, the runner process's peak RSS in bytes as the host measured it).
    stdout/stderr go to files in the cell folder, never to memory; progress reads that file as it grows."""
    started = time.monotonic()
    beat = started
    peak: int | None = None
    measured = 0
    stdout_path = cell_dir / f"stdout-r{round_index}.log"
    with stdout_path.open("wb") as out, (cell_dir / f"stderr-r{round_index}.log").open("wb") as err, \
            stdout_path.open("rb") as reader:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    preexec_fn=_affinity(cpus), start_new_session=True)
        except (OSError, subprocess.SubprocessError) as exc:  # not executable, wrong format, pinning refused
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            err.write(f"sme2tui: cannot start {argv[0]}: {reason}\n".encode())
            return 127, 0.0, False, None
        tail = ProgressReader(reader) if progress else None
        try:
            linux = sys.platform.startswith("linux")
            name = Path(argv[0]).name
            delay = 0.001  # sample often at first: a small model's whole run can take a few milliseconds
            while proc.returncode is None:
                if linux:
                    peak = vm_hwm_bytes(proc.pid, name) or peak
                reaped = _reap(proc)
                if proc.returncode is not None:
                    peak = peak if linux else reaped
                    break
                if cancel is not None and cancel.is_set():
                    raise Interrupted("cancelled", fix="resume with --resume RUN_DIR")
                now = time.monotonic()
                if now - started > timeout:
                    kill_group(proc)
                    return proc.wait(), time.monotonic() - started, True, None
                if tail is not None and tail.poll():
                    measured, beat = tail.measured, now
                    yield heartbeat(now - started, measured)
                if now - beat >= HEARTBEAT_S:
                    beat = now
                    yield heartbeat(now - started, measured)
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
            return proc.returncode, time.monotonic() - started, False, peak
        finally:
            # Ctrl-C, cancel, a closed consumer (GeneratorExit at a heartbeat), a timeout, or a runner that exited
            # but left children behind: the whole group goes.
            kill_group(proc)
            proc.wait()


def _number_or_lie(name: str) -> Any:
    raise RunnerLied(f"it contains {name}, which is not a time")


def read_runner_timing(path: Path, *, warmup: int, iterations: int,
                       round_seconds: float | None = None) -> tuple[list[int | float], list[int | float]]:
    """(warmup ns, measured ns) from the runner's timing JSON, or RunnerLied saying what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise RunnerLied("it wrote no timing file") from None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunnerLied("its timing file is not a regular file")
        raw = os.read(fd, MAX_TIMING_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_TIMING_BYTES:
        raise RunnerLied(f"its timing file is larger than {MAX_TIMING_BYTES // 2**20} MB")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_number_or_lie)
    except RunnerLied:
        raise
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON (a truncated write, garbage)
        raise RunnerLied(f"its timing file is not valid JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(data, dict):
        raise RunnerLied(f"its timing file holds {type(data).__name__ if data is not None else 'null'}, "
                         "not an object")
    found: list[list[int | float]] = []
    for key, expected in (("warmup_ns", warmup), ("measured_ns", iterations)):
        values = data.get(key)
        if not isinstance(values, list):
            raise RunnerLied(f"`{key}` is missing or not a list")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RunnerLied(f"`{key}` holds {json.dumps(value)[:40]}, not a number")
            if isinstance(value, int) and not 0 <= value < MAX_DURATION_NS:  # math.isfinite overflows on 10**400
                raise RunnerLied(f"`{key}` holds {str(value)[:40]}{'…' if len(str(value)) > 40 else ''}, not a "
                                 "duration (times are finite and ≥ 0)")
            if not math.isfinite(value) or value < 0:
                raise RunnerLied(f"`{key}` holds {value}, not a duration (times are finite and ≥ 0)")
        if len(values) != expected:
            more = "more" if len(values) > expected else "fewer"
            raise RunnerLied(f"`{key}` has {len(values)} entries, {more} than the {expected} asked for")
        found.append(values)
    overclaim = round_overclaim(found[0], found[1], round_seconds) if round_seconds is not None else None
    if overclaim:
        raise RunnerLied(overclaim)
    return found[0], found[1]


def _heartbeat(cell_id: str, index: int, rounds: int, done: int, count: int,
               total: int) -> Callable[[float, int], Event]:
    """The live status of round `index` of `count` iterations after `done` measured in earlier rounds."""
    def beat(elapsed: float, measured: int) -> Event:
        return CellStatus(cell_id, "running", f"round {index + 1}/{rounds}: {elapsed:.0f} s",
                          done + min(measured, count), total)

    return beat


def run_native_group(config: RunConfig, folder: RunFolder, cells: list[Cell], binaries: dict[str, Path],
                     ptes: dict[str, Path], inputs: dict[str, list[str] | None], *, cancel: threading.Event | None,
                     timeout: float | None = None) -> Generator[Event, None, int]:
    """Run a group's cells in alternating rounds; returns the number of failed cells."""
    cpus = config.target.cpu_affinity if config.target.kind == "host" else None
    if timeout is None:
        timeout = config.target.timeout_s
    plan = split_rounds(config.iterations, config.rounds)
    records: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for cell in cells:
        folder.cell_dir(cell).mkdir(parents=True, exist_ok=True)
        binary = binaries[cell.id]
        records[cell.id] = {"runner": f"native:{binary.name}", "binary": str(binary), "threads": cell.threads,
                            "warmup": config.warmup, "iterations": config.iterations, "rounds": [],
                            "interleaved_with": [c.id for c in cells if c is not cell],
                            "clock": "runner's steady clock (timing json) / ETDump Method::execute",
                            "warmup_ns": [], "iterations_ns": []}
        folder.set_cell(cell.id, status="running", runner=f"native:{binary.name}", started_utc=utc_now(),
                        warmup=config.warmup, iterations=config.iterations, profile=config.profile,
                        rounds=len(plan))
    yield LogLine("run", f"{cells[0].model}/{cells[0].dtype}/t{cells[0].threads}: "
                  f"{', '.join(c.variant for c in cells)} on native runners, {len(plan)} round(s) alternating, "
                  f"{config.warmup} warmup per round", "info", "run")
    done_iterations = dict.fromkeys(records, 0)
    rounds = len(plan)
    for index, count in enumerate(plan):
        order = cells if index % 2 == 0 else list(reversed(cells))
        for cell in order:
            if cell.id in failed:
                continue
            cell_dir = folder.cell_dir(cell)
            binary = binaries[cell.id]
            flavour = flavour_of(binary.name)
            etdump = cell_dir / f"etdump-r{index}.etdp" if config.profile else None
            timing = cell_dir / f"timing-r{index}.json" if flavour == "sme2_runner" else None
            progress = flavour == "sme2_runner" and supports_progress(binary)
            argv = runner_argv(flavour, str(binary), pte=str(ptes[cell.id]), threads=cell.threads,
                               warmup=config.warmup, iterations=count, etdump=str(etdump) if etdump else None,
                               timing_json=str(timing) if timing else None, inputs=inputs[cell.id],
                               progress=progress)
            # An sme2_runner with --progress reports measured executions as they finish, so counts move within
            # a round; other runners report at exit, and the cell says which round runs and for how long, so
            # a slow round never looks stuck.
            done_before = done_iterations[cell.id]
            yield CellStatus(cell.id, "running", f"round {index + 1}/{rounds}", done_before, config.iterations)
            code, seconds, timed_out, peak_rss = yield from _run_round(
                argv, cell_dir, index, cpus, cancel, timeout,
                _heartbeat(cell.id, index, rounds, done_before, count, config.iterations), progress=progress)
            stderr_log = cell_dir / f"stderr-r{index}.log"
            problem: tuple[str, str, str] | None = None  # (kind, what, fix)
            entry: dict[str, Any] = {"round": index, "warmup": config.warmup, "iterations": count,
                                     "command": argv, "seconds": round(seconds, 3)}
            if peak_rss is not None:  # measured from outside: works for any runner, upstream ones too
                entry["peak_rss_bytes"], entry["peak_rss_source"] = peak_rss, PEAK_RSS_SOURCE
            if timed_out:
                problem = ("timeout", f"runner stopped after {seconds:.0f} s: longer than target.timeout_s "
                           f"({timeout:g} s)", f"raise target.timeout_s in the config, or lower iterations; see "
                           f"cells/{cell.id}/stderr-r{index}.log; {resume_hint(folder.root)}")
            elif code != 0:
                what = f"runner killed by signal {-code}" if code < 0 else f"runner exited with {code}"
                problem = ("runner-failed", what, f"see cells/{cell.id}/stderr-r{index}.log; rerun with --resume")
            else:
                try:
                    if etdump is not None and not etdump.is_file():
                        raise RunnerLied(f"it wrote no ETDump at {etdump.name}")
                    if timing is not None:
                        warmup_ns, measured_ns = read_runner_timing(timing, warmup=config.warmup, iterations=count,
                                                                    round_seconds=seconds)
                        entry["timing"] = timing.name
                        records[cell.id]["warmup_ns"] += warmup_ns
                        records[cell.id]["iterations_ns"] += measured_ns
                except (RunnerLied, OSError) as exc:
                    problem = ("runner-output-invalid", f"the runner exited 0, but its output is not usable: {exc}",
                               f"rebuild the runner (sme2tui build host) or check it is an sme2tui runner; see "
                               f"cells/{cell.id}/stdout-r{index}.log")
            if problem is not None:
                tail = read_tail(stderr_log, STDERR_TAIL_CHARS).strip()
                disk_full = any(m in tail for m in DISK_FULL_MARKERS) or looks_full(cell_dir)
                kind, what, fix = problem
                if disk_full:
                    kind, what = "disk-full", f"{what}; the disk is full"
                    fix = f"free some space on {folder.root}'s disk, {resume_hint(folder.root)}"
                failed[cell.id] = what
                if disk_full:
                    folder.release_reserve()  # room to record this, and for the manifest's last words
                folder.set_cell(cell.id, status="failed", finished_utc=utc_now(),
                                error={"kind": kind, "what": what, "stderr_tail": tail, "command": argv, "fix": fix})
                yield CellStatus(cell.id, "failed", what)
                if disk_full:  # every cell after this one would fail the same way: stop, keep what is done
                    raise DiskFull(f"the disk filled up while cell {cell.id} ran ({what})", where=str(cell_dir),
                                   fix=fix)
                continue
            if etdump:
                entry["etdump"] = etdump.name
            records[cell.id]["rounds"].append(entry)
            done_iterations[cell.id] += count
            # Short: the detail column sits before the counts, and at 80 columns every character of it counts.
            yield CellStatus(cell.id, "running", f"round {index + 1}/{rounds} done", done_iterations[cell.id],
                             config.iterations)
    for cell in cells:
        if cell.id in failed:
            continue
        cell_dir = folder.cell_dir(cell)
        write_text_atomic(cell_dir / "timing.json", json.dumps(records[cell.id], indent=1))
        folder.set_cell(cell.id, status="done", finished_utc=utc_now(),
                        files=sorted(folder.rel(p) for p in cell_dir.iterdir()))
        yield CellStatus(cell.id, "done", "measured", config.iterations, config.iterations)
    return len(failed)
