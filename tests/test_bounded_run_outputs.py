"""What runners, devices and emulators write is read bounded: kernel logs are streamed (a huge one costs a chunk
of memory, an over-long or endless one is refused with what/where/fix and exit 6, never scanned in part), and an
emulated cell's evidence and outputs are read under size limits, so a damaged one is said, not mistaken for
"evidence off" or a crash."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from sme2tui.analysis.cell import CellAnalysis
from sme2tui.analysis.emulated import EvidenceDamaged, cell_evidence
from sme2tui.analysis.evidence import variant_evidence
from sme2tui.analysis.output_compare import OutputsUnreadable, load_outputs
from sme2tui.analysis.stats import summarize
from sme2tui.errors import AnalysisError
from sme2tui.exit_codes import ExitCode

SME2_KERNEL = "xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2"


def _cell(tmp_path: Path) -> tuple[CellAnalysis, Path]:
    cell_dir = tmp_path / "cell"
    cell_dir.mkdir()
    analysis = CellAnalysis(cell_id="c", model="m", dtype="fp32", variant="on", threads=1, source="timing",
                            warmup_dropped=0, latency=summarize([1.0, 1.0]), latencies_ms=[1.0, 1.0])
    return analysis, cell_dir


def _flood(path: Path, megabytes: int, tail: str) -> None:
    line = b"I/runner: iteration done, nothing to see here " * 20 + b"\n"
    with path.open("wb") as handle:
        for _ in range(megabytes * 2**20 // len(line)):
            handle.write(line)
        handle.write(tail.encode() + b"\n")


def test_a_huge_kernel_log_is_streamed_in_bounded_memory_and_read_to_its_end(tmp_path: Path) -> None:
    analysis, cell_dir = _cell(tmp_path)
    _flood(cell_dir / "stderr-r0.log", 24, f"xnn: using {SME2_KERNEL}")  # the kernel line comes last
    tracemalloc.start()
    try:
        evidence = variant_evidence("on", "on", [(analysis, cell_dir)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert evidence.sme2 == "seen" and SME2_KERNEL in evidence.sme2_kernels
    assert peak < 8 * 2**20, f"scanning a 24 MB log took {peak / 2**20:.0f} MB"


def test_a_kernel_log_over_the_limit_is_refused_not_scanned_in_part(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    analysis, cell_dir = _cell(tmp_path)
    _flood(cell_dir / "stderr-r0.log", 3, f"xnn: using {SME2_KERNEL}")
    monkeypatch.setenv("SME2TUI_LOG_MAX_MB", "2")
    with pytest.raises(AnalysisError) as refused:
        variant_evidence("on", "on", [(analysis, cell_dir)])
    error = refused.value
    assert error.exit_code == ExitCode.ANALYSIS
    assert "larger than" in error.what and error.where == str(cell_dir / "stderr-r0.log")
    assert "SME2TUI_LOG_MAX_MB=" in (error.fix or "")
    monkeypatch.setenv("SME2TUI_LOG_MAX_MB", "lots")
    with pytest.raises(Exception, match="not a size in megabytes"):
        variant_evidence("on", "on", [(analysis, cell_dir)])


def test_a_fifo_for_a_kernel_log_is_refused_without_blocking(tmp_path: Path) -> None:
    analysis, cell_dir = _cell(tmp_path)
    os.mkfifo(cell_dir / "stderr-r0.log")  # nobody writes it: reading would block forever
    with pytest.raises(AnalysisError, match="not a regular file"):
        variant_evidence("on", "on", [(analysis, cell_dir)])


def test_damaged_evidence_is_said_and_missing_evidence_is_not_damage(tmp_path: Path) -> None:
    assert cell_evidence(tmp_path) is None  # target.evidence off
    path = tmp_path / "evidence.json"
    for content, words in ((b"{", "not valid JSON"), (b"[]", "not a JSON object"),
                           (json.dumps({"cpu": "max"}).encode(), "no `source`")):
        path.write_bytes(content)
        with pytest.raises(EvidenceDamaged, match=words):
            cell_evidence(tmp_path)
    with path.open("wb") as handle:  # sparse: "huge" without using the disk
        handle.truncate(200 * 2**20)
    with pytest.raises(EvidenceDamaged, match="larger than"):
        cell_evidence(tmp_path)


def test_runner_outputs_are_read_bounded_and_damage_is_named(tmp_path: Path) -> None:
    assert load_outputs(tmp_path) is None  # the runner wrote none
    (tmp_path / "outputs.json").write_text(json.dumps(
        {"outputs": [{"kind": "tensor", "dtype": "float32", "file": "output_0.bin"}]}))
    with (tmp_path / "output_0.bin").open("wb") as handle:
        handle.truncate(512 * 2**20)  # 128M floats would be GBs as Python floats
    with pytest.raises(OutputsUnreadable, match="larger than"):
        load_outputs(tmp_path)
    (tmp_path / "outputs.json").write_text(json.dumps({"outputs": [{"kind": "tensor", "dtype": "float32"}]}))
    with pytest.raises(OutputsUnreadable, match="does not describe"):
        load_outputs(tmp_path)
    (tmp_path / "outputs.json").write_text(json.dumps(
        {"outputs": [{"kind": "tensor", "dtype": "float32", "file": "../../../etc/passwd"}]}))
    with pytest.raises(OutputsUnreadable):  # only files inside the outputs folder are read
        load_outputs(tmp_path)
