"""The per-event analysis loop of sme2tui/analysis/cell.py before the columnar rewrite (test oracle)."""

from __future__ import annotations

import statistics
from typing import Any

from sme2tui.analysis.categorize import CATEGORIES, OVERHEAD, Categorizer, kernel_info, normalize_name
from sme2tui.analysis.cell import OperatorRow
from tests.etdump_legacy.model import EtdumpTrace

NS_PER_MS = 1e6


def analyze_traces(parts: list[tuple[EtdumpTrace, int]], categorizer: Categorizer
                   ) -> tuple[list[float], dict[str, float], list[OperatorRow], list[str]]:
    measured: list[tuple[EtdumpTrace, Any]] = []
    for trace, warmup in parts:
        measured += [(trace, it) for it in list(trace.iterations)[warmup:]]
    totals = [it.total / (trace.ticks_per_ns * NS_PER_MS) for trace, it in measured]
    per_category: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    per_operator: dict[tuple[int, str], list[float]] = {}
    meta: dict[tuple[int, str], tuple[bool, str]] = {}
    unknown: set[str] = set()
    for trace, it in measured:
        scale = 1.0 / (trace.ticks_per_ns * NS_PER_MS)
        sums = dict.fromkeys(CATEGORIES, 0.0)
        seen: dict[tuple[int, str], float] = {}
        for event in trace.leaf_events(it):
            ms = event.duration * scale
            result = categorizer.categorize(event.name)
            sums[result.category] += ms
            if not result.known:
                unknown.add(normalize_name(event.name))
            key = (event.instruction_id, event.name)
            seen[key] = seen.get(key, 0.0) + ms
            if key not in meta:
                meta[key] = (event.kind == "delegated_op", result.category)
        for category, value in sums.items():
            per_category[category].append(value)
        for key, value in seen.items():
            per_operator.setdefault(key, []).append(value)
    median_total = statistics.median(totals)
    categories = {c: statistics.median(v) for c, v in per_category.items()}
    categories[OVERHEAD] = median_total - sum(categories.values())
    rows = []
    for (instruction_id, name), values in per_operator.items():
        delegated, category = meta[(instruction_id, name)]
        kernel, kleidi = kernel_info(name)
        median = statistics.median(values)
        rows.append(OperatorRow(
            instruction_id=instruction_id, name=name, category=category,
            known=categorizer.categorize(name).known, delegated=delegated, kernel=kernel, kleidiai=kleidi,
            median_ms=median, mean_ms=statistics.fmean(values),
            share=median / median_total if median_total else 0.0, occurrences=len(values),
        ))
    rows.sort(key=lambda r: r.median_ms, reverse=True)
    return totals, categories, rows, sorted(unknown)
