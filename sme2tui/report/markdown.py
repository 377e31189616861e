"""`analysis/report.md`: what was measured, the answer, where the time goes, and what to do next."""

from __future__ import annotations

from typing import Any

from sme2tui.analysis.categorize import ALL_BUCKETS
from sme2tui.report.charts import Chart, all_charts


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def noise_note(pair: dict[str, Any], cells: dict[str, Any] | None) -> str:
    """'xnnpack very noisy (CV 116%)' for the sides of a pair whose CV is over the warning limits ('' if none):
    the headline itself says so, not only the warnings list (a tight interval can sit on noisy iterations)."""
    from sme2tui.analysis.stats import CV_NOISY, CV_WARN

    notes = []
    for side in ("baseline", "candidate"):
        cell = (cells or {}).get(str(pair.get(f"{side}_cell")), {})
        cv = (cell.get("latency") or {}).get("cv") if isinstance(cell, dict) else None
        if isinstance(cv, (int, float)) and cv > CV_WARN:
            notes.append(f"{pair[side]} {'very noisy' if cv > CV_NOISY else 'noisy'} (CV {cv:.0%})")
    return ", ".join(notes)


def headline(pair: dict[str, Any], comparison: dict[str, Any], cells: dict[str, Any] | None = None) -> str:
    s = pair["speedup"]
    noise = noise_note(pair, cells)
    verdict = {"faster": "faster than", "slower": "slower than", "inconclusive": "not measurably different from"}
    return (f"**{pair['model']} {pair['dtype']}, {pair['threads']} thread(s): {pair['candidate']} is "
            f"{s['value']:.2f}× {verdict[s['verdict']]} {pair['baseline']}** "
            f"(95% CI {s['ci_low']:.2f}–{s['ci_high']:.2f}; medians {pair['baseline_median_ms']:.3f} → "
            f"{pair['candidate_median_ms']:.3f} ms over {s['baseline_n']}/{s['candidate_n']} measured iterations)"
            + (f" — {noise}" if noise else ""))


def emulated_line(pair: dict[str, Any]) -> str:
    """One emulated pair in words: which SME2 kernels ran on which side and whether the outputs agree."""
    on, off = pair["evidence"]["candidate"], pair["evidence"]["baseline"]
    executed = on.get("sme2_kernel_instructions_executed")
    counted = f", {executed:,} SME2-kernel instructions executed" if executed else ""
    return (f"{pair['model']} {pair['dtype']} (emulated): {pair['candidate']} ran {len(on['sme2_kernels'])} SME2 "
            f"kernel function(s){counted}; {pair['baseline']} ran {len(off['sme2_kernels'])} SME2 and "
            f"{len(off['sme_kernels'])} SME; outputs on vs off: {pair['numerics']['status']}")


def evidence_section(summary: dict[str, Any]) -> list[str]:
    """report.md's evidence table for an emulated run: kernels, instruction counts and numerics per cell."""
    emulated = summary.get("emulated") or {}
    if not emulated:
        return []
    qemu = emulated.get("qemu") or {}
    lines = ["", "## Evidence (emulated: which kernels ran)", "",
             f"QEMU {qemu.get('version', '?')} ({qemu.get('source', '?')}). {emulated['note']}", ""]
    rows = []
    for cell_id, e in emulated["cells"].items():
        if "cpu" not in e:
            continue
        executed = e.get("sme2_kernel_instructions_executed")
        eager = (e.get("numerics_vs_eager") or {}).get("status", "—")
        rows.append([cell_id, f"`{e['cpu']}`", e.get("cpu_features") or "?", str(len(e["sme2_kernels"])),
                     str(len(e["sme_kernels"])), f"{e['sme_instructions_translated']:,}",
                     f"{executed:,}" if executed else "—", eager])
    lines += _table(["cell", "-cpu", "CPU reports", "SME2 kernels", "SME kernels", "SME instr. translated",
                     "SME2-kernel instr. executed", "vs eager"], rows)
    for pair in emulated.get("pairs", []):
        lines += ["", f"- {emulated_line(pair)} — {pair['numerics']['detail']}"]
        names = pair["evidence"]["candidate"]["sme2_kernels"]
        if names:
            lines.append("  SME2 kernels: " + ", ".join(f"`{n}`" for n in names))
    lines += ["", "Emulated milliseconds appear in the latency table only as a record; they are not hardware time "
              "and no speedup is derived from them."]
    return lines


def _chart(charts: dict[str, Chart], name: str) -> list[str]:
    chart = charts.get(name)
    return ["", chart.markdown("charts"), ""] if chart else []


def _tail(lat: dict[str, Any], q: int) -> str:
    value = lat.get(f"p{q}_ms")
    if value is None:
        return "—"
    if lat.get(f"p{q}_estimable", True):
        return _ms(value)
    return f"{_ms(value)} (≈max: n={lat['n']} < {lat[f'p{q}_min_n']})"


def _peers_section(summary: dict[str, Any]) -> list[str]:
    """Load, first inference, tail latency and memory per cell: what benchmark_model/ORT/llama-bench users expect."""
    from sme2tui.analysis.peers import format_bytes

    cells = [c for c in summary["cells"].values() if c.get("peers")]
    if not cells:
        return []
    rows = []
    for c in cells:
        p = c["peers"]
        load, first, lat, mem, prog = p["load"], p["first_inference"], p["latency"], p["memory"], p["program"]
        ratio = first.get("cold_to_warm")
        rows.append([c["variant"], str(c["threads"]), _ms(load["program_load_ms"]), _ms(load["method_load_ms"]),
                     _ms(load["method_init_ms"]),
                     _ms(first["ms"]) + (f" ({ratio:.1f}× warm)" if ratio else ""), _ms(lat["median_ms"]),
                     _tail(lat, 95), _tail(lat, 99), format_bytes(mem["peak_rss_bytes"]),
                     format_bytes(prog["size_bytes"]), format_bytes(prog["planned_memory_bytes"])])
    sources = sorted({c["peers"]["memory"].get("source") or c["peers"]["memory"].get("note", "") for c in cells})
    notes = sorted({c["peers"]["note"] for c in cells if c["peers"].get("note")})
    return ["", "## Load, first inference, tail latency and memory", "",
            "What TFLite's benchmark_model, ONNX Runtime's perf test and llama-bench users look for. Load: the "
            "runner's own clock around `Program::load`, the ETDump's `Program::load_method` and its `Method::init` "
            "(delegate and kernel init), median over runner processes. First inference: the first execution of "
            "the first runner process, never part of the warm statistics (unless warmup is 0). p95/p99 over "
            "the measured iterations; from fewer than 20 (p95) or 100 (p99) iterations they are about the slowest "
            "iteration, marked ≈max, not a tail estimate. Peak RSS: "
            + "; ".join(s for s in sources if s) + ". Planned memory: the .pte's memory-planned buffers.", "",
            *[f"**Note:** {n}." for n in notes],
            *_table(["variant", "threads", "program load ms", "method load ms", "init ms", "first inference ms",
                     "median ms", "p95 ms", "p99 ms", "peak RSS", "program", "planned memory"], rows)]


def _kit_section(summary: dict[str, Any]) -> list[str]:
    """A run folder of Arm's kit, re-analyzed: what was read, and where sme2tui's numbers differ from the kit's."""
    kit = summary.get("kit")
    if not kit:
        return []
    pairing = kit.get("pairing")
    lines = ["## Imported from Arm's SME2 ExecuTorch profiling kit", "",
             f"- **Kit run folder:** `{kit['folder']}` (read only; its files were copied here)",
             f"- **Program:** `{kit.get('model')}` — {kit['dtype']} ({kit['dtype_how']})",
             f"- **Pair:** {pairing['baseline']} → {pairing['candidate']}, from {pairing['source']}" if pairing else
             "- **Pair:** none found (see the per-cell table)",
             f"- **Statistic:** {kit['statistic']}.", "",
             "| experiment | threads | iterations in ETDump | first iteration ms | kit median / mean ms (n) | "
             "sme2tui median / mean ms (n) |", "|---|---|---|---|---|---|"]
    for row in kit["experiments"]:
        kit_said = "—" if row.get("kit_median_ms") is None else (
            f"{row['kit_median_ms']:.3f} / {_ms(row.get('kit_mean_ms'))} ({row['kit_count']})")
        ours = "—" if row.get("sme2tui_median_ms") is None else (
            f"{row['sme2tui_median_ms']:.3f} / {_ms(row.get('sme2tui_mean_ms'))} ({row['sme2tui_n']})")
        cold = " (cold)" if row.get("cold_first") else ""
        lines.append(f"| {row['experiment']} | {row['threads']} | {row['iterations_in_etdump']} | "
                     f"{row['first_iteration_ms']:.3f}{cold} | {kit_said} | {ours} |")
    lines.append("")
    for log in kit.get("kernel_logs") or []:
        if log.get("unreadable"):
            lines.append(f"- Kernel log `{log['log']}` ({log['experiment']}) was not read: {log['unreadable']}; it "
                         "counts neither for nor against SME2.")
            continue
        found = ", ".join(log["sme2_kernels"][:3]) or "none"
        lines.append(f"- Kernel log `{log['log']}` ({log['experiment']}): SME2 micro-kernels named: {found}. It "
                     "comes from the kit's separate log-enabled (xnntrace) run, not from the timed process.")
    lines += [f"- {note}" for note in kit.get("notes") or []]
    lines += ["", f"Re-analyze: `sme2tui analyze {kit['folder']}`" +
              (f" `--kit-config {kit['kit_config']}`" if kit.get("kit_config") else ""), ""]
    return lines


def render_report(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    comparison = summary["comparison"]
    charts = {c.file_name: c for c in all_charts(summary)}
    lines = [f"# sme2tui report — {summary['run']}", ""]
    host = manifest.get("host", {})
    if summary["target"] == "emulated":
        qemu = (summary.get("emulated") or {}).get("qemu") or {}
        where = (f"emulated Arm CPU: QEMU {qemu.get('version', '?')} user mode on host {host.get('cpu_model', '?')} "
                 f"({host.get('machine', '?')}) — not hardware time")
    elif summary["target"] == "android":
        device = manifest.get("device") or {}
        where = (f"Android device {device.get('model', '?')} ({device.get('serial', '?')}), "
                 f"SME2: {device.get('sme', '?')}")
    else:
        where = f"host {host.get('cpu_model', '?')} ({host.get('machine', '?')}), SME2: {host.get('sme', '?')}"
    if summary.get("kit"):
        where = f"the machine that ran Arm's kit (its folder does not record which), SME2: {host.get('sme', '?')}"
    lines += [f"- **Comparison:** {comparison['label']}", f"- **Where:** {where}"]
    if comparison.get("note"):
        lines.append(f"- **Note:** {comparison['note']}")
    cfg = summary["config"]
    lines += [f"- **Measurement:** {cfg['warmup']} warmup (excluded) + {cfg['iterations']} measured iterations per "
              f"cell, interleaved between variants; ETDump profiling {'on' if cfg['profile'] else 'off'}",
              f"- **Latency statistic:** {summary['statistics']['latency']}", ""]
    lines += _kit_section(summary)
    lines += ["## Answer", ""]
    if summary.get("emulated"):
        lines += [f"- {emulated_line(p)}" for p in summary["emulated"]["pairs"]] or ["No complete emulated pair."]
    elif summary["pairs"]:
        lines += [f"- {headline(p, comparison, summary.get('cells'))}" for p in summary["pairs"]]
    else:
        lines.append("No complete pair was measured (see the cell table).")
    if summary["pairs"] and not comparison.get("is_sme2"):
        lines += ["", "> This is not an SME2 result. SME2 on/off needs an SME2 CPU (Arm C1 phones, Apple M4/M5) and "
                  "the `sme2-on`/`sme2-off` runner pair; the published SME2 figures are listed below for reference."]
    lines += _chart(charts, "latency.svg")
    lines += ["", "## Latency per cell", ""]
    rows = []
    for c in summary["cells"].values():
        lat = c["latency"]
        rows.append([c["model"], c["dtype"], c["variant"], str(c["threads"]), str(lat["n"]), _ms(lat["median"]),
                     _ms(lat["p10"]), _ms(lat["p90"]), f"{lat['cv']:.1%}", c["source"]])
    lines += _table(["model", "dtype", "variant", "threads", "iterations", "median ms", "p10 ms", "p90 ms", "CV",
                     "source"], rows)
    lines += _peers_section(summary)
    if any(p["categories"] for p in summary["pairs"]):
        lines += ["", "## Category breakdown", *_chart(charts, "categories.svg")]
    for p in summary["pairs"]:
        if not p["categories"]:
            continue
        lines += ["", f"## Where the time goes — {p['model']} {p['dtype']} t{p['threads']}", "",
                  f"Statistic: {summary['statistics']['categories']}.", ""]
        rows = []
        for bucket in ALL_BUCKETS:
            entry = p["categories"].get(bucket, {})
            ratio = entry.get("speedup")
            rows.append([bucket, _ms(entry.get("baseline_ms")), _ms(entry.get("candidate_ms")),
                         f"{ratio:.2f}×" if ratio else "—"])
        lines += _table(["category", f"{p['baseline']} ms", f"{p['candidate']} ms", "speedup"], rows)
        if p.get("bottleneck_note"):
            lines += ["", f"**Bottleneck:** {p['bottleneck_note']}."]
        if p["operators_matched"]:
            lines += ["", f"Biggest per-operator gains ({p['operators_matched']} operators matched on "
                      "(instruction id, name)):", ""]
            lines += _table(["instruction", "operator", "category", f"{p['baseline']} ms", f"{p['candidate']} ms",
                             "speedup"],
                            [[str(g["instruction_id"]), g["name"], g["category"], _ms(g["baseline_ms"]),
                              _ms(g["candidate_ms"]), f"{g['speedup']:.2f}×" if g["speedup"] else "—"]
                             for g in p["top_gains"][:8]])
        else:
            lines += ["", "Operators are not matched one to one: the two variants run different programs "
                      "(different delegation), so compare categories, not operators."]
    for c in summary["cells"].values():
        if not c["operators"]:
            continue
        lines += ["", f"### Top operators — {c['cell_id']}", *_chart(charts, f"top_operators_{c['cell_id']}.svg")]
        lines += _table(["instruction", "operator", "category", "delegated", "median ms", "share"],
                        [[str(o["instruction_id"]), o["name"], o["category"], "yes" if o["delegated"] else "no",
                          _ms(o["median_ms"]), f"{o['share']:.1%}"] for o in c["operators"][:10]])
        if c["unknown_names"]:
            lines += ["", f"Unknown operator names counted as OTHER: {', '.join(c['unknown_names'])}"]
        if c.get("sub_resolution_ops"):
            lines += ["", f"{c['sub_resolution_ops']} delegated operators read under 1 µs here: XNNPACK's counters "
                      "tick in whole microseconds, so those rows are rounding, not measurements."]
    exports = manifest.get("exports", {})
    if exports:
        lines += ["", "## Exported programs and numerical checks", ""]
        rows = []
        for stem, e in exports.items():
            n = e.get("numerics") or {}
            d = e.get("delegation") or {}
            rows.append([stem, n.get("status", "skip"), n.get("detail", "—"),
                         ", ".join(f"{k}×{v}" for k, v in (d.get("non_delegated_ops") or {}).items()) or "—"])
        lines += _table(["program", "numerics", "detail", "left to portable kernels"], rows)
    ref = summary["reference"]
    lines += ["", "## Published SME2 reference (not this machine)", "", f"{ref['label']}. Source: {ref['source']}.",
              *_chart(charts, "reference.svg")]
    lines += _table(["dtype", "SME2 off ms", "SME2 on ms", "speedup"],
                    [[r["dtype"], str(r["sme2_off"]), str(r["sme2_on"]), f"{r['speedup']}×"] for r in ref["latency"]])
    lines += evidence_section(summary)
    evidence = summary.get("evidence") or {}
    if evidence and not summary.get("emulated"):
        lines += ["", "## SME2 evidence", ""]
        lines += [f"- `{name}`: {ev['detail']}" for name, ev in evidence.items()]
    lines += ["", "Timeline: `trace.json` (Chrome trace; open it in ui.perfetto.dev or chrome://tracing) shows every "
              "iteration with its operators nested inside."]
    if summary["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    lines += ["", "## What good looks like", ""]
    if summary.get("emulated"):
        # Emulated time is not hardware time: what proves the run is which kernels ran and what they computed.
        lines += ["- Every SME2-on cell names the KleidiAI SME2 kernels that ran; no SME2-off cell names any.",
                  "- Every numerics check passes: SME2 on vs off, and each side vs the eager model.",
                  "- No speedup: emulated milliseconds are a record, not hardware time. For speed, run the same "
                  "config on an SME2 device (`target.kind = android`, or a Mac with M4/M5)."]
    else:
        lines += ["- Every numerics check passes (an export that computes the wrong thing makes its speed "
                  "meaningless).",
                  "- CV under 5% on every cell, and a speedup interval that does not span 1.0.",
                  "- With SME2 on, matrix work (CONV, GEMM) shrinks several times; DATA_MOVEMENT and OTHER then "
                  "dominate (the published SqueezeSAM fp16 split has data movement at ~40% with SME2 on)."]
    lines += ["", "## What to do next with your own model", "",
              "1. Write a factory `my_pkg.my_model:build` returning `(model.eval(), (example_input,))`.",
              "2. Copy `configs/templates/host.json`, set `models` to `[{\"factory\": \"my_pkg.my_model:build\"}]`, "
              "pick `dtypes`.",
              "3. `sme2tui --auto --config my.json`, then read this report's category table: the biggest non-GEMM "
              "category is where to work next (fewer layout changes, fusing, delegating what stayed portable).",
              "4. On an SME2 phone: `target.kind = android` and the `sme2-on`/`sme2-off` runner pair.",
              "", "## Reproduce", "",
              f"- `sme2tui analyze {summary['kit']['folder']}` (the kit's run folder, analyzed again)" if summary.get(
                  "kit") else f"- `sme2tui --auto --config {summary['run']}/config.json` "
              f"(config hash `{manifest['config_hash'][:16]}`)",
              f"- ExecuTorch {manifest['versions']['executorch']['version']} "
              f"(git {str(manifest['versions']['executorch']['git_commit'])[:12]}), torch "
              f"{manifest['versions']['torch']['version']}, sme2tui {manifest['versions']['sme2tui']}"]
    return "\n".join(lines) + "\n"
