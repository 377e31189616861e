"""Benchmark: sme2tui's ETDump reader against ExecuTorch's Inspector on a ~200k-event real ETDump.

    /work/venv/bin/python benchmarks/etdump_read.py [--events 200000] [--etdump PATH] [--workdir DIR]
                                                    [--repeat 3] [--with-etrecord]

1. Makes the trace (unless --etdump is given): exports a small model with ~100 profiled events per
   execution (a chain of Linear/ReLU/Add delegated to XNNPACK, split every 8 blocks by a cumsum that
   runs as a portable kernel, so it has DELEGATE_CALL, XNNPACK-internal, OPERATOR_CALL and native_call
   events), runs it with ExecuTorch's Python runtime until the ETDump holds --events profile events,
   and writes the ETDump once. Takes ~20 s; with --workdir the trace is kept and reused next time.
2. Measures `read_etdump(path)` and `Inspector(etdump_path=path)` each in a fresh subprocess: wall time
   of the call, peak RSS of the process (getrusage ru_maxrss, the kernel's high-water mark) and RSS
   after imports (so the import cost of torch, which Inspector needs, can be told apart).
3. Checks both saw the same number of events, prints the numbers and the ratios, and exits 1 if the
   targets (>= 10x faster, <= 1/5 of the peak memory) are missed.

Inspector is measured without an ETRecord by default: that is the cheapest Inspector construction,
so the ratios are conservative (--with-etrecord adds the ETRecord, as the analysis would).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SPEEDUP_TARGET = 10.0
MEMORY_TARGET = 5.0


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


def child_reader(etdump: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from sme2tui.etdump import read_etdump

    after_imports = _rss_now_mb()
    begin = time.perf_counter()
    trace = read_etdump(etdump)
    seconds = time.perf_counter() - begin
    return {
        "seconds": seconds,
        "peak_mb": _peak_rss_mb(),
        "imports_mb": after_imports,
        "events": trace.event_count,
        "iterations": len(trace.iterations),
    }


def child_inspector(etdump: str, etrecord: str | None) -> dict[str, Any]:
    import warnings

    from executorch.devtools import Inspector

    after_imports = _rss_now_mb()
    begin = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Output Buffer not found": there is no debug buffer
        inspector = Inspector(etdump_path=etdump, etrecord=etrecord)
    seconds = time.perf_counter() - begin
    events = sum(
        len(event.perf_data.raw)
        for block in inspector.event_blocks
        for event in block.events
        if event.perf_data is not None
    )
    return {"seconds": seconds, "peak_mb": _peak_rss_mb(), "imports_mb": after_imports, "events": events}


def child_make(workdir: str, events: int) -> dict[str, Any]:
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
        torch.export.export(Chain().eval(), (x,)), partitioner=[XnnpackPartitioner()], generate_etrecord=True
    ).to_executorch()
    pte = out / "chain.pte"
    pte.write_bytes(lowered.buffer)
    lowered.get_etrecord().save(str(out / "chain.etrecord"))

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
    per_execution = len(probe_trace.iterations[0].events)
    load_events = len(probe_trace.load_events)
    executions = max(1, math.ceil((events - load_events) / per_execution))
    run(executions, out / "chain.etdp")
    return {"per_execution": per_execution, "executions": executions}


# --- parent ------------------------------------------------------------------------------------


def _spawn(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"child {args[0]} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _make_trace(workdir: Path, events: int) -> Path:
    etdump = workdir / "chain.etdp"
    stamp = workdir / "chain.events"
    if etdump.exists() and stamp.exists() and stamp.read_text().strip() == str(events):
        print(f"reusing {etdump}")
        return etdump
    print(f"making a ~{events}-event ETDump in {workdir} (export + run, ~20 s) ...", flush=True)
    made = _spawn("make", str(workdir), str(events))
    print(f"  {made['per_execution']} events per execution x {made['executions']} executions")
    stamp.write_text(f"{events}\n")
    return etdump


def _fmt_mb(value: float | None) -> str:
    return f"{value:8.0f}" if value is not None else "       ?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="profile events in the made trace")
    parser.add_argument("--etdump", type=Path, help="measure this ETDump instead of making one")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the made trace here")
    parser.add_argument("--repeat", type=int, default=3, help="reader runs (best time, highest peak)")
    parser.add_argument("--with-etrecord", action="store_true", help="give Inspector the ETRecord too")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        if kind == "reader":
            result = child_reader(rest[0])
        elif kind == "inspector":
            result = child_inspector(rest[0], rest[1] if len(rest) > 1 else None)
        else:
            result = child_make(rest[0], int(rest[1]))
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(prefix="etdump-bench-") as scratch:
        if args.etdump:
            etdump = args.etdump.resolve()
        else:
            workdir = args.workdir.resolve() if args.workdir else Path(scratch)
            workdir.mkdir(parents=True, exist_ok=True)
            etdump = _make_trace(workdir, args.events)
        etrecord = etdump.with_suffix(".etrecord")
        if args.with_etrecord and not etrecord.exists():
            raise SystemExit(f"--with-etrecord: {etrecord} does not exist")

        runs = [_spawn("reader", str(etdump)) for _ in range(max(1, args.repeat))]
        ours = {
            "seconds": min(run["seconds"] for run in runs),
            "peak_mb": max(run["peak_mb"] for run in runs),
            "imports_mb": runs[0]["imports_mb"],
            "events": runs[0]["events"],
        }
        theirs = _spawn("inspector", str(etdump), *([str(etrecord)] if args.with_etrecord else []))

    print(
        f"\ntrace: {etdump} ({etdump.stat().st_size / 1e6:.1f} MB, {ours['events']} profile events, "
        f"{runs[0]['iterations']} iterations)"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; reader best of {len(runs)}, Inspector once")
    header = f"{'':28}{'time (s)':>10}{'peak RSS (MB)':>15}{'RSS after imports (MB)':>24}{'peak - imports':>16}"
    print(header)
    for label, row in (
        ("sme2tui.etdump.read_etdump", ours),
        ("Inspector" + (" +ETRecord" if args.with_etrecord else ""), theirs),
    ):
        above = row["peak_mb"] - row["imports_mb"] if row["imports_mb"] is not None else None
        print(
            f"{label:28}{row['seconds']:10.2f}{_fmt_mb(row['peak_mb']):>15}"
            f"{_fmt_mb(row['imports_mb']):>24}{_fmt_mb(above):>16}"
        )
    if ours["events"] != theirs["events"]:
        print(f"MISMATCH: the reader saw {ours['events']} events, Inspector {theirs['events']}")
        return 1
    speedup = theirs["seconds"] / ours["seconds"]
    memory = theirs["peak_mb"] / ours["peak_mb"]
    print(f"\nInspector / reader: time {speedup:.1f}x, peak RSS {memory:.1f}x", end="")
    if ours["imports_mb"] is not None and theirs["imports_mb"] is not None:
        above = (theirs["peak_mb"] - theirs["imports_mb"]) / (ours["peak_mb"] - ours["imports_mb"])
        print(f", peak above imports {above:.1f}x")
    else:
        print()
    speed_ok, memory_ok = speedup >= SPEEDUP_TARGET, memory >= MEMORY_TARGET
    print(f"target >= {SPEEDUP_TARGET:.0f}x faster: {'PASS' if speed_ok else 'FAIL'}")
    print(f"target <= 1/{MEMORY_TARGET:.0f} of Inspector's peak memory: {'PASS' if memory_ok else 'FAIL'}")
    return 0 if speed_ok and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
