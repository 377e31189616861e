"""What the Analyze step shows for an emulated run, as functions of the analysis summary (plain dicts from
summary.json's `emulated` block): a panel per variant (its emulated CPU, the SME2/SME kernels that ran, the
instruction counts, its numerics vs eager), the numerics of SME2 on vs off, and the kernel names.

Never a speedup: emulated time is not hardware time (emulated SME is slower than emulated NEON). The published
SME2 figures sit beside the evidence, labelled as published.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

# Checkpoints about the quality of timings. On the emulated target the answer is the evidence, not the time, so
# these stay visible but do not hold Next there (the core already leaves out the noise warnings for it).
TIMING_CHECKS = frozenset({"operator time resolution", "measurement quality", "speedup conclusive"})

MARK = {"pass": ("✓ ", "green"), "warn": ("! ", "yellow"), "fail": ("✗ ", "bold red"), "skip": ("– ", "dim")}
LABEL = "emulated: evidence, not speed"


def evidence_pairs(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The emulated pairs (baseline, candidate), or each evidenced cell alone when the run has no pair."""
    emulated = summary.get("emulated") or {}
    pairs: list[dict[str, Any]] = list(emulated.get("pairs") or [])
    if pairs:
        return pairs
    cells = summary.get("cells") or {}
    alone = []
    for cell_id, evidence in (emulated.get("cells") or {}).items():
        cell = cells.get(cell_id, {})
        alone.append({"model": cell.get("model", cell_id), "dtype": cell.get("dtype", "?"),
                      "threads": cell.get("threads", 1), "candidate": cell.get("variant", cell_id),
                      "candidate_cell": cell_id, "evidence": {"candidate": evidence}})
    return alone


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _cpu_words(evidence: dict[str, Any]) -> str:
    features = evidence.get("cpu_features")
    if features == "sme2":
        svl = evidence.get("svl_bits")
        return "SME2" + (f", SVL {svl} bits" if svl else "")
    return {"sme-only": "SME, no SME2", "none": "no SME"}.get(str(features), str(features or "?"))


def _kernel_status(evidence: dict[str, Any]) -> str:
    """The analysis's rule, in short: no SME CPU → no SME kernel may run; an SME2 CPU → SME2 kernels expected."""
    sme2, sme = evidence.get("sme2_kernels") or [], evidence.get("sme_kernels") or []
    features = evidence.get("cpu_features")
    if features == "none":
        return "fail" if sme2 or sme or evidence.get("sme_instructions_translated") else "pass"
    if features == "sme-only":
        return "fail" if sme2 else "pass"
    return "pass" if sme2 else "warn"


def panel_title(variant: str, evidence: dict[str, Any]) -> str:
    return f"{variant} · -cpu {evidence.get('cpu', '?')}"


def panel_text(evidence: dict[str, Any]) -> Text:
    """One variant's evidence in a few short lines (fits half of an 80-column screen)."""
    text = Text()
    text.append("CPU: ", style="bold")
    text.append(_cpu_words(evidence))
    sme2, sme = evidence.get("sme2_kernels") or [], evidence.get("sme_kernels") or []
    mark, style = MARK[_kernel_status(evidence)]
    text.append("\n")
    text.append(mark, style=style)
    text.append("SME2 kernels: ", style="bold")
    text.append(f"{len(sme2)} ran" if sme2 else "none ran")
    # Every panel has the same lines, so the two sides of a pair read across.
    text.append("\n  instructions run: ", style="dim")
    text.append(_count(evidence.get("sme2_kernel_instructions_executed")))
    text.append("\n  SME kernels: ", style="dim")
    text.append(f"{len(sme)}" + (" (packing)" if sme and all("pack" in k for k in sme) else ""))
    text.append("\n  SME instr. translated: ", style="dim")
    text.append(_count(evidence.get("sme_instructions_translated")))
    eager = evidence.get("numerics_vs_eager")
    text.append("\n")
    if eager:
        mark, style = MARK.get(str(eager.get("status")), ("", ""))
        text.append(mark, style=style)
        text.append("vs eager: ", style="bold")
        cosine = eager.get("cosine")
        text.append(f"cosine {cosine:.7f}" if isinstance(cosine, float) else str(eager.get("status")))
    else:
        text.append("– vs eager: no eager model (a ready program)", style="dim")
    return text


def numerics_text(pair: dict[str, Any]) -> Text:
    """SME2 on vs off, with the dtype's limits: "SME2 kernels give correct results for your model"."""
    text = Text()
    numerics = pair.get("numerics")
    if not numerics:
        text.append("one variant: nothing to compare on vs off", style="dim")
        return text
    mark, style = MARK.get(str(numerics.get("status")), ("", ""))
    text.append(mark, style=style)
    text.append("SME2 on vs off: ", style="bold")
    text.append(str(numerics.get("detail", "")).removeprefix("SME2 on vs off: "))
    return text


def kernels_text(pair: dict[str, Any]) -> Text:
    """The SME2 kernel functions that ran on the SME2 side, by name (KleidiAI's `kai_run_*` entry points and
    the `kai_kernel_*` micro-kernels they call)."""
    text = Text()
    side = pair.get("evidence", {}).get("candidate") or {}
    names = side.get("sme2_kernels") or []
    text.append(f"SME2 kernels that ran on {pair.get('candidate')}", style="bold")
    if not names:
        text.append(": none", style="yellow")
        return text
    for name in names:
        text.append(f"\n  {name}")
    return text


def headline(summary: dict[str, Any], index: int) -> Text:
    """The emulated answer in words: which kernels ran on which side, and whether the outputs agree — never a
    speedup."""
    text = Text()
    emulated = summary.get("emulated") or {}
    qemu = (emulated.get("qemu") or {}).get("version", "?")
    text.append(f"{LABEL} ", style="bold reverse yellow")
    text.append(f" QEMU {qemu} user mode", style="yellow")
    pairs = evidence_pairs(summary)
    if not pairs:
        text.append("\nno evidence: no emulated cell finished", style="bold yellow")
        return text
    pair = pairs[index % len(pairs)]
    on = pair["evidence"].get("candidate") or {}
    text.append(f"\n{pair['model']} {pair['dtype']} ×{pair.get('threads', 1)}t: ", style="bold")
    executed = on.get("sme2_kernel_instructions_executed")
    ran = len(on.get("sme2_kernels") or [])
    text.append(f"{pair['candidate']} ran {ran} SME2 kernel{'s' if ran != 1 else ''}",
                style="bold green" if ran else "bold yellow")
    if executed:
        text.append(f" ({executed:,} instr.)")
    off = pair["evidence"].get("baseline")
    if off is not None:
        none = not off.get("sme2_kernels") and not off.get("sme_kernels")
        text.append(f", {pair['baseline']} " + ("none" if none else f"{len(off.get('sme2_kernels') or [])}"),
                    style="green" if none else "bold red")
        status = (pair.get("numerics") or {}).get("status")
        if status:
            mark, style = MARK.get(str(status), ("", ""))
            text.append("; on vs off ")
            text.append(mark.strip() or str(status), style=style)
    if len(pairs) > 1:
        text.append(f"  [{index % len(pairs) + 1}/{len(pairs)}, v: next]", style="dim")
    return text
