"""What the best benchmark tools report per model, for each cell: load and init time, the first (cold)
inference apart from the warm statistics, tail latency beside the median, peak memory, program size and
planned memory.

Peers and what their users rely on: TFLite's `benchmark_model` (init time, first inference, warmup and
steady-state averages, peak memory), ONNX Runtime's `onnxruntime_perf_test` (session creation time,
percentiles, peak working set), llama.cpp's `llama-bench` (mean ± std over repetitions, model size).

Where each number comes from (said again in `source` fields, so nothing is a guess):
* load / init: the ETDump's load events — `Program::load_method` (the whole method load) and
  `Method::init` (its part that initialises delegates and kernels: XNNPACK builds its graph and packs
  weights here) — one per runner process; plus the runner's own clock around `Program::load`
  (sme2_runner's timing JSON, the Python runtime's `load_program`).
* first inference: the first execution in each process, i.e. the first warmup iteration (or the first
  measured one when warmup is 0). It is reported apart and never mixed into the warm statistics.
* tail latency: p95 and p99 over the measured iterations (linear interpolation, numpy's default). A
  percentile q needs at least 1/(1 − q) samples to be more than the largest value seen (20 for p95, 100 for
  p99); below that the figure is still given, flagged `p99_estimable: false` with the reason: it is then
  (close to) the slowest iteration, an upper bound of the sample, not a tail estimate.
* peak memory: the runner's own peak RSS (VmHWM on Linux/Android; getrusage on macOS, whose ru_maxrss is in
  bytes there but KiB on Linux; always reported in bytes), else the host's measurement of the runner process
  (VmHWM sampled while it runs on Linux, wait4 elsewhere), else the Python runtime's process, which holds every
  variant of its group (said so). Not ru_maxrss on Linux: it survives execve, so a runner started from a big
  Python process would report the parent's size.
* program: the .pte's size and its memory-planned buffers (`sme2tui.models.pte_memory`).

Kept apart from `cell.py` on purpose: it reads the ETDump through the reader's public API only.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from sme2tui.analysis.cell import CellAnalysis
from sme2tui.analysis.stats import percentile
from sme2tui.analysis.timing_file import MAX_TIMING_BYTES
from sme2tui.errors import Sme2Error
from sme2tui.etdump import iteration_total_ns, read_etdump
from sme2tui.fileio import read_bounded

NS_PER_MS = 1e6
# A tail percentile q is estimable (more than "the maximum") from ceil(1 / (1 - q)) samples on.
TAIL_MIN_N = {95: 20, 99: 100}
LOAD_EVENT = "Program::load_method"
EMULATED_NOTE = ("emulated CPU (QEMU): load, first-inference and latency figures are emulated time and peak RSS is the "
                 "QEMU process's; they describe the emulator, not Arm hardware")
INIT_EVENT = "Method::init"


def _json(path: Path) -> dict[str, Any] | None:
    """A timing file's JSON, or None when it cannot be read within bounds (these extra figures are then left
    out, as for a runner that does not write them; the latency itself is checked in timing_file.py)."""
    try:
        data = json.loads(read_bounded(path, MAX_TIMING_BYTES, path.name))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def tail_latency(latencies_ms: list[float]) -> dict[str, Any]:
    """Median, p95 and p99 with the sample size each needs; a percentile from too few samples is flagged."""
    ordered = sorted(latencies_ms)
    n = len(ordered)
    out: dict[str, Any] = {"n": n, "median_ms": statistics.median(ordered) if ordered else None,
                           "max_ms": ordered[-1] if ordered else None}
    notes = []
    for q, need in TAIL_MIN_N.items():
        enough = n >= need
        out[f"p{q}_ms"] = percentile(ordered, q) if ordered else None
        out[f"p{q}_min_n"] = need
        out[f"p{q}_estimable"] = enough
        if not enough and ordered:
            notes.append(f"p{q} of {n} iterations is about the slowest one, not a tail estimate: it needs ≥ {need} "
                         "measured iterations; run more iterations")
    out["note"] = "; ".join(notes)
    return out


def _process_records(cell_dir: Path) -> tuple[dict[str, Any], list[Path], list[dict[str, Any]]]:
    """(timing.json, the cell's ETDumps in process order, per-round runner timing JSONs)."""
    timing = _json(cell_dir / "timing.json") or {}
    rounds = timing.get("rounds") or []
    dumps = [cell_dir / str(r["etdump"]) for r in rounds if isinstance(r, dict) and r.get("etdump")]
    if not dumps and (cell_dir / str(timing.get("etdump", "etdump.etdp"))).is_file():
        dumps = [cell_dir / str(timing.get("etdump", "etdump.etdp"))]
    runner = [j for r in rounds if isinstance(r, dict) and r.get("timing")
              if (j := _json(cell_dir / str(r["timing"]))) is not None]
    return timing, [d for d in dumps if d.is_file()], runner


def _from_etdumps(dumps: list[Path]) -> tuple[list[float], list[float], list[float]]:
    """Per process: Program::load_method ms, Method::init ms, first execution ms."""
    loads, inits, firsts = [], [], []
    for path in dumps:
        try:
            trace = read_etdump(path)
        except Sme2Error:
            continue  # the cell analysis has already reported an unreadable ETDump
        scale = trace.ticks_per_ns * NS_PER_MS
        by_name: dict[str, float] = {}
        for event in trace.load_events:
            if event.name in (LOAD_EVENT, INIT_EVENT):
                by_name[event.name] = by_name.get(event.name, 0.0) + event.duration / scale
        if LOAD_EVENT in by_name:
            loads.append(by_name[LOAD_EVENT])
        if INIT_EVENT in by_name:
            inits.append(by_name[INIT_EVENT])
        totals = iteration_total_ns(trace)
        if totals:
            firsts.append(totals[0] / NS_PER_MS)
    return loads, inits, firsts


def _memory(timing: dict[str, Any], runner: list[dict[str, Any]], target: str) -> dict[str, Any]:
    own = [int(j["peak_rss_bytes"]) for j in runner if isinstance(j.get("peak_rss_bytes"), int)
           and j["peak_rss_bytes"] > 0]
    if own:
        after_load = [int(j["peak_rss_after_load_bytes"]) for j in runner
                      if isinstance(j.get("peak_rss_after_load_bytes"), int) and j["peak_rss_after_load_bytes"] > 0]
        return {"peak_rss_bytes": max(own), "after_load_bytes": max(after_load) if after_load else None,
                "processes": len(own),
                "source": "the runner's own peak RSS (VmHWM on Linux/Android, getrusage on macOS), max over its "
                          "processes"}
    rounds = [r for r in timing.get("rounds") or [] if isinstance(r, dict) and isinstance(r.get("peak_rss_bytes"), int)]
    if rounds:
        return {"peak_rss_bytes": max(int(r["peak_rss_bytes"]) for r in rounds), "after_load_bytes": None,
                "processes": len(rounds),
                "source": f"{rounds[0].get('peak_rss_source') or 'measured by the host'} (max over rounds)"}
    shared = timing.get("process_peak_rss_bytes")
    if isinstance(shared, int) and shared > 0:
        others = len(timing.get("process_shared_by") or []) or 1
        return {"peak_rss_bytes": shared, "after_load_bytes": None, "processes": 1,
                "source": f"the ExecuTorch Python runtime process, shared by {others} cell(s) of this group "
                          "(includes the Python interpreter)"}
    if str(timing.get("runner", "")).startswith("kit:"):
        why = "Arm's kit does not record the runner's memory"
    elif target == "android":
        why = ("upstream executor_runner on a phone does not report its memory and the host cannot measure a device "
               "process; sme2_runner reports its own")
    else:
        why = "this run recorded none (a runner or sme2tui version that did not measure it)"
    return {"peak_rss_bytes": None, "after_load_bytes": None, "processes": 0, "source": "", "note": why}


def program_facts(pte: Path | None, runner: list[dict[str, Any]], method: str | None = None) -> dict[str, Any]:
    from sme2tui.models.pte_memory import read_program_memory

    planned_by_runner = next((int(j["planned_memory_bytes"]) for j in runner
                              if isinstance(j.get("planned_memory_bytes"), int)), None)
    if pte is None or not pte.is_file():
        return {"size_bytes": None, "planned_memory_bytes": planned_by_runner, "planned_buffers": None,
                "source": "the runner (MethodMeta)" if planned_by_runner is not None else "",
                "note": "the .pte is not available"}
    try:
        memory = read_program_memory(pte)
    except Sme2Error as exc:
        return {"size_bytes": pte.stat().st_size, "planned_memory_bytes": planned_by_runner, "planned_buffers": None,
                "source": "", "note": exc.what}
    plan = memory.plan(method)
    return {"size_bytes": memory.size_bytes, "planned_memory_bytes": plan.planned_bytes if plan else None,
            "planned_buffers": plan.buffers if plan else None, "method": plan.method if plan else None,
            "source": "the .pte's execution plan (non_const_buffer_sizes)"}


def cell_peers(cell_dir: Path, analysis: CellAnalysis, *, pte: Path | None = None, target: str = "host",
               method: str | None = None) -> dict[str, Any]:
    """Every peer metric of one analyzed cell (JSON-ready; None where a number does not exist, with why)."""
    timing, dumps, runner = _process_records(cell_dir)
    loads, inits, firsts = _from_etdumps(dumps)
    program_load = [j["program_load_ns"] / NS_PER_MS for j in runner if isinstance(j.get("program_load_ns"), int)]
    if not program_load and isinstance(timing.get("program_load_ns"), int):
        program_load = [timing["program_load_ns"] / NS_PER_MS]
    # The runner's own clock around everything before the first execution (open, Program::load, load_method).
    total_load = [j["load_ns"] / NS_PER_MS for j in runner if isinstance(j.get("load_ns"), int)]
    if not total_load and isinstance(timing.get("program_load_ns"), int) and isinstance(
            timing.get("method_load_ns"), int):
        total_load = [(timing["program_load_ns"] + timing["method_load_ns"]) / NS_PER_MS]
    runner_firsts = [[*j.get("warmup_ns", []), *j.get("measured_ns", [])][0] / NS_PER_MS for j in runner
                     if j.get("warmup_ns") or j.get("measured_ns")]
    if not firsts:
        firsts = runner_firsts
    if not firsts and (timing.get("warmup_ns") or timing.get("iterations_ns")):
        firsts = [[*timing.get("warmup_ns", []), *timing.get("iterations_ns", [])][0] / NS_PER_MS]
    warm = analysis.latency.median
    first_ms = firsts[0] if firsts else None
    dropped = analysis.warmup_dropped
    memory = _memory(timing, runner, target)
    peers: dict[str, Any] = {
        "load": {
            "total_ms": _median(total_load),
            "program_load_ms": _median(program_load),
            "method_load_ms": _median(loads),
            "method_init_ms": _median(inits),
            "processes": max(len(loads), len(program_load)),
            "source": "ETDump `Program::load_method` (method load) and `Method::init` (its delegate/kernel init), "
                      "median over runner processes; total and program load from the runner's own clock",
        },
        "first_inference": {
            "ms": first_ms,
            "per_process_ms": firsts,
            "warm_median_ms": warm,
            "cold_to_warm": (first_ms / warm) if first_ms and warm else None,
            "in_warm_statistics": dropped == 0,
            "note": ("the first execution of each runner process (its first warmup iteration); excluded from the "
                     "warm statistics" if dropped else
                     "warmup 0: the first execution is the first measured iteration and IS in the warm statistics"),
        },
        "latency": tail_latency(analysis.latencies_ms),
        "memory": memory,
        "program": program_facts(pte, runner, method),
    }
    if target == "emulated":
        # Never a hardware figure: QEMU translates every instruction, and its process holds the emulator too.
        peers["note"] = EMULATED_NOTE
        if memory.get("source"):
            memory["source"] = "the QEMU process running the runner (emulator, translated code and guest memory): " \
                + memory["source"]
    return peers


def program_for_cell(manifest: dict[str, Any], root: Path, model: str, dtype: str, delegate: str | None) -> Path | None:
    """The .pte a cell ran, from the run manifest's `exports` (None when the run does not record it)."""
    entries = [e for e in (manifest.get("exports") or {}).values()
               if isinstance(e, dict) and e.get("model") == model and e.get("dtype") == dtype and e.get("pte")]
    if len(entries) > 1 and delegate:
        entries = [e for e in entries if e.get("delegate") == delegate] or entries
    if not entries:
        return None
    path = Path(str(entries[0]["pte"]))
    return path if path.is_absolute() else root / path


def format_bytes(value: int | None) -> str:
    if value is None:
        return "—"
    units = ("B", "KiB", "MiB", "GiB")
    size = float(value)
    for unit in units:
        if size < 1024 or unit == units[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def peers_csv_rows(cells: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Rows of `analysis/peers.csv` (header first) from summary cells that carry `peers`."""
    def num(value: Any, digits: int = 6) -> str:
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else (
            f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    rows = [["cell", "variant", "threads", "iterations", "median_ms", "p95_ms", "p99_ms", "max_ms",
             "first_inference_ms", "cold_to_warm", "load_total_ms", "program_load_ms", "method_load_ms",
             "method_init_ms",
             "peak_rss_bytes", "peak_rss_source", "program_bytes", "planned_memory_bytes"]]
    for cell_id, cell in cells.items():
        p = cell.get("peers")
        if not p:
            continue
        lat, first, load, mem, prog = p["latency"], p["first_inference"], p["load"], p["memory"], p["program"]
        rows.append([cell_id, str(cell.get("variant", "")), str(cell.get("threads", "")), str(lat["n"]),
                     num(lat["median_ms"]), num(lat["p95_ms"]), num(lat["p99_ms"]), num(lat["max_ms"]),
                     num(first["ms"]), num(first["cold_to_warm"], 3), num(load.get("total_ms")),
                     num(load["program_load_ms"]),
                     num(load["method_load_ms"]), num(load["method_init_ms"]), num(mem["peak_rss_bytes"]),
                     mem.get("source") or mem.get("note", ""), num(prog["size_bytes"]),
                     num(prog["planned_memory_bytes"])])
    return rows
