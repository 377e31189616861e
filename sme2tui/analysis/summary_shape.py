"""Reading an analyzed run's `analysis/summary.json` for `compare` and `report`: the path checked (a run
folder, analyzed, `analysis` a folder), the read bounded, and the shape those commands rely on validated, so
a damaged or hand-edited summary is exit 6 with what is wrong — never a KeyError or a NaN speedup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sme2tui.errors import ConfigError

MAX_SUMMARY_BYTES = 256 * 2**20  # ~60 KB for 2 cells; operator tables of big models stay far below

Finite = Annotated[float, Field(allow_inf_nan=False)]
Duration = Annotated[float, Field(allow_inf_nan=False, ge=0)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Latency(_Open):
    median: Duration
    n: int
    p10: Duration
    p90: Duration
    cv: Finite


class _Cell(_Open):
    cell_id: str
    model: str
    dtype: str
    variant: str
    threads: int
    source: str
    latency: _Latency
    latencies_ms: Annotated[list[Duration], Field(min_length=1)]
    categories_ms: dict[str, Finite]
    operators: list[dict[str, Any]]
    unknown_names: list[str]


class _Speedup(_Open):
    value: Annotated[float, Field(allow_inf_nan=False, gt=0)]
    ci_low: Finite
    ci_high: Finite
    verdict: str

    @model_validator(mode="after")
    def _inside_its_interval(self) -> _Speedup:
        if not self.ci_low <= self.value <= self.ci_high:
            raise ValueError(f"{self.value:g} lies outside its own interval {self.ci_low:g}–{self.ci_high:g}")
        return self


class _Pair(_Open):
    model: str
    dtype: str
    threads: int
    baseline: str
    candidate: str
    speedup: _Speedup
    baseline_median_ms: Duration
    candidate_median_ms: Duration
    categories: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _ratio_of_its_medians(self) -> _Pair:
        # The speedup is baseline median / candidate median (a rounding apart): anything else was edited.
        expected = self.baseline_median_ms / self.candidate_median_ms if self.candidate_median_ms > 0 else 0.0
        if abs(self.speedup.value - expected) > 1e-6 * max(expected, 1.0):
            raise ValueError(f"speedup {self.speedup.value:g} is not the ratio of its medians "
                             f"({self.baseline_median_ms:g} / {self.candidate_median_ms:g} ms)")
        return self


class _Summary(_Open):
    run: str
    target: str
    comparison: dict[str, Any]
    statistics: dict[str, str]
    config: dict[str, Any]
    cells: dict[str, _Cell]
    pairs: list[_Pair]
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pairs_of_its_cells(self) -> _Summary:
        for index, pair in enumerate(self.pairs):
            for side in ("baseline_cell", "candidate_cell"):
                cell = getattr(pair, "model_extra", {}).get(side) if pair.model_extra else None
                if isinstance(cell, str) and cell not in self.cells:
                    raise ValueError(f"pairs[{index}].{side} `{cell}` is not one of its cells")
        return self


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def summary_problems(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return [f"it is {type(data).__name__ if data is not None else 'null'}, not a JSON object"]
    try:
        _Summary.model_validate(data)
    except ValidationError as exc:
        return [f"`{_loc(tuple(e['loc']))}` is missing" if e["type"] == "missing" else
                f"`{_loc(tuple(e['loc']))}`: {e['msg']}" for e in exc.errors(include_url=False)]
    return []


def read_summary(run_dir: Path, *, role: str = "") -> dict[str, Any]:
    """The analysis summary of an analyzed run folder. ConfigError (exit 2) when the path is not an
    analyzed run folder — with the command that fixes it — and RunFolderDamaged (exit 6) when the summary
    is unreadable or malformed."""
    from sme2tui.run.folder import MANIFEST, RunFolderDamaged, read_json_file

    label = f"{role} " if role else ""
    if not run_dir.exists():
        raise ConfigError(f"{label}{run_dir} does not exist", where=str(run_dir),
                          fix="pass a run folder (ls runs/), e.g. runs/reference")
    if not run_dir.is_dir():
        raise ConfigError(f"{label}{run_dir} is not a folder", where=str(run_dir),
                          fix="pass a run folder (runs/<stamp>-<name>), e.g. runs/reference")
    analysis = run_dir / "analysis"
    summary = analysis / "summary.json"
    is_run = (run_dir / MANIFEST).exists()
    if not is_run and not summary.exists():
        raise ConfigError(f"{label}{run_dir} is not a run folder (no {MANIFEST})", where=str(run_dir),
                          fix="pass a folder sme2tui made under runs/ (e.g. runs/reference); make one with "
                          "`sme2tui --auto`")
    if analysis.exists() and not analysis.is_dir():
        raise RunFolderDamaged(f"{analysis} is not a folder", where=str(analysis),
                               fix=f"move it out of the way, then analyze the run again: sme2tui analyze {run_dir}")
    if not summary.exists():
        raise ConfigError(f"{label}{run_dir} has not been analyzed (no analysis/summary.json)", where=str(run_dir),
                          fix=f"analyze it first: sme2tui analyze {run_dir}")
    data = read_json_file(summary, limit=MAX_SUMMARY_BYTES, what="analysis/summary.json",
                          damaged_fix=f"analyze the run again (it rewrites analysis/): sme2tui analyze {run_dir}")
    problems = summary_problems(data)
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise RunFolderDamaged(f"analysis/summary.json is damaged: {shown}", where=str(summary),
                               fix=f"analyze the run again (it rewrites analysis/): sme2tui analyze {run_dir}")
    return dict(data)
