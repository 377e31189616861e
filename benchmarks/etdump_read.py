"""Benchmark: sme2tui's ETDump analysis against ExecuTorch's Inspector, over a scaling curve of real traces.

    python benchmarks/etdump_read.py [--sizes 10000,100000,231000,1000000,3000000] [--repeat 3]
                                     [--workdir DIR] [--etdump PATH ...] [--inspector-max-events 1500000]
                                     [--inspector-repeat 1] [--out benchmarks/results]

1. Makes the traces (unless --etdump is given): exports a small model once (a chain of Linear/ReLU/Add
   delegated to XNNPACK, split every 8 blocks by a cumsum that runs as a portable kernel: DELEGATE_CALL,
   XNNPACK-internal, OPERATOR_CALL and native_call events, 102 per execution) and runs it with ExecuTorch's
   Python runtime until each ETDump holds the wanted number of profile events. Real runtime output, real
   format. ~20 s for the default sizes; with --workdir the traces are kept and reused.
2. Measures, each in a fresh process, in an order that rotates every repeat:
   - `analyze`: `sme2tui.analysis.files.analyze_etdump_file` — what `sme2tui analyze FILE` computes
     (read + iterations + categories + operator table);
   - `read`: `sme2tui.etdump.read_etdump` alone;
   - `legacy`: the object-per-event reader + analysis sme2tui used before (tests/etdump_legacy), for
     before/after numbers;
   - `inspector`: `executorch.devtools.Inspector(etdump_path=...)` construction (no ETRecord: its cheapest
     form, so the ratios are conservative). Only up to --inspector-max-events (default 1.5M: at 3M events it
     needs minutes and several GB) and only in the first --inspector-repeat repeats.
   Per run: the call's wall and CPU time (imports excluded), the process's wall time (interpreter start +
   imports + call), and the process's peak RSS (getrusage ru_maxrss: the kernel's high-water mark). Times
   are reported as the best of the repeats (the least disturbed run on a shared machine), peak RSS as the
   median.
3. Checks that every contender saw the same median `Method::execute` (all iterations) and, for the readers,
   the same event count; writes a Markdown table, a JSON file and an SVG plot to --out, and prints the
   table and the issue's targets (231k events: >= 40x faster and <= 0.1x the peak memory of the Inspector;
   largest trace: <= 300 MB peak and no more time per event than at 231k).
Exit code 1 if a check or a target fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (10_000, 100_000, 231_000, 1_000_000, 3_000_000)
CONTENDERS = ("analyze", "read", "legacy", "inspector")
SPEEDUP_TARGET = 40.0  # x faster than Inspector at ~231k events
MEMORY_TARGET = 0.1  # x Inspector's peak RSS at ~231k events
PEAK_TARGET_MB = 300.0  # at the largest trace
TARGET_EVENTS = 231_000


# --- children (each runs in its own process) ----------------------------------------------------


def _rss_now_mb() -> float | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)  # KiB on Linux, bytes on macOS


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(kind: str, etdump: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    events: int | None = None
    if kind == "analyze":
        from sme2tui.analysis.categorize import Categorizer
        from sme2tui.analysis.files import analyze_etdump_file

        imported = _rss_now_mb()
        cpu, begin = _cpu(), time.perf_counter()
        result = analyze_etdump_file(Path(etdump), warmup=0, categorizer=Categorizer.load())
        median = result.latency.median
    elif kind == "read":
        from sme2tui.etdump import iteration_total_ns, read_etdump

        imported = _rss_now_mb()
        cpu, begin = _cpu(), time.perf_counter()
        trace = read_etdump(etdump)
        events = trace.event_count
        median = statistics.median(iteration_total_ns(trace)) / 1e6
    elif kind == "legacy":
        from sme2tui.analysis.categorize import Categorizer
        from tests.etdump_legacy.analysis import analyze_traces
        from tests.etdump_legacy.reader import read_etdump as legacy_read

        imported = _rss_now_mb()
        cpu, begin = _cpu(), time.perf_counter()
        legacy = legacy_read(etdump)
        totals = analyze_traces([(legacy, 0)], Categorizer.load())[0]
        events = legacy.event_count
        median = statistics.median(totals)
    else:
        from executorch.devtools import Inspector

        imported = _rss_now_mb()
        cpu, begin = _cpu(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Output Buffer not found": there is no debug buffer
            inspector = Inspector(etdump_path=etdump)
        seconds, cpu = time.perf_counter() - begin, _cpu() - cpu
        raw = [(event.name, list(event.perf_data.raw)) for block in inspector.event_blocks for event in block.events
               if event.perf_data is not None]
        events = sum(len(values) for _, values in raw)
        median = statistics.median(v for name, values in raw if name == "Method::execute" for v in values)
        return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": _peak_rss_mb(), "imports_mb": imported,
                "events": events, "median_ms": median}
    seconds, cpu = time.perf_counter() - begin, _cpu() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": _peak_rss_mb(), "imports_mb": imported,
            "events": events, "median_ms": median}


def child_make(workdir: str, sizes: list[int]) -> dict[str, Any]:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    sys.path.insert(0, str(REPO))
    from sme2tui.etdump import read_etdump

    class Chain(torch.nn.Module):
        def __init__(self, blocks: int = 40, width: int = 16) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(blocks))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for index, layer in enumerate(self.layers):
                x = torch.relu(layer(x)) + x
                if index % 8 == 7:  # XNNPACK has no cumsum: splits the delegate, adds an OPERATOR_CALL
                    x = torch.cumsum(x, dim=-1) * 0.01
            return x

    out = Path(workdir)
    torch.manual_seed(0)
    x = torch.randn(1, 16)
    lowered = to_edge_transform_and_lower(
        torch.export.export(Chain().eval(), (x,)), partitioner=[XnnpackPartitioner()]
    ).to_executorch()
    pte = out / "chain.pte"
    pte.write_bytes(lowered.buffer)

    def run(executions: int, etdump: Path) -> None:
        # A fresh program per ETDump: it may be written only once per program.
        program = Runtime.get().load_program(str(pte), enable_etdump=True, debug_buffer_size=0)
        method = program.load_method("forward")
        for _ in range(executions):
            method.execute([x])
        program.write_etdump_result_to_file(str(etdump), str(out / "chain.debug.bin"))

    probe = out / "probe.etdp"
    run(1, probe)
    probe_trace = read_etdump(probe)
    per_execution = int(probe_trace.bounds[1])
    load_events = len(probe_trace.load)
    made = {}
    for size in sizes:
        executions = max(1, math.ceil((size - load_events) / per_execution))
        run(executions, out / f"chain-{size}.etdp")
        made[str(size)] = executions
    return {"per_execution": per_execution, "executions": made}


# --- parent ------------------------------------------------------------------------------------


def _spawn(*args: str) -> dict[str, Any]:
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - begin
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"child {args[0]} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def _make_traces(workdir: Path, sizes: list[int]) -> list[Path]:
    paths = [workdir / f"chain-{size}.etdp" for size in sizes]
    missing = [size for size, path in zip(sizes, paths, strict=True) if not path.exists()]
    if missing:
        print(f"making ETDumps with {', '.join(f'{s:,}' for s in missing)} events in {workdir} ...", flush=True)
        made = _spawn("make", str(workdir), ",".join(map(str, missing)))
        print(f"  {made['per_execution']} events per execution; executions: {made['executions']}")
    return paths


def measure(paths: list[Path], repeat: int, inspector_max: int, inspector_repeat: int) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        events = _spawn("read", str(path))["events"]
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CONTENDERS}
        for index in range(repeat):
            order = list(CONTENDERS[index % len(CONTENDERS):] + CONTENDERS[: index % len(CONTENDERS)])
            for kind in order:
                if kind == "inspector" and (events > inspector_max or index >= inspector_repeat):
                    continue
                runs[kind].append(_spawn(kind, str(path)))
                print(f"  {path.name} {kind:<9} {runs[kind][-1]['seconds']:8.3f} s "
                      f"{runs[kind][-1]['peak_mb']:8.0f} MB", flush=True)
        row: dict[str, Any] = {"etdump": str(path), "bytes": path.stat().st_size, "events": events}
        for kind, samples in runs.items():
            if samples:
                row[kind] = {
                    "runs": len(samples),
                    # Best of N for times: on a shared machine the least disturbed run is the measurement.
                    "seconds": min(s["seconds"] for s in samples),
                    "cpu_seconds": min(s["cpu_seconds"] for s in samples),
                    "process_seconds": min(s["process_seconds"] for s in samples),
                    "peak_mb": statistics.median(s["peak_mb"] for s in samples),
                    "imports_mb": samples[0]["imports_mb"],
                    "median_ms": samples[0]["median_ms"],
                    "events": samples[0]["events"],
                }
        rows.append(row)
    return rows


def check(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    results: list[tuple[str, bool]] = []
    for row in rows:
        medians = {kind: row[kind]["median_ms"] for kind in CONTENDERS if kind in row}
        same = all(math.isclose(v, medians["analyze"], rel_tol=1e-9) for v in medians.values())
        counts = {kind: row[kind]["events"] for kind in CONTENDERS if kind in row and row[kind]["events"] is not None}
        results.append((f"{row['events']:,} events: same median Method::execute ({', '.join(medians)}) and "
                        f"event count ({', '.join(counts)})", same and len(set(counts.values())) == 1))
    near = min(rows, key=lambda r: abs(math.log(r["events"] / TARGET_EVENTS)))
    if "inspector" in near:
        speed = near["inspector"]["seconds"] / near["analyze"]["seconds"]
        memory = near["analyze"]["peak_mb"] / near["inspector"]["peak_mb"]
        results.append((f"{near['events']:,} events: analyze {speed:.0f}x faster than Inspector (target >= "
                        f"{SPEEDUP_TARGET:.0f}x)", speed >= SPEEDUP_TARGET))
        results.append((f"{near['events']:,} events: analyze peak RSS {memory:.3f}x Inspector's (target <= "
                        f"{MEMORY_TARGET}x)", memory <= MEMORY_TARGET))
    largest = max(rows, key=lambda r: r["events"])
    peak = largest["analyze"]["peak_mb"]
    results.append((f"{largest['events']:,} events: analyze peak RSS {peak:.0f} MB (target <= {PEAK_TARGET_MB:.0f})",
                    peak <= PEAK_TARGET_MB))
    for field, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        per_event = {r["events"]: r["analyze"][field] / r["events"] for r in (near, largest)}
        results.append((f"{label} time per event: {per_event[largest['events']] * 1e9:.0f} ns at "
                        f"{largest['events']:,} vs {per_event[near['events']] * 1e9:.0f} ns at {near['events']:,} "
                        "(target: no more)", per_event[largest["events"]] <= per_event[near["events"]] * 1.05))
    return results


def _cell(row: dict[str, Any], kind: str, field: str, fmt: str) -> str:
    return format(row[kind][field], fmt) if kind in row else "—"


def markdown(rows: list[dict[str, Any]], checks: list[tuple[str, bool]], args: argparse.Namespace) -> str:
    lines = [
        "# ETDump analysis vs ExecuTorch's Inspector",
        "",
        f"Generated by `python benchmarks/etdump_read.py` on {platform.machine()} Linux, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {args.repeat} repeats per contender in fresh processes, order rotated "
        f"each repeat; Inspector only up to {args.inspector_max_events:,} events and in the first "
        f"{args.inspector_repeat} repeat(s). Times are the best of the repeats, of the call alone (imports excluded); "
        "`analyze CPU` is the call's user+sys CPU time (less sensitive to other load); `ns/event` is the "
        "analyze call time per profile event; `process` is the whole child process (interpreter start + imports + "
        "call). Peak RSS is the child's `ru_maxrss`. The machine is shared, so times carry noise of a few tens of "
        "percent.",
        "",
        "| events | MB on disk | analyze s | analyze CPU s | ns/event | process s | peak MB | read s | read peak MB "
        "| legacy s | legacy peak MB | Inspector s | Inspector peak MB | Inspector / analyze time "
        "| analyze / Inspector peak |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio_t = ratio_m = "—"
        if "inspector" in row:
            ratio_t = f"{row['inspector']['seconds'] / row['analyze']['seconds']:.0f}×"
            ratio_m = f"{row['analyze']['peak_mb'] / row['inspector']['peak_mb']:.3f}×"
        lines.append(
            f"| {row['events']:,} | {row['bytes'] / 1e6:.1f} | {_cell(row, 'analyze', 'seconds', '.3f')} | "
            f"{_cell(row, 'analyze', 'cpu_seconds', '.3f')} | {row['analyze']['seconds'] / row['events'] * 1e9:.0f} | "
            f"{_cell(row, 'analyze', 'process_seconds', '.2f')} | {_cell(row, 'analyze', 'peak_mb', '.0f')} | "
            f"{_cell(row, 'read', 'seconds', '.3f')} | {_cell(row, 'read', 'peak_mb', '.0f')} | "
            f"{_cell(row, 'legacy', 'seconds', '.2f')} | {_cell(row, 'legacy', 'peak_mb', '.0f')} | "
            f"{_cell(row, 'inspector', 'seconds', '.1f')} | {_cell(row, 'inspector', 'peak_mb', '.0f')} | "
            f"{ratio_t} | {ratio_m} |")
    lines += ["", "Checks and targets:", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks]
    lines += ["", "![time and peak memory against events](etdump_read.svg)", ""]
    return "\n".join(lines)


SERIES = (("analyze", "#0072B2", "sme2tui analyze"), ("legacy", "#E69F00", "sme2tui before (object per event)"),
          ("inspector", "#D55E00", "ExecuTorch Inspector"))


def _ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks per decade between low and high."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0**exponent for m in (1, 2, 5) if low <= m * 10.0**exponent <= high]
    return ticks


def svg(rows: list[dict[str, Any]]) -> str:
    """Two log-log panels (time, peak RSS) against events, hand-written so no plotting library is needed."""
    width, height, left, top, bottom = 430, 330, 50, 34, 40
    xs = [r["events"] for r in rows]
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="900" height="370" font-family="sans-serif" '
             'font-size="11"><title>ETDump analysis: time and peak memory against events</title>']
    panels = (("seconds", "call time (s), median", None), ("peak_mb", "peak RSS (MB), median", PEAK_TARGET_MB))
    for panel, (field, label, target) in enumerate(panels):
        ox = panel * (width + 30)
        values = [r[k][field] for r in rows for k, _, _ in SERIES if k in r] + ([target] if target else [])
        lo_y, hi_y = math.log10(min(values) / 1.2), math.log10(max(values) * 1.2)
        lo_x, hi_x = math.log10(min(xs) / 1.3), math.log10(max(xs) * 1.3)
        plot_w, plot_h = width - left - 10, height - top - bottom

        def px(x: float, ox: int = ox, lo_x: float = lo_x, hi_x: float = hi_x, plot_w: int = plot_w) -> float:
            return ox + left + (math.log10(x) - lo_x) / (hi_x - lo_x) * plot_w

        def py(y: float, lo_y: float = lo_y, hi_y: float = hi_y, plot_h: int = plot_h) -> float:
            return top + plot_h - (math.log10(y) - lo_y) / (hi_y - lo_y) * plot_h

        parts.append(f'<text x="{ox + left + plot_w / 2:.0f}" y="18" text-anchor="middle" font-weight="bold">'
                     f'{label} vs profile events (log-log)</text>')
        parts.append(f'<rect x="{ox + left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>')
        for x in xs:
            parts.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{x / 1000:,.0f}k</text>')
        for y in _ticks(10**lo_y, 10**hi_y):
            parts.append(f'<line x1="{ox + left}" x2="{ox + left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                         'stroke="#eee"/>')
            parts.append(f'<text x="{ox + left - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
        if target:
            parts.append(f'<line x1="{ox + left}" x2="{ox + left + plot_w}" y1="{py(target):.1f}" '
                         f'y2="{py(target):.1f}" stroke="#555" stroke-dasharray="4 3"/>')
            parts.append(f'<text x="{ox + left + 4}" y="{py(target) - 4:.1f}">target at 3M events: '
                         f'{target:.0f} MB</text>')
        for kind, colour, _ in SERIES:
            points = [(px(r["events"]), py(r[kind][field])) for r in rows if kind in r]
            if points:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
                parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    for index, (_, colour, name) in enumerate(SERIES):
        parts.append(f'<rect x="{70 + index * 260}" y="348" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{86 + index * 260}" y="358">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="events per made trace")
    parser.add_argument("--etdump", type=Path, nargs="+", help="measure these ETDumps instead of making traces")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the made traces here")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per contender and trace")
    parser.add_argument("--inspector-max-events", type=int, default=1_500_000, help="skip Inspector above this")
    parser.add_argument("--inspector-repeat", type=int, default=1, help="Inspector runs in the first N repeats only")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where results go")
    parser.add_argument("--replot", action="store_true", help="redraw table and plot from --out's JSON only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        made = kind == "make"
        result = child_make(rest[0], [int(s) for s in rest[1].split(",")]) if made else child(kind, rest[0])
        print(json.dumps(result))
        return 0

    if args.replot:
        rows = json.loads((args.out / "etdump_read.json").read_text())
        return _write(rows, args)
    if args.etdump:
        paths = [p.resolve() for p in args.etdump]
    else:
        workdir = (args.workdir or Path("/tmp/sme2tui-etdump-bench")).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        paths = _make_traces(workdir, [int(s) for s in args.sizes.split(",")])
    rows = measure(paths, max(1, args.repeat), args.inspector_max_events, max(0, args.inspector_repeat))
    rows.sort(key=lambda r: r["events"])
    return _write(rows, args)


def _write(rows: list[dict[str, Any]], args: argparse.Namespace) -> int:
    checks = check(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    report = markdown(rows, checks, args)
    (args.out / "etdump_read.md").write_text(report + "\n")
    (args.out / "etdump_read.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "etdump_read.svg").write_text(svg(rows))
    print("\n" + report)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
