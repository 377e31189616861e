"""The run step: execute the pending cells of a run folder, group by group, and record each outcome.

A group (same model, dtype, threads) holds the variants being compared; its cells are measured
interleaved. A failing group marks its own cells failed with a classified error and the step goes on:
completed work is never thrown away.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from sme2tui.config import RunConfig, runner_is_path
from sme2tui.errors import ConfigError
from sme2tui.events import CellStatus, Event, LogLine, StepFinished, StepStarted
from sme2tui.export.stage import ExportedProgram, ExportKey
from sme2tui.fileio import link_or_copy
from sme2tui.run.cells import Cell, groups, plan_cells
from sme2tui.run.folder import RunFolder, resume_hint, utc_now
from sme2tui.run.native import run_native_group
from sme2tui.storage import DISK_FULL_MARKERS, DiskFull, looks_full
from sme2tui.workers.launcher import WorkerFailed, run_worker


def program_key(config: RunConfig, cell: Cell) -> ExportKey:
    """The program a cell runs: a ready .pte as it is, else the export for the variant's delegate."""
    model = config.model(cell.model)
    if model.pte:
        facts = model.program_facts()
        return ExportKey(cell.model, facts.dtype, facts.delegation)
    return ExportKey(cell.model, cell.dtype, config.variant(cell.variant).export_delegate)


def stage_programs(folder: RunFolder, programs: dict[ExportKey, ExportedProgram]) -> dict[ExportKey, Path]:
    """Link every program into the run folder (`programs/`) so the run is self-contained, and record it."""
    placed: dict[ExportKey, Path] = {}
    exports: dict[str, Any] = {}
    recorded = folder.manifest.get("exports") or {}
    for key, program in programs.items():
        stem = f"{key.model}__{key.dtype}__{key.delegate}"
        before = recorded.get(stem) if isinstance(recorded, dict) else None
        if isinstance(before, dict) and _changed(before, program):
            # A resume whose program changed (a ready .pte replaced, a factory edited): the cells measured so
            # far ran the old one, and pairing them with cells of the new one would be a speedup of nothing.
            raise ConfigError(
                f"the program {stem} changed since this run started (sha256 {str(before['pte_sha256'])[:12]}… → "
                f"{program.pte_sha256[:12]}…): its measured cells ran the old one, so the run cannot be resumed",
                where=str(folder.root / "manifest.json"),
                fix=f"measure the new program in a new run: sme2tui --auto --config "
                    f"{folder.manifest.get('config_source') or 'YOUR_CONFIG'} (or put the old program back and "
                    "resume)")
        pte = folder.root / "programs" / f"{stem}.pte"
        if program.record is None:
            # A ready .pte is the user's file: a hard link would let the next edit of it rewrite this run's
            # program in place. Exports live in sme2tui's cache, which never rewrites a file: those are linked.
            pte.parent.mkdir(parents=True, exist_ok=True)
            pte.unlink(missing_ok=True)
            shutil.copyfile(program.pte, pte)
        else:
            link_or_copy(program.pte, pte)
        entry: dict[str, Any] = {"model": key.model, "dtype": key.dtype, "delegate": key.delegate,
                                 "pte": folder.rel(pte), "pte_sha256": program.pte_sha256}
        if program.etrecord and program.etrecord.is_file():
            etrecord = folder.root / "programs" / f"{stem}.etrecord"
            link_or_copy(program.etrecord, etrecord)
            entry["etrecord"] = folder.rel(etrecord)
            entry["etrecord_sha256"] = program.record.etrecord_sha256 if program.record else None
        if program.record is not None:
            record = program.record
            entry.update(
                source=record.source, export_key=record.key, export_seconds=record.export_seconds,
                numerics=record.numerics.model_dump(),
                delegation=record.delegation.model_dump() if record.delegation else None,
                exported_with={"executorch": record.executorch_version, "executorch_git": record.executorch_git,
                               "torch": record.torch_version, "torch_git": record.torch_git},
            )
            if program.folder is not None:
                entry["inputs"] = [
                    {"file": str(program.folder / t.file), "dtype": t.dtype, "shape": t.shape} for t in record.inputs
                ]
                entry["reference_outputs"] = [
                    {"file": str(program.folder / t.file), "dtype": t.dtype, "shape": t.shape}
                    for t in record.reference_outputs
                ]
        else:
            entry["source"] = f"pte:{program.pte}"
            entry["read_from_program"] = program.read_from_program
        exports[stem] = entry
        placed[key] = pte
    folder.update(exports=exports)
    return placed


def _changed(before: dict[str, Any], program: ExportedProgram) -> bool:
    """Whether `program` is not the one a run recorded: an export by what it is made from (its cache key, so a
    re-export of the same model, bit for bit or not, is the same program), a ready .pte by its bytes."""
    key = program.record.key if program.record is not None else None
    if key is not None and before.get("export_key") is not None:
        return bool(before["export_key"] != key)
    return before.get("pte_sha256") not in (None, program.pte_sha256)


def resolve_runner(config: RunConfig, cell: Cell) -> Path | None:
    """The native binary that runs a host cell, or None for the ExecuTorch Python runtime.

    `auto` takes the native host runner once `sme2tui build host` has built it (the Python runtime stays
    the fallback); `native` insists on it; other names are built pair runners (macOS `sme2-on`, ...).
    """
    import platform

    from sme2tui.runners.host import find_host_runner
    from sme2tui.runners.pairs import find_pair_runner

    runner = config.variant(cell.variant).runner
    runners_dir = config.runners_path
    where = f"variants[{[v.name for v in config.variants].index(cell.variant)}].runner"
    if runner_is_path(runner):
        return adopted_runner(runner, where)
    if runner == "python":
        return None
    if runner in ("auto", "native"):
        binary = find_host_runner(runners_dir)
        if binary is None and runner == "native":
            raise ConfigError(f"variant `{cell.variant}` needs the native host runner, which is not built in "
                              f"{runners_dir}", where=where, fix="build it: `sme2tui build host` (about 10 s)")
        return binary
    if platform.system() == "Darwin":
        binary = find_pair_runner(runners_dir, "macos", runner)
        if binary is not None:
            return binary
    raise ConfigError(
        f"variant `{cell.variant}` asks for runner `{runner}`, which is not built for this host",
        where=where,
        fix="on an Apple M4/M5 Mac: `sme2tui build macos`; on other hosts use `auto`, `native` or `python` "
        "(SME2 pairs run on SME2 devices)",
    )


def adopted_runner(runner: str, where: str) -> Path:
    """A runner binary built outside sme2tui (e.g. by Arm's kit), named by path: it must exist and be executable."""
    import os

    path = Path(runner).expanduser()
    if not path.is_file():
        raise ConfigError(f"runner binary not found: {runner}", where=where,
                          fix="build it (the kit: model_profiling/scripts/build_runners.sh), point `runner` at an "
                          "existing binary, or use sme2tui's own runners (`auto`, or a pair from `sme2tui build`)")
    if not os.access(path, os.X_OK):
        raise ConfigError(f"runner binary is not executable: {runner}", where=where, fix=f"chmod +x {runner}")
    return path


def check_factories(config: RunConfig, config_dir: Path | None) -> None:
    """A factory whose module cannot be found fails now, not after the export worker has loaded torch."""
    for index, model in enumerate(config.models):
        if model.factory:
            check_factory(model.factory, config_dir, where=f"models[{index}].factory")


def check_factory(factory: str, config_dir: Path | None, *, where: str) -> None:
    """ConfigError unless the factory's module can be found (from the config's folder, the current folder or
    the installed packages); finding does not import the module itself (its parent packages, yes)."""
    import importlib.util
    import sys

    extra = [str(p) for p in (config_dir, Path.cwd()) if p is not None]
    sys.path[:0] = extra
    try:
        module = factory.partition(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        except Exception as exc:  # finding `pkg.mod` imports `pkg`: its __init__ is user code and may fail
            raise ConfigError(
                f"importing the package of factory `{factory}` failed: {type(exc).__name__}: {str(exc)[:200]}",
                where=where,
                fix="fix the package's __init__.py (try `python -c \"import " + module.partition(".")[0] + "\"`)",
            ) from None
        if not found:
            raise ConfigError(
                f"cannot find module `{module}` for factory `{factory}`",
                where=where,
                fix="put the module next to the config file or in the current folder, or pip install it",
            )
    finally:
        del sys.path[:len(extra)]


def check_cpu_affinity(cpus: list[int]) -> None:
    """Pinning to a CPU this process may not use fails in every runner's exec (EINVAL): say so before any work."""
    import os

    if not hasattr(os, "sched_getaffinity"):
        raise ConfigError("target.cpu_affinity needs Linux (this system cannot pin processes to CPUs)",
                          where="target.cpu_affinity", fix="remove `cpu_affinity` from the config")
    allowed = sorted(os.sched_getaffinity(0))
    missing = [c for c in cpus if c not in allowed]
    if missing:
        raise ConfigError(
            f"target.cpu_affinity names CPU(s) this process may not use: {', '.join(map(str, missing[:8]))}"
            + (" …" if len(missing) > 8 else ""),
            where="target.cpu_affinity",
            fix=f"use CPUs from {_ranges(allowed)} (what this machine lets this process use; see `nproc`/`taskset -p "
            "$$`), or remove `cpu_affinity`")


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out: list[str] = []
    for value in values:
        if out and value == int(out[-1].split("-")[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{value}"
        else:
            out.append(str(value))
    return ", ".join(out)


def preflight(config: RunConfig, config_dir: Path | None = None) -> None:
    """Fail before any work (and before a run folder exists) when a variant names a runner that is not
    built or a factory's module cannot be found. `auto`/`native` host runners are built by the pipeline
    itself, so they pass here."""
    check_factories(config, config_dir)
    if config.target.kind == "host" and config.target.cpu_affinity:
        check_cpu_affinity(config.target.cpu_affinity)
    if config.target.kind == "android":
        from sme2tui.run.android import android_preflight

        android_preflight(config)
        return
    if config.target.kind == "emulated":
        from sme2tui.run.emulated import emulated_preflight

        emulated_preflight(config)
        return
    for variant in config.variants:
        if variant.runner not in ("auto", "native", "python"):
            resolve_runner(config, Cell("preflight", "fp32", variant.name, 1))


def run_cells(
    config: RunConfig,
    folder: RunFolder,
    programs: dict[ExportKey, ExportedProgram],
    *,
    cancel: threading.Event | None = None,
) -> Iterator[Event]:
    where = {"android": "Android", "emulated": "an emulated Arm CPU (QEMU)"}.get(config.target.kind, "the host")
    yield StepStarted("run", f"Run cells on {where}")
    placed = stage_programs(folder, programs)
    cells = plan_cells(config)
    pending = folder.pending_cells(cells)
    runnable: list[Cell] = []
    for cell in pending:
        key = program_key(config, cell)
        if key not in placed:
            folder.set_cell(cell.id, status="skipped", error={"kind": "no-program",
                                                              "what": f"no program for {key.subject} (export failed)"})
            yield CellStatus(cell.id, "skipped", "export failed")
            continue
        runnable.append(cell)
        yield CellStatus(cell.id, "queued", "", 0, config.iterations)
    failures = 0
    if config.target.kind == "android" and runnable:
        from sme2tui.run.android import run_android

        exports = folder.manifest["exports"]
        failures = yield from run_android(
            config, folder, runnable, {c.id: placed[program_key(config, c)] for c in runnable},
            {c.id: _input_files(exports, config, c) for c in runnable}, cancel=cancel)
        runnable = []
    if config.target.kind == "emulated" and runnable:
        from sme2tui.run.emulated import run_emulated

        exports = folder.manifest["exports"]
        failures = yield from run_emulated(
            config, folder, runnable, {c.id: placed[program_key(config, c)] for c in runnable},
            {c.id: _input_files(exports, config, c) for c in runnable}, cancel=cancel)
        runnable = []
    binaries = {cell.id: resolve_runner(config, cell) for cell in runnable}
    for group in groups(runnable):
        python_cells = [c for c in group if binaries[c.id] is None]
        native_cells = [c for c in group if binaries[c.id] is not None]
        if python_cells:
            failures += yield from _run_python_group(config, folder, python_cells, placed, cancel)
        if native_cells:
            exports = folder.manifest["exports"]
            ptes = {c.id: placed[program_key(config, c)] for c in native_cells}
            inputs = {c.id: _input_files(exports, config, c) for c in native_cells}
            for c in native_cells:
                if (binary := binaries[c.id]) is not None:
                    folder.record_runner(binary)
            failures += yield from run_native_group(
                config, folder, native_cells, {c.id: b for c in native_cells if (b := binaries[c.id]) is not None},
                ptes, inputs, cancel=cancel)
    done = sum(1 for c in cells if folder.manifest["cells"][c.id].get("status") == "done")
    yield StepFinished("run", ok=failures == 0, summary=f"{done}/{len(cells)} cells measured",
                       data={"failed": failures})


def _input_files(exports: dict[str, Any], config: RunConfig, cell: Cell) -> list[str] | None:
    key = program_key(config, cell)
    entry = exports[f"{key.model}__{key.dtype}__{key.delegate}"]
    return [i["file"] for i in entry["inputs"]] if entry.get("inputs") else None


def _run_python_group(config: RunConfig, folder: RunFolder, cells: list[Cell], placed: dict[ExportKey, Path],
                      cancel: threading.Event | None) -> Generator[Event, None, int]:
    exports = folder.manifest["exports"]
    job_cells = []
    for cell in cells:
        key = program_key(config, cell)
        stem = f"{key.model}__{key.dtype}__{key.delegate}"
        job_cells.append({"cell_id": cell.id, "pte": str(placed[key]), "inputs": exports[stem].get("inputs"),
                          "out_dir": str(folder.cell_dir(cell))})
        folder.set_cell(cell.id, status="running", runner="python-runtime", started_utc=utc_now(),
                        warmup=config.warmup, iterations=config.iterations, profile=config.profile)
    job = {"threads": cells[0].threads, "warmup": config.warmup, "iterations": config.iterations,
           "profile": config.profile, "seed": config.seed, "cells": job_cells}
    names = ", ".join(c.variant for c in cells)
    yield LogLine("run", f"{cells[0].model}/{cells[0].dtype}/t{cells[0].threads}: {names} on the ExecuTorch Python "
                  f"runtime, {config.warmup} warmup + {config.iterations} iterations, interleaved", "info", "run")
    finished: set[str] = set()
    try:
        for event in run_worker("sme2tui.run.python_worker", {**job}, step="run", cancel=cancel,
                                stderr_log=folder.root / "logs" / "runner.log", timeout_s=config.target.timeout_s):
            if isinstance(event, CellStatus) and event.state == "done":
                cell_dir = folder.cell_dir(event.cell_id)
                folder.set_cell(event.cell_id, status="done", finished_utc=utc_now(),
                                files=sorted(folder.rel(p) for p in cell_dir.iterdir()))
                finished.add(event.cell_id)
            yield event
    except WorkerFailed as exc:
        what = _classify_exit(exc.returncode)
        kind, fix = "runner-crashed", "see logs/runner.log; re-run with --resume to retry"
        disk_full = any(m in exc.stderr_tail for m in DISK_FULL_MARKERS) or looks_full(folder.root)
        if exc.timed_out:
            kind, what = "timeout", (f"the runtime was stopped after target.timeout_s ({config.target.timeout_s:g} s) "
                                     f"for {len(cells)} cell(s) interleaved")
            fix = "raise target.timeout_s in the config, or lower iterations; re-run with --resume"
        elif disk_full:
            kind, what = "disk-full", f"{what}; the disk is full"
            fix = f"free some space on {folder.root}'s disk, {resume_hint(folder.root)}"
            folder.release_reserve()  # room to record this, and for the manifest's last words
        for cell in cells:
            if cell.id not in finished:
                folder.set_cell(cell.id, status="failed", finished_utc=utc_now(),
                                error={"kind": kind, "what": what, "stderr_tail": exc.stderr_tail[-2000:], "fix": fix})
                yield CellStatus(cell.id, "failed", what)
        if disk_full and not exc.timed_out:
            raise DiskFull(f"the disk filled up while the Python runtime measured {cells[0].model}/{cells[0].dtype}",
                           where=str(folder.root), fix=fix) from None
        return len(cells) - len(finished)
    except BaseException:
        for cell in cells:
            if cell.id not in finished:
                folder.set_cell(cell.id, status="interrupted")
        raise
    return 0


def _classify_exit(code: int) -> str:
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the runtime was killed by {name}"
    return f"the runtime exited with code {code}"
