"""`analyze` on bare ETDumps from any runner, `compare` of two runs, and the reference-shape checkpoint."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from sme2tui.analysis.categorize import Categorizer
from sme2tui.analysis.files import analyze_etdump_file
from sme2tui.analysis.runs_compare import compare_runs
from sme2tui.analysis.shape import compare_shape
from sme2tui.etdump import read_etdump
from sme2tui.exit_codes import ExitCode
from tests.conftest import REPO, run_cli

ETDUMPS = REPO / "tests" / "data" / "etdump"
SUMMARY = json.loads((REPO / "tests" / "data" / "report" / "summary.json").read_text())


def test_bare_etdump_analysis_adds_up_by_hand() -> None:
    path = ETDUMPS / "xnnpack_fp32.etdp"
    result = analyze_etdump_file(path, warmup=1, categorizer=Categorizer.load())
    trace = read_etdump(path)
    measured = trace.iterations[1:]
    assert result.latency.n == len(measured) == 2
    assert result.latencies_ms == pytest.approx([it.total / 1e6 for it in measured])
    # by hand: the CONV category is the median over iterations of the summed convolution leaves
    conv = sorted(sum(e.duration for e in trace.leaf_events(it) if e.name.startswith("Convolution")) / 1e6
                  for it in measured)
    assert result.categories_ms["CONV"] == pytest.approx(sum(conv) / 2)
    assert sum(result.categories_ms.values()) == pytest.approx(result.latency.median)


def test_analyze_command_on_files_and_a_corrupt_one(tmp_path: Path) -> None:
    bad = tmp_path / "broken.etdp"
    bad.write_bytes((ETDUMPS / "xnnpack_fp32.etdp").read_bytes()[:300])
    result = run_cli("analyze", "--json", "--warmup", "1", ETDUMPS / "xnnpack_fp32.etdp", bad,
                     ETDUMPS / "portable_fp16.etdp")
    assert result.returncode == ExitCode.ANALYSIS
    assert "broken.etdp" in result.stderr and "Traceback" not in result.stderr
    analyzed = json.loads(result.stdout)["analyzed"]
    assert [Path(a["etdump"]).name for a in analyzed] == ["xnnpack_fp32.etdp", "portable_fp16.etdp"]
    assert "median" in result.stderr and "CONV" in result.stderr


def test_analyze_rejects_a_missing_path(tmp_path: Path) -> None:
    result = run_cli("analyze", tmp_path / "nope")
    assert result.returncode == ExitCode.CONFIG and "no such file or folder" in result.stderr


def test_compare_runs_matches_cells_and_reports_b_vs_a() -> None:
    slower = copy.deepcopy(SUMMARY)
    slower["run"] = "B"
    for cell in slower["cells"].values():
        cell["latencies_ms"] = [v * 10 for v in cell["latencies_ms"]]
        cell["latency"]["median"] *= 10
    result = compare_runs(SUMMARY, slower)
    assert len(result["cells"]) == len(SUMMARY["cells"])
    for row in result["cells"]:
        assert row["b_vs_a"]["value"] == pytest.approx(0.1)
        assert row["b_vs_a"]["verdict"] == "slower"


def test_compare_command_needs_analyzed_runs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "analysis").mkdir(parents=True)
        shutil.copy(REPO / "tests" / "data" / "report" / "summary.json", tmp_path / name / "analysis")
    ok = run_cli("compare", "--json", tmp_path / "a", tmp_path / "b")
    assert ok.returncode == 0 and json.loads(ok.stdout)["cells"]
    not_a_run = run_cli("compare", tmp_path / "a", tmp_path)  # no manifest: analyzing it would fail too
    assert not_a_run.returncode == ExitCode.CONFIG and "not a run folder" in not_a_run.stderr
    assert "sme2tui analyze" not in not_a_run.stderr
    unanalyzed = tmp_path / "run"
    shutil.copytree(REPO / "runs" / "reference", unanalyzed, ignore=shutil.ignore_patterns("analysis"))
    missing = run_cli("compare", tmp_path / "a", unanalyzed)
    assert missing.returncode == ExitCode.CONFIG and f"sme2tui analyze {unanalyzed}" in missing.stderr


def test_shape_check_passes_on_itself_and_flags_a_different_shape() -> None:
    same = compare_shape(SUMMARY, SUMMARY)
    assert same and all(c.status == "pass" for c in same)
    other = copy.deepcopy(SUMMARY)
    for cell in other["cells"].values():
        if cell["categories_ms"]:
            cell["categories_ms"] = {k: (100.0 if k == "OTHER" else 0.1) for k in cell["categories_ms"]}
    flagged = [c for c in compare_shape(other, SUMMARY) if c.name == "matches reference run"]
    assert flagged and all(c.status == "warn" for c in flagged)
    assert "OTHER" in flagged[0].detail


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_on_success_wherever_the_flag_stands(where: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An agent reading stdout gets one JSON document from every command, with --json before or after it."""
    from sme2tui.cli import main

    run = tmp_path / "run"
    shutil.copytree(REPO / "runs" / "reference", run)
    commands = [["analyze", str(run)], ["compare", str(run), str(run)], ["report", str(run)],
                ["config", "validate", str(REPO / "configs" / "examples" / "quickstart.json")]]
    for argv in commands:
        full = ["--json", *argv] if where == "before" else [*argv, "--json"]
        assert main(full) == 0, full
        out = capsys.readouterr().out
        assert isinstance(json.loads(out), dict), (full, out[:200])
