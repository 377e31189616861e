"""Make small, real ETDumps with ExecuTorch's Python runtime.

The ETDump tests use this twice: tests/test_etdump_inspector.py builds fresh traces in a session
fixture, and the committed fixtures next to this file were written with

    /work/venv/bin/python tests/data/etdump/make_etdumps.py tests/data/etdump

(only the .etdp files are kept; see README.md). torch/executorch are imported inside the functions so
that importing this module stays cheap.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# variant -> (delegate to XNNPACK, fp16)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "xnnpack_fp32": (True, False),
    "xnnpack_fp16": (True, True),
    "portable_fp32": (False, False),
    "portable_fp16": (False, True),
}
COMMITTED = ("xnnpack_fp32", "portable_fp16")


@dataclass(frozen=True)
class Made:
    pte: Path
    etdump: Path
    etrecord: Path
    wall_ns: list[int]  # perf_counter_ns around each execute call, for the tick-unit check


def _model() -> Any:
    import torch

    class ConvMeanLinear(torch.nn.Module):
        """A conv big enough that XNNPACK's work dominates its DELEGATE_CALL, then a mean that XNNPACK
        does not take (so it runs as a portable kernel under OPERATOR_CALL), then a linear."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(8, 16, 3, padding=1)
            self.fc = torch.nn.Linear(16, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv(x))
            out: torch.Tensor = self.fc(y.mean(dim=(2, 3)))
            return out

    torch.manual_seed(0)
    return ConvMeanLinear().eval()


def make(out_dir: Path, variant: str, iterations: int) -> Made:
    """Export one variant, run it `iterations` times with ETDump on, write <variant>.etdp/.etrecord."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    delegate, half = VARIANTS[variant]
    model = _model()
    x = torch.randn(1, 8, 32, 32)
    if half:
        model, x = model.half(), x.half()
    lowered = to_edge_transform_and_lower(
        torch.export.export(model, (x,)),
        partitioner=[XnnpackPartitioner()] if delegate else [],
        generate_etrecord=True,
    ).to_executorch()
    pte = out_dir / f"{variant}.pte"
    pte.write_bytes(lowered.buffer)
    made = Made(pte, out_dir / f"{variant}.etdp", out_dir / f"{variant}.etrecord", [])
    lowered.get_etrecord().save(str(made.etrecord))

    program = Runtime.get().load_program(str(pte), enable_etdump=True, debug_buffer_size=0)
    method = program.load_method("forward")
    for _ in range(iterations):
        begin = time.perf_counter_ns()
        method.execute([x])
        made.wall_ns.append(time.perf_counter_ns() - begin)
    # Once per program: writing twice without an execution in between crashes the process.
    program.write_etdump_result_to_file(str(made.etdump), str(out_dir / f"{variant}.debug.bin"))
    return made


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    for variant in COMMITTED:
        made = make(out_dir, variant, iterations=3)
        print(made.etdump, made.etdump.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
