"""`sme2tui analyze FILE.etdump…`: analyze ETDumps from any runner (ours, upstream executor_runner, other
people's), without a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sme2tui.analysis.categorize import Categorizer
from sme2tui.analysis.cell import CellAnalysis, analyze_trace
from sme2tui.analysis.stats import first_iteration_outlier, noise_warnings, summarize
from sme2tui.etdump import read_etdump


def analyze_etdump_file(path: Path, *, warmup: int, categorizer: Categorizer) -> CellAnalysis:
    trace = read_etdump(path)
    totals, categories, rows, unknown, warnings = analyze_trace(trace, warmup, None, categorizer, path.name)
    analysis = CellAnalysis(
        cell_id=path.name, model=path.stem, dtype="?", variant=path.stem, threads=0, source="etdump",
        warmup_dropped=warmup, latency=summarize(totals), latencies_ms=totals, categories_ms=categories,
        operators=rows, unknown_names=unknown, kleidiai_seen=any(r.kleidiai for r in rows),
    )
    analysis.warnings = warnings + noise_warnings(path.name, analysis.latency)
    if first_iteration_outlier(totals):
        analysis.warnings.append(f"{path.name}: first measured iteration is an outlier; pass --warmup N")
    return analysis


def render_file_analysis(a: CellAnalysis) -> str:
    lat = a.latency
    lines = [f"{a.cell_id}: median {lat.median:.3f} ms (p10 {lat.p10:.3f}, p90 {lat.p90:.3f}, CV {lat.cv:.1%}) "
             f"over {lat.n} iterations after dropping {a.warmup_dropped} warmup"]
    total = lat.median
    for bucket, ms in a.categories_ms.items():
        lines.append(f"  {bucket:<14} {ms:>10.3f} ms  {ms / total:>6.1%}" if total else f"  {bucket} {ms:.3f}")
    lines.append("  top operators (median ms, (instruction id) name):")
    for op in a.operators[:8]:
        lines.append(f"    {op.median_ms:>9.3f}  ({op.instruction_id}) {op.name} [{op.category}]")
    lines += [f"  ! {w}" for w in a.warnings]
    if a.unknown_names:
        lines.append(f"  unknown names counted as OTHER: {', '.join(a.unknown_names)}")
    return "\n".join(lines)


def file_summary(a: CellAnalysis) -> dict[str, Any]:
    data = a.to_dict()
    data["statistic"] = "Method::execute per iteration, warmup dropped; categories = medians, OVERHEAD residual"
    return data
