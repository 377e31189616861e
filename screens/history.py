"""Every run folder under the output root: open it, re-run it, edit it, or resume it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from screens.confirm import ask
from screens.guide import WHY
from screens.widgets.footer import StepFooter
from screens.widgets.stepbar import StepBar
from screens.widgets.table import Table

if TYPE_CHECKING:
    from pathlib import Path

    from textual.app import ComposeResult

    from screens.app import Sme2App
    from screens.services import RunEntry

STATUS_STYLE = {"complete": "green", "interrupted": "yellow", "partial": "yellow", "failed": "red",
                "running": "bold yellow"}


def command_for(entry: RunEntry) -> str:
    if entry.status in ("interrupted", "running"):
        return f"sme2tui --auto --resume {entry.path}"
    return f"sme2tui --auto --config {entry.path / 'config.json'}"


class HistoryScreen(Screen[None]):
    AUTO_FOCUS = "#runs"  # arrows move the cursor at once (they did nothing until a click or tab)
    BINDINGS: ClassVar[list[BindingType]] = [
        # Not a priority binding: the table's own enter (RowSelected, below) keeps key order, so enter after
        # arrow keys opens the row the arrows reached.
        Binding("enter", "open", "Open", id="history.open"),
        Binding("r", "rerun", "Re-run", id="history.rerun"),
        Binding("e", "edit", "Edit config", id="history.edit"),
        Binding("u", "resume", "Resume", id="history.resume"),
        Binding("f5", "reload", "Reload", id="history.reload"),
        # The steps' way back (p) and the key a newcomer tries first: History had no visible way out.
        Binding("escape", "back", "Back", id="history.back"),
        Binding("p", "back", "Back", id="history.back-p", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[RunEntry] = []

    @property
    def wizard(self) -> Sme2App:
        from screens.app import Sme2App

        assert isinstance(self.app, Sme2App)
        return self.app

    def compose(self) -> ComposeResult:
        yield StepBar("history", id="stepbar")
        yield Static(WHY["history"], id="why")
        with Vertical(id="history-body"):
            yield Table(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="command")
        yield StepFooter(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_column("run", key="run")
        table.add_column("status", key="status")
        # Short columns first: at 80-120 columns the long lists (models, variants) are the ones cut.
        table.add_column("target", key="target")
        table.add_column("speedup (95% CI)", key="speedup")
        table.add_column("models", key="models")
        table.add_column("variants", key="variants")
        table.border_title = f"runs in {self.wizard.state.output_root}"
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.query_one(StepBar).show(self.wizard.state.passed)
        self.action_reload()

    def action_reload(self) -> None:
        table = self.query_one("#runs", DataTable)
        self.entries = self.wizard.services.list_runs(self.wizard.state.output_root)
        table.clear()
        for entry in self.entries:
            table.add_row(entry.name, Text(entry.status, style=STATUS_STYLE.get(entry.status, "")), entry.target,
                          entry.headline, ", ".join(entry.models), " vs ".join(entry.variants),
                          key=str(entry.path))
        if not self.entries:
            self.query_one("#command", Static).update(Text(
                "no runs yet: go through the steps (1–5), or run `sme2tui --auto`", style="dim"))
        self._show_command()
        self.refresh_bindings()

    def selected(self) -> RunEntry | None:
        table = self.query_one("#runs", DataTable)
        if not self.entries or table.cursor_row < 0 or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        await self.action_open()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_command()
        self.refresh_bindings()

    def _show_command(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        text = Text()
        if entry.comparison:
            text.append(f"{entry.comparison}\n", style="bold")
        text.append("enter", style="bold")
        text.append(" opens it in Analyze · headless: ", style="dim")
        text.append(command_for(entry))
        self.query_one("#command", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        entry = self.selected()
        if action in ("open", "rerun", "edit"):
            return True if entry is not None else None
        if action == "resume":
            return True if entry is not None and entry.status in ("interrupted", "partial") else None
        return True

    def action_back(self) -> None:
        self.wizard.goto(self.wizard.last_step)

    def _config_of(self, path: Path) -> dict[str, object]:
        data: dict[str, object] = json.loads((path / "config.json").read_text())
        return data

    async def action_open(self) -> None:
        entry = self.selected()
        if entry is not None:
            await self.wizard.open_run(entry.path)

    def action_rerun(self) -> None:
        entry = self.selected()
        if entry is not None:
            ask(self.app, f"Re-run {entry.name}?\nA new run with that run's config (models {', '.join(entry.models)}) "
                "starts on the Run step.", lambda: self.run_worker(self.wizard.rerun(entry.path,
                                                                                       self._config_of(entry.path))))

    def action_edit(self) -> None:
        entry = self.selected()
        if entry is not None:
            ask(self.app, f"Edit {entry.name}'s config?\nIt replaces the wizard's current choices (save them first "
                "with s on the Model step to keep them).",
                lambda: self.run_worker(self.wizard.edit(entry.path, self._config_of(entry.path))))

    def action_resume(self) -> None:
        entry = self.selected()
        if entry is not None:
            ask(self.app, f"Resume {entry.name}?\nIts finished cells are kept; the rest run with its own config.",
                lambda: self.run_worker(self.wizard.resume(entry.path)))
