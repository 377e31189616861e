"""The built-in models: plain PyTorch, seeded, no downloads. Each comes in a small "quick" size for the
quickstart and CI and a realistic size for measurements worth reading."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from sme2tui.errors import ConfigError


@dataclass(frozen=True)
class BuiltinModel:
    id: str
    family: str  # function name in sme2tui.models.builtin
    size: str  # "quick" or "full"
    summary: str
    params: dict[str, Any] = field(default_factory=dict)


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.id: m
    for m in (
        BuiltinModel(
            "mobilenet_quick", "mobilenet", "quick",
            "MobileNetV3-style CNN, 128x128 input, 4 blocks: depthwise-separable convs, BN, hardswish, squeeze-excite",
            {"resolution": 128, "width": 1.0, "blocks": "quick"},
        ),
        BuiltinModel(
            "mobilenet", "mobilenet", "full",
            "MobileNetV3-Small-style CNN, 224x224 input (~2.5M params)",
            {"resolution": 224, "width": 1.0, "blocks": "small"},
        ),
        BuiltinModel(
            "transformer_quick", "transformer", "quick",
            "Transformer encoder, 2 layers, d=64, 4 heads, 32 tokens: attention, LayerNorm, GELU, linear",
            {"layers": 2, "dim": 64, "heads": 4, "tokens": 32},
        ),
        BuiltinModel(
            "transformer", "transformer", "full",
            "Transformer encoder, 4 layers, d=256, 8 heads, 128 tokens",
            {"layers": 4, "dim": 256, "heads": 8, "tokens": 128},
        ),
        BuiltinModel(
            "vit_quick", "vit", "quick",
            "Tiny ViT, 32x32 image, 8x8 patches, 2 layers, d=64",
            {"image": 32, "patch": 8, "layers": 2, "dim": 64, "heads": 4},
        ),
        BuiltinModel(
            "vit_tiny", "vit", "full",
            "ViT-Tiny-style, 224x224 image, 16x16 patches, 6 layers, d=192, 3 heads",
            {"image": 224, "patch": 16, "layers": 6, "dim": 192, "heads": 3},
        ),
    )
}


def builtin_model(model_id: str, *, where: str = "models") -> BuiltinModel:
    try:
        return BUILTIN_MODELS[model_id]
    except KeyError:
        guess = difflib.get_close_matches(model_id, list(BUILTIN_MODELS), n=1)
        hint = f"did you mean `{guess[0]}`? " if guess else ""
        raise ConfigError(
            f"unknown built-in model `{model_id}`",
            where=where,
            fix=f"{hint}built-in models: {', '.join(BUILTIN_MODELS)} (list them with `sme2tui models`)",
        ) from None
