"""Make the small, real `.pte` programs that tests/test_ready_programs.py reads (no torch in those tests).

They were written with

    python tests/data/pte/make_ptes.py tests/data/pte

which exports one tiny model (Conv2d 3→8 3×3 + ReLU → mean over H,W → Linear 8→4, input 1×3×16×16) with
sme2tui's own export recipe (`sme2tui.export.worker.export_program`: torch.export →
to_edge_transform_and_lower → to_executorch) in every dtype and delegation sme2tui exports. The file name
says what each program is, which is what `read_program_info` must find from the bytes alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DTYPES = ("fp32", "fp16", "int8", "int8-dynamic")
DELEGATES = ("portable", "xnnpack")


def tiny_model() -> tuple[Any, tuple[Any, ...]]:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Tiny().eval(), (torch.randn(1, 3, 16, 16),)


def make(out_dir: Path, dtype: str, delegate: str) -> Path:
    from sme2tui.export.worker import export_program

    model, inputs = tiny_model()
    edge, _ = export_program(model, inputs, dtype, delegate, samples=4, seed=0)
    path = out_dir / f"{dtype}_{delegate}.pte"
    path.write_bytes(bytes(edge.to_executorch().buffer))
    return path


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for dtype in DTYPES:
        for delegate in DELEGATES:
            print(make(out, dtype, delegate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
