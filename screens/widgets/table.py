"""The wizard's tables: Textual's DataTable with a header that always follows its columns' widths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import DataTable

if TYPE_CHECKING:
    from textual import events


class Table(DataTable[Any]):
    """A DataTable whose rows rendered before a re-measure are not reused with the old widths.

    Textual (8.2) measures columns on idle, after `add_row`/`update_cell` has already bumped the render-cache
    key. A frame drawn in between caches the header at the old widths under the current key, and the header
    stays misaligned with its rows until the next change (seen in the Run table about one run in eight).
    Bumping the key once the widths are known makes that frame's cached lines stale, as they are.
    """

    async def _on_idle(self, event: events.Idle) -> None:
        widths = [column.content_width for column in self.columns.values()]
        await super()._on_idle(event)
        if widths != [column.content_width for column in self.columns.values()]:
            self._update_count += 1
            self.refresh()
