"""An example "your own model" for sme2tui (docs/steps/your-own-model.md).

sme2tui imports `my_model:build` (this file sits next to my-model.json, and the config's folder is on the
import path), calls build() with no arguments and exports what it returns.
"""

from __future__ import annotations

import torch


class TinyClassifier(torch.nn.Module):
    """A conv stem and a two-layer head: enough to show CONV and GEMM in the breakdown."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
        )
        self.head = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.stem(x), 1))


def build() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """Return (model in eval mode, example inputs with the exact shapes the program will run with)."""
    torch.manual_seed(0)
    return TinyClassifier().eval(), (torch.randn(1, 3, 64, 64),)
