"""Export worker (imports torch and ExecuTorch): `python -m sme2tui.export.worker JOB.json`.

For each requested (model, dtype, delegate): build the model, hash it with its inputs, reuse a cached export
when nothing changed, else export with ExecuTorch (always writing an ETRecord), record what was and was not
delegated, and check the exported program's output against the fp32 eager model.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sme2tui.events import ArtifactWritten, Checkpoint, LogLine, Progress
from sme2tui.export.cache import cached_entry, entry_folder
from sme2tui.export.results import (
    COSINE_THRESHOLDS,
    RECIPE_VERSION,
    DelegationSummary,
    ExportRecord,
    NumericsCheck,
    TensorFile,
)
from sme2tui.fileio import sha256_file
from sme2tui.workers.launcher import report_user_error
from sme2tui.workers.protocol import emit, open_channel

os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

import torch


class ItemFailed(Exception):
    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


def log(text: str, level: str = "info") -> None:
    emit(LogLine("export", text, level, "export"))  # type: ignore[arg-type]


# --- building the eager model -----------------------------------------------------------------------


def load_model(item: dict[str, Any]) -> tuple[torch.nn.Module, tuple[Any, ...], str, str]:
    """(model, example inputs, source description, source-code hash)."""
    spec = item["model"]
    seed = int(item.get("seed", 0))
    if spec.get("builtin"):
        from sme2tui.models import builtin as builtin_module
        from sme2tui.models.registry import builtin_model

        meta = builtin_model(spec["builtin"])
        model, inputs = builtin_module.build(meta, seed)
        return model, inputs, f"builtin:{meta.id}", ""  # keyed by the parent's recipe key (export/cache.py)
    factory = spec["factory"]
    module_name, _, func_name = factory.partition(":")
    for extra in (item.get("config_dir"), str(Path.cwd())):
        if extra and extra not in sys.path:
            sys.path.insert(0, extra)
    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:
        raise ItemFailed(f"importing `{module_name}` for factory `{factory}` called sys.exit({exc.code!r})",
                         "keep the module importable without side effects (put script code under "
                         "`if __name__ == \"__main__\":`)") from None
    except Exception as exc:
        raise ItemFailed(
            f"cannot import `{module_name}` for factory `{factory}`: {type(exc).__name__}: {exc}",
            "make the module importable: run from its folder, put it next to the config, or pip install it",
        ) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ItemFailed(f"`{module_name}` has no function `{func_name}`", f"define {func_name}() in {module_name}")
    try:
        produced = func()
    except SystemExit as exc:  # a factory that exits would otherwise end the worker with no word of why
        raise ItemFailed(f"factory `{factory}` called sys.exit({exc.code!r}) instead of returning a model",
                         "return (model, example_inputs) from it; do not exit") from None
    except Exception as exc:
        raise ItemFailed(f"factory `{factory}` raised {type(exc).__name__}: {exc}",
                         "fix the factory function") from None
    if not (isinstance(produced, tuple) and len(produced) == 2 and isinstance(produced[0], torch.nn.Module)):
        raise ItemFailed(
            f"factory `{factory}` must return (torch.nn.Module, tuple_of_example_inputs)",
            "return e.g. `model.eval(), (torch.randn(1, 3, 224, 224),)`",
        )
    model, inputs = produced
    inputs = tuple(inputs) if isinstance(inputs, list | tuple) else (inputs,)
    return model.eval(), inputs, f"factory:{factory}", factory_code_hash(factory, module, model)


MAX_SOURCE_FILES = 2000


def factory_code_hash(factory: str, module: Any, model: torch.nn.Module) -> str:
    """The factory's identity and the user code that defines its model.

    Hashed: the `module:function` string (two factories in one file may return weight-free models that
    differ only in code), every loaded module inside the factory's own package (for a lone module: the
    loaded modules in its folder, say a helper it imports), and the files that define the model's classes
    wherever they live outside the Python installation. Installed packages (torch, timm, …) are not hashed:
    their effect is in the weights and inputs, which the content key hashes too.
    """
    installed = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]

    def is_installed(path: Path) -> bool:
        return any(path.is_relative_to(r) for r in installed) or bool(
            {"site-packages", "dist-packages"} & set(path.parts))

    def source_of(mod: Any) -> Path | None:
        path = getattr(mod, "__file__", None)
        return Path(path).resolve() if isinstance(path, str) and path.endswith(".py") else None

    files: set[Path] = set()
    top_file = source_of(sys.modules.get(module.__name__.partition(".")[0]))
    if top_file is not None:
        files.add(top_file)
        is_package = top_file.name == "__init__.py"
        root = top_file.parent
        if is_package or not is_installed(root):
            for loaded in list(sys.modules.values()):
                path = source_of(loaded)
                if path is not None and path.is_relative_to(root) and (is_package or not is_installed(path)):
                    files.add(path)
    for sub in model.modules():
        path = source_of(sys.modules.get(type(sub).__module__))
        if path is not None and not is_installed(path):
            files.add(path)
    if (own := source_of(module)) is not None:
        files.add(own)
    h = hashlib.sha256(factory.encode())
    for path in sorted(files)[:MAX_SOURCE_FILES]:
        if path.is_file():
            h.update(str(path).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def tensor_digest(h: Any, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(str(t.dtype).encode())
    h.update(str(tuple(t.shape)).encode())
    h.update(t.view(-1).view(torch.uint8).numpy().tobytes())


def content_key(item: dict[str, Any], model: torch.nn.Module, inputs: tuple[Any, ...], code_hash: str,
                versions: dict[str, Any]) -> str:
    """Changes when the model (code or weights), inputs, dtype, delegate or ExecuTorch/torch changes."""
    h = hashlib.sha256()
    h.update(json.dumps({"recipe": RECIPE_VERSION, "dtype": item["dtype"], "delegate": item["delegate"],
                         "code": code_hash, "samples": item["model"].get("calibration_samples", 8),
                         **versions}, sort_keys=True).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        tensor_digest(h, value)
    for value in inputs:
        if isinstance(value, torch.Tensor):
            tensor_digest(h, value)
    return h.hexdigest()


# --- export -----------------------------------------------------------------------------------------


def sample_like(inputs: tuple[Any, ...], count: int, seed: int) -> list[tuple[Any, ...]]:
    gen = torch.Generator().manual_seed(seed + 1000)
    return [
        tuple(torch.randn(t.shape, generator=gen).to(t.dtype) if isinstance(t, torch.Tensor)
              and t.is_floating_point() else t for t in inputs)
        for _ in range(count)
    ]


def export_program(model: torch.nn.Module, inputs: tuple[Any, ...], dtype: str, delegate: str, samples: int,
                   seed: int) -> tuple[Any, tuple[Any, ...]]:
    """Returns (edge program manager, the inputs as the exported program takes them)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if dtype == "fp16":
        model = copy.deepcopy(model).half()  # keep the caller's fp32 model intact: it is the reference
        inputs = tuple(t.half() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs)
    exported = torch.export.export(model, inputs)
    if dtype in ("int8", "int8-dynamic"):
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dtype == "int8-dynamic")
        )
        prepared = prepare_pt2e(exported.module(), quantizer)
        calibration = [inputs, *sample_like(inputs, samples - 1, seed)]
        log(f"calibrating on {len(calibration)} inputs")
        for sample in calibration:
            prepared(*sample)
        exported = torch.export.export(convert_pt2e(prepared), inputs)
    if dtype in ("int8", "int8-dynamic") and delegate == "portable":
        # Quantize/dequantize ops stay outside any delegate here; their out-variants (what the portable
        # program calls) are registered by ExecuTorch's quantized-kernels library.
        import executorch.kernels.quantized  # noqa: F401
    partitioners = [XnnpackPartitioner()] if delegate == "xnnpack" else []
    edge = to_edge_transform_and_lower(exported, partitioner=partitioners, generate_etrecord=True)
    return edge, inputs


def delegation_summary(edge: Any) -> DelegationSummary:
    from executorch.devtools.backend_debug.delegation_info import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    by_op = {k: (v.delegated, v.non_delegated) for k, v in info.delegation_by_operator.items() if k != "getitem"}
    return DelegationSummary(
        delegated_subgraphs=info.num_delegated_subgraphs,
        delegated_nodes=info.num_delegated_nodes,
        non_delegated_nodes=info.num_non_delegated_nodes,
        non_delegated_ops={k: n for k, (_, n) in sorted(by_op.items()) if n},
        delegated_ops={k: d for k, (d, _) in sorted(by_op.items()) if d},
    )


def save_tensors(folder: Path, stem: str, tensors: list[torch.Tensor]) -> list[TensorFile]:
    """Raw little-endian contiguous bytes (what the native runner's --inputs reads) plus metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, t in enumerate(tensors):
        name = f"{stem}{i}.bin"
        data = t.detach().cpu().contiguous()
        (folder / name).write_bytes(data.view(-1).view(torch.uint8).numpy().tobytes())
        files.append(TensorFile(file=f"{folder.name}/{name}", dtype=str(data.dtype).removeprefix("torch."),
                                shape=list(data.shape)))
    return files


def flat_outputs(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in flat_outputs(v)]
    return []


def check_numerics(pte: bytes, model: torch.nn.Module, dtype: str, samples: list[tuple[Any, ...]],
                   program_inputs: list[tuple[Any, ...]]) -> NumericsCheck:
    """Run the .pte on the runtime and compare with the fp32 eager model on the same inputs."""
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(pte).load_method("forward")
    threshold = COSINE_THRESHOLDS[dtype]
    worst_cos, worst_err, ref_max = 1.0, 0.0, 0.0
    eager_nonfinite = program_nonfinite = False
    for sample, program_input in zip(samples, program_inputs, strict=True):
        with torch.no_grad():
            reference = flat_outputs(model(*sample))
        produced = flat_outputs(method.execute(list(program_input)))
        for ref, out in zip(reference, produced, strict=False):
            ref32, out32 = ref.float().flatten(), out.float().flatten()
            if ref32.numel() != out32.numel():
                return NumericsCheck(status="fail", detail=f"output shape {tuple(out.shape)} != eager "
                                     f"{tuple(ref.shape)}", fix="check the model's output structure",
                                     threshold=threshold, samples=len(samples))
            if not bool(torch.isfinite(ref32).all()):
                eager_nonfinite = True  # nothing to compare against: said below, never as a cosine
                continue
            if not bool(torch.isfinite(out32).all()):
                program_nonfinite = True
                continue
            cos = float(torch.nn.functional.cosine_similarity(ref32, out32, dim=0, eps=1e-12))
            worst_cos = min(worst_cos, cos)
            worst_err = max(worst_err, float((ref32 - out32).abs().max()))
            ref_max = max(ref_max, float(ref32.abs().max()))
    if eager_nonfinite:
        return NumericsCheck(
            status="fail", threshold=threshold, samples=len(samples),
            detail="the eager model itself outputs NaN or infinity on the example inputs, so there is nothing "
                   "to compare the exported program with",
            fix="check the model and its example inputs (the factory's, or the built-in's seed): they must give "
                "finite outputs in eager PyTorch")
    if program_nonfinite:
        return NumericsCheck(
            status="fail", threshold=threshold, samples=len(samples), cosine_min=-1.0,
            detail=f"the exported program outputs NaN or infinity where the eager model's outputs are finite "
                   f"({dtype}), over {len(samples)} inputs",
            fix="a value overflows at this dtype or an op is wrong in the runtime: try fp32, or keep the op that "
                "overflows in fp32; report it upstream with the .pte if fp32 does it too")
    ok = worst_cos >= threshold
    detail = (f"cosine {worst_cos:.6f} (threshold {threshold}), max |error| {worst_err:.3g} "
              f"(eager max |value| {ref_max:.3g}) over {len(samples)} inputs, vs fp32 eager")
    fix = "" if ok else (
        "the exported program does not compute what the eager model computes at this dtype. Look at the "
        "non-delegated ops (portable kernels) first: fp16 portable kernels such as native_layer_norm are "
        "known to be inaccurate for some sizes; keep that op in fp32, use fp32/int8 for this model, or "
        "report it upstream with the .pte"
    )
    return NumericsCheck(status="pass" if ok else "fail", cosine_min=worst_cos, max_abs_error=worst_err,
                         reference_max_abs=ref_max, threshold=threshold, samples=len(samples), detail=detail,
                         fix=fix)


def export_item(item: dict[str, Any], versions: dict[str, Any], cache_root: Path) -> Path:
    subject = item["subject"]
    want_numerics = bool(item.get("validate", True))
    # Built-ins come with the parent's torch-free recipe key; factories are keyed on their content.
    key: str | None = item.get("cache_key")
    if key is None:
        model, inputs, source, code_hash = load_model(item)
        key = content_key(item, model, inputs, code_hash, versions)
    hit = cached_entry(cache_root, key, want_numerics=want_numerics)
    if hit is not None:
        emit(Checkpoint("export", "export cache", "pass", f"unchanged since last export ({key[:12]}), reused",
                        subject=subject))
        return hit[0]
    if item.get("cache_key") is not None:
        model, inputs, source, _ = load_model(item)
    folder = entry_folder(cache_root, key)
    tmp = cache_root / f".{key[:20]}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    dtype, delegate = item["dtype"], item["delegate"]
    log(f"exporting {subject}: torch.export → to_edge_transform_and_lower"
        f"({'XnnpackPartitioner' if delegate == 'xnnpack' else 'no partitioner: portable kernels'})")
    try:
        edge, _ = export_program(model, inputs, dtype, delegate,
                                              int(item["model"].get("calibration_samples", 8)),
                                              int(item.get("seed", 0)))
        delegation = delegation_summary(edge)
        program = edge.to_executorch()
    except ItemFailed:
        raise
    except Exception as exc:
        log(traceback.format_exc(), "debug")
        first_line = (str(exc).splitlines() or [""])[0][:300]
        raise ItemFailed(
            f"ExecuTorch export failed: {type(exc).__name__}: {first_line}",
            "the model must be exportable with torch.export (no data-dependent control flow) and its ops "
            "supported at this dtype; the full traceback is in the run's logs/export.log",
        ) from None
    pte_bytes = bytes(program.buffer)
    (tmp / "model.pte").write_bytes(pte_bytes)
    etrecord = edge.get_etrecord() if hasattr(edge, "get_etrecord") else program.get_etrecord()
    etrecord.save(str(tmp / "model.etrecord"))
    samples = [inputs, *sample_like(inputs, 2, int(item.get("seed", 0)))]
    program_samples = [tuple(t.half() if dtype == "fp16" and isinstance(t, torch.Tensor) and t.is_floating_point()
                             else t for t in s) for s in samples]
    input_files = save_tensors(tmp / "inputs", "input", [t for t in program_samples[0] if isinstance(t, torch.Tensor)])
    with torch.no_grad():
        reference = flat_outputs(model(*samples[0]))
    reference_files = save_tensors(tmp / "reference", "output", reference)
    if want_numerics:
        numerics = check_numerics(pte_bytes, model, dtype, samples, program_samples)
        if numerics.status == "fail" and delegation.non_delegated_ops and numerics.cosine_min is not None:
            suspects = ", ".join(delegation.non_delegated_ops)
            numerics = numerics.model_copy(update={"fix": f"ops left to portable kernels here: {suspects}. "
                                                   + numerics.fix})
    else:
        numerics = NumericsCheck(status="skip", detail="validate_numerics is off in the config")
    non_delegated = ", ".join(f"{k}×{n}" for k, n in delegation.non_delegated_ops.items()) or "none"
    log(f"{subject}: {delegation.delegated_nodes} nodes in {delegation.delegated_subgraphs} XNNPACK subgraphs; "
        f"left to portable kernels: {non_delegated}")
    record = ExportRecord(
        key=key, model=item["model_id"], dtype=dtype, delegate=delegate, pte="model.pte", etrecord="model.etrecord",
        pte_sha256=sha256_file(tmp / "model.pte"), etrecord_sha256=sha256_file(tmp / "model.etrecord"),
        inputs=input_files, reference_outputs=reference_files, delegation=delegation, numerics=numerics,
        executorch_version=versions["executorch"], executorch_git=versions["executorch_git"],
        torch_version=versions["torch"], torch_git=versions["torch_git"],
        export_seconds=round(time.perf_counter() - started, 2), source=source,
    )
    (tmp / "export.json").write_text(record.model_dump_json(indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)  # atomic publish: a cache entry is complete or absent
    except OSError:
        # Another sme2tui published the same program meanwhile (same key: same program); use theirs.
        if cached_entry(cache_root, key, want_numerics=want_numerics) is None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _storage_failure(exc: OSError, cache_root: Path, action: str) -> int:
    """Report a disk problem as a user error (exit 3 with what/where/fix) and drop half-written entries."""
    from sme2tui.storage import is_user_oserror, storage_error

    if not is_user_oserror(exc):
        raise exc
    for partial in cache_root.glob(f".*.tmp{os.getpid()}"):
        shutil.rmtree(partial, ignore_errors=True)  # a half-written entry only takes space
    error = storage_error(exc, action=action, path=cache_root,
                          after="then run again (finished exports are cached)")
    report_user_error(error.what, error.where, error.fix, exit_code=int(error.exit_code))
    return 3


def main(job_path: str) -> int:
    open_channel()
    job = json.loads(Path(job_path).read_text())
    import executorch.version

    versions = {"executorch": executorch.version.__version__, "executorch_git": executorch.version.git_version,
                "torch": torch.__version__, "torch_git": torch.version.git_version}
    cache_root = Path(job["cache_root"])
    items = job["items"]
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _storage_failure(exc, cache_root, "create the export cache")
    for index, item in enumerate(items):
        emit(Progress("export", index, len(items), f"exporting {item['subject']}", item["subject"]))
        try:
            folder = export_item(item, versions, cache_root)
        except ItemFailed as exc:
            emit(Checkpoint("export", "export", "fail", exc.what, exc.fix, subject=item["subject"]))
            continue
        except OSError as exc:  # a full or read-only disk under the cache is the user's to fix, not a crash
            return _storage_failure(exc, cache_root, f"write the exported program for {item['subject']}")
        record = ExportRecord.model_validate_json((folder / "export.json").read_text())
        n = record.numerics
        emit(Checkpoint("export", "numerics vs eager", n.status, n.detail, n.fix, subject=item["subject"]))
        emit(ArtifactWritten("export", str(folder), "export", record.pte_sha256))
    emit(Progress("export", len(items), len(items), "exports done"))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])
    # Every event is flushed (emit flushes each line). Skip the interpreter's teardown: unloading torch and
    # ExecuTorch takes ~0.3–1 s, and the parent waits for this exit before it moves on.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
