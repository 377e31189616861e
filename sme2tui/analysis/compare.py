"""A pair of variants compared: speedup with its interval, per category and per operator, and where the
bottleneck moved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sme2tui.analysis.categorize import ALL_BUCKETS
from sme2tui.analysis.cell import CellAnalysis
from sme2tui.analysis.stats import Speedup, speedup


@dataclass
class OperatorDelta:
    instruction_id: int
    name: str
    category: str
    baseline_ms: float
    candidate_ms: float
    saved_ms: float
    speedup: float | None  # None when the candidate time is below the counters' resolution


@dataclass
class PairComparison:
    model: str
    dtype: str
    threads: int
    baseline: str
    candidate: str
    baseline_cell: str
    candidate_cell: str
    baseline_median_ms: float
    candidate_median_ms: float
    speedup: Speedup
    statistic: str
    categories: dict[str, dict[str, float | None]] = field(default_factory=dict)
    operators_matched: int = 0
    top_gains: list[OperatorDelta] = field(default_factory=list)
    bottleneck_before: str = ""
    bottleneck_after: str = ""
    bottleneck_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["speedup"] = self.speedup.to_dict()
        return data


def _dominant(categories: dict[str, float]) -> tuple[str, float]:
    real = {k: v for k, v in categories.items() if k != "OVERHEAD"}
    if not real:
        return "", 0.0
    name = max(real, key=lambda k: real[k])
    total = sum(max(v, 0.0) for v in categories.values())
    return name, real[name] / total if total else 0.0


def compare_cells(base: CellAnalysis, cand: CellAnalysis, *, seed: int = 0) -> PairComparison:
    result = PairComparison(
        model=base.model, dtype=base.dtype, threads=base.threads, baseline=base.variant, candidate=cand.variant,
        baseline_cell=base.cell_id, candidate_cell=cand.cell_id,
        baseline_median_ms=base.latency.median, candidate_median_ms=cand.latency.median,
        speedup=speedup(base.latencies_ms, cand.latencies_ms, seed=seed),
        statistic=(f"ratio of medians over {base.latency.n} ({base.variant}) and {cand.latency.n} "
                   f"({cand.variant}) measured iterations; 95% percentile-bootstrap interval"),
    )
    if base.categories_ms and cand.categories_ms:
        for bucket in ALL_BUCKETS:
            b, c = base.categories_ms.get(bucket, 0.0), cand.categories_ms.get(bucket, 0.0)
            result.categories[bucket] = {
                "baseline_ms": b, "candidate_ms": c, "saved_ms": b - c,
                "speedup": (b / c) if c > 1e-6 and b > 0 else None,
            }
        before, before_share = _dominant(base.categories_ms)
        after, after_share = _dominant(cand.categories_ms)
        overhead = cand.categories_ms.get("OVERHEAD", 0.0)
        if overhead > max(v for k, v in cand.categories_ms.items() if k != "OVERHEAD"):
            result.bottleneck_note = (
                f"OVERHEAD (time outside any operator: runtime dispatch, delegate entry) is the largest part of "
                f"{cand.variant} ({overhead / cand.latency.median:.0%}); the model is small enough that "
                f"per-call costs matter more than kernels")
            result.bottleneck_before, result.bottleneck_after = before, "OVERHEAD"
            return _with_operators(result, base, cand)
        result.bottleneck_before, result.bottleneck_after = before, after
        if before and after and before != after:
            result.bottleneck_note = (
                f"the bottleneck moved: {before} dominated {base.variant} ({before_share:.0%}), "
                f"{after} dominates {cand.variant} ({after_share:.0%}) — look at {after} next")
        elif after:
            result.bottleneck_note = (f"{after} dominates both sides ({before_share:.0%} → {after_share:.0%}); "
                                      f"it is still the place to look")
    return _with_operators(result, base, cand)


def _with_operators(result: PairComparison, base: CellAnalysis, cand: CellAnalysis) -> PairComparison:
    base_ops = {(o.instruction_id, o.name): o for o in base.operators}
    deltas = []
    for op in cand.operators:
        other = base_ops.get((op.instruction_id, op.name))
        if other is None:
            continue
        ratio = other.median_ms / op.median_ms if op.median_ms >= 0.001 else None
        deltas.append(OperatorDelta(op.instruction_id, op.name, op.category, other.median_ms, op.median_ms,
                                    other.median_ms - op.median_ms, ratio))
    result.operators_matched = len(deltas)
    result.top_gains = sorted(deltas, key=lambda d: d.saved_ms, reverse=True)[:10]
    return result
