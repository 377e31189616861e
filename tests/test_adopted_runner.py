"""Adopted runners and peer metrics from a real run: a variant names a runner binary by path (as a kit-built
executor_runner would be), sme2tui runs it with upstream executor_runner's flags, records its build as unknown,
says the pair cannot be proven to differ only in SME2, and `--auto --json` reports per cell what peers'
benchmark tools report (load/init, first inference, p95/p99 with their sample rule, peak memory, program size).

The adopted binaries are copies of sme2tui's own host runner (it takes upstream's flags), placed where the
kit's build script puts its runners; no build manifest goes with the copies, so their build is unknown.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sme2tui.runners.host import BINARY_NAME, build_host_runner, host_build_dir
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

PTE = REPO / "tests" / "data" / "kit_run" / "artifacts" / "toy_cnn_xnnpack_fp32.pte"


@pytest.fixture(scope="module")
def adopted_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("adopted")
    runners = root / "runners"
    list(build_host_runner(host_build_dir(runners)))
    built = host_build_dir(runners) / BINARY_NAME
    for preset in ("mac-arm64", "mac-arm64-sme2-off"):
        target = root / "kit" / "executorch" / "cmake-out" / preset / "executor_runner"
        target.parent.mkdir(parents=True)
        shutil.copy2(built, target)
    config = {
        "name": "adopted", "models": [{"pte": str(PTE)}],
        "variants": [
            {"name": "mac_sme2_off", "sme2": "off",
             "runner": "kit/executorch/cmake-out/mac-arm64-sme2-off/executor_runner"},
            {"name": "mac_sme2_on", "sme2": "on", "runner": "kit/executorch/cmake-out/mac-arm64/executor_runner"},
            {"name": "native", "runner": "native"},
        ],
        "compare": {"baseline": "mac_sme2_off", "candidate": "mac_sme2_on"},
        "threads": [1], "warmup": 2, "iterations": 20, "runners_dir": str(runners),
    }
    path = root / "adopted.json"
    path.write_text(json.dumps(config))
    result = run_cli("--auto", "--json", "--config", path, "--output-root", root / "runs", cwd=root)
    return {"result": result, "json": json.loads(result.stdout), "root": root}


def test_adopted_runners_run_and_their_build_is_recorded_as_unknown(adopted_run: dict[str, Any]) -> None:
    result, out = adopted_run["result"], adopted_run["json"]
    assert out["status"] == "complete", result.stderr
    run_dir = Path(out["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    adopted = {k: v for k, v in manifest["runners"].items() if k.endswith("executor_runner")}
    assert len(adopted) == 2 and all(v["build"] == "unknown" for v in adopted.values())
    assert all(Path(k).is_absolute() and "kit/executorch/cmake-out" in k for k in adopted)  # relative to the config
    comparison = out["comparison"]
    assert comparison["is_sme2"] is False and comparison["builds_verified"] is False
    assert "cannot prove this pair differs only in the SME2 switches" in comparison["note"]
    assert "builds not verified" in comparison["label"]
    assert any(c["name"] == "pair builds" and c["status"] == "warn" for c in manifest["checkpoints"])
    # upstream flags: warmup runs as extra executions in the same process and is dropped
    timing = json.loads((run_dir / "cells" / "toy_cnn_xnnpack_fp32__fp32__mac_sme2_on__t1" / "timing.json").read_text())
    assert timing["rounds"][0]["command"][0].endswith("mac-arm64/executor_runner")
    assert any(a.startswith("--num_executions=") for a in timing["rounds"][0]["command"])


def test_auto_json_reports_peer_metrics_per_cell(adopted_run: dict[str, Any]) -> None:
    out = adopted_run["json"]
    cells = out["cells"]
    assert len(cells) == 3
    for cell_id, cell in cells.items():
        assert cell["iterations"] == 20
        assert cell["p95_ms"] is not None and cell["p95_ms"] >= cell["median_ms"]  # 20 samples: enough for p95
        assert cell["p99_ms"] >= cell["p95_ms"] and cell["p99_estimable"] is False  # … not for p99: flagged
        assert "it needs ≥ 100" in cell["tail_note"]
        assert cell["first_inference_ms"] > 0
        assert cell["load_ms"]["method"] > 0 and 0 < cell["load_ms"]["init"] <= cell["load_ms"]["method"]
        assert cell["program_bytes"] == PTE.stat().st_size and cell["planned_memory_bytes"] == 573504
        # a few MB: the runner's own memory, not the Python parent's (ru_maxrss would be ≥ the parent's size)
        assert 1 << 20 < cell["peak_rss_bytes"] < 200 << 20, cell_id
    assert "runner's own peak RSS" in cells["toy_cnn_xnnpack_fp32__fp32__native__t1"]["peak_rss_source"]
    assert "host" in cells["toy_cnn_xnnpack_fp32__fp32__mac_sme2_on__t1"]["peak_rss_source"]
    run_dir = Path(out["run_dir"])
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    peers = summary["cells"]["toy_cnn_xnnpack_fp32__fp32__native__t1"]["peers"]
    assert peers["first_inference"]["in_warm_statistics"] is False
    assert len(peers["first_inference"]["per_process_ms"]) == 3  # one cold start per round (process)
    header = (run_dir / "analysis" / "peers.csv").read_text().splitlines()[0]
    assert "first_inference_ms" in header and "peak_rss_bytes" in header and "p99_ms" in header
    report = (run_dir / "analysis" / "report.md").read_text()
    assert "## Load, first inference, tail latency and memory" in report and "≈max: n=20 < 100" in report


def test_a_missing_adopted_runner_fails_before_any_work(tmp_path: Path) -> None:
    config = {"name": "x", "models": [{"pte": str(PTE)}],
              "variants": [{"name": "a", "runner": "kit/cmake-out/nope/executor_runner"}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    assert run_cli("config", "validate", path).returncode == 0  # runners are checked before a run, not here
    result = run_cli("--auto", "--config", path, "--output-root", tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2 and "runner binary not found" in result.stderr
    assert "variants[0].runner" in result.stderr and not (tmp_path / "runs").exists()
