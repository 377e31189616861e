"""The short human summary `--auto` ends with (plain text; stderr)."""

from __future__ import annotations

from typing import Any

from sme2tui.report.markdown import emulated_line, headline

GOOD_MEASURED = ("numerics pass, CV < 5%, an interval that excludes 1.0; with SME2, CONV/GEMM shrink and data "
                 "movement becomes the next bottleneck")
# Emulated time is not hardware time: what proves the run is which kernels ran and that they computed right.
GOOD_EMULATED = ("SME2 kernels named on the SME2-on side, none on the SME2-off side, numerics pass (on vs off and "
                 "vs eager); emulated milliseconds are not hardware time and are never a speedup")


def good_looks_like(summary: dict[str, Any]) -> str:
    """What a good result of this run's kind looks like, in one line."""
    return GOOD_EMULATED if summary.get("emulated") or summary.get("target") == "emulated" else GOOD_MEASURED


def human_summary(summary: dict[str, Any], run_dir: str, report_path: str) -> str:
    comparison = summary["comparison"]
    lines = ["", f"Result ({comparison['label']}):"]
    for pair in (summary.get("emulated") or {}).get("pairs", []):
        lines.append("  " + emulated_line(pair))
    for pair in summary["pairs"]:
        lines.append("  " + headline(pair, comparison, summary.get("cells")).replace("**", ""))
        if pair.get("bottleneck_note"):
            lines.append(f"  where the time goes: {pair['bottleneck_note']}")
    if not summary["pairs"] and not summary.get("emulated"):
        for cell in summary["cells"].values():
            lat = cell["latency"]
            lines.append(f"  {cell['cell_id']}: median {lat['median']:.3f} ms over {lat['n']} iterations "
                         f"(CV {lat['cv']:.1%})")
    if comparison.get("note"):
        lines.append(f"  note: {comparison['note']}")
    if not comparison.get("is_sme2"):
        ref = summary["reference"]
        figures = ", ".join(f"{r['dtype']} {r['sme2_off']}→{r['sme2_on']} ms ({r['speedup']}×)" for r in ref["latency"])
        lines.append(f"  SME2 reference, {ref['label']}: {figures}")
    warnings = summary.get("warnings", [])
    if warnings:
        lines.append(f"  {len(warnings)} warning(s), first: {warnings[0]}")
    lines += [
        f"  good looks like: {good_looks_like(summary)}",
        f"  run folder: {run_dir}",
        f"  report:     {report_path}",
    ]
    return "\n".join(lines)
