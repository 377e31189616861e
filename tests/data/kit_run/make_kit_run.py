"""Write a run folder in the layout of Arm's SME2 ExecuTorch profiling kit, with real ETDumps from our runner.

    python tests/data/kit_run/make_kit_run.py RUNNER OUT_DIR

RUNNER is sme2tui's native host runner (`sme2tui build host`); it takes upstream executor_runner's flags,
so it is driven exactly as the kit drives executor_runner (its `perf_runner.py`): a warmup process
(`--num_executions WARMUP`, output discarded), then a fresh measured process (`--num_executions RUNS
--cpu_threads N --etdump_path <stem>_<experiment>_t<N>.etdump`) whose stdout is the latency log. The CSVs,
robust-stats JSON, pipeline summary and report are written here in the kit's formats (file names and
columns as the kit's orchestrator, etdump_to_csv.py and robust_latency_analysis.py write them); none of the
kit's code is used. See README.md for what is real and what is hand-written.

torch and executorch are imported inside `export()` only.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STEM = "toy_cnn_xnnpack_fp32"
RUNS = 10
WARMUP = 1
THREADS = (1, 2)
TIMED = ("mac_sme2_on", "mac_sme2_off")
TRACES = ("mac_sme2_on_trace", "mac_sme2_off_trace")
TIMELINE_COLUMNS = ["model_id", "name", "type", "delegate_backend", "start_us", "end_us", "duration_ms",
                    "pct_total", "node_id", "run_index", "block"]


def export(out: Path) -> Path:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    class ToyCnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
            self.fc = torch.nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv2(torch.relu(self.conv1(x))))
            out: torch.Tensor = self.fc(y.mean(dim=(2, 3)))
            return out

    torch.manual_seed(0)
    program = to_edge_transform_and_lower(torch.export.export(ToyCnn().eval(), (torch.randn(1, 3, 64, 64),)),
                                          partitioner=[XnnpackPartitioner()]).to_executorch()
    pte = out / f"{STEM}.pte"
    pte.parent.mkdir(parents=True, exist_ok=True)
    pte.write_bytes(program.buffer)
    return pte


def _base_type(name: str) -> str:
    return name.rsplit(" #", 1)[0] if " #" in name else name


def write_csvs(etdump: Path, out: Path) -> list[float]:
    """The kit's `<stem>_exec_all_runs_timeline.csv`, `_exec_run0_timeline.csv`, `_exec_ops_stats.csv`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from sme2tui.etdump import read_etdump

    trace = read_etdump(etdump)
    model_id = etdump.stem
    rows: list[dict[str, Any]] = []
    for it in trace.iterations:
        block = [e for e in it.events]
        total = sum(e.duration for e in block) / 1e6
        for node, e in enumerate(block):
            ms = e.duration / 1e6
            rows.append({"model_id": model_id, "name": e.name, "type": _base_type(e.name),
                         "delegate_backend": "XnnpackBackend" if e.kind == "delegated_op" else "portable",
                         "start_us": e.start / 1e3, "end_us": e.start / 1e3 + ms * 1e3, "duration_ms": ms,
                         "pct_total": ms / total * 100 if total else 0.0, "node_id": node, "run_index": it.index,
                         "block": "Execute"})
    for name, keep in ((f"{etdump.stem}_exec_all_runs_timeline.csv", rows),
                       (f"{etdump.stem}_exec_run0_timeline.csv", [r for r in rows if r["run_index"] == 0])):
        with (out / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=TIMELINE_COLUMNS)
            writer.writeheader()
            writer.writerows(keep)
    per_type: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        per_type.setdefault((r["type"], r["delegate_backend"]), []).append(r["duration_ms"])
    grand = sum(sum(v) / RUNS for v in per_type.values())
    with (out / f"{etdump.stem}_exec_ops_stats.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model_id", "name", "type", "delegate_backend", "count", "total_ms", "avg_ms", "pct_total"])
        for (kind, backend), values in sorted(per_type.items(), key=lambda kv: -sum(kv[1])):
            count = max(1, len(values) // RUNS)
            per_run = sum(values) / RUNS
            writer.writerow([model_id, kind, kind, backend, count, per_run, per_run / count,
                             per_run / grand * 100 if grand else 0.0])
    return [it.total / 1e6 for it in trace.iterations]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def robust_stats(latencies: list[float], name: str) -> dict[str, Any]:
    """The keys of the kit's robust_latency_analysis.py (every run counted, the cold first one included)."""
    mean, median = statistics.fmean(latencies), statistics.median(latencies)
    std = statistics.stdev(latencies)
    q1, q3 = _pct(latencies, 25), _pct(latencies, 75)
    lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    clean = [v for v in latencies if lower <= v <= upper]
    outliers = [v for v in latencies if v < lower or v > upper]
    return {"count": len(latencies), "mean_ms": mean, "median_ms": median, "std_dev_ms": std,
            "cv_percent": std / mean * 100, "min_ms": min(latencies), "max_ms": max(latencies),
            "percentiles": {f"p{q}": _pct(latencies, q) for q in (50, 75, 90, 95, 99)},
            "outliers": {"count": len(outliers), "percentage": len(outliers) / len(latencies) * 100,
                         "values": outliers, "bounds": {"lower": lower, "upper": upper}},
            "trimmed_mean_5_ms": mean, "trimmed_mean_10_ms": statistics.fmean(sorted(latencies)[1:-1]),
            "robust_stats": {"count": len(clean), "mean_ms": statistics.fmean(clean),
                             "median_ms": statistics.median(clean), "std_dev_ms": statistics.stdev(clean),
                             "cv_percent": statistics.stdev(clean) / statistics.fmean(clean) * 100},
            "latencies_ms": latencies, "run_indices": list(range(len(latencies))), "name": name}


def run_timed(runner: Path, pte: Path, out: Path, experiment: str, threads: int) -> dict[str, Any]:
    prefix = f"{STEM}_{experiment}_t{threads}"
    # The kit's warmup: a separate process whose output is thrown away.
    subprocess.run([str(runner), "--model_path", str(pte), "--num_executions", str(WARMUP), "--cpu_threads",
                    str(threads)], check=True, capture_output=True)
    etdump = out / f"{prefix}.etdump"
    log = out / f"{prefix}_latency.log"
    start = time.time()
    with log.open("w") as handle:
        subprocess.run([str(runner), "--model_path", str(pte), "--num_executions", str(RUNS), "--cpu_threads",
                        str(threads), "--etdump_path", str(etdump)], check=True, stdout=handle,
                       stderr=subprocess.STDOUT)
    wall = time.time() - start
    text = log.read_text()
    runner_ms = float(text.split(" in ")[1].split(" ms")[0])
    with log.open("a") as handle:
        handle.write("\n=========================================\nPERFORMANCE SUMMARY\n"
                     "=========================================\n"
                     f"Experiment:              {experiment}\nModel:                   {pte.name}\n"
                     f"Warmup Iterations:       {WARMUP}\nExecution Iterations:    {RUNS}\n"
                     f"Execution Total Wall:    {wall:.6f}s\nExecution Total Runner:  {runner_ms / 1000:.6f}s\n"
                     f"Avg Wall/Run:            {wall / RUNS:.6f}s\nAvg Runner/Run:          "
                     f"{runner_ms / 1000 / RUNS:.6f}s\nCPU Threads:             {threads}\n"
                     f"Quiet Runner:            executor_runner\n"
                     f"Model Size:              {pte.stat().st_size / 1024 / 1024:.1f} MB\n"
                     f"Execution ETDump Path:   {etdump}\n=========================================\n"
                     "Guidance: Wall timing includes process overhead. Runner timing is more accurate for model "
                     "execution time.\n")
    latencies = write_csvs(etdump, out)
    timeline = out / f"{prefix}_exec_all_runs_timeline.csv"
    stats = robust_stats(latencies, f"{experiment}_t{threads}")
    (out / f"{timeline.stem}_robust_stats.json").write_text(json.dumps(stats, indent=2))
    return {"experiment": experiment, "threads": threads, "mode": "timing", "status": "ok",
            "paths": {"latency_log": str(log), "timeline_all": str(timeline),
                      "timeline_run0": str(out / f"{prefix}_exec_run0_timeline.csv"), "etdump": str(etdump)},
            "metrics": {"median_ms": stats["median_ms"], "mean_ms": stats["mean_ms"],
                        "cv_percent": stats["cv_percent"],
                        "robust_stats_path": str(out / f"{timeline.stem}_robust_stats.json")},
            "runs": RUNS, "warmup": WARMUP}


def main(runner: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    artifacts = out.parent.parent / "artifacts"
    pte = export(artifacts)
    results = [run_timed(runner, pte, out, e, t) for e in TIMED for t in THREADS]
    for trace in TRACES:
        # Hand-written (see README.md): this machine has no log-enabled XNNPACK build.
        (out / f"{STEM}_{trace}_t1_xnntrace.log").write_text(
            "Using convolution microkernel 'xnn_f32_igemm_minmax_ukernel_4x8__avx2_broadcast'\n"
            "Using fully connected microkernel 'xnn_f32_gemm_minmax_ukernel_1x8__avx2_broadcast'\n")
        results.append({"experiment": trace, "threads": 1, "mode": "xnntrace", "status": "ok",
                        "paths": {"xnntrace_log": str(out / f"{STEM}_{trace}_t1_xnntrace.log")}, "metrics": {},
                        "runs": 1, "warmup": 0})
    summary = {"model": f"artifacts/{pte.name}",  # as the config gave it, relative to where the kit ran
               "generated_at": datetime.now(UTC).isoformat(), "output_root": str(out), "runs": results}
    (out / f"{STEM}_pipeline_summary.json").write_text(json.dumps(summary, indent=2))
    lines = [f"# Pipeline Summary – {STEM}", "", f"- Generated: {summary['generated_at']}",
             f"- Output root: `{out}`", "", "## Timing Results",
             "| Experiment | Threads | Runs | Warmup | Median (ms) | Mean (ms) | CV (%) | Robust Stats |",
             "|-----------|---------|------|--------|-------------|-----------|--------|---------------|"]
    for r in results:
        if r["mode"] == "timing":
            m = r["metrics"]
            lines.append(f"| {r['experiment']} | {r['threads']} | {r['runs']} | {r['warmup']} | {m['median_ms']:.2f} | "
                         f"{m['mean_ms']:.2f} | {m['cv_percent']:.2f} | `{m['robust_stats_path']}` |")
    (out / f"{STEM}_pipeline_summary.md").write_text("\n".join(lines) + "\n")
    on, off = (next(r for r in results if r["experiment"] == e and r["threads"] == 1) for e in TIMED)
    # The kit writes this for every entry of analysis.compare_pairs (toy_cnn_run.json has one: off vs on, t1).
    base, cand = Path(off["paths"]["timeline_all"]), Path(on["paths"]["timeline_all"])
    b, c = (json.loads(Path(r["metrics"]["robust_stats_path"]).read_text()) for r in (off, on))
    ratio = b["robust_stats"]["median_ms"] / c["robust_stats"]["median_ms"]
    (out / f"{base.stem}_vs_{cand.stem}_robust_comparison.json").write_text(json.dumps({
        "config1": {"name": "mac_sme2_off", "median_ms": b["robust_stats"]["median_ms"],
                    "trimmed_mean_ms": b["trimmed_mean_5_ms"], "cv_percent": b["robust_stats"]["cv_percent"],
                    "count": b["count"]},
        "config2": {"name": "mac_sme2_on", "median_ms": c["robust_stats"]["median_ms"],
                    "trimmed_mean_ms": c["trimmed_mean_5_ms"], "cv_percent": c["robust_stats"]["cv_percent"],
                    "count": c["count"]},
        "speedup": {"median_based": ratio, "trimmed_mean_based": b["trimmed_mean_5_ms"] / c["trimmed_mean_5_ms"],
                    "description": f"mac_sme2_on is {ratio:.2f}x faster than mac_sme2_off" if ratio > 1 else
                    f"mac_sme2_off is {1 / ratio:.2f}x faster than mac_sme2_on"}}, indent=2))
    speed = off["metrics"]["median_ms"] / on["metrics"]["median_ms"]
    (out / "report.md").write_text(
        f"# Profiling Report: {STEM}\n\n## Latency Comparison (SME2-On vs SME2-Off)\n\n"
        "| Metric | SME2-On | SME2-Off | Speedup |\n|--------|---------|----------|---------|\n"
        f"| **Median Latency** | {on['metrics']['median_ms']:.3f} ms | {off['metrics']['median_ms']:.3f} ms | "
        f"{speed:.2f}x |\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
