"""Ready `.pte` programs: their dtype and delegation come from the program itself, never from `dtypes` or a
variant's `delegate`; configs that would mislabel one are refused.

Fast part: the torch-free reader on small real programs (tests/data/pte, see make_ptes.py) and on corrupted
copies of them, and the config rules. Slow part (real): a fp16 program exported by the real exporter in this
session runs from a config that names nothing but the file, and is labelled fp16.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from sme2tui.config import load_config, parse_config
from sme2tui.errors import ConfigError
from sme2tui.exit_codes import ExitCode
from sme2tui.models.pte_info import MAX_TABLES, ProgramReadError, read_program_info
from sme2tui.run.cells import plan_cells
from tests.conftest import REPO, run_cli

PTES = REPO / "tests" / "data" / "pte"
PROGRAMS = sorted(PTES.glob("*.pte"))


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_dtype_and_delegation_are_read_from_the_program(path: Path) -> None:
    dtype, delegate = path.stem.rsplit("_", 1)  # the file names say what make_ptes.py exported
    info = read_program_info(path)
    assert (info.dtype, info.delegation) == (dtype, delegate), info.dtype_evidence
    assert info.methods == ("forward",) and info.size == path.stat().st_size
    assert info.inputs[0].shape == (1, 3, 16, 16)
    assert info.inputs[0].dtype == ("float16" if dtype == "fp16" else "float32")
    if delegate == "xnnpack":
        assert info.delegates == {"XnnpackBackend": info.delegate_calls} and info.delegate_calls >= 1
    else:
        assert info.delegates == {} and info.delegate_calls == 0
        assert any("convolution" in op for op in info.operators)


def test_static_and_dynamic_int8_are_told_apart_by_their_evidence() -> None:
    static = read_program_info(PTES / "int8_xnnpack.pte")
    dynamic = read_program_info(PTES / "int8-dynamic_xnnpack.pte")
    assert "qint8" in static.dtype_evidence and "statically quantized" in static.dtype_evidence
    assert "qdint8" in dynamic.dtype_evidence and "dynamically quantized" in dynamic.dtype_evidence
    portable = read_program_info(PTES / "int8-dynamic_portable.pte")
    assert "choose_qparams" in portable.dtype_evidence


def _corruptions(data: bytes, rng: random.Random) -> list[bytes]:
    out = [data[:n] for n in range(0, len(data), max(1, len(data) // 97))]
    for _ in range(150):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 12)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        out.append(bytes(damaged))
    for _ in range(50):  # offsets and counts are 4-byte words: make them point anywhere
        damaged = bytearray(data)
        at = rng.randrange(0, len(data) - 4) & ~3
        damaged[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", rng.randbytes(4)])
        out.append(bytes(damaged))
    return out


@pytest.mark.parametrize("path", [PTES / "int8-dynamic_xnnpack.pte", PTES / "fp16_portable.pte"], ids=lambda p: p.stem)
def test_corrupted_programs_are_refused_cleanly(path: Path, tmp_path: Path) -> None:
    rng = random.Random(path.name)
    target = tmp_path / "x.pte"
    for data in _corruptions(path.read_bytes(), rng):
        target.write_bytes(data)
        started = time.monotonic()
        try:
            read_program_info(target)
        except ProgramReadError as exc:
            assert exc.exit_code == ExitCode.CONFIG and exc.where == str(target) and exc.fix
        assert time.monotonic() - started < 1.0


def test_not_a_regular_file_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.pte"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ProgramReadError, match="not a regular file"):
            read_program_info(path)


def test_other_files_are_refused(tmp_path: Path) -> None:
    cases = {"empty.pte": b"", "etdump.pte": (REPO / "tests/data/etdump/xnnpack_fp32.etdp").read_bytes(),
             "text.pte": b'{"models": []}' * 10}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProgramReadError) as info:
            read_program_info(tmp_path / name)
        assert "ET12" in info.value.what or "too small" in info.value.what


def test_table_budget_bounds_the_work() -> None:
    assert MAX_TABLES >= 1_000_000  # real programs need thousands; the bound is for hostile ones


# --- configs with ready programs ----------------------------------------------------------------------------

def _load(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    return load_config(path)


def _error(tmp_path: Path, data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, data)
    return info.value


def test_minimal_config_is_just_the_program(tmp_path: Path) -> None:
    config = _load(tmp_path, {"models": [{"pte": str(PTES / "fp16_xnnpack.pte")}]})
    (variant,) = config.variants
    assert variant.name == "as-exported" and variant.delegate == "as-exported"
    assert config.models[0].program.dtype == "fp16" and config.models[0].program.delegation == "xnnpack"
    (cell,) = plan_cells(config)
    assert cell.id == "fp16_xnnpack__fp16__as-exported__t1"
    assert config.cell_count() == 1


def test_run_folder_config_keeps_the_program_facts(tmp_path: Path) -> None:
    """A run folder's config.json is re-read without the program: the facts travel with it."""
    config = _load(tmp_path, {"models": [{"pte": str(PTES / "int8_portable.pte")}]})
    again = parse_config(json.loads(config.canonical_json()))
    assert [c.id for c in plan_cells(again)] == ["int8_portable__int8__as-exported__t1"]


def test_variants_that_differ_only_in_delegate_are_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, {"models": [{"pte": str(PTES / "fp32_portable.pte")}],
                            "variants": [{"name": "portable", "delegate": "portable"},
                                         {"name": "xnnpack", "delegate": "xnnpack"}]})
    assert "differ only in `delegate`" in err.what and "baked into a .pte" in err.what


def test_variants_that_differ_in_runner_still_apply(tmp_path: Path) -> None:
    """e.g. one program on two runners (or two emulated CPUs): a real comparison, allowed."""
    config = _load(tmp_path, {"models": [{"pte": str(PTES / "fp32_xnnpack.pte")}],
                              "variants": [{"name": "python", "runner": "python"},
                                           {"name": "native", "runner": "native"}]})
    assert [c.variant for c in plan_cells(config)] == ["python", "native"]


def test_a_delegate_the_program_does_not_have_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, {"models": [{"pte": str(PTES / "fp32_portable.pte")}],
                            "variants": [{"name": "x", "delegate": "xnnpack"}]})
    assert "asks for delegate `xnnpack`" in err.what and "delegation `portable`" in err.what
    assert err.where == "variants[0].delegate"


def test_dtypes_do_not_apply_to_a_ready_program(tmp_path: Path) -> None:
    # A config whose models are swapped for ready programs keeps its `dtypes`: they apply to exported models only,
    # and each ready program's cells take the dtype read from the program (not the listed one, not refused).
    config = _load(tmp_path, {"models": [{"pte": str(PTES / "fp16_portable.pte")}], "dtypes": ["fp32", "int8"]})
    assert [c.dtype for c in plan_cells(config)] == ["fp16"]
    ok = _load(tmp_path, {"models": [{"pte": str(PTES / "fp16_portable.pte")}], "dtypes": ["fp16"]})
    assert plan_cells(ok)[0].dtype == "fp16"


def test_mixed_config_exports_dtypes_and_keeps_the_program_dtype(tmp_path: Path) -> None:
    config = _load(tmp_path, {"models": [{"builtin": "mobilenet_quick"}, {"pte": str(PTES / "fp16_xnnpack.pte")}],
                              "dtypes": ["fp32", "int8"], "variants": [{"name": "x", "delegate": "xnnpack"}]})
    assert [(c.model, c.dtype) for c in plan_cells(config)] == [
        ("mobilenet_quick", "fp32"), ("mobilenet_quick", "int8"), ("fp16_xnnpack", "fp16")]


def test_the_same_program_twice_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "same.pte"
    os.link(PTES / "fp32_portable.pte", link)
    err = _error(tmp_path, {"models": [{"pte": str(PTES / "fp32_portable.pte")}, {"pte": str(link)}]})
    assert "are the same program file" in err.what


def test_variants_are_required_when_something_is_exported(tmp_path: Path) -> None:
    err = _error(tmp_path, {"models": [{"builtin": "mobilenet_quick"}, {"pte": str(PTES / "fp16_xnnpack.pte")}]})
    assert "`variants` is required (it may be left out only when every model is a ready .pte)" in err.what


def test_config_validate_shows_what_the_program_is(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": [{"pte": str(PTES / "int8-dynamic_xnnpack.pte")}]}))
    result = run_cli("config", "validate", path)
    assert result.returncode == 0, result.stderr
    assert "1 cell(s)" in result.stdout and "int8-dynamic (dynamically quantized" in result.stdout
    assert "delegation xnnpack" in result.stdout


# --- for real: export a fp16 program, then run it from a config that names only the file ------------------

@pytest.mark.slow
def test_ready_fp16_program_runs_and_is_labelled_fp16(session_root: Path, tmp_path: Path) -> None:
    export_config = tmp_path / "export.json"
    export_config.write_text(json.dumps({"name": "fp16", "models": [{"builtin": "mobilenet_quick"}],
                                         "dtypes": ["fp16"], "variants": [{"name": "x", "delegate": "xnnpack"}]}))
    exported = run_cli("export", "--json", "--config", export_config, "--output-root", session_root / "runs",
                       cwd=session_root)
    assert exported.returncode == 0, exported.stderr
    (program,) = json.loads(exported.stdout)["programs"]
    pte = tmp_path / "somebody-elses-model.pte"
    pte.write_bytes(Path(program["pte"]).read_bytes())  # from now on, just a file someone handed us

    config = tmp_path / "ready.json"
    config.write_text(json.dumps({"models": [{"pte": pte.name}], "iterations": 4, "warmup": 1, "rounds": 2}))
    result = run_cli("--auto", "--json", "--config", config, "--output-root", tmp_path / "runs", cwd=session_root)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    (cell_id,) = out["cells"]
    assert cell_id == "somebody-elses-model__fp16__as-exported__t1"
    assert out["comparison"]["label"] == "no comparison (one variant)" and out["pairs"] == []
    manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    (entry,) = manifest["exports"].values()
    assert (entry["dtype"], entry["delegate"]) == ("fp16", "xnnpack")
    assert entry["read_from_program"]["dtype_evidence"].startswith("floating point: 1 of the method's 1")
    summary = json.loads((Path(out["run_dir"]) / "analysis" / "summary.json").read_text())
    assert summary["cells"][cell_id]["dtype"] == "fp16"
    assert "fp16 program" in result.stderr and "delegation xnnpack, read from the program" in result.stderr
