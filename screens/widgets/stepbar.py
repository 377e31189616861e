"""The one-line wizard trail: which step you are on, which are done."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

STEPS: list[tuple[str, str]] = [
    ("environment", "Environment"),
    ("build", "Build"),
    ("model", "Model"),
    ("run", "Run"),
    ("analyze", "Analyze"),
]


class StepBar(Static):
    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.current = current

    def show(self, passed: set[str]) -> None:
        text = Text("sme2tui ", style="bold")
        for i, (key, title) in enumerate(STEPS, start=1):
            if i > 1:
                text.append(" › ", style="dim")
            mark = "✓" if key in passed else str(i)
            style = "reverse bold" if key == self.current else ("green" if key in passed else "")
            text.append(f"{mark} {title}", style=style)
        text.append("  ·  ", style="dim")
        text.append("h History", style="reverse bold" if self.current == "history" else "")
        self.update(text)
