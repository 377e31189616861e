"""Cells: one model x dtype x variant x threads on the run's target, and the order they run in."""

from __future__ import annotations

from dataclasses import dataclass

from sme2tui.config import RunConfig, VariantSpec


@dataclass(frozen=True)
class Cell:
    model: str
    dtype: str
    variant: str
    threads: int

    @property
    def id(self) -> str:
        return f"{self.model}__{self.dtype}__{self.variant}__t{self.threads}"

    @property
    def group_key(self) -> tuple[str, str, int]:
        """Cells that differ only by variant form a group: they are measured interleaved."""
        return (self.model, self.dtype, self.threads)


def plan_cells(config: RunConfig) -> list[Cell]:
    """Every cell, in run order. A ready .pte has one dtype, its own (`dtypes` applies to exports only)."""
    return [
        Cell(model.id, dtype, variant.name, threads)
        for model in config.models
        for dtype in ([model.program_facts().dtype] if model.pte else config.dtypes)
        for threads in config.threads
        for variant in config.variants
    ]


def groups(cells: list[Cell]) -> list[list[Cell]]:
    """Cells grouped by (model, dtype, threads), keeping plan order; each group runs interleaved."""
    out: dict[tuple[str, str, int], list[Cell]] = {}
    for cell in cells:
        out.setdefault(cell.group_key, []).append(cell)
    return list(out.values())


def variant_of(config: RunConfig, cell: Cell) -> VariantSpec:
    return config.variant(cell.variant)
