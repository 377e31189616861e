"""Host run worker on the ExecuTorch Python runtime: `python -m sme2tui.run.python_worker JOB.json`.

All cells of a group (same model, dtype, threads; different variants) are loaded into one process and
executed interleaved, iteration by iteration, alternating the order (A B, B A, ...) so that drift in the
machine (clocks, heat, other load) hits every variant alike. Warmup runs in the same process and is
written to the ETDump like any iteration; the analysis drops it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from sme2tui.events import CellStatus, LogLine
from sme2tui.workers.launcher import report_user_error
from sme2tui.workers.protocol import emit, open_channel

PROGRESS_EVERY_S = 0.25  # how often the measured-iteration counts are reported

_TORCH_DTYPES = {"float32": "float32", "float16": "float16", "int64": "int64", "int32": "int32",
                 "int8": "int8", "uint8": "uint8", "bool": "bool", "bfloat16": "bfloat16"}
_META_DTYPES = {"Float": "float32", "Half": "float16", "Long": "int64", "Int": "int32", "Char": "int8",
                "Byte": "uint8", "Bool": "bool", "BFloat16": "bfloat16"}


def load_inputs(cell: dict[str, Any], method: Any, seed: int) -> list[Any]:
    import torch

    if cell.get("inputs"):
        tensors = []
        for spec in cell["inputs"]:
            dtype = getattr(torch, _TORCH_DTYPES[spec["dtype"]])
            data = bytearray(Path(spec["file"]).read_bytes())
            tensors.append(torch.frombuffer(data, dtype=dtype).reshape(spec["shape"]).clone())
        return tensors
    # A ready .pte without saved inputs: seeded random inputs shaped by the method's own metadata.
    meta = method.metadata
    gen = torch.Generator().manual_seed(seed)
    tensors = []
    for i in range(meta.num_inputs()):
        info = meta.input_tensor_meta(i)
        dtype = getattr(torch, _META_DTYPES.get(str(info.dtype()).split(".")[-1], "float32"))
        sizes = list(info.sizes())
        if dtype.is_floating_point:
            tensors.append(torch.randn(sizes, generator=gen).to(dtype))
        else:
            tensors.append(torch.zeros(sizes, dtype=dtype))
    return tensors


def _peak_rss_bytes() -> int | None:
    """This process's peak RSS: VmHWM on Linux (ru_maxrss there would include the parent's size, kept across
    exec), else getrusage (bytes on macOS)."""
    import os
    import resource

    from sme2tui.run.native import vm_hwm_bytes

    if sys.platform.startswith("linux"):
        return vm_hwm_bytes(os.getpid())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main(job_path: str) -> int:
    open_channel()
    job = json.loads(Path(job_path).read_text())
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    threads = int(job["threads"])
    # The XNNPACK threadpool is process-wide; this worker only runs cells with one thread count.
    portable_lib._unsafe_reset_threadpool(threads)
    profile = bool(job["profile"])
    runtime = Runtime.get()
    loaded = []
    load_ns: dict[str, tuple[int, int]] = {}
    for cell in job["cells"]:
        try:
            started = time.perf_counter_ns()
            program = runtime.load_program(Path(cell["pte"]), enable_etdump=profile, debug_buffer_size=0)
            loaded_at = time.perf_counter_ns()
            method = program.load_method(job.get("method", "forward"))
            load_ns[cell["cell_id"]] = (loaded_at - started, time.perf_counter_ns() - loaded_at)
        except Exception as exc:
            report_user_error(f"cannot load {cell['pte']}: {exc}", where=cell["cell_id"],
                              fix="re-export the model; the .pte may be corrupt or from another ExecuTorch")
            return 3
        inputs = load_inputs(cell, method, int(job.get("seed", 0)))
        loaded.append((cell, program, method, inputs))
        emit(CellStatus(cell["cell_id"], "running", "loaded", 0, int(job["iterations"])))

    warmup, iterations = int(job["warmup"]), int(job["iterations"])
    timings: dict[str, dict[str, list[int]]] = {c["cell_id"]: {"warmup_ns": [], "iterations_ns": []}
                                                for c, *_ in loaded}
    cells = f"{len(loaded)} cell{'s' if len(loaded) != 1 else ''}"
    emit(LogLine("run", f"warmup: {warmup} x {cells}, interleaved", "info", "python-runtime"))
    reported = time.monotonic()
    for index in range(warmup + iterations):
        order = loaded if index % 2 == 0 else list(reversed(loaded))
        for cell, _program, method, inputs in order:
            start = time.perf_counter_ns()
            method.execute(inputs)
            elapsed = time.perf_counter_ns() - start
            bucket = "warmup_ns" if index < warmup else "iterations_ns"
            timings[cell["cell_id"]][bucket].append(elapsed)
        done = index + 1 - warmup
        # Counts move a few times a second whatever the model's speed (every tenth of the iterations
        # left a 90 ms model silent for seconds), never between the timed calls.
        now = time.monotonic()
        if done > 0 and (done == iterations or now - reported >= PROGRESS_EVERY_S):
            reported = now
            for cell, *_ in loaded:
                emit(CellStatus(cell["cell_id"], "running", "measuring", done, iterations))

    # One process runs the whole group, so its peak memory (Python, the runtime and every variant's program)
    # is shared by these cells.
    peak_rss = _peak_rss_bytes()
    for cell, program, _method, _inputs in loaded:
        out_dir = Path(cell["out_dir"])
        out_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "runner": "python-runtime",
            "threads": threads,
            "warmup": warmup,
            "iterations": iterations,
            "interleaved_with": [c["cell_id"] for c, *_ in loaded if c is not cell],
            "clock": "time.perf_counter_ns around Method.execute",
            "program_load_ns": load_ns[cell["cell_id"]][0],
            "method_load_ns": load_ns[cell["cell_id"]][1],
            "process_peak_rss_bytes": peak_rss,
            "process_shared_by": [c["cell_id"] for c, *_ in loaded],
            **timings[cell["cell_id"]],
        }
        if profile:
            # Written once per program: a second write with no execution in between crashes the process.
            program.write_etdump_result_to_file(str(out_dir / "etdump.etdp"), str(out_dir / "debug.bin"))
            (out_dir / "debug.bin").unlink(missing_ok=True)
            record["etdump"] = "etdump.etdp"
        (out_dir / "timing.json").write_text(json.dumps(record, indent=1))
        emit(CellStatus(cell["cell_id"], "done", "measured", iterations, iterations))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
