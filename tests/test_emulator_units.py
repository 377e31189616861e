"""The emulated target's small parts on their own: QEMU version and probe parsing, the streaming log parser
(bounded), ELF symbol mapping, kernel classification, output comparison and the SME2 checkpoint rules."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sme2tui.analysis import qemu_log
from sme2tui.analysis.elf_symbols import AddressMapper, Mapping, parse_maps, read_functions
from sme2tui.analysis.emulated import _kernel_check
from sme2tui.analysis.kernel_evidence import build_evidence, is_compute, kernel_family
from sme2tui.analysis.output_compare import PAIR_LIMITS, compare_outputs, numeric_class, read_tensor
from sme2tui.analysis.qemu_log import LogStats, instruction_class, parse_log
from sme2tui.config import parse_config
from sme2tui.emulator.qemu import parse_probe, parse_version, version_problem
from sme2tui.errors import ConfigError

# --------------------------------------------------------------------------------------------- QEMU and probe


def test_versions_are_read_and_old_ones_refused_with_the_reason() -> None:
    assert parse_version("qemu-aarch64 version 11.1.3 (Debian 1:11.1.3+ds-1)") == (11, 1, 3)
    assert parse_version("qemu-aarch64 version 10.0.2") == (10, 0, 2)
    assert parse_version("garbage") == ()
    problem = version_problem((7, 2, 0))
    assert problem is not None and "SMOPA" in problem and "10.1" in problem
    assert version_problem((9, 2, 0)) is not None
    assert version_problem(()) is not None
    assert version_problem((10, 0, 3)) is None  # probed, then labelled SME-only
    assert version_problem((11, 1, 3)) is None


@pytest.mark.parametrize(("hwcap2", "verdict"), [
    (0x7FFFBFF47FC77FFF, "sme2"),      # QEMU 11.1 -cpu max
    (0x1FFB81400477FFF, "none"),       # -cpu max,sme=off
    (1 << 23, "sme-only"),             # SME without SME2 (QEMU 10.0.x)
    ((1 << 23) | (1 << 37), "sme2"),
    (0, "none"),
])
def test_probe_verdict_comes_from_hwcap2_bits(hwcap2: int, verdict: str) -> None:
    result = parse_probe(f"noise\nsme2tui-probe hwcap=0xb01feffffffb hwcap2={hwcap2:#x} sme_vl=32\n", "max")
    assert result.verdict == verdict
    assert result.sme2p1 == bool(hwcap2 & (1 << 38))
    assert result.to_dict()["verdict"] == verdict


def test_probe_reports_the_streaming_vector_length_and_refuses_garbage() -> None:
    assert parse_probe("sme2tui-probe hwcap=0x1 hwcap2=0x800000 sme_vl=64", "max").svl_bits == 512
    assert parse_probe("sme2tui-probe hwcap=0x1 hwcap2=0x0 sme_vl=-1", "max,sme=off").svl_bits is None
    with pytest.raises(ValueError):
        parse_probe("qemu: unknown cpu", "bogus")


# ------------------------------------------------------------------------------------------------- the log


def _word_line(address: int, word: int) -> str:
    return f"0x{address:016x}:  {word:08x}      some disassembly\n"


SMOPA = 0xA0800000  # op0=1, op1=0000: SME encoding space
SVE_LD1 = 0xA540A000  # op1=0010
FADD_V = 0x4E20D400  # Advanced SIMD
LDR_Q = 0x3DC00000  # load of a SIMD&FP register (V bit)
ADD_X = 0x8B020020


def test_instruction_classes_follow_the_a64_encoding() -> None:
    assert instruction_class(SMOPA) == "sme"
    assert instruction_class(SVE_LD1) == "sve"
    assert instruction_class(FADD_V) == "simd_fp"
    assert instruction_class(LDR_Q) == "simd_fp"
    assert instruction_class(ADD_X) == "other"
    assert instruction_class(0xD503201F) == "other"  # nop


def test_log_parser_counts_blocks_once_and_executions_every_time() -> None:
    lines = ["----------------\n", "IN: \n", _word_line(0x1000, SMOPA), _word_line(0x1004, ADD_X), "\n",
             "----------------\n", "IN: kai_kernel\n", _word_line(0x2000, FADD_V), "\n",
             # a re-translation of the first block: counted as a translation, not as a new block
             "IN: \n", _word_line(0x1000, SMOPA), _word_line(0x1004, ADD_X), "\n",
             "Trace 0: 0x7f00 [80081009b31/0000000000001000/00000001/00000200] \n",
             "Trace 0: 0x7f00 [80081009b31/0000000000001000/00000001/00000200] \n",
             "Trace 1: 0x7f40 [80081009b31/0000000000002000/00000001/00000200] \n",
             "not a log line at all\n"]
    stats = parse_log(lines)
    assert set(stats.blocks) == {0x1000, 0x2000}
    assert stats.blocks[0x1000].instructions == 2 and stats.blocks[0x1000].sme == 1
    assert stats.blocks[0x2000].simd_fp == 1
    assert stats.translations == 3
    assert stats.executions == {0x1000: 2, 0x2000: 1}
    assert not stats.truncated


def test_log_parser_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu_log, "MAX_BLOCKS", 3)
    stats = LogStats()
    for i in range(10):
        stats.feed("IN: \n")
        stats.feed(_word_line(0x1000 + 4 * i, ADD_X))
        stats.feed(f"Trace 0: 0x1 [0/{0x9000 + i:016x}/0/0] \n")
    assert len(stats.blocks) == 3 and len(stats.executions) == 3 and stats.truncated
    huge = parse_log(["IN: \n", "0x" + "f" * 100_000 + "\n"])
    assert huge.blocks == {}  # an absurd line is cut, not kept


# ------------------------------------------------------------------------------------------ ELF symbols


def test_maps_keep_executable_file_mappings_only() -> None:
    text = ("56670000-566a4000 r--p 00000000 fe:00 1 /lib/libx.so\n"
            "566b0000-56839000 r-xp 00040000 fe:00 1 /lib/libx.so\n"
            "7f00-8f00 r-xp 00000000 00:00 0 [vdso]\n"
            "garbage line\n"
            "9000-a000 rw-p 00000000 00:00 0\n")
    assert parse_maps(text) == [Mapping(0x566B0000, 0x56839000, 0x40000, "/lib/libx.so")]


@pytest.fixture(scope="module")
def shared_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler (apt-get install gcc)")
    folder = tmp_path_factory.mktemp("elf")
    source = folder / "k.c"
    source.write_text("int kai_kernel_matmul_x_sme2_mopa(int a) { return a * 3 + 1; }\n"
                      "int xnn_f32_gemm_ukernel_4x8__neonfma(int a) { return a * 5 - 2; }\n")
    out = folder / "libk.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(out), str(source)], check=True)
    return out


def test_addresses_map_to_functions_through_the_load_address(shared_object: Path) -> None:
    table = read_functions(str(shared_object))
    index = table.names.index("kai_kernel_matmul_x_sme2_mopa")
    start = table.starts[index]
    # pretend the text segment was mapped at 0x40000000 the way ld.so maps it: file offset ↔ vaddr per PT_LOAD
    p_offset, p_vaddr, size = next(s for s in table.segments if s[1] <= start < s[1] + s[2])
    page = p_offset & ~0xFFF
    mapping = Mapping(0x40000000, 0x40000000 + size + 0x1000, page, str(shared_object))
    guest = mapping.start + (start - p_vaddr + p_offset) - page
    mapper = AddressMapper([mapping])
    assert mapper.lookup(guest) == (str(shared_object), "kai_kernel_matmul_x_sme2_mopa")
    assert mapper.lookup(0x10) == (None, None)
    assert mapper.range_of(str(shared_object), "kai_kernel_matmul_x_sme2_mopa") == (
        guest, guest + table.ends[index] - start)
    assert read_functions(str(shared_object.parent / "k.c")).names == []  # not an ELF: nothing, no crash


def test_evidence_from_a_log_names_the_kernels_that_ran(shared_object: Path) -> None:
    table = read_functions(str(shared_object))
    p_offset, p_vaddr, _size = table.segments[0]
    mapper = AddressMapper([Mapping(0x40000000 + p_vaddr, 0x40000000 + p_vaddr + 0x100000, p_offset,
                                    str(shared_object))])
    sme2 = 0x40000000 + table.starts[table.names.index("kai_kernel_matmul_x_sme2_mopa")]
    neon = 0x40000000 + table.starts[table.names.index("xnn_f32_gemm_ukernel_4x8__neonfma")]
    stats = parse_log(["IN: \n", _word_line(sme2, SMOPA), "IN: \n", _word_line(neon, FADD_V), "IN: \n",
                       _word_line(0x50000000, ADD_X), f"Trace 0: 0x1 [0/{sme2:016x}/0/0] \n"])
    evidence = build_evidence(stats, mapper, cpu="max", qemu={}, probe={"verdict": "sme2"})
    assert evidence["sme2_kernels"] == ["kai_kernel_matmul_x_sme2_mopa"]
    assert evidence["kernels_by_family"]["NEON"] == ["xnn_f32_gemm_ukernel_4x8__neonfma"]
    assert evidence["totals"]["sme_instructions"] == 1
    sme2_record = next(k for k in evidence["kernels"] if k["family"] == "SME2")
    assert sme2_record["block_executions"] == 1 and sme2_record["executed_instructions"] == 1
    assert "(anonymous or JIT memory)" in evidence["unnamed_code"]


@pytest.mark.parametrize(("name", "family", "compute"), [
    ("kai_kernel_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa", "SME2", True),
    ("kai_run_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa", "SME2", True),
    ("kai_get_mr_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa", "SME2", False),
    ("xnn_qp8_f32_qc8w_gemm_minmax_ukernel_16x64c4__neonsme2_get_mr", "SME2", False),
    ("kai_kernel_lhs_pack_f32p2vlx1_f32_sme", "SME", True),
    ("kai_kernel_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa", "SME", True),
    ("kai_get_sme_vector_length_u8", "SME", False),
    ("xnn_f16_gemm_minmax_ukernel_6x16__neonfp16arith_ld64", "NEON", True),
    ("kai_kernel_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod", "NEON", True),
    ("xnn_f16_f32acc_vexp_ukernel__scalar_poly_3_u1", "scalar", True),
    ("_ZN10executorch7runtime6Method7executeEv", None, False),
    ("memcpy", None, False),
])
def test_kernel_names_are_classified_by_their_conventions(name: str, family: str | None, compute: bool) -> None:
    assert kernel_family(name) == family
    if family is not None:
        assert is_compute(name) is compute


# ------------------------------------------------------------------------------------------- numerics


def test_output_comparison_limits_follow_what_the_program_computes(tmp_path: Path) -> None:
    assert numeric_class("fp32", ["float32"], set()) == "fp32"
    assert numeric_class("fp32", ["float16"], set()) == "fp16"  # a mislabelled fp16 program
    assert numeric_class("fp32", ["float32"], {"PF16"}) == "fp16"  # fp16 inside, fp32 outputs
    assert numeric_class("int8-dynamic", ["float32"], {"QP8"}) == "int8"
    base = [("float32", [1.0, -2.0, 3.0])]
    assert compare_outputs([("float32", [1.0, -2.0, 3.0000001])], base, "fp32", PAIR_LIMITS["fp32"], "x").status == \
        "pass"
    wrong = compare_outputs([("float32", [1.0, -2.0, 3.5])], base, "fp32", PAIR_LIMITS["fp32"], "x")
    assert wrong.status == "fail" and "limit" in wrong.detail
    assert compare_outputs([("float32", [1.0])], base, "fp32", PAIR_LIMITS["fp32"], "x").status == "fail"
    nan = [("float32", [float("nan"), 1.0])]
    assert compare_outputs(nan, nan, "fp32", PAIR_LIMITS["fp32"], "x").status == "pass"
    half = tmp_path / "h.bin"
    half.write_bytes(struct.pack("<3e", 1.0, 0.5, -2.0))
    assert read_tensor(half, "float16") == [1.0, 0.5, -2.0]


# ---------------------------------------------------------------------------------- checkpoint rules


def _evidence(verdict: str, sme2: list[str], sme: list[str] | None = None, sme_insns: int = 0) -> dict[str, Any]:
    return {"cpu": "max" if verdict != "none" else "max,sme=off", "probe": {"verdict": verdict},
            "sme2_kernels": sme2, "sme_kernels": sme or [], "kernels": [], "totals": {"sme_instructions": sme_insns}}


def _analysis(*ops: tuple[str, str, bool]) -> Any:
    return SimpleNamespace(operators=[SimpleNamespace(name=n, kernel=k, kleidiai=kl, delegated=True)
                                      for n, k, kl in ops])


CONV = ("Convolution (NHWC, PF32, F32) IGEMM #1", "PF32, F32 IGEMM", True)
DECONV = ("Deconvolution (NHWC, F32) IGEMM #1", "F32 IGEMM", False)
DWCONV = ("Convolution (NHWC, F32) DWConv #1", "F32 DWConv", False)


@pytest.mark.parametrize(("evidence", "analysis", "status"), [
    (_evidence("none", []), _analysis(CONV), "pass"),
    (_evidence("none", ["kai_kernel_x_sme2_mopa"]), _analysis(CONV), "fail"),
    (_evidence("none", [], sme_insns=3), _analysis(CONV), "fail"),
    (_evidence("sme2", ["kai_kernel_x_sme2_mopa"]), _analysis(CONV), "pass"),
    (_evidence("sme2", []), _analysis(CONV), "fail"),      # packed for KleidiAI, yet no SME2: contradiction
    (_evidence("sme2", []), _analysis(DECONV), "warn"),    # matrix work XNNPACK kept for itself: a finding
    (_evidence("sme2", []), _analysis(DWCONV), "pass"),    # nothing for SME2 to do
    (_evidence("sme2", []), None, "warn"),                 # profiling off: cannot tell
    (_evidence("sme-only", ["kai_kernel_x_sme2_mopa"]), _analysis(CONV), "fail"),
    (_evidence("sme-only", [], ["kai_kernel_x_sme_mopa"]), _analysis(CONV), "pass"),
])
def test_sme2_checkpoint_rules(evidence: dict[str, Any], analysis: Any, status: str) -> None:
    assert _kernel_check("cell", evidence, analysis).status == status


def test_emulated_config_refuses_what_cannot_run() -> None:
    base = {"models": [{"builtin": "mobilenet_quick"}], "target": {"kind": "emulated"},
            "variants": [{"name": "sme2-on", "sme2": "on"}, {"name": "sme2-off", "sme2": "off"}]}
    parse_config(base)
    for variants, words in (
            ([{"name": "a"}], "needs `sme2`"),
            ([{"name": "a", "sme2": "on", "runner": "python"}], "arm64"),
            ([{"name": "a", "sme2": "on", "delegate": "portable"}], "xnnpack")):
        with pytest.raises(ConfigError, match=words):
            parse_config({**base, "variants": variants})
    with pytest.raises(ConfigError, match="only applies"):
        parse_config({**base, "target": {"kind": "host"}, "variants": [{"name": "a", "cpu": "max"}]})
    with pytest.raises(ConfigError, match="svl_bits"):
        parse_config({**base, "target": {"kind": "emulated", "svl_bits": 300}})


# --- heartbeats and words (the wizard's live progress and the console's summary of an emulated run) ---------


def test_an_emulated_round_says_it_is_alive(tmp_path: Path) -> None:
    """A round that takes seconds reports about once a second (here `sleep` stands in for qemu-aarch64)."""
    from sme2tui.events import CellStatus
    from sme2tui.run.emulated import run_qemu

    beats: list[float] = []

    def beat(elapsed: float) -> CellStatus:
        beats.append(elapsed)
        return CellStatus("c", "running", f"round 1/2: {elapsed:.0f} s")

    rounds = run_qemu(["sleep", "2.3"], tmp_path, 0, None, None, 30.0, beat)
    events = []
    try:
        while True:
            events.append(next(rounds))
    except StopIteration as done:
        code, seconds, stats = done.value
    assert code == 0 and stats is None and seconds >= 2.3
    assert len(events) == len(beats) in (2, 3) and all(b >= 1.0 for b in beats)
    assert isinstance(events[0], CellStatus) and events[0].detail == "round 1/2: 1 s"


def test_an_emulated_round_passes_on_the_runners_progress(tmp_path: Path) -> None:
    """Counts move within a round: the runner's --progress lines (a shell script stands in for qemu-aarch64 and the
    runner) become progress events as they appear; a lie (more than asked) and a count going back are ignored."""
    from sme2tui.events import CellStatus
    from sme2tui.run.emulated import run_qemu

    script = tmp_path / "fake-qemu"
    script.write_text("#!/bin/sh\n"
                      "echo 'sme2_runner: progress measured=1/4'; sleep 0.3\n"
                      "echo 'sme2_runner: progress measured=9/4'; sleep 0.3\n"
                      "echo 'sme2_runner: progress measured=3/4'; sleep 0.3\n"
                      "echo 'sme2_runner: progress measured=2/4'; sleep 0.3\n"
                      "printf 'sme2_runner: progress measured=4/4\\nModel executed successfully\\n'\n")
    script.chmod(0o755)
    seen: list[int] = []

    def progress(measured: int) -> CellStatus:
        seen.append(measured)
        return CellStatus("c", "running", "round 1/2", measured, 4)

    rounds = run_qemu([str(script)], tmp_path, 0, None, None, 30.0, None, progress=progress)
    events = []
    try:
        while True:
            events.append(next(rounds))
    except StopIteration as done:
        code, _, _ = done.value
    assert code == 0
    assert seen[:2] == [1, 3] and seen == sorted(set(seen))
    assert [e.iterations_done for e in events if isinstance(e, CellStatus)] == seen


def test_an_emulated_cell_status_keeps_its_counts_between_beats() -> None:
    from sme2tui.run.emulated import _RoundStatus

    status = _RoundStatus("c", "round 2/2", done=4, total=8)
    assert status.progress(3).iterations_done == 7  # type: ignore[attr-defined]
    beat = status.beat(2.2)
    assert beat.iterations_done == 7 and beat.detail == "round 2/2: 2 s"  # type: ignore[attr-defined]


def test_a_dropped_round_kills_its_emulator(tmp_path: Path) -> None:
    """Closing the generator (a consumer that stops listening) must not leave qemu running."""
    from sme2tui.events import CellStatus
    from sme2tui.run.emulated import run_qemu

    rounds = run_qemu(["sleep", "29.731"], tmp_path, 0, None, None, 60.0, lambda s: CellStatus("c", "running", "x"))
    next(rounds)
    rounds.close()
    out = subprocess.run(["pgrep", "-f", "^sleep 29.731$"], capture_output=True, text=True, check=False)
    assert not out.stdout.strip()


def test_the_console_says_what_good_looks_like_for_the_target() -> None:
    from sme2tui.report.console import GOOD_EMULATED, GOOD_MEASURED, good_looks_like

    assert good_looks_like({"target": "emulated", "emulated": {"pairs": []}}) == GOOD_EMULATED
    assert good_looks_like({"target": "host"}) == GOOD_MEASURED
    assert "interval" not in GOOD_EMULATED and "never a speedup" in GOOD_EMULATED


def test_the_host_sme2_warning_points_at_the_emulated_target_on_linux() -> None:
    from sme2tui.doctor import check_host_sme
    from sme2tui.hostinfo import collect_host_facts

    facts = collect_host_facts()
    if facts.sme == "sme2":
        pytest.skip("this host has SME2: no warning to check")
    linux = check_host_sme(facts, system="Linux")
    assert "sme2tui setup emulator" in linux.fix and "configs/examples/emulated_sme2.json" in linux.fix
    assert "emulated" not in check_host_sme(facts, system="Darwin").fix  # no QEMU user mode on macOS
