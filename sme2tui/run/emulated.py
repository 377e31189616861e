"""Cells on the emulated target: the cross-built arm64 `sme2_runner` under QEMU user mode, one emulated CPU per
variant (`-cpu max` = SME2 on, `-cpu max,sme=off` = SME and SME2 off). Same binary, same .pte, same QEMU: the
pair differs only in the emulated CPU's SME features, which the probe proves for each variant before any cell.

Rounds alternate the variants like native runs. Round 0 of each cell is the evidence round: QEMU streams its
translated-code log through a pipe (never to disk) and the runner writes its memory map and its outputs, giving
`evidence.json` (kernels that ran, classified) and `outputs/` (for the on-vs-off numerics). Round 1, when there
is one, counts executions of the SME/SME2 kernels found in round 0 (`-d exec,nochain -dfilter`).
Emulated time is recorded like any timing but is not hardware time: the analysis never turns it into a speedup.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from sme2tui.analysis.elf_symbols import AddressMapper, parse_maps
from sme2tui.analysis.kernel_evidence import EVIDENCE_FILE, build_evidence
from sme2tui.analysis.qemu_log import LogStats
from sme2tui.config import EmulatedTarget, RunConfig, VariantSpec
from sme2tui.emulator.qemu import RESERVED_VA, ProbeResult
from sme2tui.emulator.setup import Emulator, load_emulator
from sme2tui.errors import ConfigError, EnvironmentProblem, Interrupted
from sme2tui.events import CellStatus, Checkpoint, Event, LogLine
from sme2tui.fileio import UnreadableOutput, read_bounded, read_tail, write_json_atomic
from sme2tui.run.cells import Cell, groups
from sme2tui.run.commands import ProgressReader, runner_argv, split_rounds
from sme2tui.run.folder import RunFolder, utc_now
from sme2tui.run.native import STDERR_TAIL_CHARS, RunnerLied, read_runner_timing
from sme2tui.run.process_group import end_group

EMULATED_NOTE = ("emulated: the official aarch64 ExecuTorch runtime under QEMU user mode on this machine's CPU. "
                 "Emulated time is not hardware time (emulated SME is slower than emulated NEON), so no speedup "
                 "is derived from it; the evidence is which kernels ran, their instruction counts and the numerics")


def variant_cpu(target: EmulatedTarget, variant: VariantSpec) -> str:
    """The QEMU -cpu value of a variant: explicit `cpu`, else from `sme2`, plus the SVL option."""
    cpu = variant.cpu or ("max" if variant.sme2 == "on" else "max,sme=off")
    if target.svl_bits and "sme=off" not in cpu and "sme-default-vector-length" not in cpu:
        cpu += f",sme-default-vector-length={target.svl_bits // 8}"
    return cpu


def _where(config: RunConfig, name: str) -> str:
    return f"variants[{[v.name for v in config.variants].index(name)}]"


def probe_variants(config: RunConfig, emulator: Emulator) -> dict[str, ProbeResult]:
    """Run the CPU probe under each variant's exact -cpu value and refuse a variant whose claim is false."""
    assert isinstance(config.target, EmulatedTarget)
    results: dict[str, ProbeResult] = {}
    for variant in config.variants:
        result = emulator.probe_cpu(variant_cpu(config.target, variant))
        if variant.sme2 == "on" and not result.sme2:
            raise EnvironmentProblem(
                f"variant `{variant.name}` says SME2 on, but QEMU {emulator.qemu.version_text} reports "
                f"{result.describe()}", where=_where(config, variant.name),
                fix="QEMU 10.1+ emulates SME2: run `sme2tui setup emulator` (it fetches one); on QEMU 10.0.x "
                "name the variant sme-only with `\"cpu\": \"max\"` and no `sme2`")
        if variant.sme2 == "off" and (result.sme or result.sme2):
            raise ConfigError(f"variant `{variant.name}` says SME2 off, but its CPU reports {result.describe()}",
                              where=_where(config, variant.name),
                              fix="drop `cpu` (the default for off is `max,sme=off`) or make it end in `sme=off`")
        if config.target.svl_bits and result.sme and result.svl_bits != config.target.svl_bits:
            raise EnvironmentProblem(f"variant `{variant.name}`: asked for a {config.target.svl_bits}-bit SVL, the "
                                     f"CPU reports {result.svl_bits}", where="target.svl_bits",
                                     fix="use an SVL this QEMU supports (128–2048 bits, a power of two)")
        results[variant.name] = result
    return results


def emulated_preflight(config: RunConfig) -> None:
    """Set up, and each variant's CPU what it claims — before any export or run folder."""
    probe_variants(config, load_emulator())


def _pump(stream: io.BufferedReader, stats: LogStats) -> None:
    for raw in iter(lambda: stream.readline(4096), b""):
        stats.feed(raw.decode("ascii", "replace"))


MAX_MAPS_BYTES = 4 * 2**20  # /proc/self/maps of the runner: ~10 KB

# How often a running round says it is alive: emulated rounds take seconds to minutes, and the runner itself
# says nothing until it exits.
HEARTBEAT_S = 1.0


def run_qemu(argv: list[str], cell_dir: Path, index: int, log_flags: list[str] | None,
             cancel: threading.Event | None, timeout: float,
             heartbeat: Callable[[float], Event] | None = None, *,
             progress: Callable[[int], Event] | None = None) -> Generator[Event, None,
                                                                     tuple[int, float, LogStats | None]]:
    """Run one round, yielding `heartbeat(elapsed seconds)` about once a second; returns (exit code, seconds,
    stats). With `log_flags` QEMU's log streams through a pipe into a LogStats (bounded memory). With `progress`
    (the runner was given --progress) it also yields `progress(measured executions)` whenever that count grows.

    QEMU runs in its own session: however the round ends (exit, timeout, cancel, Ctrl-C, a consumer that
    stops listening) its whole process group is killed, as on the host target, so nothing it started outlives
    the round or keeps the log pipe open."""
    stats = LogStats() if log_flags is not None else None
    read_fd, write_fd = os.pipe() if log_flags is not None else (-1, -1)
    if log_flags is not None:
        argv = [argv[0], *log_flags, "-D", f"/dev/fd/{write_fd}", *argv[1:]]
    started = time.monotonic()
    reader: threading.Thread | None = None
    stream: io.BufferedReader | None = None
    try:
        stdout_path = cell_dir / f"stdout-r{index}.log"
        with stdout_path.open("wb") as out, (cell_dir / f"stderr-r{index}.log").open("wb") as err, \
                stdout_path.open("rb") as stdout_reader:
            try:
                proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True, pass_fds=(write_fd,) if log_flags is not None else ())
            except (OSError, subprocess.SubprocessError) as exc:  # QEMU gone or not executable since setup
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                err.write(f"sme2tui: cannot start {argv[0]}: {reason}\n".encode())
                return 127, 0.0, stats
            if stats is not None:
                os.close(write_fd)
                write_fd = -1
                stream = os.fdopen(read_fd, "rb")
                read_fd = -1
                reader = threading.Thread(target=_pump, args=(stream, stats), daemon=True)
                reader.start()
            beat = started
            tail = ProgressReader(stdout_reader) if progress is not None else None
            try:
                while proc.poll() is None:
                    if cancel is not None and cancel.is_set():
                        raise Interrupted("cancelled", fix="resume with --resume RUN_DIR")
                    now = time.monotonic()
                    if now - started > timeout:
                        end_group(proc)
                        return -9, timeout, stats
                    if progress is not None and tail is not None and tail.poll():
                        yield progress(tail.measured)
                    if heartbeat is not None and now - beat >= HEARTBEAT_S:
                        beat = now
                        yield heartbeat(now - started)
                    time.sleep(0.02)
            finally:
                # Exit, timeout, cancel, Ctrl-C (KeyboardInterrupt) or GeneratorExit at a heartbeat: the group
                # goes (a guest thread or helper QEMU left running would otherwise hold the log pipe open).
                end_group(proc)
        return proc.returncode or 0, time.monotonic() - started, stats
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
        if reader is not None:
            reader.join(timeout=30)
        if stream is not None:
            stream.close()


def _read_maps(path: Path) -> str:
    """The guest memory map the runner wrote (a few KB; bounded, as anything the runner hands us)."""
    return read_bounded(path, MAX_MAPS_BYTES, f"the runner's memory map {path.name}").decode("utf-8", "replace")


class _RoundStatus:
    """What an emulated cell says while a round runs: which round, for how long, and the executions measured so
    far (the runner's --progress lines), so counts move within a slow emulated round instead of at its end."""

    def __init__(self, cell_id: str, doing: str, done: int, total: int) -> None:
        self.cell_id, self.doing, self.done, self.total = cell_id, doing, done, total
        self.measured = 0
        self.detail = doing

    def _status(self) -> Event:
        return CellStatus(self.cell_id, "running", self.detail, self.done + self.measured, self.total,
                          {"emulated": True})

    def beat(self, elapsed: float) -> Event:
        self.detail = f"{self.doing}: {elapsed:.0f} s"
        return self._status()

    def progress(self, measured: int) -> Event:
        self.measured = measured
        return self._status()


def _ranges(evidence: dict[str, Any], mapper: AddressMapper, wheel_root: Path, binary: Path) -> list[tuple[int, int]]:
    """Guest address ranges of the SME/SME2 compute kernels that ran (for execution counting)."""
    names = {k["name"]: k["library"] for k in evidence["kernels"] if k["compute"] and k["family"] in ("SME2", "SME")}
    ranges = []
    for mapping in mapper.mappings:
        for name, library in names.items():
            if Path(mapping.path).name == library and (r := mapper.range_of(mapping.path, name)) is not None:
                ranges.append(r)
    return sorted(set(ranges))


def _same_layout(a: str, b: str) -> bool:
    return [(m.start, m.offset, m.path) for m in parse_maps(a)] == [(m.start, m.offset, m.path) for m in parse_maps(b)]


def run_emulated(config: RunConfig, folder: RunFolder, cells: list[Cell], ptes: dict[str, Path],
                 inputs: dict[str, list[str] | None], *, cancel: threading.Event | None) -> Generator[Event, None, int]:
    """Run `cells` under QEMU; returns how many failed."""
    from sme2tui.runners.arm64 import find_arm64_runner

    assert isinstance(config.target, EmulatedTarget)
    target = config.target
    emulator = load_emulator()
    binary = find_arm64_runner(config.runners_path)
    if binary is None:
        raise ConfigError(f"the arm64 runner is not built (or is stale) in {config.runners_path}",
                          where="runners_dir", fix="sme2tui build arm64 (about 5 s)")
    folder.record_runner(binary)
    probes = probe_variants(config, emulator)
    cpus = {v.name: variant_cpu(target, v) for v in config.variants}
    folder.update(emulated={
        "qemu": emulator.qemu.to_dict(), "fetched": emulator.state["qemu"].get("fetched", {}),
        "sysroot": emulator.sysroot, "reserved_va": RESERVED_VA,
        "wheel": {k: emulator.wheel.get(k) for k in ("file", "sha256", "version", "git_commit", "platform")},
        "variants": {name: {"cpu": cpus[name], "probe": probes[name].to_dict()} for name in cpus},
        "pair_proof": "one runner binary, one .pte and one QEMU for every variant; the variants differ only in "
                      "the emulated CPU (-cpu), whose SME/SME2 features the probe recorded above",
        "note": EMULATED_NOTE})
    for name, result in probes.items():
        yield Checkpoint("run", "emulated CPU", "pass", f"{name}: QEMU {emulator.qemu.version_text} "
                         f"{result.describe()}", subject=name)
    failed = 0
    for group in groups(cells):
        failed += yield from _run_group(config, folder, group, binary, emulator, cpus, probes, ptes, inputs, cancel)
    return failed


def _run_group(config: RunConfig, folder: RunFolder, cells: list[Cell], binary: Path, emulator: Emulator,
               cpus: dict[str, str], probes: dict[str, ProbeResult], ptes: dict[str, Path],
               inputs: dict[str, list[str] | None], cancel: threading.Event | None) -> Generator[Event, None, int]:
    assert isinstance(config.target, EmulatedTarget)
    target = config.target
    plan = split_rounds(config.iterations, config.rounds)
    records: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    round0: dict[str, tuple[LogStats, str]] = {}
    evidence: dict[str, dict[str, Any]] = {}
    for cell in cells:
        folder.cell_dir(cell).mkdir(parents=True, exist_ok=True)
        records[cell.id] = {"runner": f"emulated:{binary.name}", "binary": str(binary), "cpu": cpus[cell.variant],
                            "threads": cell.threads, "warmup": config.warmup, "iterations": config.iterations,
                            "rounds": [], "interleaved_with": [c.id for c in cells if c is not cell],
                            "clock": "emulated: runner's steady clock under QEMU (not hardware time)",
                            "warmup_ns": [], "iterations_ns": []}
        folder.set_cell(cell.id, status="running", runner=f"emulated:{binary.name}", cpu=cpus[cell.variant],
                        started_utc=utc_now(), warmup=config.warmup, iterations=config.iterations,
                        profile=config.profile, rounds=len(plan), emulated=True)
    yield LogLine("run", f"{cells[0].model}/{cells[0].dtype}/t{cells[0].threads}: "
                  f"{', '.join(f'{c.variant} (-cpu {cpus[c.variant]})' for c in cells)} under QEMU "
                  f"{emulator.qemu.version_text}, {len(plan)} round(s) alternating (emulated)", "info", "run")
    done = dict.fromkeys(records, 0)
    for index, count in enumerate(plan):
        for cell in cells if index % 2 == 0 else list(reversed(cells)):
            if cell.id in failed:
                continue
            cell_dir = folder.cell_dir(cell)
            etdump = cell_dir / f"etdump-r{index}.etdp" if config.profile else None
            timing = cell_dir / f"timing-r{index}.json"
            argv = [emulator.qemu.path, "-R", RESERVED_VA, "-L", emulator.sysroot, "-cpu", cpus[cell.variant],
                    *runner_argv("sme2_runner", str(binary), pte=str(ptes[cell.id]), threads=cell.threads,
                                 warmup=config.warmup, iterations=count,
                                 etdump=str(etdump) if etdump else None, timing_json=str(timing),
                                 inputs=inputs[cell.id], progress=True)]
            log_flags: list[str] | None = None
            purpose = "measure"
            if index == 0:
                argv += [f"--output_dir={cell_dir / 'outputs'}"]
                if target.evidence:
                    argv += [f"--maps_path={cell_dir / 'maps-r0.txt'}"]
                    log_flags, purpose = ["-d", "in_asm"], "evidence: translated code"
            elif index == 1 and target.evidence and cell.id in evidence:
                mapper = AddressMapper(parse_maps(round0[cell.id][1]))
                ranges = _ranges(evidence[cell.id], mapper, emulator.wheel_root, binary)
                if ranges:
                    argv += [f"--maps_path={cell_dir / 'maps-r1.txt'}"]
                    log_flags = ["-d", "exec,nochain", "-dfilter", ",".join(f"{a:#x}..{b - 1:#x}" for a, b in ranges)]
                    purpose = f"evidence: execution counts of {len(ranges)} SME/SME2 kernel(s)"
            yield LogLine("run", f"{cell.id} round {index}: {purpose}", "debug", "run")
            # The cell says which round runs, what for and how long; counts move as the runner reports them
            # (--progress: the arm64 runner is always built from these sources, see find_arm64_runner).
            doing = f"round {index + 1}/{len(plan)}" + ("" if purpose == "measure" else f" ({purpose.split(':')[0]})")
            yield CellStatus(cell.id, "running", doing, done[cell.id], config.iterations, {"emulated": True})
            status = _RoundStatus(cell.id, doing, done[cell.id], config.iterations)
            code, seconds, stats = yield from run_qemu(argv, cell_dir, index, log_flags, cancel, target.timeout_s,
                                                       status.beat, progress=status.progress)
            # The runner's (and QEMU's) output is read bounded: only the stderr tail, a checked timing file,
            # a memory map of sane size; whatever is wrong with it fails this cell with what and where.
            stderr = read_tail(cell_dir / f"stderr-r{index}.log", STDERR_TAIL_CHARS).strip()
            problem: tuple[str, str, str] | None = None  # (kind, what, fix)
            if code != 0:
                what = (f"runner killed by signal {-code}" if code < 0 else f"runner exited with {code}") + (
                    f" after {seconds:.0f} s (timeout)" if seconds >= target.timeout_s else "") + " under QEMU"
                if code == -signal.SIGILL or "Illegal instruction" in stderr:
                    what += f" (illegal instruction: the code used a feature -cpu {cpus[cell.variant]} lacks)"
                problem = ("runner-failed", what, f"see cells/{cell.id}/stderr-r{index}.log; rerun with --resume")
            else:
                try:
                    warmup_ns, measured_ns = read_runner_timing(timing, warmup=config.warmup, iterations=count,
                                                                round_seconds=seconds)
                    maps_text = _read_maps(cell_dir / "maps-r0.txt") if stats is not None and index == 0 else ""
                except (RunnerLied, UnreadableOutput, OSError) as exc:
                    problem = ("runner-output-invalid", f"the runner exited 0 under QEMU, but its output is not "
                               f"usable: {exc}", f"rebuild the runner (sme2tui build arm64); see cells/{cell.id}/"
                               f"stdout-r{index}.log; rerun with --resume")
            if problem is not None:
                kind, what, fix = problem
                failed[cell.id] = what
                folder.set_cell(cell.id, status="failed", finished_utc=utc_now(),
                                error={"kind": kind, "what": what, "stderr_tail": stderr, "command": argv, "fix": fix})
                yield CellStatus(cell.id, "failed", what)
                continue
            entry: dict[str, Any] = {"round": index, "warmup": config.warmup, "iterations": count, "command": argv,
                                     "seconds": round(seconds, 3), "instrumented": purpose != "measure"}
            if etdump:
                entry["etdump"] = etdump.name
            entry["timing"] = timing.name
            records[cell.id]["warmup_ns"] += warmup_ns
            records[cell.id]["iterations_ns"] += measured_ns
            if stats is not None and index == 0:
                round0[cell.id] = (stats, maps_text)
                evidence[cell.id] = build_evidence(stats, AddressMapper(parse_maps(maps_text)), cpu=cpus[cell.variant],
                                                   qemu=emulator.qemu.to_dict(), probe=probes[cell.variant].to_dict())
                write_json_atomic(cell_dir / EVIDENCE_FILE, evidence[cell.id])
                sme2 = evidence[cell.id]["sme2_kernels"]
                yield LogLine("run", f"{cell.id}: {len(sme2)} SME2 kernel(s) ran"
                              + (f" ({', '.join(sme2[:3])}{'…' if len(sme2) > 3 else ''})" if sme2 else ""),
                              "info", "run")
            elif stats is not None and index == 1:
                yield from _add_counts(cell, cell_dir, stats, round0[cell.id], evidence[cell.id], emulator, probes,
                                       cpus)
            records[cell.id]["rounds"].append(entry)
            done[cell.id] += count
            yield CellStatus(cell.id, "running", f"round {index + 1}/{len(plan)} done", done[cell.id],
                             config.iterations, {"emulated": True})
    for cell in cells:
        if cell.id in failed:
            continue
        cell_dir = folder.cell_dir(cell)
        (cell_dir / "timing.json").write_text(json.dumps(records[cell.id], indent=1))
        folder.set_cell(cell.id, status="done", finished_utc=utc_now(),
                        files=sorted(folder.rel(p) for p in cell_dir.rglob("*") if p.is_file()))
        yield CellStatus(cell.id, "done", "emulated", config.iterations, config.iterations)
    return len(failed)


def _add_counts(cell: Cell, cell_dir: Path, counts: LogStats, round0: tuple[LogStats, str],
                evidence: dict[str, Any], emulator: Emulator, probes: dict[str, ProbeResult],
                cpus: dict[str, str]) -> Generator[Event, None, None]:
    """Merge round 1's execution counts into the cell's evidence, if both rounds had the same memory layout."""
    stats, maps0 = round0
    try:
        maps1 = _read_maps(cell_dir / "maps-r1.txt")
    except (UnreadableOutput, OSError):
        maps1 = ""  # no usable map of round 1: its counts cannot be placed, and are dropped with a note
    if not _same_layout(maps0, maps1):
        evidence["log"]["execution_counts_note"] = "not counted: round 1 loaded the libraries elsewhere"
        write_json_atomic(cell_dir / EVIDENCE_FILE, evidence)
        yield LogLine("run", f"{cell.id}: execution counts dropped (memory layout differed between rounds)",
                      "warning", "run")
        return
    stats.executions = counts.executions
    merged = build_evidence(stats, AddressMapper(parse_maps(maps0)), cpu=cpus[cell.variant],
                            qemu=emulator.qemu.to_dict(), probe=probes[cell.variant].to_dict())
    merged["log"]["execution_counts_round"] = 1
    merged["log"]["execution_log_lines"] = counts.lines
    evidence.clear()
    evidence.update(merged)
    write_json_atomic(cell_dir / EVIDENCE_FILE, merged)
