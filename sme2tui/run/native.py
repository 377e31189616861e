"""Host cells on a native runner (a process per cell and round).

A group's variants alternate between rounds (A B, then B A, …): the native runner cannot hold two
variants in one process, so interleaving happens at the process level. Each round does its own warmup in
its own process; the analysis drops it and concatenates the measured iterations of every round.
"""

from __future__ import annotations

import json
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
from sme2tui.run.cells import Cell
from sme2tui.run.commands import flavour_of, runner_argv, split_rounds
from sme2tui.run.folder import RunFolder, utc_now


class CellFailed(Exception):
    def __init__(self, cell_id: str, what: str, detail: str) -> None:
        super().__init__(what)
        self.cell_id, self.what, self.detail = cell_id, what, detail


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


# How often a running round reports that it is alive (the runner itself says nothing until it exits).
HEARTBEAT_S = 1.0


def _run_round(argv: list[str], cell_dir: Path, round_index: int, cpus: list[int] | None,
               cancel: threading.Event | None, timeout: float,
               heartbeat: Callable[[float], Event]) -> Generator[Event, None, tuple[int, float, int | None]]:
    """Run one round; yields `heartbeat(elapsed seconds)` about once a second and returns (exit code, seconds,
    the runner process's peak RSS in bytes as the host measured it)."""
    out = (cell_dir / f"stdout-r{round_index}.log").open("wb")
    err = (cell_dir / f"stderr-r{round_index}.log").open("wb")
    started = time.monotonic()
    beat = started
    peak: int | None = None
    try:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_affinity(cpus),
                                start_new_session=True)
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
                proc.kill()
                proc.wait()
                raise Interrupted("cancelled", fix="resume with --resume RUN_DIR")
            now = time.monotonic()
            if now - started > timeout:
                proc.kill()
                proc.wait()
                return -9, timeout, None
            if now - beat >= HEARTBEAT_S:
                beat = now
                yield heartbeat(now - started)
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        return proc.returncode, time.monotonic() - started, peak
    except (KeyboardInterrupt, GeneratorExit):
        proc.kill()
        raise
    finally:
        out.close()
        err.close()


def _heartbeat(cell_id: str, index: int, rounds: int, done: int, total: int) -> Callable[[float], Event]:
    def beat(elapsed: float) -> Event:
        return CellStatus(cell_id, "running", f"round {index + 1}/{rounds}: {elapsed:.0f} s", done, total)

    return beat


def run_native_group(config: RunConfig, folder: RunFolder, cells: list[Cell], binaries: dict[str, Path],
                     ptes: dict[str, Path], inputs: dict[str, list[str] | None], *, cancel: threading.Event | None,
                     timeout: float = 1800.0) -> Generator[Event, None, int]:
    """Run a group's cells in alternating rounds; returns the number of failed cells."""
    cpus = config.target.cpu_affinity if config.target.kind == "host" else None
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
            argv = runner_argv(flavour, str(binary), pte=str(ptes[cell.id]), threads=cell.threads,
                               warmup=config.warmup, iterations=count, etdump=str(etdump) if etdump else None,
                               timing_json=str(timing) if timing else None, inputs=inputs[cell.id])
            # Counts move when a round ends (the runner reports its iterations at exit); until then the
            # cell says which round runs and for how long, so a slow round never looks stuck.
            done_before = done_iterations[cell.id]
            yield CellStatus(cell.id, "running", f"round {index + 1}/{rounds}", done_before, config.iterations)
            code, seconds, peak_rss = yield from _run_round(
                argv, cell_dir, index, cpus, cancel, timeout,
                _heartbeat(cell.id, index, rounds, done_before, config.iterations))
            if code != 0:
                stderr = (cell_dir / f"stderr-r{index}.log").read_text(errors="replace").strip()
                what = (f"runner killed by signal {-code}" if code < 0 else f"runner exited with {code}") + (
                    f" after {seconds:.0f} s (timeout)" if seconds >= timeout else "")
                failed[cell.id] = what
                folder.set_cell(cell.id, status="failed", finished_utc=utc_now(),
                                error={"kind": "runner-failed", "what": what, "stderr_tail": stderr[-2000:],
                                       "command": argv,
                                       "fix": f"see cells/{cell.id}/stderr-r{index}.log; rerun with --resume"})
                yield CellStatus(cell.id, "failed", what)
                continue
            entry: dict[str, Any] = {"round": index, "warmup": config.warmup, "iterations": count,
                                     "command": argv, "seconds": round(seconds, 3)}
            if peak_rss is not None:  # measured from outside: works for any runner, upstream ones too
                entry["peak_rss_bytes"], entry["peak_rss_source"] = peak_rss, PEAK_RSS_SOURCE
            if etdump:
                entry["etdump"] = etdump.name
            if timing and timing.is_file():
                data = json.loads(timing.read_text())
                entry["timing"] = timing.name
                records[cell.id]["warmup_ns"] += data.get("warmup_ns", [])
                records[cell.id]["iterations_ns"] += data.get("measured_ns", [])
            records[cell.id]["rounds"].append(entry)
            done_iterations[cell.id] += count
            yield CellStatus(cell.id, "running", f"round {index + 1}/{rounds} measured", done_iterations[cell.id],
                             config.iterations)
    for cell in cells:
        if cell.id in failed:
            continue
        cell_dir = folder.cell_dir(cell)
        (cell_dir / "timing.json").write_text(json.dumps(records[cell.id], indent=1))
        folder.set_cell(cell.id, status="done", finished_utc=utc_now(),
                        files=sorted(folder.rel(p) for p in cell_dir.iterdir()))
        yield CellStatus(cell.id, "done", "measured", config.iterations, config.iterations)
    return len(failed)
