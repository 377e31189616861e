"""The shape of a run manifest, checked when a run folder is opened (instead of a KeyError deep inside).

Only what sme2tui reads is checked, strictly typed; other keys (older or newer additions) are let through,
so a folder written by an earlier version still opens.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Cell(_Open):
    model: str
    dtype: str
    variant: str
    threads: int
    status: str
    files: list[str] = Field(default_factory=list)
    warmup: int = 0  # absent: the config's
    iterations: int | None = None


class _Version(_Open):
    version: str | None
    git_commit: str | None


class _Versions(_Open):
    sme2tui: str
    executorch: _Version
    torch: _Version


class _File(_Open):
    path: str
    bytes: int
    sha256: str


class _Manifest(_Open):
    schema_version: int = Field(ge=1)
    status: str
    config_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    versions: _Versions
    host: dict[str, Any]
    target: str
    device: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None
    exports: dict[str, dict[str, Any]]
    runners: dict[str, dict[str, Any]]
    cells: dict[str, _Cell]
    checkpoints: list[dict[str, Any]]
    warnings: list[str]
    accepted_warnings: list[str] = Field(default_factory=list)
    resumed: list[dict[str, Any]] = Field(default_factory=list)
    files: list[_File]


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def check_manifest(data: Any) -> list[str]:
    """Problems with the manifest's shape, one line each (empty: it has the shape sme2tui writes)."""
    if not isinstance(data, dict):
        return [f"it is {type(data).__name__ if data is not None else 'null'}, not a JSON object"]
    try:
        _Manifest.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            where = _loc(tuple(err["loc"]))
            lines.append(f"`{where}` is missing" if err["type"] == "missing" else f"`{where}`: {err['msg']}")
        return lines
    return []
