"""Where to save the wizard's config: a path field, prefilled; enter saves, esc does not.

Saving asks because it writes a file: a stray `s` must not drop files into the current folder, and an
existing file is replaced only after a second enter on the same name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


class SaveScreen(ModalScreen[Path | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="save.cancel")]

    def __init__(self, default: Path) -> None:
        super().__init__()
        self.default = default
        self._replace: Path | None = None  # the existing file a second enter replaces

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static("Save this config as (relative to the folder sme2tui runs in):", id="confirm-question")
            yield Input(str(self.default), id="save-path")
            yield Static(Text.from_markup("[b]enter[/b] save   [b]esc[/b] cancel"), id="confirm-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        keys = self.query_one("#confirm-keys", Static)
        if not text:
            keys.update(Text("give a file name, e.g. my-run.json", style="bold yellow"))
            return
        path = Path(text).expanduser()
        if path.suffix != ".json":
            path = path.with_name(path.name + ".json")
        if path.is_dir():
            keys.update(Text(f"{path} is a folder: add a file name", style="bold yellow"))
            return
        if path.exists() and self._replace != path:
            self._replace = path
            keys.update(Text(f"{path} exists: enter again to replace it, or change the name", style="bold yellow"))
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
