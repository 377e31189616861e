"""SME2 on vs off for real, on any Linux machine: the official aarch64 ExecuTorch runtime under QEMU with SME2
(`sme2tui setup emulator`, `sme2tui build arm64` via --auto), the example config end to end, then the same
evidence rules for ready .pte files. About 1.5 minutes on 2 cores (three real exports dominate).

Runs in CI (.ci/run installs the cross compiler; setup fetches QEMU into the cache). Elsewhere it is skipped
with the command that enables it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow
EXAMPLE = REPO / "configs" / "examples" / "emulated_sme2.json"


def _require_emulation() -> None:
    from sme2tui.emulator.debian import can_fetch
    from sme2tui.emulator.setup import load_emulator
    from sme2tui.errors import EnvironmentProblem

    missing = []
    if shutil.which("aarch64-linux-gnu-g++") is None:
        missing.append("the aarch64 cross compiler (apt-get install g++-aarch64-linux-gnu)")
    try:
        load_emulator()
    except EnvironmentProblem:
        if can_fetch() is not None:
            missing.append("an SME2 QEMU (sme2tui setup emulator, on Debian/Ubuntu)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("CI must run the emulated SME2 test; missing: " + "; ".join(missing))
        pytest.skip("needs " + "; ".join(missing))


@pytest.fixture(scope="module")
def emulated_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _require_emulation()
    setup = run_cli("setup", "emulator", timeout=900)
    assert setup.returncode == 0, setup.stderr[-3000:]
    root = tmp_path_factory.mktemp("emulated")
    done = run_cli("--auto", "--config", EXAMPLE, "--json", "--output-root", root,
                   timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    return {"root": root, "json": json.loads(done.stdout), "stderr": done.stderr}


def _cells(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {d.name: json.loads((d / "evidence.json").read_text()) for d in (run_dir / "cells").iterdir()}


def assert_evidence_rules(result: dict[str, Any]) -> None:
    run_dir = Path(result["run_dir"])
    cells = _cells(run_dir)
    assert cells and all(("__sme2-on__" in c) != ("__sme2-off__" in c) for c in cells)
    for cell_id, evidence in cells.items():
        if "__sme2-on__" in cell_id:
            assert evidence["probe"]["verdict"] == "sme2"
            assert any(k.startswith("kai_kernel_") and "sme2" in k for k in evidence["sme2_kernels"]), cell_id
            assert evidence["totals"]["sme_instructions"] > 0
        else:
            assert evidence["cpu"] == "max,sme=off" and evidence["probe"]["verdict"] == "none"
            assert evidence["sme2_kernels"] == [] and evidence["sme_kernels"] == []
            assert evidence["totals"]["sme_instructions"] == 0
            assert not any("sme2" in json.dumps(k) for k in evidence["kernels"])
    comparison = result["comparison"]
    assert comparison["emulated"] is True and "emulated" in comparison["label"] and comparison["is_sme2"] is False
    assert result["pairs"] == []  # no speedup from emulated time
    assert all(p["speedup"] is None and p["numerics"]["status"] == "pass" for p in result["emulated"]["pairs"])
    report = (run_dir / "analysis" / "report.md").read_text()
    assert "emulated" in report and "## Evidence (emulated" in report
    assert not re.search(r"\d× (faster|slower|not measurably)", report)  # no speedup verdict from emulated time


def test_example_config_proves_sme2_on_and_off_with_kernel_evidence(emulated_run: dict[str, Any]) -> None:
    result = emulated_run["json"]
    assert result["ok"] and result["exit_code"] == 0
    assert_evidence_rules(result)
    assert {(p["dtype"]) for p in result["emulated"]["pairs"]} == {"fp32", "fp16", "int8"}
    counted = [p["evidence"]["candidate"]["sme2_kernel_instructions_executed"] for p in result["emulated"]["pairs"]]
    assert all(c and c > 10_000 for c in counted), counted
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    emulated = manifest["emulated"]
    assert tuple(int(x) for x in emulated["qemu"]["version"].split(".")[:2]) >= (10, 1)
    assert {v["cpu"] for v in emulated["variants"].values()} == {"max", "max,sme=off"}
    from sme2tui.runners.location import runners_root

    runner = json.loads((runners_root(None) / "arm64-linux" / "runner_manifest.json").read_text())
    assert runner["architecture"]["canonical"] == "arm64" and runner["executorch"]["wheel_sha256"]


def test_ready_pte_files_follow_the_same_rules(emulated_run: dict[str, Any], tmp_path: Path) -> None:
    programs = sorted((Path(emulated_run["json"]["run_dir"]) / "programs").glob("*.pte"))
    assert len(programs) == 3
    config = json.loads(EXAMPLE.read_text())
    config.pop("$schema")
    # The models swapped, nothing else: `dtypes` stays and does not apply (a ready program's dtype is read from it).
    config.update(name="ready-pte", iterations=2, rounds=2,
                  models=[{"pte": str(p), "name": p.stem.split("__")[1]} for p in programs])
    path = tmp_path / "ready.json"
    path.write_text(json.dumps(config))
    done = run_cli("--auto", "--config", path, "--json", "--output-root", tmp_path / "runs", timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert_evidence_rules(json.loads(done.stdout))


def test_a_variant_whose_cpu_contradicts_its_claim_is_refused_before_any_work(tmp_path: Path) -> None:
    _require_emulation()
    config = json.loads(EXAMPLE.read_text())
    config.pop("$schema")
    config["variants"][1]["cpu"] = "max,sme=off"  # "sme2-on" on a CPU without SME
    path = tmp_path / "lying.json"
    path.write_text(json.dumps(config))
    done = run_cli("--auto", "--config", path, "--output-root", tmp_path / "runs")
    assert done.returncode == 3, done.stderr
    assert "says SME2 on" in done.stderr and not (tmp_path / "runs").exists()
