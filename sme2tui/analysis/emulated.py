"""The emulated target's analysis: kernel evidence per cell and per variant, the SME2 checkpoints, and the
numerics of SME2 on vs off (and vs eager). No speedup: emulated time is not hardware time.

Checkpoint rules (per cell, from `evidence.json`, the variant's CPU probe and the cell's ETDump):
- a CPU without SME (sme2-off): no SME/SME2 kernel may run and no SME instruction may be translated — else fail;
- a CPU with SME2 (sme2-on): SME2 kernels ran → pass. None ran: fail if the ETDump shows KleidiAI packed types
  (XNNPACK routed matrix work to KleidiAI, so SME2 kernels were due); warn if the program has delegated
  GEMM/IGEMM work that XNNPACK gave to other kernels (a finding about the program, not a tool failure); pass when
  the program has no delegated matrix work at all (nothing for SME2 to do);
- a CPU with SME but not SME2 (QEMU 10.0.x): an SME2 kernel would be impossible → fail.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

from sme2tui.analysis.cell import CellAnalysis
from sme2tui.analysis.kernel_evidence import EVIDENCE_FILE
from sme2tui.analysis.output_compare import (
    PAIR_LIMITS,
    OutputsUnreadable,
    compare_outputs,
    load_outputs,
    numeric_class,
)
from sme2tui.events import Checkpoint, Event
from sme2tui.export.results import COSINE_THRESHOLDS
from sme2tui.fileio import UnreadableOutput, read_bounded
from sme2tui.run.folder import RunFolder

COMPARISON_NOTE = ("One aarch64 runner, one .pte, one QEMU: the variants differ only in the emulated CPU's SME "
                   "features (-cpu max vs -cpu max,sme=off). Emulated time is not hardware time (emulated SME is "
                   "slower than emulated NEON), so no speedup is shown: the evidence is which kernels ran, their "
                   "instruction counts and the numerics. The published SME2 figures are listed as reference.")


def emulated_comparison(config_pair: tuple[str, str] | None, labels: dict[str, str], qemu: str) -> dict[str, Any]:
    if config_pair is None:
        return {"label": f"emulated ({qemu}), one variant", "is_sme2": False, "emulated": True,
                "note": COMPARISON_NOTE}
    base, cand = config_pair
    return {"label": f"{labels[cand]} vs {labels[base]} — emulated ({qemu}): evidence, not speed",
            "baseline": base, "candidate": cand, "is_sme2": False, "emulated": True, "note": COMPARISON_NOTE}


def _matrix_ops(analysis: CellAnalysis) -> list[str]:
    return sorted({op.name for op in analysis.operators if op.delegated and "GEMM" in op.kernel})


MAX_EVIDENCE_BYTES = 64 * 2**20  # a large model's evidence.json is a few hundred KB


class EvidenceDamaged(ValueError):
    """A cell's evidence.json exists but cannot be what the run wrote (too big, not JSON, wrong shape)."""


def cell_evidence(cell_dir: Path) -> dict[str, Any] | None:
    """The cell's evidence.json; None when there is none (target.evidence off), EvidenceDamaged when it is
    there but unusable (a damaged run folder must not read as "evidence was off")."""
    path = cell_dir / EVIDENCE_FILE
    try:
        raw = read_bounded(path, MAX_EVIDENCE_BYTES, EVIDENCE_FILE)
    except FileNotFoundError:
        return None
    except (UnreadableOutput, OSError) as exc:
        raise EvidenceDamaged(str(exc) if isinstance(exc, UnreadableOutput) else
                              f"{EVIDENCE_FILE} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise EvidenceDamaged(f"{EVIDENCE_FILE} is not valid JSON") from None
    problem = _shape_problem(data)
    if problem:
        raise EvidenceDamaged(f"{EVIDENCE_FILE} {problem}")
    return data  # type: ignore[no-any-return]


def _shape_problem(data: Any) -> str | None:
    """What keeps `data` from being an evidence document the checks can read (None: nothing)."""
    if not isinstance(data, dict):
        return "is not a JSON object"
    for key, kind in (("cpu", str), ("source", str), ("probe", dict), ("totals", dict), ("kernels", list),
                      ("sme2_kernels", list), ("sme_kernels", list)):
        if not isinstance(data.get(key), kind):
            return f"has no `{key}` {kind.__name__}"
    if not all(isinstance(data["totals"].get(k), int) for k in ("instructions", "sme_instructions",
                                                                 "sve_instructions")):
        return "has `totals` without instruction counts"
    if not all(isinstance(k, dict) and isinstance(k.get("compute"), bool) and "family" in k
               and isinstance(k.get("executed_instructions"), int | None) for k in data["kernels"]):
        return "has a `kernels` entry of the wrong shape"
    if not all(isinstance(n, str) for n in data["sme2_kernels"] + data["sme_kernels"]):
        return "has kernel names that are not strings"
    if not isinstance(data.get("kernels_by_family", {}), dict):
        return "has a `kernels_by_family` that is not an object"
    return None


def executed(evidence: dict[str, Any], family: str) -> int | None:
    """Instructions executed in the family's compute kernels (round 1 counts), None when not counted."""
    counts = [k["executed_instructions"] for k in evidence["kernels"] if k["family"] == family and k["compute"]
              and k["executed_instructions"] is not None]
    return sum(counts) if counts else None


def compact(evidence: dict[str, Any]) -> dict[str, Any]:
    """What a summary, a report row or a wizard panel needs from one cell's evidence."""
    by_family = evidence.get("kernels_by_family", {})
    return {"cpu": evidence["cpu"], "cpu_features": evidence["probe"].get("verdict"),
            "svl_bits": evidence["probe"].get("svl_bits"),
            "sme2_kernels": evidence["sme2_kernels"], "sme_kernels": evidence["sme_kernels"],
            "neon_kernels": by_family.get("NEON", []),
            "translated_instructions": evidence["totals"]["instructions"],
            "sme_instructions_translated": evidence["totals"]["sme_instructions"],
            "sve_instructions_translated": evidence["totals"]["sve_instructions"],
            "sme2_kernel_instructions_executed": executed(evidence, "SME2"),
            "sme_kernel_instructions_executed": executed(evidence, "SME"),
            "source": evidence["source"]}


def _kernel_check(cell_id: str, evidence: dict[str, Any], analysis: CellAnalysis | None) -> Checkpoint:
    verdict = evidence["probe"].get("verdict")
    sme2, sme = evidence["sme2_kernels"], evidence["sme_kernels"]
    sme_insns = evidence["totals"]["sme_instructions"]
    shown = ", ".join(sme2[:4]) + (f" and {len(sme2) - 4} more" if len(sme2) > 4 else "")
    if verdict == "none":
        if sme2 or sme or sme_insns:
            return Checkpoint("analyze", "SME2 kernels", "fail",
                              f"the CPU has no SME, yet the log shows {len(sme2)} SME2 and {len(sme)} SME kernel(s), "
                              f"{sme_insns} SME instructions", "report this run folder: the evidence is inconsistent",
                              subject=cell_id)
        return Checkpoint("analyze", "SME2 kernels", "pass", f"none, as expected on -cpu {evidence['cpu']}: no "
                          "SME/SME2 kernel ran, 0 SME instructions translated", subject=cell_id)
    if verdict == "sme-only":
        if sme2:
            return Checkpoint("analyze", "SME2 kernels", "fail", f"SME2 kernels ran on a CPU without SME2: {shown}",
                              "report this run folder", subject=cell_id)
        return Checkpoint("analyze", "SME2 kernels", "pass", f"SME-only CPU: {len(sme)} SME kernel(s), no SME2",
                          subject=cell_id)
    if sme2:
        count = executed(evidence, "SME2")
        counted = f"; {count:,} SME2-kernel instructions executed (round 1)" if count else ""
        return Checkpoint("analyze", "SME2 kernels", "pass", f"{len(sme2)} SME2 kernel function(s) ran: {shown}"
                          f"{counted}", subject=cell_id)
    if analysis is None or not analysis.operators:
        return Checkpoint("analyze", "SME2 kernels", "warn", "no SME2 kernel ran, and without an ETDump it cannot be "
                          "told whether the program had matrix work for them", "turn profiling on (profile: true)",
                          subject=cell_id)
    packed = sorted({op.kernel for op in analysis.operators if op.delegated and op.kleidiai})
    if packed:
        return Checkpoint("analyze", "SME2 kernels", "fail", f"XNNPACK ran KleidiAI packed kernels "
                          f"({', '.join(packed)}) on an SME2 CPU, but no SME2 kernel code ran",
                          "report this run folder with the .pte", subject=cell_id)
    matrix = _matrix_ops(analysis)
    if matrix:
        return Checkpoint("analyze", "SME2 kernels", "warn", f"no SME2 kernel ran: XNNPACK gave this program's "
                          f"matrix work ({', '.join(matrix[:3])}) to its own non-KleidiAI kernels, so SME2 does "
                          "nothing for it",
                          "expected for such ops; SME2 helps Convolution/Fully Connected/Batch Matrix Multiply that "
                          "XNNPACK packs for KleidiAI (fp32, fp16, int8 static and dynamic)", subject=cell_id)
    return Checkpoint("analyze", "SME2 kernels", "pass", "no SME2 kernel ran, and none was due: the program has no "
                      "delegated matrix work (GEMM/IGEMM)", subject=cell_id)


def analyze_emulated(folder: RunFolder, cells: dict[str, CellAnalysis], planned: list[Any],
                     pair: tuple[str, str] | None) -> Generator[Event, None, dict[str, Any]]:
    """Checkpoints for every emulated cell and pair; returns the summary's `emulated` block."""
    manifest = folder.manifest
    per_cell: dict[str, dict[str, Any]] = {}
    for cell in planned:
        record = manifest["cells"].get(cell.id, {})
        if record.get("status") != "done":
            continue
        cell_dir = folder.cell_dir(cell)
        analysis = cells.get(cell.id)
        try:
            evidence = cell_evidence(cell_dir)
        except EvidenceDamaged as exc:
            yield Checkpoint("analyze", "SME2 kernels", "fail", f"{exc}: the kernels that ran are unknown",
                             f"delete cells/{cell.id} and continue the run (sme2tui --auto --resume {folder.root}): "
                             "the cell is measured again", subject=cell.id)
        else:
            if evidence is None:
                yield Checkpoint("analyze", "SME2 kernels", "skip", "no evidence.json (target.evidence is off)",
                                 subject=cell.id)
            else:
                yield _kernel_check(cell.id, evidence, analysis)
                per_cell[cell.id] = compact(evidence)
        eager = _eager_check(manifest, cell, cell_dir, analysis)
        if eager is not None:
            per_cell.setdefault(cell.id, {})["numerics_vs_eager"] = eager
            yield Checkpoint("analyze", "numerics vs eager (emulated)", eager["status"], eager["detail"],
                             "" if eager["status"] == "pass" else "the aarch64 kernels compute something else than the "
                             "eager model: compare with the x86 export check; report it upstream with the .pte",
                             subject=cell.id)
    pairs = []
    if pair is not None:
        base, cand = pair
        for cell in planned:
            if cell.variant != base:
                continue
            cand_id = cell.id.replace(f"__{base}__", f"__{cand}__")
            if cell.id not in per_cell or cand_id not in per_cell:
                continue
            entry = {"model": cell.model, "dtype": cell.dtype, "threads": cell.threads, "baseline": base,
                     "candidate": cand, "baseline_cell": cell.id, "candidate_cell": cand_id,
                     "evidence": {"baseline": per_cell[cell.id], "candidate": per_cell[cand_id]}}
            comparison = _pair_numerics(folder, cell.id, cand_id, cell.dtype, cells)
            entry["numerics"] = comparison
            yield Checkpoint("analyze", "numerics on vs off (emulated)", comparison["status"], comparison["detail"],
                             "" if comparison["status"] != "fail" else "SME2 and NEON kernels disagree beyond "
                             "rounding: report it (QEMU version, .pte, evidence.json)", subject=f"{cell.model}/"
                             f"{cell.dtype}/t{cell.threads}")
            for side, cell_id in (("baseline", cell.id), ("candidate", cand_id)):
                if cell_id in cells:
                    entry[f"{side}_emulated_median_ms"] = cells[cell_id].latency.median
            pairs.append(entry)
    emulated = manifest.get("emulated", {})
    return {"note": COMPARISON_NOTE, "qemu": emulated.get("qemu"), "variants": emulated.get("variants"),
            "cells": per_cell, "pairs": pairs,
            "time": "emulated milliseconds are recorded per cell but are not hardware time and are never compared"}


def _types(analysis: CellAnalysis | None) -> set[str]:
    types: set[str] = set()
    for op in analysis.operators if analysis else []:
        if op.delegated and op.kernel:
            head = op.kernel.split(" ")
            types |= {t.strip(", ") for t in head if t.strip(", ").isupper()}
    return types


def _pair_numerics(folder: RunFolder, base_id: str, cand_id: str, dtype: str,
                   cells: dict[str, CellAnalysis]) -> dict[str, Any]:
    try:
        base = load_outputs(folder.cell_dir(base_id) / "outputs")
        cand = load_outputs(folder.cell_dir(cand_id) / "outputs")
    except OutputsUnreadable as exc:  # not a numerics finding (exit 8 is not retried): said, not compared
        return {"status": "skip", "detail": f"outputs not compared: {exc}"}
    if base is None or cand is None:
        return {"status": "skip", "detail": "outputs missing (round 0 writes them)"}
    cls = numeric_class(dtype, [d for d, _ in base], _types(cells.get(base_id)) | _types(cells.get(cand_id)))
    return compare_outputs(cand, base, cls, PAIR_LIMITS[cls], "SME2 on vs off").to_dict()


def _eager_check(manifest: dict[str, Any], cell: Any, cell_dir: Path,
                 analysis: CellAnalysis | None) -> dict[str, Any] | None:
    exports = manifest.get("exports", {})
    entry = next((e for e in exports.values() if e.get("model") == cell.model and e.get("dtype") == cell.dtype), None)
    if not entry or not entry.get("reference_outputs") or not entry.get("inputs"):
        return None  # a ready .pte: no eager model to compare with
    try:
        produced = load_outputs(cell_dir / "outputs")
    except OutputsUnreadable as exc:
        return {"status": "skip", "detail": f"vs fp32 eager: outputs not compared: {exc}"}
    if produced is None:
        return None
    from sme2tui.analysis.output_compare import read_tensor

    try:
        reference = [(r["dtype"], read_tensor(Path(r["file"]), r["dtype"])) for r in entry["reference_outputs"]]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    cls = numeric_class(cell.dtype, [d for d, _ in produced], _types(analysis))
    threshold = COSINE_THRESHOLDS["int8" if cls == "int8" else cls]
    return compare_outputs(produced, reference, cls, (float("inf"), threshold), "vs fp32 eager").to_dict()


def variant_summary(per_cell: dict[str, dict[str, Any]], claims: dict[str, str | None],
                    planned: list[Any]) -> dict[str, Any]:
    """Per variant: the SME2/SME kernels seen across its cells, in the shape of the host targets' evidence."""
    out: dict[str, Any] = {}
    for variant, claim in claims.items():
        members = [c.id for c in planned if c.variant == variant and c.id in per_cell
                   and "sme2_kernels" in per_cell[c.id]]
        if not members:
            continue
        sme2 = sorted({k for c in members for k in per_cell[c]["sme2_kernels"]})
        sme = sorted({k for c in members for k in per_cell[c]["sme_kernels"]})
        seen = "seen" if sme2 else "not seen"
        detail = (f"SME2 kernels {seen} in {sum(1 for c in members if per_cell[c]['sme2_kernels'])}/{len(members)} "
                  f"cell(s) (QEMU translated-code log mapped to ELF symbols, emulated)")
        out[variant] = {"variant": variant, "claims_sme2": claim, "sme2": seen,
                        "kleidiai": "seen" if sme2 or sme else "not seen", "detail": detail,
                        "sme2_kernels": sme2, "sme_kernels": sme, "cells": members, "emulated": True}
    return out
