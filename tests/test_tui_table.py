"""The wizard's Table: its header follows the columns' widths even when a frame is drawn before they are measured.

Textual's DataTable measures columns on idle; a frame drawn between `update_cell`/`add_row` and that idle used
to leave the header at the old widths (the Run snapshot caught it about one run in eight).
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from screens.widgets.table import Table


class _OneTable(App[None]):
    def __init__(self, table: DataTable[Any]) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table


async def _header_after_early_frame(table: DataTable[Any], *, new_row: bool) -> tuple[str, str]:
    app = _OneTable(table)
    async with app.run_test(size=(80, 10)) as pilot:
        table.add_column("cell", key="cell")
        table.add_column("state", key="state")
        table.add_row("a", "queued", key="r1")
        await pilot.pause()
        table.render_line(0)  # a frame before the first cell is measured
        if new_row:
            table.add_row("a-much-longer-cell-id", "running", key="r2")
        else:
            table.update_cell("r1", "cell", "a-much-longer-cell-id", update_width=True)
        table.render_line(0)  # a frame between the change and the idle that measures it
        await pilot.pause()
        await pilot.pause(0.05)
        return table.render_line(0).text, table.render_line(1).text


def test_header_follows_widths_after_update_cell() -> None:
    header, row = asyncio.run(_header_after_early_frame(Table(), new_row=False))
    assert header.index("state") == row.index("queued")


def test_header_follows_widths_after_add_row() -> None:
    header, _row = asyncio.run(_header_after_early_frame(Table(), new_row=True))
    assert header.index("state") > len("a-much-longer-cell-id")


def test_textual_datatable_still_needs_this() -> None:
    """When Textual fixes its cache, this fails: then Table can go back to a plain DataTable."""
    header, row = asyncio.run(_header_after_early_frame(DataTable(), new_row=False))
    assert header.index("state") != row.index("queued")
