"""The checkpoint list: one line per check (✓ ! ✗ -), and the fix under every warning and failure."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from sme2tui.events import Checkpoint

ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}
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
        # What needs attention first; passes stay one line each so a long list still fits at 80x24.
        ordered = sorted(rows, key=lambda r: ORDER[r.check.status] if r.blocking else len(ORDER))
        self.update(Group(*(self._row(row) for row in ordered)))

    def _row(self, row: CheckRow) -> Text:
        check = row.check
        symbol, style = SYMBOLS[check.status]
        quiet = check.status in ("pass", "skip") or not row.blocking or row.accepted
        text = Text(no_wrap=quiet, overflow="ellipsis" if quiet else "fold")
        text.append(f"{symbol} ", style=f"bold {style}")
        text.append(check.name, style="bold")
        if check.subject:
            text.append(f" [{check.subject}]", style="dim")
        if not row.blocking and check.status in ("warn", "fail"):
            text.append(" (not needed for this target)", style="dim")
        elif row.accepted:
            text.append(" (accepted)", style="dim")
        text.append(f": {check.detail}")
        if check.fix and check.status in ("warn", "fail") and not quiet:
            text.append(f"\n    fix: {check.fix}", style=style)
        return text
