"""Built-in model definitions (imports torch: only the export worker imports this module).

Weights are random but seeded, so every export of the same model is byte-identical and the content hash
used for export caching is stable. Inputs are seeded too.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sme2tui.models.registry import BuiltinModel


def _make_divisible(value: float, divisor: int = 8) -> int:
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = _make_divisible(channels / reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.pool(x)
        scale = torch.relu(self.fc1(scale))
        scale = nn.functional.hardsigmoid(self.fc2(scale))
        out: torch.Tensor = x * scale
        return out


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1x1 expand, depthwise kxk, optional squeeze-excite, 1x1 project."""

    def __init__(self, cin: int, expand: int, cout: int, kernel: int, stride: int, se: bool, hs: bool) -> None:
        super().__init__()
        act: type[nn.Module] = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = []
        if expand != cin:
            layers += [nn.Conv2d(cin, expand, 1, bias=False), nn.BatchNorm2d(expand), act()]
        layers += [
            nn.Conv2d(expand, expand, kernel, stride, kernel // 2, groups=expand, bias=False),
            nn.BatchNorm2d(expand),
            act(),
        ]
        if se:
            layers.append(SqueezeExcite(expand))
        layers += [nn.Conv2d(expand, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        result: torch.Tensor = x + out if self.residual else out
        return result


# (kernel, expand, out, se, hardswish, stride) — MobileNetV3-Small's table
_SMALL = [
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
]
_QUICK = [_SMALL[0], _SMALL[1], _SMALL[3], _SMALL[8]]


class MobileNet(nn.Module):
    def __init__(self, width: float, blocks: str, num_classes: int = 1000) -> None:
        super().__init__()
        table = _SMALL if blocks == "small" else _QUICK
        stem = _make_divisible(16 * width)
        layers: list[nn.Module] = [nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.Hardswish()]
        cin = stem
        for kernel, expand, cout, se, hs, stride in table:
            e, o = _make_divisible(expand * width), _make_divisible(cout * width)
            layers.append(InvertedResidual(cin, e, o, kernel, stride, se, hs))
            cin = o
        last = _make_divisible(576 * width)
        layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.Hardswish()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        hidden = 1024 if blocks == "small" else 256
        self.classifier = nn.Sequential(
            nn.Linear(last, hidden), nn.Hardswish(), nn.Linear(hidden, num_classes if blocks == "small" else 100)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        out: torch.Tensor = self.classifier(x)
        return out


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer written out op by op (no fused nn.MultiheadAttention), so the
    exported graph shows the linear / batched matmul / softmax / layer norm a real encoder has."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h)), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))
        out: torch.Tensor = x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))
        return out


class TransformerEncoder(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, tokens: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm(self.layers(x + self.pos))
        return out


class VisionTransformer(nn.Module):
    def __init__(self, image: int, patch: int, layers: int, dim: int, heads: int, num_classes: int = 100) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        x = self.norm(self.layers(x))
        out: torch.Tensor = self.head(x.mean(dim=1))
        return out


def _init_weights(model: nn.Module, seed: int) -> None:
    """Deterministic, well-scaled random weights (and BN statistics, so BN is not an identity)."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / math.sqrt(fan_in))
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.01)
        elif isinstance(module, nn.BatchNorm2d):
            mean, var = module.running_mean, module.running_var
            assert mean is not None and var is not None  # track_running_stats is on for every BN here
            with torch.no_grad():
                mean.copy_(torch.randn(mean.shape, generator=gen) * 0.1)
                var.copy_(torch.rand(var.shape, generator=gen) * 0.5 + 0.75)


def build(spec: BuiltinModel, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The model in eval mode and one seeded example input batch."""
    torch.manual_seed(seed)
    p: dict[str, Any] = spec.params
    model: nn.Module
    if spec.family == "mobilenet":
        model = MobileNet(p["width"], p["blocks"])
        shape: tuple[int, ...] = (1, 3, p["resolution"], p["resolution"])
    elif spec.family == "transformer":
        model = TransformerEncoder(p["layers"], p["dim"], p["heads"], p["tokens"])
        shape = (1, p["tokens"], p["dim"])
    elif spec.family == "vit":
        model = VisionTransformer(p["image"], p["patch"], p["layers"], p["dim"], p["heads"])
        shape = (1, 3, p["image"], p["image"])
    else:  # the registry and this module are kept in step by a test
        raise ValueError(f"unknown model family {spec.family}")
    _init_weights(model, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    return model.eval(), (torch.randn(shape, generator=gen),)


def sample_inputs(example: tuple[torch.Tensor, ...], count: int, seed: int) -> list[tuple[torch.Tensor, ...]]:
    """More inputs of the same shape and dtype (calibration for static int8, extra validation)."""
    gen = torch.Generator().manual_seed(seed + 1000)
    return [
        tuple(torch.randn(t.shape, generator=gen).to(t.dtype) if t.is_floating_point() else t for t in example)
        for _ in range(count)
    ]
