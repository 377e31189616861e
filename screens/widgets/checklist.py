"""The checkpoint list: one line per check (✓ ! ✗ -), and the fix under every warning and failure."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from sme2tui.events import Checkpoint

SYMBOLS = {"pass": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"), "skip": ("-", "dim")}


@dataclass(frozen=True)
class CheckRow:
    check: Checkpoint
    blocking: bool = True  # False: shown, but not needed for this target (e.g. adb on a host run)
    accepted: bool = False


def warning_text(check: Checkpoint) -> str:
    """How an accepted warning is recorded in the manifest: step, name, subject, detail."""
    subject = f" [{check.subject}]" if check.subject else ""
    return f"{check.step}: {check.name}{subject}: {check.detail}"


class CheckList(Static):
    """Rendered from rows the screen owns; the screen decides which checks block its Next key."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.border_title = "checkpoints"

    def show(self, rows: list[CheckRow], empty: str) -> None:
        if not rows:
            self.update(Text(empty, style="dim"))
            return
        text = Text()
        for i, row in enumerate(rows):
            check = row.check
            symbol, style = SYMBOLS[check.status]
            if i:
                text.append("\n")
            text.append(f"{symbol} ", style=f"bold {style}")
            text.append(check.name, style="bold")
            if check.subject:
                text.append(f" [{check.subject}]", style="dim")
            text.append(f": {check.detail}")
            if not row.blocking and check.status in ("warn", "fail"):
                text.append("  (not needed for this target)", style="dim")
            elif row.accepted:
                text.append("  (accepted)", style="dim")
            if check.fix and check.status in ("warn", "fail"):
                text.append(f"\n    fix: {check.fix}", style=style)
        self.update(text)
