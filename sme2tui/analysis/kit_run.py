"""`sme2tui analyze KIT_RUN_DIR`: a run folder of Arm's kit, analyzed the sme2tui way into a NEW run folder.

The kit's folder is only read (its files are copied, never linked: the kit rewrites its outputs in place).
The new folder under the output root is a complete sme2tui run folder — config, manifest, one cell per
experiment and thread count with the kit's ETDump, and the full analysis (categories with OVERHEAD,
per-operator tables, the pair with its bootstrap interval, charts, trace, peer metrics, report) — so
`sme2tui report`, `compare` and the wizard open it like any other run.

Where the numbers differ from the kit's own, on purpose:
* The kit warmed up in a separate process and then timed every iteration of a fresh one, whose first
  iteration is cold; its statistics (robust stats, pipeline summary, report) count it. Here the first
  in-process iteration is dropped as warmup (`--warmup N` to change) and reported as first inference;
  each cell's checkpoint shows how far it was from the rest and what the kit reported.
* The kit's runners were built outside sme2tui: their builds are recorded as unknown and the comparison
  says plainly that it cannot prove the pair differs only in SME2.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sme2tui.analysis.evidence import scan_kernel_log_file
from sme2tui.analysis.stage import analyze_run
from sme2tui.analysis.stats import first_iteration_outlier
from sme2tui.config import RunConfig, parse_config
from sme2tui.errors import AnalysisError, ConfigError, Sme2Error
from sme2tui.etdump import iteration_total_ns, read_etdump
from sme2tui.events import Checkpoint, Event, LogLine, StepFinished, StepStarted
from sme2tui.fileio import sha256_file, write_json_atomic, write_text_atomic
from sme2tui.kit.folder import KitCell, KitFolder, scan_kit_folder, trace_for
from sme2tui.kit.importer import find_kit_root, resolve_runner, slug
from sme2tui.kit.names import platform, sme2_side
from sme2tui.run.cells import Cell, plan_cells
from sme2tui.run.folder import RunFolder, utc_now

DEFAULT_DROPPED = 1  # the kit's cold first in-process iteration
KIT_RUNNER = "kit:unknown"  # a kit folder does not record which binary ran
EXPORT_DTYPES = ("fp32", "fp16", "int8", "int8-dynamic")


@dataclass
class KitAnalysis:
    run_dir: Path
    summary: dict[str, Any]
    kit: KitFolder


def guess_dtype(stem: str) -> tuple[str, str]:
    """(dtype, how) from a program's file name (the kit's exporter writes <model>_<backend>_<dtype>.pte)."""
    words = set(stem.lower().replace("-", "_").split("_"))
    for dtype, names in (("int8-dynamic", {"int8dyn", "dynamic", "dq"}), ("int8", {"int8", "q8", "qint8", "8a8w",
                                                                                     "quant", "quantized"}),
                         ("fp16", {"fp16", "f16", "half"}), ("fp32", {"fp32", "f32", "float"})):
        if words & names:
            return dtype, f"from the program name `{stem}`"
    return "fp32", f"the program name `{stem}` does not say: labelled fp32"


def program_facts(program: Path | None, stem: str) -> tuple[str, str, str]:
    """(dtype, delegation, how it is known): read from the .pte when sme2tui has a program reader and the file is
    here, else from the program's name."""
    dtype, how = guess_dtype(stem)
    lower = stem.lower()
    delegation = "xnnpack" if "xnnpack" in lower else "portable" if "portable" in lower else "unknown"
    if program is None:
        return dtype, delegation, how
    try:
        from sme2tui.models.pte_info import read_program_info  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return dtype, delegation, how
    try:
        info = read_program_info(program)
    except Sme2Error as exc:
        return dtype, delegation, f"{how} (the program is unreadable: {exc.what})"
    return str(info.dtype), str(info.delegation), f"read from the program: {info.dtype_evidence}"


def _find_program(kit: KitFolder, root: Path) -> Path | None:
    if not kit.model:
        return None
    model = Path(kit.model.replace("\\", "/"))
    if model.is_absolute():
        return model if model.is_file() else None
    bases = [b for b in ([find_kit_root(kit.config.path)] if kit.config else []) if b] + \
        list(root.resolve().parents)[:6] + [Path.cwd()]
    return next((b / model for b in bases if (b / model).is_file()), None)


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def _read_totals(cell: KitCell) -> tuple[list[float] | None, str | None]:
    try:
        return [ns / 1e6 for ns in iteration_total_ns(read_etdump(cell.etdump))], None
    except Sme2Error as exc:
        return None, exc.what


class _KitRun:
    def __init__(self, kit: KitFolder, output_root: Path, dropped: int) -> None:
        self.kit = kit
        self.output_root = output_root
        self.dropped = dropped
        self.timed = [e for e in kit.experiments]
        self.notes: list[str] = list(kit.notes)

    def variants(self) -> tuple[list[dict[str, Any]], dict[str, str], str]:
        kit = self.kit
        order = list(self.timed)
        if kit.pairing:
            order = [kit.pairing.baseline, kit.pairing.candidate] + [e for e in order if e not in (
                kit.pairing.baseline, kit.pairing.candidate)]
        runner_paths = {e.name: e.runner_path for e in kit.config.experiments} if kit.config else {}
        bases = [b for b in ([find_kit_root(kit.config.path)] if kit.config else []) if b] + [Path.cwd()]
        names: dict[str, str] = {}
        specs = []
        platforms = set()
        for exp in order:
            name = slug(exp)
            while name in names.values():
                name += "-x"
            names[exp] = name
            runner_path = runner_paths.get(exp)
            side = sme2_side(exp, runner_path, [p for p in runner_paths.values() if p])
            spec: dict[str, Any] = {"name": name, "label": exp[:80],
                                    "runner": str(resolve_runner(runner_path, bases)[0]) if runner_path else KIT_RUNNER}
            if side.value:
                spec["sme2"] = side.value
            specs.append(spec)
            if (found := platform(exp, runner_path).value) is not None:
                platforms.add("android" if found == "android" else "host")
        target = "android" if platforms == {"android"} else "host"
        if len(platforms) > 1:
            self.notes.append("the folder mixes Android and host experiments; labelled host (the machine that ran "
                              "them is unknown either way)")
        return specs, names, target

    def config(self, program: Path | None) -> tuple[RunConfig, dict[str, str], str, str]:
        from sme2tui.config import ModelSpec

        kit = self.kit
        specs, names, target = self.variants()
        stem = kit.model_stem or "model"
        dtype, delegation, dtype_how = program_facts(program, stem)
        model: dict[str, Any] = {"name": slug(stem), "pte": str(program) if program else (kit.model or f"{stem}.pte")}
        if "program" in ModelSpec.model_fields:
            # Configs that read a ready program's facts from the file take them from here: the kit's .pte is
            # often not on this machine.
            model["program"] = {"dtype": dtype, "delegation": delegation, "dtype_evidence": dtype_how[:2000]}
        measured = [c.runs for c in kit.cells if c.runs]
        data: dict[str, Any] = {
            "name": slug(f"kit-{kit.root.name}"),
            "description": f"Arm kit run folder {kit.root} analyzed by sme2tui (the kit's ETDumps, re-analyzed)",
            "models": [model], "dtypes": [dtype if dtype in EXPORT_DTYPES else "fp32"], "variants": specs,
            "threads": sorted({c.threads for c in kit.cells}),
            "warmup": self.dropped, "iterations": max(1, (max(measured) if measured else 2) - self.dropped),
            "rounds": 1, "profile": True, "validate_numerics": False,
            "target": {"kind": target}, "output_root": str(self.output_root),
        }
        if kit.pairing:
            data["compare"] = {"baseline": names[kit.pairing.baseline], "candidate": names[kit.pairing.candidate]}
        return parse_config(data, source=f"kit folder {kit.root}"), names, dtype, dtype_how

    def manifest_facts(self, folder: RunFolder, config: RunConfig, program: Path | None, dtype: str,
                       sme: tuple[str, str]) -> None:
        kit = self.kit
        unknown = "unknown (the kit folder does not record it)"
        host = {"os": unknown, "os_release": unknown, "machine": unknown, "cpu_model": unknown, "cpu_count": 0,
                "python": unknown, "sme": sme[0], "sme_detail": sme[1], "cpu_features": []}
        files = [{"path": p.relative_to(kit.root).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(set(kit.used))]
        model = config.models[0]
        exports = {f"{model.id}__{dtype}__as-exported": {
            "model": model.id, "dtype": dtype, "delegate": "as-exported",  # a ready program runs as exported
            "pte": str(program) if program else None,
            "pte_sha256": sha256_file(program) if program else None,
            "source": f"the kit's program {kit.model}" + ("" if program else " (not found here)")}}
        folder.update(
            host=host, device={"model": unknown, "serial": unknown, "sme": sme[0]} if config.target.kind == "android"
            else None,
            versions={**folder.manifest["versions"],
                      "executorch": {"version": "unknown (kit build)", "git_commit": "unknown"},
                      "torch": {"version": "unknown (kit export)", "git_commit": "unknown"}},
            exports=exports, adopted_variants=[v.name for v in config.variants],
            source={"kind": "arm-kit-run-folder", "folder": str(kit.root), "files": files,
                    "kit_config": str(kit.config.path) if kit.config else None},
            runners={v.name: {"binary": v.runner, "build": "unknown",
                              "note": "a runner of Arm's kit: built outside sme2tui (flags, ExecuTorch commit and "
                                      "SME2 switches unknown)"} for v in config.variants})

    def stage(self, folder: RunFolder, config: RunConfig, names: dict[str, str], dtype: str
              ) -> Generator[Event, None, list[dict[str, Any]]]:
        """Copy each ETDump into its cell with a timing record; yield the cold-first-iteration checkpoints."""
        kit = self.kit
        model = config.models[0].id
        rows = []
        staged = set()
        for kc in kit.cells:
            cell = Cell(model, dtype, names[kc.experiment], kc.threads)
            staged.add(cell.id)
            totals, problem = _read_totals(kc)
            where = kc.etdump.relative_to(kit.root).as_posix()
            if totals is None or not totals:
                folder.set_cell(cell.id, status="failed", error={"kind": "unreadable-etdump", "what": problem or
                                                                 "no iterations", "where": where})
                yield Checkpoint("analyze", "etdump readable", "fail", f"{where}: {problem or 'no iterations'}",
                                 "the kit's run may have crashed (it keeps going after a crash); re-run that "
                                 "experiment", subject=cell.id)
                continue
            drop = self.dropped if len(totals) > self.dropped else 0
            if drop != self.dropped:
                yield Checkpoint("analyze", "cold first iteration", "warn",
                                 f"{where}: only {len(totals)} iteration(s): nothing dropped, the cold one is counted",
                                 "run the kit experiment with more runs", subject=cell.id)
            cell_dir = folder.cell_dir(cell)
            cell_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kc.etdump, cell_dir / "etdump.etdp")
            if kc.latency_log:
                shutil.copyfile(kc.latency_log, cell_dir / "kit_latency.log")
            trace = self.kernel_log_for(kc)
            if trace is not None:
                shutil.copyfile(trace, cell_dir / "kernel.log")
            measured = len(totals) - drop
            write_json_atomic(cell_dir / "timing.json", {
                "runner": "kit:executor_runner", "source": f"Arm kit run folder: {where}", "threads": kc.threads,
                "warmup": drop, "iterations": measured,
                "kit": {"runs": kc.runs, "warmup_separate_process": kc.warmup, "etdump": where},
                "rounds": [{"round": 0, "warmup": drop, "iterations": measured, "etdump": "etdump.etdp"}],
                "clock": "ETDump Method::execute (the kit's runner)"})
            folder.set_cell(cell.id, status="done", runner="kit:executor_runner", warmup=drop, iterations=measured,
                            rounds=1, profile=True, finished_utc=utc_now(),
                            kit={"experiment": kc.experiment, "etdump": where, "how": kc.how},
                            files=sorted(folder.rel(p) for p in cell_dir.iterdir()))
            first, rest = totals[0], totals[1:]
            rest_median = statistics.median(rest) if rest else None
            cold = first_iteration_outlier(totals)
            kit_said = (f"; the kit reported median {kc.kit_median_ms:.3f} ms over {kc.kit_count} iterations, this "
                        "one included" if kc.kit_median_ms is not None else "; the kit's statistics count it")
            ratio = f" ({first / rest_median:.2f}×)" if rest_median else ""
            detail = (f"{kc.experiment} t{kc.threads}: first in-process iteration {first:.3f} ms vs median "
                      f"{rest_median:.3f} ms of the other {len(rest)}{ratio}" if rest_median is not None
                      else f"{kc.experiment} t{kc.threads}: a single iteration")
            if drop:
                detail += f" — dropped here as warmup and reported as first inference{kit_said}"
            yield Checkpoint("analyze", "cold first iteration", "warn" if cold else "pass", detail,
                             "the kit warms up in a separate process, so its measured process starts cold; sme2tui "
                             "drops the first in-process iteration (use --warmup N for more)" if cold else "",
                             subject=cell.id)
            rows.append({"experiment": kc.experiment, "threads": kc.threads, "variant": names[kc.experiment],
                         "cell": cell.id, "etdump": where, "how": kc.how, "iterations_in_etdump": len(totals),
                         "dropped": drop, "kit_runs": kc.runs, "kit_warmup_separate_process": kc.warmup,
                         "first_iteration_ms": first, "rest_median_ms": rest_median, "cold_first": cold,
                         "kit_median_ms": kc.kit_median_ms, "kit_mean_ms": kc.kit_mean_ms, "kit_count": kc.kit_count})
        for cell in plan_cells(config):
            if cell.id not in staged:
                folder.set_cell(cell.id, status="not-run", error={"kind": "not-in-kit-folder",
                                                                  "what": "the kit folder has no ETDump for it"})
        return rows

    def kernel_log_for(self, cell: KitCell) -> Path | None:
        """The kernel log (xnntrace) that goes with a timed cell: its experiment's (or `<name>_trace`'s) at the same
        thread count, else at the experiment's lowest count (kernel selection does not depend on threads)."""
        traces = trace_for(self.kit, cell.experiment)
        same = [t for t in traces if t.threads == cell.threads]
        if same:
            return same[0].log
        lowest = min(c.threads for c in self.kit.cells if c.experiment == cell.experiment)
        return traces[0].log if traces and cell.threads == lowest else None

    def sme_facts(self) -> tuple[str, str, list[dict[str, Any]]]:
        logs = []
        sme2_seen = False
        for trace in self.kit.traces:
            entry: dict[str, Any] = {"experiment": trace.experiment, "threads": trace.threads,
                                     "log": trace.log.relative_to(self.kit.root).as_posix(),
                                     "claims_sme2": sme2_side(trace.experiment, None, []).value}
            try:
                # Streamed whole (never a prefix: a partial scan could wrongly say "no SME2 kernels"), FIFOs
                # refused without blocking, refused past SME2TUI_LOG_MAX_MB.
                names_kernels, sme2_names, kleidi = scan_kernel_log_file(trace.log)
            except AnalysisError as exc:
                logs.append({**entry, "unreadable": exc.what})  # says nothing either way: the verdict stays unknown
                continue
            logs.append({**entry, "names_kernels": names_kernels, "sme2_kernels": sorted(sme2_names)[:20],
                         "kleidiai": kleidi})
            sme2_seen |= bool(sme2_names)
        if sme2_seen:
            return "sme2", "the kit's XNNPACK kernel log names SME2 micro-kernels: the CPU that ran it has SME2", logs
        return "unknown", "the kit folder does not record the CPU it ran on" + (
            " and its kernel logs name no SME2 micro-kernels" if logs else ""), logs


def _record(folder: RunFolder, event: Event) -> None:
    """Checkpoints go into the new run's manifest, as the pipeline does (the wizard shows them from there)."""
    if isinstance(event, Checkpoint):
        folder.add_checkpoint({"step": event.step, "name": event.name, "status": event.status,
                               "detail": event.detail, "fix": event.fix, "subject": event.subject})


def analyze_kit_folder(kit_dir: Path, *, output_root: Path, kit_config: Path | None = None,
                       categories: Path | None = None, warmup: int | None = None
                       ) -> Generator[Event, None, KitAnalysis]:
    """Analyze a kit run folder into a new sme2tui run folder under `output_root` (events; returns the result)."""
    dropped = DEFAULT_DROPPED if warmup is None else warmup
    if dropped < 0:
        raise ConfigError("--warmup must be 0 or more", where="command line", fix="e.g. --warmup 1")
    if _inside(output_root, kit_dir):
        raise ConfigError(f"the output root {output_root} is inside the kit's folder {kit_dir}; sme2tui never "
                          "writes into the kit's outputs", where="--output-root",
                          fix="pass --output-root somewhere else (e.g. runs/)")
    yield StepStarted("analyze", f"Read the Arm kit run folder {kit_dir.name}")
    kit = scan_kit_folder(kit_dir, kit_config)
    if not kit.cells:
        what = (f"{kit_dir} has only XNNPACK kernel logs (xnntrace), no ETDump to time" if kit.traces else
                f"no ETDump in {kit_dir}")
        raise AnalysisError(what, where=str(kit_dir), fix="pass the output_root of a kit run with timing "
                            "experiments (it holds <model>_<experiment>_t<N>.etdump files)")
    for cell in kit.cells:
        yield LogLine("analyze", f"{cell.etdump.relative_to(kit_dir)} → {cell.experiment}, {cell.threads} "
                      f"thread(s) ({cell.how})", "info", "kit")
    for text in kit.ignored:
        yield LogLine("analyze", f"left alone: {text}", "debug", "kit")
    pairing = kit.pairing
    pair_check = Checkpoint("analyze", "kit pair", "pass" if pairing else "warn",
                     f"{pairing.baseline} (baseline) vs {pairing.candidate} (candidate), from {pairing.source}"
                     if pairing else f"no pair found among {', '.join(kit.experiments)}: each experiment is "
                     "reported on its own", "" if pairing else "pass --kit-config with analysis.compare_pairs, or "
                     "name the experiments …_sme2_off / …_sme2_on")
    yield pair_check
    run = _KitRun(kit, output_root, dropped)
    program = _find_program(kit, kit_dir)
    config, names, dtype, dtype_how = run.config(program)
    sme, sme_detail, logs = run.sme_facts()
    folder = RunFolder.create(config, output_root=output_root, config_source=f"Arm kit run folder {kit_dir}")
    yield LogLine("analyze", f"run folder: {folder.root}", "info", "sme2tui")
    run.manifest_facts(folder, config, program, dtype, (sme, sme_detail))
    _record(folder, pair_check)
    try:
        rows: list[dict[str, Any]] = []
        staging = run.stage(folder, config, names, dtype)
        while True:
            try:
                event = next(staging)
            except StopIteration as done:
                rows = done.value
                break
            _record(folder, event)
            yield event
        summary: dict[str, Any] | None = None
        ok = not any(c.get("status") == "failed" for c in folder.manifest["cells"].values())
        for event in analyze_run(folder, config, categories=categories):
            if isinstance(event, StepFinished):
                summary, ok = event.data.get("summary"), ok and event.ok
            _record(folder, event)
            yield event
    except BaseException:
        folder.finish("failed")
        raise
    if summary is None:
        folder.finish("failed")
        raise AnalysisError("the analysis produced no summary", where=str(folder.root),
                            fix="see the checkpoints above")
    pair = summary["pairs"][0] if summary["pairs"] else None
    for row in rows:
        cell = summary["cells"].get(row["cell"])
        row["sme2tui_median_ms"] = cell["latency"]["median"] if cell else None
        row["sme2tui_n"] = cell["latency"]["n"] if cell else None
        row["sme2tui_mean_ms"] = cell["latency"]["mean"] if cell else None
    summary["kit"] = {
        "folder": str(kit_dir.resolve()), "model": kit.model, "program": str(program) if program else None,
        "dtype": dtype, "dtype_how": dtype_how, "warmup_dropped": dropped,
        "pairing": {"baseline": pairing.baseline, "candidate": pairing.candidate, "source": pairing.source}
        if pairing else None,
        "experiments": rows, "kernel_logs": logs, "notes": run.notes, "ignored": kit.ignored,
        "kit_config": str(kit.config.path) if kit.config else None,
        "statistic": "the kit counts every in-process iteration (the first is cold: it warmed up in another "
                     "process); sme2tui drops the first and reports it as first inference",
    }
    write_json_atomic(folder.root / "analysis" / "summary.json", summary)
    from sme2tui.report.markdown import render_report

    write_text_atomic(folder.root / "analysis" / "report.md", render_report(summary, folder.manifest))
    folder.finish("complete" if ok else "partial")
    yield StepFinished("analyze", ok=ok, summary=f"{len(rows)} kit cells re-analyzed into {folder.root}"
                       + (f"; pair {pair['candidate']} vs {pair['baseline']}" if pair else ""),
                       data={"run_dir": str(folder.root)})
    return KitAnalysis(folder.root, summary, kit)


def kit_digest(result: KitAnalysis) -> dict[str, Any]:
    """What `analyze --json` prints for a kit folder: every experiment and the compared pair with its interval."""
    summary = result.summary
    experiments = []
    for row in summary["kit"]["experiments"]:
        cell = summary["cells"].get(row["cell"]) or {}
        lat = cell.get("latency") or {}
        experiments.append({**{k: row[k] for k in ("experiment", "threads", "variant", "cell", "etdump",
                                                  "iterations_in_etdump", "dropped", "first_iteration_ms",
                                                  "kit_median_ms", "kit_mean_ms", "kit_count")},
                            "median_ms": lat.get("median"), "iterations": lat.get("n"), "cv": lat.get("cv"),
                            "p10_ms": lat.get("p10"), "p90_ms": lat.get("p90"),
                            "categories_ms": cell.get("categories_ms")})
    pairs = [{"model": p["model"], "dtype": p["dtype"], "threads": p["threads"], "baseline": p["baseline"],
              "candidate": p["candidate"], "speedup": p["speedup"], "baseline_median_ms": p["baseline_median_ms"],
              "candidate_median_ms": p["candidate_median_ms"], "bottleneck": p.get("bottleneck_note"),
              "statistic": p.get("statistic")} for p in summary["pairs"]]
    return {"kit_folder": summary["kit"]["folder"], "run_dir": str(result.run_dir),
            "summary": str(result.run_dir / "analysis" / "summary.json"),
            "report": str(result.run_dir / "analysis" / "report.md"), "comparison": summary["comparison"],
            "pairing": summary["kit"]["pairing"], "experiments": experiments, "pairs": pairs,
            "kernel_logs": summary["kit"]["kernel_logs"], "warnings": summary.get("warnings", [])}



def carry_kit_section(kit: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """A run folder made from a kit folder, analyzed again: keep its kit section, with today's medians."""
    for row in kit.get("experiments") or []:
        cell = summary["cells"].get(row.get("cell"))
        row["sme2tui_median_ms"] = cell["latency"]["median"] if cell else None
        row["sme2tui_mean_ms"] = cell["latency"]["mean"] if cell else None
        row["sme2tui_n"] = cell["latency"]["n"] if cell else None
    summary["kit"] = kit
    return summary
