"""What an export produced, as stored in `export.json` next to the .pte (the cache entry's record)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

RECIPE_VERSION = "2"  # bump when the export recipe changes, so cached exports are redone

# Cosine similarity vs the fp32 eager model below which an export is numerically wrong for its dtype.
COSINE_THRESHOLDS: dict[str, float] = {"fp32": 0.9999, "fp16": 0.995, "int8": 0.98, "int8-dynamic": 0.98}


class TensorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str  # relative to the export folder
    dtype: str  # torch dtype name, e.g. "float32"
    shape: list[int]


class NumericsCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["pass", "fail", "skip"]
    cosine_min: float | None = None
    max_abs_error: float | None = None
    reference_max_abs: float | None = None
    threshold: float | None = None
    samples: int = 0
    detail: str = ""
    fix: str = ""


class DelegationSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delegated_subgraphs: int
    delegated_nodes: int
    non_delegated_nodes: int
    non_delegated_ops: dict[str, int]  # op -> count, the ops left to portable kernels
    delegated_ops: dict[str, int]


class ExportRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    model: str
    dtype: str
    delegate: str
    pte: str  # file names relative to the export folder
    etrecord: str | None
    pte_sha256: str
    etrecord_sha256: str | None
    inputs: list[TensorFile]
    reference_outputs: list[TensorFile]
    delegation: DelegationSummary | None
    numerics: NumericsCheck
    executorch_version: str
    executorch_git: str | None
    torch_version: str
    torch_git: str | None
    export_seconds: float
    source: str  # "builtin:<id>", "factory:<mod:fn>", "pte:<path>"

    def path_of(self, folder: Path, name: str) -> Path:
        return folder / name
