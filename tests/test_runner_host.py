"""The native host runner, end to end: build it against the installed wheel, export real models, run them
with the runner and with the ExecuTorch Python runtime on the same inputs, and compare outputs, ETDumps
and timings. Also the runner's command-line contract (exit codes, one-line errors, threads).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from sme2tui.events import ArtifactWritten, Checkpoint, LogLine, Progress, StepFinished
from sme2tui.runners.binfmt import read_arch
from sme2tui.runners.host import BINARY_NAME, build_host_runner, find_host_runner, host_build_dir

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

WARMUP = 2
MEASURED = 3


@pytest.fixture(scope="session")
def runners_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runners")


@pytest.fixture(scope="session")
def build_events(runners_root: Path) -> list[Any]:
    return list(build_host_runner(host_build_dir(runners_root)))


@pytest.fixture(scope="session")
def runner(build_events: list[Any], runners_root: Path) -> Path:
    binary = host_build_dir(runners_root) / BINARY_NAME
    assert binary.is_file()
    return binary


def _make_model() -> Any:
    import torch

    class SmallNet(torch.nn.Module):
        """Conv (XNNPACK IGEMM), linear (GEMM) and a mean that stays a portable op: two outputs."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.fc = torch.nn.Linear(8 * 6 * 6, 10)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.relu(self.conv(x))
            return self.fc(y.flatten(1)), y.mean(dim=(2, 3))

    torch.manual_seed(0)
    return SmallNet().eval()


@dataclass
class Exported:
    name: str
    pte: Path
    inputs: list[Any]  # torch tensors
    input_files: list[Path]
    dtype: Any
    atol: float  # runner vs Python runtime (same kernels: close to exact)
    eager_atol: float  # vs eager PyTorch (quantization error for int8)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    out = tmp_path_factory.mktemp("models")
    models: dict[str, Exported] = {}
    for name, dtype, delegate, atol, eager_atol in (
        ("fp32-xnnpack", torch.float32, True, 1e-5, 1e-4),
        ("fp16-xnnpack", torch.float16, True, 1e-2, 5e-2),
        ("fp32-portable", torch.float32, False, 1e-5, 1e-4),
        ("int8-portable", torch.float32, False, 1e-5, 0.1),
    ):
        model = _make_model().to(dtype)
        generator = torch.Generator().manual_seed(1)
        x = torch.randn(1, 3, 8, 8, generator=generator).to(dtype)
        graph = torch.export.export(model, (x,))
        if name.startswith("int8"):
            graph = torch.export.export(_quantize(graph, x), (x,))
        program = to_edge_transform_and_lower(
            graph, partitioner=[XnnpackPartitioner()] if delegate else None, generate_etrecord=True
        ).to_executorch()
        pte = out / f"{name}.pte"
        pte.write_bytes(program.buffer)
        input_file = out / f"{name}.input0.bin"
        input_file.write_bytes(x.contiguous().numpy().tobytes())
        models[name] = Exported(name, pte, [x], [input_file], dtype, atol, eager_atol)
    return models


def _quantize(graph: Any, x: Any) -> Any:
    # Left undelegated, the quantize/dequantize ops run as quantized kernels: the runner must link them.
    import executorch.kernels.quantized  # noqa: F401  (registers the quantized out-variants for export)
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(graph.module(), quantizer)
    prepared(x)
    return convert_pt2e(prepared)


def _run(runner: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(runner), *args], capture_output=True, text=True, timeout=120, check=False)


def _read_runner_outputs(folder: Path) -> list[Any]:
    import torch

    meta = json.loads((folder / "outputs.json").read_text())
    assert meta["schema"] == "sme2tui.runner_outputs/1"
    tensors = []
    for entry in meta["outputs"]:
        assert entry["kind"] == "tensor"
        raw = bytearray((folder / entry["file"]).read_bytes())
        assert len(raw) == entry["nbytes"]
        dtype = getattr(torch, entry["dtype"])
        tensors.append(torch.frombuffer(raw, dtype=dtype).reshape(entry["shape"]))
    return tensors


def _python_runtime(pte: Path, inputs: list[Any], executions: int, etdump: Path) -> list[Any]:
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(pte, enable_etdump=True, debug_buffer_size=0)
    method = program.load_method("forward")
    assert method is not None
    outputs: list[Any] = []
    for _ in range(executions):
        outputs = list(method.execute(inputs))
    program.write_etdump_result_to_file(str(etdump), "")
    return outputs


def _etdump_summary(path: Path) -> tuple[set[str], dict[str, int]]:
    """Event names in the Execute blocks, and how many times each was recorded."""
    from executorch.devtools import Inspector

    inspector = Inspector(etdump_path=str(path))
    names: set[str] = set()
    counts: dict[str, int] = {}
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            names.add(event.name)
            counts[event.name] = len(event.perf_data.raw) if event.perf_data is not None else 0
    return names, counts


# ------------------------------------------------------------------------------------------- build


def test_build_streams_events_and_writes_a_truthful_manifest(build_events: list[Any], runner: Path) -> None:
    assert any(isinstance(e, LogLine) and e.step == "build" and e.source.startswith("cmake") for e in build_events)
    assert any(isinstance(e, Progress) for e in build_events)
    assert {e.name for e in build_events if isinstance(e, Checkpoint) and e.status == "pass"} >= {
        "cmake",
        "compiler",
        "executorch-cmake",
        "architecture",
        "runs",
    }
    finished = build_events[-1]
    assert isinstance(finished, StepFinished) and finished.ok
    assert finished.data["seconds"] < 120
    runner_artifact = next(e for e in build_events if isinstance(e, ArtifactWritten) and e.kind == "runner")

    manifest = json.loads((runner.parent / "runner_manifest.json").read_text())
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(runner.read_bytes()).hexdigest() == runner_artifact.sha256
    assert manifest["size_bytes"] == runner.stat().st_size
    assert manifest["variant"] == "host-native"
    assert manifest["architecture"]["canonical"] == read_arch(runner).canonical
    assert manifest["cmake"]["args"] and all(a.startswith("-D") for a in manifest["cmake"]["args"])
    assert manifest["cmake_cache"]["CMAKE_BUILD_TYPE"] == "Release"
    assert manifest["cmake_cache"]["SME2_RUNNER_THREADPOOL"] == "ON"
    assert manifest["cmake_cache"]["SME2_RUNNER_QUANTIZED_KERNELS"] == "ON"
    assert manifest["compiler"]["version"]

    # The manifest's ExecuTorch identity must be the installed package's own, read without importing it.
    import executorch.version

    assert manifest["executorch"]["version"] == executorch.version.__version__
    assert manifest["executorch"]["git_commit"] == executorch.version.git_version


def test_rebuild_is_incremental_and_find_rejects_a_changed_binary(
    runner: Path, runners_root: Path, tmp_path: Path
) -> None:
    events = list(build_host_runner(runner.parent))
    log = "\n".join(e.text for e in events if isinstance(e, LogLine))
    assert "no work to do" in log  # ninja relinked nothing: the folder was reused
    assert find_host_runner(runners_root) == runner

    # A copy whose binary no longer matches its manifest is not offered as a runner.
    copy = tmp_path / "host-native"
    copy.mkdir()
    for name in (BINARY_NAME, "runner_manifest.json"):
        (copy / name).write_bytes((runner.parent / name).read_bytes())
    assert find_host_runner(tmp_path) == copy / BINARY_NAME
    with (copy / BINARY_NAME).open("ab") as f:
        f.write(b"\0")
    assert find_host_runner(tmp_path) is None

    # A runner built from other runner sources (an older sme2tui) is not offered either.
    other = tmp_path / "other" / "host-native"
    other.mkdir(parents=True)
    (other / BINARY_NAME).write_bytes(runner.read_bytes())
    manifest = json.loads((runner.parent / "runner_manifest.json").read_text())
    (other / "runner_manifest.json").write_text(json.dumps({**manifest, "source_sha256": "0" * 64}))
    assert find_host_runner(tmp_path / "other") is None


# -------------------------------------------------------------------------------- runner vs Python


@pytest.mark.parametrize("name", ["fp32-xnnpack", "fp16-xnnpack", "fp32-portable", "int8-portable"])
def test_runner_matches_python_runtime(runner: Path, exported: dict[str, Exported], name: str, tmp_path: Path) -> None:
    import torch

    model = exported[name]
    etdump = tmp_path / "runner.etdump"
    timing = tmp_path / "timing.json"
    outdir = tmp_path / "out"
    result = _run(
        runner,
        f"--model_path={model.pte}",
        f"--inputs={','.join(map(str, model.input_files))}",
        f"--warmup={WARMUP}",
        f"--num_executions={MEASURED}",
        "--cpu_threads=2",
        f"--etdump_path={etdump}",
        f"--timing_json={timing}",
        f"--output_dir={outdir}",
        "--method_name=forward",
    )
    assert result.returncode == 0, result.stderr
    assert f"Model executed successfully {MEASURED} time(s)" in result.stdout

    py_etdump = tmp_path / "python.etdump"
    expected = _python_runtime(model.pte, model.inputs, WARMUP + MEASURED, py_etdump)
    got = _read_runner_outputs(outdir)
    assert len(got) == len(expected) == 2
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype == model.dtype
        torch.testing.assert_close(g, e, atol=model.atol, rtol=model.atol)
    # And both agree with eager PyTorch, so "equal" is not "equally wrong".
    eager = _make_model().to(model.dtype)(*model.inputs)
    for g, e in zip(got, eager, strict=True):
        torch.testing.assert_close(g.float(), e.detach().float(), atol=model.eager_atol, rtol=model.eager_atol)

    runner_names, runner_counts = _etdump_summary(etdump)
    python_names, python_counts = _etdump_summary(py_etdump)
    assert runner_names == python_names
    assert "Method::execute" in runner_names
    assert runner_counts["Method::execute"] == python_counts["Method::execute"] == WARMUP + MEASURED
    if "xnnpack" in name:
        assert "DELEGATE_CALL" in runner_names
        assert any("Convolution" in n for n in runner_names)
    else:
        assert "DELEGATE_CALL" not in runner_names
    if name.startswith("int8"):
        assert any("quantize_per_tensor" in n for n in runner_names)

    timings = json.loads(timing.read_text())
    assert timings["schema"] == "sme2tui.runner_timing/1" and timings["unit"] == "ns"
    assert timings["event_tracer"] is True
    assert len(timings["warmup_ns"]) == WARMUP and len(timings["measured_ns"]) == MEASURED
    assert all(ns > 0 for ns in timings["warmup_ns"] + timings["measured_ns"])


def test_default_inputs_are_ones_and_timing_only_mode_writes_no_etdump(
    runner: Path, exported: dict[str, Exported], tmp_path: Path
) -> None:
    import torch

    model = exported["fp32-xnnpack"]
    timing = tmp_path / "timing.json"
    result = _run(
        runner,
        f"--model_path={model.pte}",
        "--num_executions=4",
        f"--timing_json={timing}",
        f"--output_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("*.etdump"))
    timings = json.loads(timing.read_text())
    assert timings["event_tracer"] is False
    assert timings["warmup_ns"] == [] and len(timings["measured_ns"]) == 4

    ones = [torch.ones_like(model.inputs[0])]
    expected = _python_runtime(model.pte, ones, 1, tmp_path / "py.etdump")
    for g, e in zip(_read_runner_outputs(tmp_path), expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("threads", [1, 3])
def test_cpu_threads_changes_the_threads_the_process_runs(
    runner: Path, exported: dict[str, Exported], tmp_path: Path, threads: int
) -> None:
    # 3 is above this machine's performant-core default (2), so a pass proves the flag, not the default.
    timing = tmp_path / "timing.json"
    model = exported["fp32-xnnpack"]
    result = _run(runner, f"--model_path={model.pte}", f"--cpu_threads={threads}", f"--timing_json={timing}")
    assert result.returncode == 0, result.stderr
    timings = json.loads(timing.read_text())
    assert timings["threadpool_threads"] == threads
    # Counted from /proc/self/task after the run: the main thread plus threads-1 pool workers.
    assert timings["os_threads"] == threads


# --------------------------------------------------------------------------------- error contract


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sme2_runner: error: ")
    return lines[0]


def test_errors_are_one_line_with_distinct_exit_codes(
    runner: Path, exported: dict[str, Exported], tmp_path: Path
) -> None:
    pte = exported["fp32-xnnpack"].pte

    missing = _run(runner, f"--model_path={tmp_path / 'nope.pte'}")
    assert missing.returncode == 3 and "nope.pte" in _one_error_line(missing)

    junk = tmp_path / "junk.pte"
    junk.write_bytes(b"definitely not a program" * 10)
    not_program = _run(runner, f"--model_path={junk}")
    assert not_program.returncode == 3 and "not a loadable ExecuTorch program" in _one_error_line(not_program)

    method = _run(runner, f"--model_path={pte}", "--method_name=backward")
    assert method.returncode == 4 and "has: forward" in _one_error_line(method)

    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 7)
    bad_input = _run(runner, f"--model_path={pte}", f"--inputs={short}")
    assert bad_input.returncode == 5 and "7 bytes" in _one_error_line(bad_input)

    too_many = _run(runner, f"--model_path={pte}", f"--inputs={short},{short}")
    assert too_many.returncode == 5 and "2 file(s)" in _one_error_line(too_many)

    unknown = _run(runner, "--model_pth=x.pte")
    assert unknown.returncode == 2 and "unknown flag --model_pth" in _one_error_line(unknown)

    zero = _run(runner, f"--model_path={pte}", "--num_executions=0")
    assert zero.returncode == 2 and _one_error_line(zero)

    unwritable = _run(runner, f"--model_path={pte}", f"--timing_json={tmp_path / 'no' / 'such' / 'dir.json'}")
    assert unwritable.returncode == 7 and "dir.json" in _one_error_line(unwritable)


def test_progress_reports_measured_executions_while_it_runs(
    runner: Path, exported: dict[str, Exported], tmp_path: Path
) -> None:
    """--progress: measured-execution counts on stdout (throttled to one per 100 ms, warmup never counted, the
    last one the total), with the same measurements as without it; --help names the flag, which is how
    sme2tui tells this runner from an older one."""
    from sme2tui.run.commands import PROGRESS_PREFIX, last_progress
    from sme2tui.run.native import supports_progress

    assert supports_progress(runner)
    pte, timing = exported["fp32-xnnpack"].pte, tmp_path / "timing.json"
    executions = 150000  # ~0.5 s of this small model here: several progress lines
    result = _run(runner, f"--model_path={pte}", "--warmup=2", f"--num_executions={executions}", "--progress",
                  f"--timing_json={timing}")
    assert result.returncode == 0, result.stderr
    prefix = PROGRESS_PREFIX.decode()
    lines = [line for line in result.stdout.splitlines() if line.startswith(prefix)]
    assert lines and lines[-1] == f"{prefix}{executions}/{executions}"
    done = [int(line.removeprefix(prefix).split("/")[0]) for line in lines]
    assert done == sorted(set(done)) and all(1 <= d <= executions for d in done)
    assert last_progress(result.stdout.encode()) == executions
    measured = json.loads(timing.read_text())["measured_ns"]
    assert len(measured) == executions
    # One line per 100 ms of measuring at least (the first may come up to 100 ms late), so counts move.
    seconds = sum(measured) / 1e9
    assert seconds < 0.25 or len(lines) >= 2, (seconds, lines)

    quiet = _run(runner, f"--model_path={pte}", "--num_executions=3")
    assert quiet.returncode == 0 and prefix not in quiet.stdout
