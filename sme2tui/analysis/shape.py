"""Compare a run's *shape* with the committed known-good reference run (runs/reference/).

Absolute times differ from machine to machine; the shape should not: which side is faster, which
category dominates each side, roughly how the time splits. Each aspect becomes a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sme2tui.events import Checkpoint

REFERENCE_RUN = Path(__file__).resolve().parent.parent / "data" / "reference_run"
SHARE_TOLERANCE = 0.20  # absolute difference in a category's share of the total


def load_reference_summary(path: Path = REFERENCE_RUN) -> dict[str, Any] | None:
    summary = path / "analysis" / "summary.json"
    return json.loads(summary.read_text()) if summary.is_file() else None


def _shares(categories: dict[str, float]) -> dict[str, float]:
    total = sum(max(v, 0.0) for v in categories.values())
    return {k: max(v, 0.0) / total for k, v in categories.items()} if total else {}


def _key(cell: dict[str, Any]) -> tuple[str, str, str]:
    return (cell["model"], cell["dtype"], cell["variant"])


def compare_shape(summary: dict[str, Any], reference: dict[str, Any]) -> list[Checkpoint]:
    ref_cells = {_key(c): c for c in reference["cells"].values()}
    checks: list[Checkpoint] = []
    matched = [(c, ref_cells[_key(c)]) for c in summary["cells"].values() if _key(c) in ref_cells]
    if not matched:
        return [Checkpoint("analyze", "matches reference run", "skip",
                           "no cell of this run has the reference run's model/dtype/variant "
                           f"({', '.join('/'.join(k) for k in ref_cells)})",
                           "run the quickstart config to compare with the reference")]
    for cell, ref in matched:
        if not (cell["categories_ms"] and ref["categories_ms"]):
            continue
        mine, theirs = _shares(cell["categories_ms"]), _shares(ref["categories_ms"])
        top_mine = max((k for k in mine if k != "OVERHEAD"), key=lambda k: mine[k])
        top_ref = max((k for k in theirs if k != "OVERHEAD"), key=lambda k: theirs[k])
        off = {k: mine.get(k, 0) - theirs.get(k, 0) for k in theirs if abs(mine.get(k, 0) - theirs.get(k, 0))
               > SHARE_TOLERANCE}
        ok = top_mine == top_ref and not off
        detail = (f"dominant category {top_mine} ({mine[top_mine]:.0%}) vs reference {top_ref} "
                  f"({theirs[top_ref]:.0%})")
        if off:
            detail += "; shares that differ by more than 20 points: " + ", ".join(
                f"{k} {v:+.0%}" for k, v in off.items())
        checks.append(Checkpoint("analyze", "matches reference run", "pass" if ok else "warn", detail,
                                 "" if ok else "a different shape on another CPU can be real; on the same kind "
                                 "of machine it points at a config or environment difference",
                                 subject=cell["cell_id"]))
    ref_pairs = {(p["model"], p["dtype"]): p for p in reference.get("pairs", [])}
    for pair in summary.get("pairs", []):
        ref = ref_pairs.get((pair["model"], pair["dtype"]))
        if ref is None:
            continue
        same = pair["speedup"]["verdict"] == ref["speedup"]["verdict"]
        checks.append(Checkpoint(
            "analyze", "speedup direction as reference", "pass" if same else "warn",
            f"{pair['candidate']} vs {pair['baseline']}: {pair['speedup']['verdict']} "
            f"{pair['speedup']['value']:.2f}× here, "
            f"reference {ref['speedup']['verdict']} {ref['speedup']['value']:.2f}×",
            "" if same else "check the variants and runners match the reference config", subject=pair["model"]))
    return checks
