"""A plotext plot that draws itself for the size it is rendered at.

Tick labels are fitted to the width (plotext drops colliding labels, and which one it drops varies from
one process to the next), so the drawing has to happen when the real width is known: at render time,
not when the data arrives (a chart in a hidden tab has no size yet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotext._utility as _plotext_utility
from textual.app import RenderResult
from textual_plotext import PlotextPlot

Draw = Callable[[Any, int, int], None]  # (plotext module-like object, width and height in cells)


def _ordered_unique(data: Any) -> list[Any]:
    return list(dict.fromkeys(data))


# plotext de-duplicates points and labels with list(set(...)), so what overwrites what (and where a tick
# label lands) changes with Python's per-process hash seed; the same chart then renders differently
# from run to run. First-seen order is what the plot means anyway.
_plotext_utility.no_duplicates = _ordered_unique


class Chart(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._draw: Draw | None = None

    def show(self, draw: Draw) -> None:
        self._draw = draw
        self.refresh()

    def render(self) -> RenderResult:
        if self._draw is not None:
            self._draw(self.plt, self.size.width, self.size.height)
        return super().render()
