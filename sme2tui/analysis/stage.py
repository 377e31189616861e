"""The analyze step over a run folder: every finished cell, every pair, the checks, and the tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sme2tui.analysis.categorize import ALL_BUCKETS, OVERHEAD, Categorizer
from sme2tui.analysis.cell import CellAnalysis, analyze_cell
from sme2tui.analysis.compare import PairComparison, compare_cells
from sme2tui.analysis.evidence import VariantEvidence, variant_evidence
from sme2tui.analysis.peers import cell_peers, peers_csv_rows, program_for_cell
from sme2tui.analysis.shape import compare_shape, load_reference_summary
from sme2tui.analysis.timing_file import read_timing
from sme2tui.config import RunConfig
from sme2tui.errors import AnalysisError
from sme2tui.events import ArtifactWritten, Checkpoint, Event, StepFinished, StepStarted, warning_text
from sme2tui.fileio import write_json_atomic, write_text_atomic
from sme2tui.reference import squeezesam
from sme2tui.run.cells import Cell, plan_cells
from sme2tui.run.folder import RunFolder
from sme2tui.storage import BadPath, storage_error

LATENCY_STATISTIC = ("end-to-end latency = Method::execute per measured iteration from the ETDump "
                     "(wall clock per iteration when profiling is off); warmup iterations excluded")
CATEGORY_STATISTIC = ("per-category median over measured iterations of the summed leaf events; OVERHEAD = "
                      "median end-to-end − Σ category medians (wrappers never summed with their children)")


def unverified_builds(config: RunConfig, manifest: dict[str, Any]) -> list[str]:
    """Variants of the pair whose runner was built outside sme2tui: a path with no sme2tui build manifest beside
    it, or variants a run folder records as adopted (e.g. imported from a kit run folder)."""
    from sme2tui.config import runner_is_path
    from sme2tui.runners.manifest import read_manifest

    pair = config.pair
    if pair is None:
        return []
    adopted = set(manifest.get("adopted_variants") or [])
    out = []
    for name in (pair.baseline, pair.candidate):
        runner = config.variant(name).runner
        if name in adopted or (runner_is_path(runner) and read_manifest(Path(runner)) is None):
            out.append(name)
    return out


def comparison_label(config: RunConfig, sme2_capable: bool, unverified: list[str] | None = None) -> dict[str, Any]:
    pair = config.pair
    if pair is None:
        return {"label": "no comparison (one variant)", "is_sme2": False, "note": ""}
    base, cand = config.variant(pair.baseline), config.variant(pair.candidate)
    claims_sme2 = base.sme2 == "off" and cand.sme2 == "on"
    if unverified:
        cpu = "" if sme2_capable else " Nothing shows the CPU that ran them has SME2."
        return {"label": f"{cand.display} vs {base.display}" + (" (SME2 on vs off claimed, builds not verified)"
                                                                if claims_sme2 else " (builds not verified)"),
                "baseline": base.name, "candidate": cand.name, "is_sme2": False, "builds_verified": False,
                "note": f"runners of {', '.join(f'`{n}`' for n in unverified)} were built outside sme2tui (build "
                        "unknown): sme2tui cannot prove this pair differs only in the SME2 switches (the kit's "
                        "on/off presets also differ in -march and logging flags), so the ratio is build vs build, "
                        "not a verified SME2 speedup; `sme2tui build` makes pairs it can prove." + cpu}
    if claims_sme2 and sme2_capable:
        return {"label": "SME2 on vs SME2 off", "baseline": base.name, "candidate": cand.name, "is_sme2": True,
                "note": "both runners run the same .pte; they differ only in the SME2 build switches"}
    note = ""
    if claims_sme2:
        note = ("variants are labelled sme2 on/off, but the CPU that ran them has no SME2: this is NOT an SME2 "
                "comparison (both sides ran without SME2 kernels)")
    elif {base.export_delegate, cand.export_delegate} == {"xnnpack", "portable"} and \
            not any(m.pte for m in config.models):
        note = ("XNNPACK-delegated kernels vs ExecuTorch's portable (reference C++) kernels on this CPU; "
                "no SME2 is involved")
    return {"label": f"{cand.display} vs {base.display}", "baseline": base.name, "candidate": cand.name,
            "is_sme2": False, "note": note}


def _etdumps(cell_dir: Path) -> list[Path]:
    """A cell's ETDumps in round order (one file for the Python runtime, one per round for native runners)."""
    return sorted(cell_dir.glob("etdump*.etdp"))


def _evidence_checks(evidence: dict[str, VariantEvidence], sme2_capable: bool) -> Iterator[Event]:
    for name, ev in evidence.items():
        if ev.claims_sme2 == "on" and sme2_capable and ev.sme2 == "not seen":
            yield Checkpoint("analyze", "SME2 evidence", "fail",
                             f"variant `{name}` is labelled SME2 on, runs on an SME2 CPU, but its kernel log shows NO "
                             "SME2 micro-kernels: its numbers are not an SME2 measurement",
                             "check the runner was built with XNNPACK_ENABLE_ARM_SME2=ON (sme2tui build … --variants "
                             "sme2-on) and that the dtype has SME2 kernels", subject=name)
        elif ev.claims_sme2 == "on" and ev.sme2 == "unknown":
            yield Checkpoint("analyze", "SME2 evidence", "warn", f"variant `{name}`: {ev.detail}",
                             "add the kernel-log runner variant to prove SME2 kernels ran", subject=name)
        elif ev.claims_sme2 == "off" and ev.sme2 == "seen":
            yield Checkpoint("analyze", "SME2 evidence", "fail",
                             f"variant `{name}` is labelled SME2 off but its kernel log names SME2 kernels "
                             f"({', '.join(ev.sme2_kernels[:3])})", "rebuild the sme2-off runner", subject=name)
        else:
            yield Checkpoint("analyze", "SME2 evidence", "pass" if ev.sme2 != "unknown" else "skip",
                             f"variant `{name}`: {ev.detail}", subject=name)


def _categories_csv(cells: dict[str, CellAnalysis]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cell", "model", "dtype", "variant", "threads", "iterations", "median_ms",
                     *[f"{b}_ms" for b in ALL_BUCKETS]])
    for c in cells.values():
        writer.writerow([c.cell_id, c.model, c.dtype, c.variant, c.threads, c.latency.n, f"{c.latency.median:.6f}",
                         *[f"{c.categories_ms.get(b, 0.0):.6f}" if c.categories_ms else "" for b in ALL_BUCKETS]])
    return out.getvalue()


def _operators_csv(cells: dict[str, CellAnalysis]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cell", "variant", "instruction_id", "name", "category", "known_name", "delegated", "kernel",
                     "kleidiai", "median_ms", "mean_ms", "share_of_e2e", "iterations"])
    for c in cells.values():
        for o in c.operators:
            writer.writerow([c.cell_id, c.variant, o.instruction_id, o.name, o.category, o.known, o.delegated,
                             o.kernel, o.kleidiai, f"{o.median_ms:.6f}", f"{o.mean_ms:.6f}", f"{o.share:.5f}",
                             o.occurrences])
    return out.getvalue()


def _rows_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _peer_metrics(folder: RunFolder, config: RunConfig, cells: dict[str, CellAnalysis]) -> dict[str, dict[str, Any]]:
    """Load/init, first inference, tail latency, peak memory and program size per cell (sme2tui.analysis.peers)."""
    out = {}
    for cell_id, a in cells.items():
        spec = next((v for v in config.variants if v.name == a.variant), None)
        delegate = getattr(spec, "delegate", None)
        pte = program_for_cell(folder.manifest, folder.root, a.model, a.dtype, delegate)
        out[cell_id] = cell_peers(folder.cell_dir(cell_id), a, pte=pte, target=config.target.kind)
    return out


def _measured_apart(folder: RunFolder, baseline: str, candidate: str) -> str:
    """Why two cells of a pair were not measured in one interleaved session ('' when they were, or when the
    runner does not say: the kit's runs, older runs). A resume re-measures only the cells it lacks."""
    listed: list[list[Any]] = []
    for cell_id in (baseline, candidate):
        try:
            timing = read_timing(folder.root / "cells" / cell_id / "timing.json")
        except AnalysisError:
            return ""  # the cell's own analysis reports the damage
        partners = timing.get("interleaved_with")
        if not isinstance(partners, list):
            return ""
        listed.append(partners)
    if candidate in listed[0] and baseline in listed[1]:
        return ""
    return "a resume re-measured one of them" if listed[0] or listed[1] else "each ran alone"


def unique_warnings(texts: list[str]) -> list[str]:
    """Each warning once, in first-seen order. A warning also listed with its checkpoint's name in front
    (`measurement quality: X` beside `X`: manifests written before one spelling was used have both) is
    kept in the longer, named form."""
    ordered = list(dict.fromkeys(t for t in texts if isinstance(t, str)))
    named = {text[i + 2:] for text in ordered for i in range(len(text)) if text.startswith(": ", i)}
    return [text for text in ordered if text not in named]


def analyze_run(folder: RunFolder, config: RunConfig, *, categories: Path | None = None) -> Iterator[Event]:
    """Analyze every measured cell and write `analysis/` — and only `analysis/`: the manifest describes the
    run as it was measured and is never rewritten here (a committed run stays byte-identical). The pipeline
    copies the result into the manifest of the run it is making."""
    yield StepStarted("analyze", "Analyze ETDumps")
    out = folder.root / "analysis"
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BadPath(f"{out} is not a folder, so the analysis cannot be written there", where=str(out),
                      fix="move it out of the way (sme2tui writes the analysis into the folder analysis/)")
    categorizer = Categorizer.load(categories)
    cells: dict[str, CellAnalysis] = {}
    failed: list[str] = []
    cell_errors: dict[str, dict[str, str | None]] = {}
    new_warnings: list[str] = []
    for cell in plan_cells(config):
        record = folder.manifest["cells"].get(cell.id, {})
        if record.get("status") != "done":
            continue
        # What a cell is comes from the run's config (hash-checked), never from the manifest's copy of it: an
        # edited `variant` or `threads` there must not relabel a measurement.
        record = {**record, "model": cell.model, "dtype": cell.dtype, "variant": cell.variant,
                  "threads": cell.threads}
        try:
            analysis = analyze_cell(folder.cell_dir(cell), record, warmup=int(record.get("warmup", config.warmup)),
                                    iterations=record.get("iterations"), categorizer=categorizer)
        except AnalysisError as exc:
            failed.append(cell.id)
            fix = (exc.fix or "").replace("RUN_DIR", str(folder.root))  # the command as it can be pasted
            cell_errors[cell.id] = {"what": exc.what, "where": exc.where, "fix": fix}
            yield Checkpoint("analyze", "etdump readable", "fail", exc.what, fix, subject=cell.id)
            continue
        cells[cell.id] = analysis
        for warning in analysis.warnings if config.target.kind != "emulated" else []:
            new_warnings.append(warning_text("measurement quality", warning))  # as the manifest records it
            # The row already names the cell (its subject): the detail says only what is wrong with it.
            yield Checkpoint("analyze", "measurement quality", "warn", warning.removeprefix(f"{cell.id}: "),
                             "close other programs, pin cores (target.cpu_affinity), add iterations",
                             subject=cell.id)
        if analysis.categories_ms:
            # OVERHEAD is what the operators leave of the median iteration: below zero (past XNNPACK's whole-
            # microsecond rounding) they do not fit in it. Far below, analyze_cell has refused the cell already.
            overhead = analysis.categories_ms.get(OVERHEAD, 0.0)
            median = analysis.latency.median
            operators = median - overhead
            fits = overhead >= -0.01 * median
            yield Checkpoint("analyze", "categories add up", "pass" if fits else "warn",
                             f"operators {operators:.4f} ms + OVERHEAD {overhead:.4f} ms = median {median:.4f} ms",
                             "" if fits else "operator times exceed the iteration: re-run the cell; if it "
                             "repeats, report this run folder", subject=cell.id)
        if analysis.sub_resolution_ops:
            # No speedup is derived on the emulated target: the warning must not promise one.
            derived = "" if config.target.kind == "emulated" else " (and speedups)"
            yield Checkpoint("analyze", "operator time resolution", "warn",
                             f"{analysis.sub_resolution_ops} delegated operators read under 1 µs: XNNPACK's own "
                             f"counters tick in whole microseconds, so their times{derived} are rounding",
                             "compare categories or whole delegates for these, or use a bigger input/model",
                             subject=cell.id)
        if analysis.unknown_names:
            yield Checkpoint("analyze", "operator names known", "warn",
                             f"{len(analysis.unknown_names)} names matched no category rule and were counted as "
                             f"OTHER: {', '.join(analysis.unknown_names[:5])}",
                             "add rules to a copy of configs/categories.json and pass --categories", subject=cell.id)

    pairs: list[PairComparison] = []
    pair = config.pair
    if pair and config.target.kind != "emulated":  # emulated time is never turned into a speedup
        for cell in plan_cells(config):
            if cell.variant != pair.baseline:
                continue
            cand_id = Cell(cell.model, cell.dtype, pair.candidate, cell.threads).id  # not a string replace: a
            # variant may be named like a dtype (`fp16`), and ids are built, never parsed
            if cell.id in cells and cand_id in cells:
                pairs.append(compare_cells(cells[cell.id], cells[cand_id], seed=config.seed))
    for p in pairs:
        apart = _measured_apart(folder, p.baseline_cell, p.candidate_cell)
        if apart:
            text = (f"{p.model}/{p.dtype}/t{p.threads}: {p.baseline} and {p.candidate} were not measured interleaved "
                    f"({apart}): whatever changed between the sessions (load, heat, clocks) is part of this ratio")
            new_warnings.append(warning_text("interleaved", text))
            yield Checkpoint("analyze", "interleaved", "warn", text,
                             f"measure both again together: delete cells/{p.baseline_cell} and "
                             f"cells/{p.candidate_cell}, then sme2tui --auto --resume {folder.root}", subject=p.model)
        if p.speedup.verdict == "inconclusive":
            yield Checkpoint("analyze", "speedup conclusive", "warn",
                             f"{p.model}/{p.dtype}/t{p.threads}: {p.speedup.text()} spans 1.0 — "
                             "no measurable difference",
                             "add iterations or reduce noise before drawing conclusions", subject=p.model)

    host = folder.manifest.get("host", {})
    device = folder.manifest.get("device") or {}
    sme2_capable = (device.get("sme") == "sme2") if config.target.kind == "android" else host.get("sme") == "sme2"
    if config.target.kind == "android" and config.target.allow_foreign_runner:
        sme2_capable = False  # a host binary run by a test double never ran on the phone's CPU
    emulated: dict[str, Any] | None = None
    evidence: dict[str, VariantEvidence] = {}
    evidence_out: dict[str, Any]
    if config.target.kind == "emulated":
        from sme2tui.analysis.emulated import analyze_emulated, emulated_comparison, variant_summary

        qemu = (folder.manifest.get("emulated") or {}).get("qemu") or {}
        comparison = emulated_comparison((pair.baseline, pair.candidate) if pair else None,
                                         {v.name: v.display for v in config.variants},
                                         f"QEMU {qemu.get('version', '?')}")
        emulated = yield from analyze_emulated(folder, cells, plan_cells(config),
                                               (pair.baseline, pair.candidate) if pair else None)
        evidence_out = variant_summary(emulated["cells"], {v.name: v.sme2 for v in config.variants}, plan_cells(config))
    else:
        unverified = unverified_builds(config, folder.manifest)
        comparison = comparison_label(config, sme2_capable, unverified)
        if unverified:
            new_warnings.append(warning_text("pair builds", comparison["note"]))
            yield Checkpoint("analyze", "pair builds", "warn", comparison["note"],
                             "build the pair with `sme2tui build android|macos` (identical CMake caches but for the "
                             "SME switches), or accept the result as build vs build", subject=", ".join(unverified))
        elif comparison["note"] and not comparison["is_sme2"] and "NOT" in comparison["note"]:
            new_warnings.append(comparison["note"])
        for variant in config.variants:
            members = [(a, folder.cell_dir(a.cell_id)) for a in cells.values() if a.variant == variant.name]
            if members:
                evidence[variant.name] = variant_evidence(variant.name, variant.sme2, members)
        yield from _evidence_checks(evidence, sme2_capable)
        evidence_out = {k: v.to_dict() for k, v in evidence.items()}
    peers = _peer_metrics(folder, config, cells)
    cell_dicts: dict[str, dict[str, Any]] = {k: {**v.to_dict(), "peers": peers[k]} for k, v in cells.items()}
    if emulated is not None:
        for cell_id, compact_evidence in emulated["cells"].items():
            if cell_id in cell_dicts:
                cell_dicts[cell_id]["evidence"] = compact_evidence
    summary: dict[str, Any] = {
        "run": folder.root.name,
        "target": config.target.kind,
        "comparison": comparison,
        "statistics": {"latency": LATENCY_STATISTIC, "categories": CATEGORY_STATISTIC,
                       "speedup": "baseline median / candidate median, 95% percentile bootstrap (2000 resamples)"},
        "config": {"warmup": config.warmup, "iterations": config.iterations, "profile": config.profile},
        "cells": cell_dicts,
        "pairs": [p.to_dict() for p in pairs],
        "failed_cells": failed,
        "cell_errors": cell_errors,
        "reference": squeezesam(),
        "evidence": evidence_out,
        **({"emulated": emulated} if emulated is not None else {}),
        "warnings": unique_warnings([*folder.manifest.get("warnings", []), *new_warnings]),
    }
    try:
        yield from _write_outputs(folder, out, summary, cells, categorizer)
    except OSError as exc:
        raise storage_error(exc, action="write the analysis", path=out,
                            after=f"then analyze again: sme2tui analyze {folder.root}") from None
    reference = load_reference_summary()
    if reference is not None and reference.get("run") != summary["run"]:
        yield from compare_shape(summary, reference)
    yield StepFinished("analyze", ok=not failed, summary=f"{len(cells)} cell{'s' if len(cells) != 1 else ''} analyzed, "
                                                               f"{len(pairs)} pair{'s' if len(pairs) != 1 else ''}",
                       data={"summary": summary})


def _write_outputs(folder: RunFolder, out: Path, summary: dict[str, Any], cells: dict[str, CellAnalysis],
                   categorizer: Categorizer) -> Iterator[Event]:
    write_json_atomic(out / "summary.json", summary)
    from sme2tui.report.charts import write_charts
    from sme2tui.report.trace import write_chrome_trace

    for chart in write_charts(summary, out / "charts"):
        yield ArtifactWritten("analyze", f"analysis/charts/{chart.file_name}", "chart")
    traced = []
    for a in cells.values():
        dumps = _etdumps(folder.cell_dir(a.cell_id)) if a.source == "etdump" else []
        for index, path in enumerate(dumps):  # every round is its own process on the timeline
            traced.append((a.cell_id if len(dumps) == 1 else f"{a.cell_id} round {index}", path, a.warmup_dropped))
    if traced:
        write_chrome_trace(traced, out / "trace.json", categorizer)
        yield ArtifactWritten("analyze", "analysis/trace.json", "trace")
    write_text_atomic(out / "categories.csv", _categories_csv(cells))
    write_text_atomic(out / "operators.csv", _operators_csv(cells))
    write_text_atomic(out / "peers.csv", _rows_csv(peers_csv_rows(summary["cells"])))
    for name in ("summary.json", "categories.csv", "operators.csv", "peers.csv"):
        yield ArtifactWritten("analyze", f"analysis/{name}", "table")
