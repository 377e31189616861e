"""Analysis of one cell: latency per iteration, category breakdown, and the per-operator table.

Statistic conventions (said again in every report):
* Latency: `Method::execute` per measured iteration from the ETDump (warmup excluded); for timing-only
  runs, the runner's own wall-clock per iteration.
* Categories: per iteration, leaf events are summed per category; each category's median is reported;
  OVERHEAD = median end-to-end − Σ category medians, so the bars add up to the median latency exactly.
  Wrappers (DELEGATE_CALL, OPERATOR_CALL) and the total are never summed with their children.
* Operators: keyed by (instruction id, name); median over measured iterations.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme2tui.analysis.aggregate import sample_traces
from sme2tui.analysis.categorize import ALL_BUCKETS, OVERHEAD, Categorizer, kernel_info
from sme2tui.analysis.plausibility import (
    RERUN,
    check_against_wall,
    check_iteration_count,
    check_latencies,
    check_operators_fit,
)
from sme2tui.analysis.stats import Summary, first_iteration_outlier, noise_warnings, summarize
from sme2tui.analysis.timing_file import read_timing
from sme2tui.errors import AnalysisError
from sme2tui.etdump import read_etdump

if TYPE_CHECKING:
    from sme2tui.etdump import EtdumpTrace

NS_PER_MS = 1e6
# XNNPACK's internal counters tick in whole microseconds: below this an operator time is mostly rounding.
RESOLUTION_MS = 0.001


@dataclass
class OperatorRow:
    instruction_id: int
    name: str
    category: str
    known: bool
    delegated: bool
    kernel: str
    kleidiai: bool
    median_ms: float
    mean_ms: float
    share: float  # of the median end-to-end latency
    occurrences: int  # iterations in which it appeared

    @property
    def key(self) -> str:
        return f"{self.instruction_id}:{self.name}"


@dataclass
class CellAnalysis:
    cell_id: str
    model: str
    dtype: str
    variant: str
    threads: int
    source: str  # "etdump" or "timing"
    warmup_dropped: int
    latency: Summary
    latencies_ms: list[float]
    wall: Summary | None = None
    categories_ms: dict[str, float] = field(default_factory=dict)
    operators: list[OperatorRow] = field(default_factory=list)
    unknown_names: list[str] = field(default_factory=list)
    kleidiai_seen: bool = False
    sub_resolution_ops: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["operators"] = [asdict(o) for o in self.operators]
        return data


def analyze_trace(trace: EtdumpTrace, warmup: int, expected: int | None, categorizer: Categorizer,
                  label: str) -> tuple[list[float], dict[str, float], list[OperatorRow], list[str], list[str]]:
    """(latencies ms, category medians incl. OVERHEAD, operator rows, unknown names, warnings)."""
    return analyze_traces([(trace, warmup, expected)], categorizer, label)


def analyze_traces(parts: list[tuple[EtdumpTrace, int, int | None]], categorizer: Categorizer,
                   label: str) -> tuple[list[float], dict[str, float], list[OperatorRow], list[str], list[str]]:
    """Like `analyze_trace` over several ETDumps of one cell (one per round): each drops its own warmup,
    then the measured iterations are pooled in round order."""
    warnings: list[str] = []
    for trace, warmup, expected in parts:
        check_iteration_count(trace.iteration_count, warmup, expected, f"{label} ({trace.path.name})",
                              str(trace.path))
    where = str(parts[0][0].path) if len(parts) == 1 else str(parts[0][0].path.parent)
    sample = sample_traces([(trace, warmup) for trace, warmup, _ in parts], categorizer)
    totals = sample.totals_ms
    check_latencies(totals, label, where)
    median_total = statistics.median(totals)
    categories = {c: statistics.median(v) for c, v in sample.category_ms.items()}
    check_operators_fit(sum(categories.values()), median_total, label, where)
    categories[OVERHEAD] = median_total - sum(categories.values())
    if categories[OVERHEAD] < -0.01 * median_total:
        warnings.append(f"{label}: operator times exceed the end-to-end time by "
                        f"{-categories[OVERHEAD]:.3f} ms; the trace may mix runs")
    rows = []
    for op in sample.operators:
        kernel, kleidi = kernel_info(op.name)
        rows.append(OperatorRow(
            instruction_id=op.instruction_id, name=op.name, category=op.category, known=op.known,
            delegated=op.delegated, kernel=kernel, kleidiai=kleidi, median_ms=op.median_ms, mean_ms=op.mean_ms,
            share=op.median_ms / median_total if median_total else 0.0, occurrences=op.occurrences,
        ))
    rows.sort(key=lambda r: r.median_ms, reverse=True)
    return totals, categories, rows, sorted(sample.unknown_names), warnings


def analyze_cell(cell_dir: Path, cell: dict[str, Any], *, warmup: int, iterations: int | None,
                 categorizer: Categorizer) -> CellAnalysis:
    """Analyze one cell folder (`timing.json` and, when profiled, `etdump.etdp`)."""
    cell_id = cell_dir.name
    timing_path = cell_dir / "timing.json"
    timing = read_timing(timing_path)  # bounded, shape-checked: a damaged file is an AnalysisError
    warnings: list[str] = []
    wall = None
    if timing.get("iterations_ns"):
        wall = summarize([v / NS_PER_MS for v in timing["iterations_ns"]])
    rounds = timing.get("rounds") or []
    etdump_path = cell_dir / timing.get("etdump", "etdump.etdp")
    base = {"cell_id": cell_id, "model": cell["model"], "dtype": cell["dtype"], "variant": cell["variant"],
            "threads": int(cell["threads"]), "warmup_dropped": warmup}
    round_dumps = [(cell_dir / r["etdump"], int(r["warmup"]), int(r["iterations"])) for r in rounds if r.get("etdump")]
    if round_dumps and iterations is not None and sum(n for _, _, n in round_dumps) != iterations:
        raise AnalysisError(f"{cell_id}: its rounds add up to {sum(n for _, _, n in round_dumps)} iterations, but the "
                            f"run measured {iterations}: timing.json was edited or is another run's",
                            where=str(timing_path), fix=RERUN)
    # lexists: an ETDump that is a FIFO, a device or a dangling link is refused by the reader, not skipped.
    if round_dumps or os.path.lexists(etdump_path):
        parts: list[tuple[EtdumpTrace, int, int | None]] = (
            [(read_etdump(path), w, n) for path, w, n in round_dumps] if round_dumps
            else [(read_etdump(etdump_path), warmup, iterations)])
        totals, categories, rows, unknown, trace_warnings = analyze_traces(parts, categorizer, cell_id)
        if wall is not None:
            check_against_wall(statistics.median(totals), wall.median, cell_id,
                               str(etdump_path if not round_dumps else cell_dir))
        warnings += trace_warnings
        analysis = CellAnalysis(**base, source="etdump", latency=summarize(totals), latencies_ms=totals, wall=wall,
                                categories_ms=categories, operators=rows, unknown_names=unknown,
                                kleidiai_seen=any(r.kleidiai for r in rows),
                                sub_resolution_ops=sum(1 for r in rows if r.delegated and r.median_ms < RESOLUTION_MS))
    elif wall is not None:
        values = [v / NS_PER_MS for v in timing["iterations_ns"]]
        check_latencies(values, cell_id, str(timing_path))
        analysis = CellAnalysis(**base, source="timing", latency=wall, latencies_ms=values, wall=wall,
                                categories_ms={})
    else:
        raise AnalysisError(f"cell {cell_id} has neither an ETDump nor timings", where=str(cell_dir),
                            fix="re-run the cell: `sme2tui --auto --resume RUN_DIR`")
    warnings += noise_warnings(cell_id, analysis.latency)
    if first_iteration_outlier(analysis.latencies_ms):
        warnings.append(f"{cell_id}: the first measured iteration is an outlier ({analysis.latencies_ms[0]:.3f} ms "
                        f"vs median {analysis.latency.median:.3f} ms); consider more warmup")
    analysis.warnings = warnings
    return analysis


def bucket_order() -> tuple[str, ...]:
    return ALL_BUCKETS
