"""A SelectionList that reads without colour: unselected entries show an empty box, and the highlighted
entry of the focused list carries a `›` mark.

Textual draws "X" for every entry and tells selected from unselected, and the highlighted entry from the
others, by colour alone, which NO_COLOR (and some colour-blind users) cannot see.

Also: space ticks the entry it was pressed on. SelectionList toggles whatever is highlighted when the
select message arrives, so "space, down, down, space" typed quickly ticked the third entry twice and
the first not at all.
"""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import OptionList, SelectionList
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.option_list import OptionDoesNotExist

T = TypeVar("T")

CURSOR = "›"


class PickList(SelectionList[T]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        index = self.scroll_offset.y + y
        try:
            selection = self.get_option_at_index(index)
        except OptionDoesNotExist:
            return strip
        segments = list(strip)
        # [left side, box inner, right side, spacer, prompt…] as SelectionList.render_line builds it.
        if len(segments) < 4 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip
        if selection.value not in self.selected:
            segments[1] = Segment(" ", segments[1].style)
        if self.has_focus and index == self.highlighted and segments[3].text == " ":
            segments[3] = Segment(CURSOR, segments[3].style)
        return Strip(segments, strip.cell_length)

    def _on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        event.prevent_default()  # SelectionList's own handler (toggling the highlighted entry) must not run too
        self.toggle(self.get_option_at_index(event.option_index))
