"""Two runs side by side (`sme2tui compare RUN_A RUN_B`): the same cells before and after a change —
another machine, another ExecuTorch, another model revision."""

from __future__ import annotations

from typing import Any

from sme2tui.analysis.stats import speedup


def _key(cell: dict[str, Any]) -> tuple[str, str, str, int]:
    return (cell["model"], cell["dtype"], cell["variant"], int(cell["threads"]))


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    cells_a = {_key(c): c for c in a["cells"].values()}
    cells_b = {_key(c): c for c in b["cells"].values()}
    rows = []
    for key in [k for k in cells_a if k in cells_b]:
        ca, cb = cells_a[key], cells_b[key]
        s = speedup(ca["latencies_ms"], cb["latencies_ms"])
        rows.append({
            "model": key[0], "dtype": key[1], "variant": key[2], "threads": key[3],
            "a_median_ms": ca["latency"]["median"], "b_median_ms": cb["latency"]["median"],
            "a_iterations": ca["latency"]["n"], "b_iterations": cb["latency"]["n"],
            "b_vs_a": s.to_dict(),
            "categories_ms": {k: {"a": ca["categories_ms"].get(k), "b": cb["categories_ms"].get(k)}
                              for k in ca["categories_ms"]} if ca["categories_ms"] and cb["categories_ms"] else {},
        })
    pairs_b = {(p["model"], p["dtype"], p["threads"]): p for p in b.get("pairs", [])}
    pairs = [{"model": p["model"], "dtype": p["dtype"], "threads": p["threads"],
              "a_speedup": p["speedup"], "b_speedup": pairs_b[(p["model"], p["dtype"], p["threads"])]["speedup"]}
             for p in a.get("pairs", []) if (p["model"], p["dtype"], p["threads"]) in pairs_b]
    return {
        "a": a["run"], "b": b["run"],
        "statistic": "b_vs_a = median(A) / median(B) over each run's measured iterations, 95% bootstrap interval; "
                     "> 1 means B is faster",
        "cells": rows,
        "only_in_a": ["/".join(map(str, k)) for k in cells_a if k not in cells_b],
        "only_in_b": ["/".join(map(str, k)) for k in cells_b if k not in cells_a],
        "pairs": pairs,
    }


def render_comparison(result: dict[str, Any]) -> str:
    lines = [f"A = {result['a']}", f"B = {result['b']}", f"statistic: {result['statistic']}", ""]
    header = f"{'model':<18} {'dtype':<13} {'variant':<12} {'thr':>3} {'A ms':>10} {'B ms':>10}  B vs A"
    lines.append(header)
    for r in result["cells"]:
        s = r["b_vs_a"]
        lines.append(f"{r['model']:<18} {r['dtype']:<13} {r['variant']:<12} {r['threads']:>3} "
                     f"{r['a_median_ms']:>10.3f} {r['b_median_ms']:>10.3f}  {s['value']:.2f}× "
                     f"({s['ci_low']:.2f}–{s['ci_high']:.2f}, {s['verdict']})")
    for p in result["pairs"]:
        lines.append(f"pair {p['model']}/{p['dtype']}/t{p['threads']}: speedup {p['a_speedup']['value']:.2f}× in A, "
                     f"{p['b_speedup']['value']:.2f}× in B")
    if result["only_in_a"] or result["only_in_b"]:
        lines.append(f"not compared: only in A {result['only_in_a']}, only in B {result['only_in_b']}")
    return "\n".join(lines)
