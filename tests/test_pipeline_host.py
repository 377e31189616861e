"""The spine, for real: `sme2tui --auto` exports with ExecuTorch, runs on its runtime, analyzes real ETDumps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sme2tui.etdump import read_etdump
from sme2tui.exit_codes import ExitCode
from sme2tui.fileio import sha256_file
from tests.conftest import REPO, run_cli, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def host_run(session_root: Path) -> dict[str, Any]:
    config = session_root / "tiny.json"
    config.write_text(json.dumps(tiny_config()))
    result = run_cli("--auto", "--json", "--config", config, "--output-root", session_root / "runs",
                     cwd=session_root)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    return {"result": result, "json": summary, "run_dir": Path(summary["run_dir"]), "config": config,
            "root": session_root}


def test_auto_prints_a_human_summary_and_json(host_run: dict[str, Any]) -> None:
    out = host_run["json"]
    assert out["ok"] is True and out["exit_code"] == 0 and out["status"] == "complete"
    assert out["comparison"]["label"] == "xnnpack vs portable"
    assert out["comparison"]["is_sme2"] is False
    (pair,) = out["pairs"]
    assert pair["speedup"]["verdict"] == "faster"
    assert pair["speedup"]["ci_low"] <= pair["speedup"]["value"] <= pair["speedup"]["ci_high"]
    stderr = host_run["result"].stderr
    assert "Result (xnnpack vs portable):" in stderr
    assert "published reference" in stderr and "not measured here" in stderr
    assert "good looks like" in stderr


def test_manifest_has_what_reproduction_needs(host_run: dict[str, Any]) -> None:
    run_dir: Path = host_run["run_dir"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["versions"]["executorch"]["version"].startswith("1.5.1")
    assert len(manifest["versions"]["executorch"]["git_commit"]) == 40
    assert manifest["versions"]["torch"]["version"].startswith("2.13.0")
    assert manifest["host"]["sme"] in ("sme2", "sme-only", "none", "unknown") and manifest["host"]["sme_detail"]
    config = json.loads((run_dir / "config.json").read_text())
    assert manifest["config_hash"] and config["iterations"] == 6
    assert len(manifest["exports"]) == 2
    for entry in manifest["exports"].values():
        assert sha256_file(run_dir / entry["pte"]) == entry["pte_sha256"]
        assert (run_dir / entry["etrecord"]).is_file()
        assert entry["numerics"]["status"] == "pass"
    for cell in manifest["cells"].values():
        assert cell["status"] == "done"
        assert cell["stats"]["latency_ms"]["n"] == 6
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert "analysis/report.md" in listed and "config.json" in listed
    for path, digest in listed.items():
        assert sha256_file(run_dir / path) == digest


def test_categories_plus_overhead_equal_median(host_run: dict[str, Any]) -> None:
    summary = json.loads((host_run["run_dir"] / "analysis" / "summary.json").read_text())
    for cell in summary["cells"].values():
        total = sum(cell["categories_ms"].values())
        assert total == pytest.approx(cell["latency"]["median"], rel=0.01)
        assert set(cell["categories_ms"]) == {"CONV", "GEMM", "DATA_MOVEMENT", "ELEMENTWISE", "OTHER", "OVERHEAD"}


def test_native_runner_is_built_and_runs_alternating_rounds(host_run: dict[str, Any]) -> None:
    """`auto` builds the native host runner; each round has its own in-process warmup, dropped by analysis."""
    run_dir: Path = host_run["run_dir"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (runner,) = manifest["runners"].values()
    assert runner["variant"] == "host-native" and len(runner["sha256"]) == 64
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    for cell_id, cell in summary["cells"].items():
        timing = json.loads((run_dir / "cells" / cell_id / "timing.json").read_text())
        assert timing["runner"] == "native:sme2_runner"
        assert [r["iterations"] for r in timing["rounds"]] == [2, 2, 2]  # 6 iterations in 3 rounds
        totals = []
        for r in timing["rounds"]:
            trace = read_etdump(run_dir / "cells" / cell_id / r["etdump"])
            assert len(trace.iterations) == 2 + r["iterations"]  # warmup 2 in every round's own process
            totals += [it.total / 1e6 for it in trace.iterations[2:]]
        assert cell["latencies_ms"] == pytest.approx(totals)
    log = (run_dir / "logs" / "events.jsonl").read_text()
    assert "3 round(s) alternating" in log
    # Progress moves with every round: each round says when it starts, and its iterations count when it ends.
    statuses = [json.loads(line) for line in log.splitlines() if '"CellStatus"' in line]
    for cell_id in summary["cells"]:
        steps = [(e["detail"], e["iterations_done"]) for e in statuses
                 if e["cell_id"] == cell_id and e["state"] == "running" and not e["detail"].endswith(" s")]
        assert steps == [("round 1/3", 0), ("round 1/3 done", 2), ("round 2/3", 2), ("round 2/3 done", 4),
                         ("round 3/3", 4), ("round 3/3 done", 6)]


def test_python_runtime_interleaves_every_iteration(host_run: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "python.json"
    variants = [{"name": "portable", "delegate": "portable", "runner": "python"},
                {"name": "xnnpack", "delegate": "xnnpack", "runner": "python"}]
    config.write_text(json.dumps(tiny_config(name="py", variants=variants)))
    result = run_cli("--auto", "--json", "--config", config, "--output-root", host_run["root"] / "runs",
                     cwd=host_run["root"])
    assert result.returncode == 0, result.stderr
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    for cell_id, cell in summary["cells"].items():
        timing = json.loads((run_dir / "cells" / cell_id / "timing.json").read_text())
        assert timing["runner"] == "python-runtime" and timing["interleaved_with"]
        trace = read_etdump(run_dir / "cells" / cell_id / "etdump.etdp")
        assert len(trace.iterations) == 2 + 6
        assert cell["latencies_ms"] == pytest.approx([it.total / 1e6 for it in trace.iterations[2:]])
    assert json.loads((run_dir / "manifest.json").read_text())["runners"] == {}


def test_unbuilt_pair_runner_on_host_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "pair.json"
    variants = [{"name": "sme2-off", "runner": "sme2-off", "sme2": "off"},
                {"name": "sme2-on", "runner": "sme2-on", "sme2": "on"}]
    config.write_text(json.dumps(tiny_config(variants=variants, compare={"baseline": "sme2-off",
                                                                         "candidate": "sme2-on"})))
    result = run_cli("--auto", "--config", config, "--output-root", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert "runner `sme2-off`" in result.stderr and "sme2tui build macos" in result.stderr
    assert not (tmp_path / "out").exists()


def test_report_and_tables_are_written(host_run: dict[str, Any]) -> None:
    analysis = host_run["run_dir"] / "analysis"
    report = (analysis / "report.md").read_text()
    assert "This is not an SME2 result" in report and "## Where the time goes" in report
    assert "Published SME2 reference (not this machine)" in report
    header = (analysis / "operators.csv").read_text().splitlines()[0]
    assert header.startswith("cell,variant,instruction_id,name,category")
    assert len((analysis / "categories.csv").read_text().splitlines()) == 3


def test_second_run_reuses_the_export(host_run: dict[str, Any]) -> None:
    result = run_cli("--auto", "--config", host_run["config"], "--output-root", host_run["root"] / "runs",
                     cwd=host_run["root"])
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("unchanged since last export") == 2


def test_analyze_and_report_commands_work_alone(host_run: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / host_run["run_dir"].name
    shutil.copytree(host_run["run_dir"], copy)
    (copy / "analysis" / "report.md").unlink()
    assert run_cli("analyze", copy).returncode == 0
    assert (copy / "analysis" / "report.md").is_file()
    result = run_cli("report", copy)
    assert result.returncode == 0 and result.stdout.strip().endswith("report.md")


def test_corrupt_etdump_is_named_and_other_cells_still_analyzed(host_run: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(host_run["run_dir"], copy)
    victim = copy / "cells" / "mobilenet_quick__fp32__xnnpack__t1" / "etdump-r1.etdp"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    result = run_cli("analyze", "--json", copy)
    assert result.returncode == ExitCode.ANALYSIS
    assert "Traceback" not in result.stderr and "etdump-r1.etdp" in result.stderr
    summary = json.loads((copy / "analysis" / "summary.json").read_text())
    assert list(summary["cells"]) == ["mobilenet_quick__fp32__portable__t1"]
    assert summary["failed_cells"] == ["mobilenet_quick__fp32__xnnpack__t1"]


def test_ctrl_c_leaves_a_resumable_run(host_run: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "two_groups.json"
    config.write_text(json.dumps(tiny_config(name="resumable", threads=[1, 2], iterations=200)))
    out_root = host_run["root"] / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sme2tui", "--auto", "--config", str(config), "--output-root",
                             str(out_root)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=tmp_path, env=env)
    assert proc.stderr is not None
    done_lines = 0
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        if ": done (measured)" in line:
            done_lines += 1
            if done_lines == 2:  # the t1 group is finished, the t2 group is starting
                proc.send_signal(signal.SIGINT)
                break
        assert time.monotonic() < deadline
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == ExitCode.INTERRUPTED, rest
    assert "Traceback" not in rest and "--resume" in rest
    run_dir = max((p for p in out_root.iterdir() if p.name.endswith("-resumable")), key=lambda p: p.name)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    states = {k: v["status"] for k, v in manifest["cells"].items()}
    assert [k for k, v in states.items() if v == "done"] == [
        "mobilenet_quick__fp32__portable__t1", "mobilenet_quick__fp32__xnnpack__t1"]
    kept = (run_dir / "cells" / "mobilenet_quick__fp32__portable__t1" / "timing.json").stat().st_mtime_ns

    result = run_cli("--auto", "--json", "--resume", run_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert all(c["status"] == "done" for c in manifest["cells"].values())
    assert [{k: v for k, v in r.items() if k != "utc"} for r in manifest["resumed"]] == [{"cells_already_done": 2}]
    assert (run_dir / "cells" / "mobilenet_quick__fp32__portable__t1" / "timing.json").stat().st_mtime_ns == kept
    assert len(json.loads(result.stdout)["pairs"]) == 2
