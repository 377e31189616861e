"""`sme2tui analyze KIT_RUN_DIR` (and `compare`): real ETDumps from our runner laid out the kit's way
(tests/data/kit_run) are grouped by experiment and thread count, paired, re-analyzed with the cold first
iteration dropped, and written to a NEW run folder; the kit's folder is never touched."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

from sme2tui.etdump import iteration_total_ns, read_etdump
from sme2tui.exit_codes import ExitCode
from sme2tui.fileio import sha256_file
from sme2tui.kit.folder import looks_like_kit_folder, scan_kit_folder
from tests.conftest import REPO, run_cli

KIT = REPO / "tests" / "data" / "kit_run"
STEM = "toy_cnn_xnnpack_fp32"


@pytest.fixture
def kit_copy(tmp_path: Path) -> Path:
    """A kit checkout-like folder: artifacts/ with the program, runs/mac with the kit's outputs."""
    root = tmp_path / "kit"
    shutil.copytree(KIT, root, ignore=shutil.ignore_patterns("*.py", "README.md"))
    return root


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _analyze(kit_dir: Path, out: Path, *extra: str | Path) -> tuple[Any, dict[str, Any]]:
    result = run_cli("analyze", kit_dir, "--output-root", out, "--json", *extra, cwd=out.parent)
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


def test_a_kit_run_folder_is_analyzed_into_a_new_run_folder(kit_copy: Path, tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    before = _hashes(kit_copy)
    result, data = _analyze(kit_dir, tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    assert _hashes(kit_copy) == before, "the kit's folder must not change"
    (entry,) = data["analyzed"]
    run_dir = Path(entry["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and not str(run_dir).startswith(str(kit_copy))
    # both experiments at both thread counts, and the pair at each count with its interval
    got = {(e["experiment"], e["threads"]) for e in entry["experiments"]}
    assert got == {("mac_sme2_on", 1), ("mac_sme2_on", 2), ("mac_sme2_off", 1), ("mac_sme2_off", 2)}
    assert [(p["baseline"], p["candidate"], p["threads"]) for p in entry["pairs"]] == [
        ("mac_sme2_off", "mac_sme2_on", 1), ("mac_sme2_off", "mac_sme2_on", 2)]
    for pair in entry["pairs"]:
        s = pair["speedup"]
        assert s["ci_low"] <= s["value"] <= s["ci_high"] and s["baseline_n"] == s["candidate_n"] == 9
    assert entry["pairing"]["source"].startswith("the kit's robust comparison file")
    # not a verified SME2 pair: the builds are unknown (and here both sides are the same x86 runner)
    assert entry["comparison"]["is_sme2"] is False and entry["comparison"]["builds_verified"] is False
    # the cold first iteration: dropped, reported, and the numbers equal a hand computation
    on1 = next(e for e in entry["experiments"] if e["experiment"] == "mac_sme2_on" and e["threads"] == 1)
    totals = [ns / 1e6 for ns in iteration_total_ns(read_etdump(kit_dir / f"{STEM}_mac_sme2_on_t1.etdump"))]
    assert on1["iterations_in_etdump"] == 10 and on1["dropped"] == 1 and on1["iterations"] == 9
    assert on1["median_ms"] == pytest.approx(statistics.median(totals[1:]))
    assert on1["first_iteration_ms"] == pytest.approx(totals[0]) and totals[0] > 2 * on1["median_ms"]
    kit_stats = json.loads((kit_dir / f"{STEM}_mac_sme2_on_t1_exec_all_runs_timeline_robust_stats.json").read_text())
    assert on1["kit_count"] == 10 and on1["kit_median_ms"] == pytest.approx(kit_stats["median_ms"])
    assert "cold first iteration" in result.stderr and "the kit reported median" in result.stderr
    # a full sme2tui analysis: tables, charts, trace, report with the kit section, peer metrics
    analysis = run_dir / "analysis"
    for name in ("summary.json", "categories.csv", "operators.csv", "peers.csv", "trace.json", "report.md",
                 "charts/latency.svg", "charts/categories.svg"):
        assert (analysis / name).is_file(), name
    summary = json.loads((analysis / "summary.json").read_text())
    cell = summary["cells"][on1["cell"]]
    assert sum(cell["categories_ms"].values()) == pytest.approx(cell["latency"]["median"])
    assert cell["peers"]["first_inference"]["ms"] == pytest.approx(totals[0])
    assert cell["peers"]["program"]["planned_memory_bytes"] == 573504  # what the runner allocated for it
    report = (analysis / "report.md").read_text()
    assert "Imported from Arm's SME2 ExecuTorch profiling kit" in report and "builds not verified" in report
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["source"]["kind"] == "arm-kit-run-folder"
    assert {f["path"] for f in manifest["source"]["files"]} >= {f"{STEM}_mac_sme2_on_t1.etdump"}
    assert all(r["build"] == "unknown" for r in manifest["runners"].values())
    # the new folder is an ordinary run folder: report, analyze again keep the kit section; nothing to resume
    assert run_cli("report", run_dir).returncode == 0
    assert "Imported from Arm's" in (analysis / "report.md").read_text()
    again = run_cli("analyze", run_dir)
    assert again.returncode == 0, again.stderr
    assert json.loads((analysis / "summary.json").read_text())["kit"]["experiments"]
    assert "Imported from Arm's" in (analysis / "report.md").read_text()
    resume = run_cli("--auto", "--resume", run_dir)
    assert resume.returncode == ExitCode.CONFIG and "nothing to resume" in resume.stderr


def test_kernel_logs_of_trace_experiments_become_evidence(kit_copy: Path, tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    result, data = _analyze(kit_dir, tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    logs = {log["experiment"]: log for log in data["analyzed"][0]["kernel_logs"]}
    assert set(logs) == {"mac_sme2_on_trace", "mac_sme2_off_trace"}
    assert all(log["names_kernels"] and not log["sme2_kernels"] for log in logs.values())
    run_dir = Path(data["analyzed"][0]["run_dir"])
    assert (run_dir / "cells" / f"{STEM}__fp32__mac_sme2_on__t1" / "kernel.log").is_file()
    assert not (run_dir / "cells" / f"{STEM}__fp32__mac_sme2_on__t2" / "kernel.log").exists()


def test_an_sme2_kernel_log_makes_the_cpu_sme2_capable_but_builds_stay_unverified(kit_copy: Path,
                                                                                   tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    (kit_dir / f"{STEM}_mac_sme2_on_trace_t1_xnntrace.log").write_text(
        "Using GEMM microkernel 'xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2'\n")
    result, data = _analyze(kit_dir, tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    entry = data["analyzed"][0]
    manifest = json.loads((Path(entry["run_dir"]) / "manifest.json").read_text())
    assert manifest["host"]["sme"] == "sme2" and "kernel log" in manifest["host"]["sme_detail"]
    assert entry["comparison"]["is_sme2"] is False and "cannot prove" in entry["comparison"]["note"]


def test_a_kernel_log_is_read_whole_or_said_unread(kit_copy: Path, tmp_path: Path) -> None:
    # An SME2 micro-kernel named after 17 MB of other lines is found (the log is streamed, not cut to a prefix);
    # past SME2TUI_LOG_MAX_MB the analysis is refused (exit 6, the limit named), never scanned in part.
    kit_dir = kit_copy / "runs" / "mac"
    log = kit_dir / f"{STEM}_mac_sme2_on_trace_t1_xnntrace.log"
    with log.open("w") as handle:
        line = "xnn_create_operator: nothing to see here, padding the log with a long but ordinary line\n"
        handle.write(line * (17 * 2**20 // len(line) + 1))
        handle.write("Using GEMM microkernel 'xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2'\n")
    result, data = _analyze(kit_dir, tmp_path / "whole")
    assert result.returncode == 0, result.stderr
    logs = {entry["experiment"]: entry for entry in data["analyzed"][0]["kernel_logs"]}
    assert logs["mac_sme2_on_trace"]["sme2_kernels"] == ["xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2"]
    limited = run_cli("analyze", kit_dir, "--output-root", tmp_path / "limited", "--json",
                      env={"SME2TUI_LOG_MAX_MB": "1"})
    assert limited.returncode == ExitCode.ANALYSIS and "Traceback" not in limited.stderr, limited.stderr
    assert "kernel.log is larger than 1,000,000 bytes" in limited.stderr and "SME2TUI_LOG_MAX_MB" in limited.stderr
    assert json.loads(limited.stdout)["ok"] is False  # refused whole: no verdict from a partial scan


def test_the_newer_nested_layout_without_a_summary_is_grouped_from_a_kit_manifest(kit_copy: Path,
                                                                                   tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    for path in [*kit_dir.glob("*_pipeline_summary.*"), *kit_dir.glob("*_robust_comparison.json")]:
        path.unlink()
    for exp in ("mac_sme2_on", "mac_sme2_off"):
        (kit_dir / exp).mkdir()
        for path in kit_dir.glob(f"{STEM}_{exp}_t*"):
            path.rename(kit_dir / exp / path.name)
    (kit_dir / "manifest.json").write_text(json.dumps({"schema_version": 1, "model": f"artifacts/{STEM}.pte",
                                                       "results": []}))
    folder = scan_kit_folder(kit_dir)
    assert {(c.experiment, c.threads) for c in folder.cells} == {
        ("mac_sme2_on", 1), ("mac_sme2_on", 2), ("mac_sme2_off", 1), ("mac_sme2_off", 2)}
    assert folder.pairing is not None and folder.pairing.source.startswith("experiment names")
    assert all(c.runs == 10 and c.warmup == 1 for c in folder.cells)  # read from the latency logs


def test_bare_etdumps_with_nothing_else_are_grouped_by_their_names(tmp_path: Path) -> None:
    kit_dir = tmp_path / "bare"
    kit_dir.mkdir()
    for path in (KIT / "runs" / "mac").glob("*.etdump"):
        shutil.copy(path, kit_dir / path.name.replace(STEM, "my_model_fp16"))
    assert looks_like_kit_folder(kit_dir)
    folder = scan_kit_folder(kit_dir)
    assert folder.model_stem == "my_model_fp16"
    assert {c.experiment for c in folder.cells} == {"mac_sme2_on", "mac_sme2_off"}
    result, data = _analyze(kit_dir, tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    summary = json.loads(Path(data["analyzed"][0]["summary"]).read_text())
    assert {c["dtype"] for c in summary["cells"].values()} == {"fp16"}  # from the program's name


def test_kit_config_pairs_and_warmup_flag(kit_copy: Path, tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    config = json.loads((KIT / "toy_cnn_run.json").read_text())
    config["analysis"]["compare_pairs"][0] = {"baseline": {"experiment": "mac_sme2_on", "threads": 2},
                                              "candidate": {"experiment": "mac_sme2_off", "threads": 2}}
    path = tmp_path / "kit_config.json"
    path.write_text(json.dumps(config))
    result, data = _analyze(kit_dir, tmp_path / "runs", "--kit-config", path, "--warmup", "3")
    assert result.returncode == 0, result.stderr
    entry = data["analyzed"][0]
    assert entry["pairing"]["baseline"] == "mac_sme2_on" and "compare_pairs" in entry["pairing"]["source"]
    assert all(e["dropped"] == 3 and e["iterations"] == 7 for e in entry["experiments"])


def test_refusals_and_broken_folders(kit_copy: Path, tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    inside = run_cli("analyze", kit_dir, "--output-root", kit_dir / "sme2tui")
    assert inside.returncode == ExitCode.CONFIG and "never writes into the kit" in inside.stderr
    assert not (kit_dir / "sme2tui").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    none = run_cli("analyze", empty)
    assert none.returncode == ExitCode.CONFIG and "neither an sme2tui run folder" in none.stderr
    above = run_cli("analyze", kit_copy)  # the kit checkout, not its run folder: say where the run folder is
    assert above.returncode == ExitCode.CONFIG and str(kit_dir) in above.stderr
    traces_only = tmp_path / "traces"
    traces_only.mkdir()
    for path in kit_dir.glob("*_xnntrace.log"):
        shutil.copy(path, traces_only)
    only = run_cli("analyze", traces_only, "--output-root", tmp_path / "runs")
    assert only.returncode == ExitCode.ANALYSIS and "only XNNPACK kernel logs" in only.stderr
    (kit_dir / f"{STEM}_mac_sme2_off_t2.etdump").write_bytes(b"\x00" * 40)
    result, data = _analyze(kit_dir, tmp_path / "runs")
    assert result.returncode == ExitCode.ANALYSIS and "Traceback" not in result.stderr
    assert "etdump readable" in result.stderr
    assert [p["threads"] for p in data["analyzed"][0]["pairs"]] == [1]  # the good pair is still there


@pytest.mark.parametrize("damage", ["missing", "folder", "fifo"])
def test_an_etdump_the_kit_lists_but_that_is_not_a_file_fails_its_cell(damage: str, kit_copy: Path,
                                                                       tmp_path: Path) -> None:
    """The kit's pipeline summary lists every ETDump it wrote: one gone (or a folder, a FIFO) fails its cell by
    name, instead of the rest being compared as if the run were complete."""
    kit_dir = kit_copy / "runs" / "mac"
    etdump = kit_dir / f"{STEM}_mac_sme2_on_t1.etdump"
    etdump.unlink()
    if damage == "folder":
        etdump.mkdir()
    elif damage == "fifo":
        os.mkfifo(etdump)
    result, data = _analyze(kit_dir, tmp_path / "runs")
    assert result.returncode == ExitCode.ANALYSIS and "Traceback" not in result.stderr, result.stderr
    assert f"etdump readable [{STEM}__fp32__mac_sme2_on__t1]" in result.stderr
    assert [p["threads"] for p in data["analyzed"][0]["pairs"]] == [2]  # the other pair is still there


def test_compare_takes_kit_folders(kit_copy: Path, tmp_path: Path) -> None:
    kit_dir = kit_copy / "runs" / "mac"
    result = run_cli("compare", "--json", kit_dir, kit_dir, "--output-root", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["cells"]) == 4 and all(r["b_vs_a"]["ci_low"] <= 1.0 <= r["b_vs_a"]["ci_high"]
                                           for r in data["cells"])
    assert len(list((tmp_path / "runs").iterdir())) == 2
