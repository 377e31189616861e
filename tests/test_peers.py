"""Peer metrics: tail percentiles only with enough samples, first inference apart, memory sources, and the
program's planned memory read from the .pte itself (hostile files included)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from screens.charts import peer_rows
from sme2tui.analysis.categorize import Categorizer
from sme2tui.analysis.files import analyze_etdump_file
from sme2tui.analysis.peers import cell_peers, format_bytes, program_for_cell, tail_latency
from sme2tui.analysis.stats import percentile
from sme2tui.etdump import iteration_total_ns, read_etdump
from sme2tui.exit_codes import ExitCode
from sme2tui.models.pte_memory import ProgramMemoryError, read_program_memory
from tests.conftest import REPO

KIT = REPO / "tests" / "data" / "kit_run"
PTE = KIT / "artifacts" / "toy_cnn_xnnpack_fp32.pte"
ETDUMP = KIT / "runs" / "mac" / "toy_cnn_xnnpack_fp32_mac_sme2_on_t1.etdump"


def test_tail_percentiles_need_enough_samples() -> None:
    few = tail_latency([float(i) for i in range(19)])
    assert few["p95_estimable"] is False and few["p99_estimable"] is False and few["n"] == 19
    assert few["p99_ms"] == pytest.approx(percentile([float(i) for i in range(19)], 99))  # shown, flagged
    assert "it needs ≥ 20" in few["note"] and few["max_ms"] == 18.0
    twenty = tail_latency([float(i) for i in range(20)])
    assert twenty["p95_ms"] == pytest.approx(percentile([float(i) for i in range(20)], 95))
    assert twenty["p95_estimable"] is True and twenty["p99_estimable"] is False
    assert "p99 of 20 iterations is about the slowest one" in twenty["note"]
    hundred = tail_latency([float(i) for i in range(100)])
    assert hundred["p99_ms"] == pytest.approx(98.01) and hundred["note"] == "" and hundred["p99_estimable"]


def test_planned_memory_is_read_from_the_program() -> None:
    memory = read_program_memory(PTE)
    plan = memory.plan()
    assert plan is not None and plan.method == "forward"
    assert plan.planned_bytes == 573504 == sum(plan.buffers)  # what the runner's MethodMeta allocates
    assert memory.size_bytes == PTE.stat().st_size


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a program", "huge vector"])
def test_hostile_programs_are_analysis_errors(tmp_path: Path, damage: str) -> None:
    data = PTE.read_bytes()
    bad = tmp_path / "bad.pte"
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(data[:200])
    elif damage == "not a program":
        bad.write_bytes(b"\x00" * 4 + b"XXXX" + data[8:])
    else:  # the execution_plan vector claims four billion entries
        root = struct.unpack_from("<I", data, 0)[0]
        vtable = root - struct.unpack_from("<i", data, root)[0]
        field = root + struct.unpack_from("<H", data, vtable + 4 + 2)[0]
        vector = field + struct.unpack_from("<I", data, field)[0]
        patched = bytearray(data)
        struct.pack_into("<I", patched, vector, 0xFFFFFFF0)
        bad.write_bytes(bytes(patched))
    with pytest.raises(ProgramMemoryError) as err:
        read_program_memory(bad)
    assert err.value.exit_code == ExitCode.ANALYSIS and err.value.fix


def test_cell_peers_from_a_kit_etdump_without_runner_records(tmp_path: Path) -> None:
    cell = tmp_path / "cell"
    cell.mkdir()
    shutil.copy(ETDUMP, cell / "etdump.etdp")
    (cell / "timing.json").write_text(json.dumps({"rounds": [{"round": 0, "warmup": 1, "iterations": 9,
                                                              "etdump": "etdump.etdp"}]}))
    analysis = analyze_etdump_file(ETDUMP, warmup=1, categorizer=Categorizer.load())
    peers = cell_peers(cell, analysis, pte=PTE)
    totals = [ns / 1e6 for ns in iteration_total_ns(read_etdump(ETDUMP))]
    assert peers["first_inference"]["ms"] == pytest.approx(totals[0])
    assert peers["first_inference"]["in_warm_statistics"] is False
    assert peers["load"]["method_load_ms"] > peers["load"]["method_init_ms"] > 0
    assert peers["load"]["program_load_ms"] is None  # no runner clock in a kit folder
    assert peers["memory"]["peak_rss_bytes"] is None and "recorded none" in peers["memory"]["note"]
    assert peers["program"]["planned_memory_bytes"] == 573504
    android = cell_peers(cell, analysis, pte=None, target="android")
    assert "phone" in android["memory"]["note"] and android["program"]["note"] == "the .pte is not available"


def test_presentation_helpers() -> None:
    assert format_bytes(None) == "—" and format_bytes(512) == "512 B" and format_bytes(8 << 20) == "8.0 MiB"
    cell = {"variant": "v", "peers": {"load": {"method_load_ms": 1.5}, "first_inference": {"ms": 2.0},
                                      "latency": {"p95_ms": 1.0, "p95_min_n": 20, "p99_ms": 1.25, "p99_min_n": 100,
                                                      "p99_estimable": False},
                                      "memory": {"peak_rss_bytes": 3 << 20}}}
    assert peer_rows([cell, {"variant": "old run"}]) == [("v", "1.500", "2.000", "1.000", "1.250 ≈max", "3.0 MiB")]
    manifest = {"exports": {"a": {"model": "m", "dtype": "fp32", "delegate": "xnnpack", "pte": "programs/a.pte"},
                            "b": {"model": "m", "dtype": "fp32", "delegate": "portable", "pte": "/abs/b.pte"}}}
    assert program_for_cell(manifest, Path("/run"), "m", "fp32", "portable") == Path("/abs/b.pte")
    assert program_for_cell(manifest, Path("/run"), "m", "fp32", "xnnpack") == Path("/run/programs/a.pte")
    assert program_for_cell(manifest, Path("/run"), "m", "fp16", None) is None
