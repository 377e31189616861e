"""Published reference figures (shown beside users' numbers, never as their machine's result).

Source: PyTorch blog "Accelerating On-Device ML Inference with ExecuTorch and Arm SME2" (SqueezeSAM, one CPU
core of an SME2 phone), as copied into `sme2tui/data/reference/` with its citation.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "reference"
REFERENCE_LABEL = "published reference (PyTorch blog, SqueezeSAM, SME2 phone, 1 core) — not measured here"


@lru_cache(maxsize=1)
def squeezesam() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE_DIR / "sme2_blog_squeezesam.json").read_text())
    data["label"] = REFERENCE_LABEL
    return data
