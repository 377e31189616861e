"""The live log pane: follows the tail unless the user scrolled up, bounded memory, mirrored to a file."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from textual.widgets import Log

if TYPE_CHECKING:
    from pathlib import Path

# Textual's Log keeps lines as plain strings and renders only the visible ones, so 100k lines scroll fine;
# the cap bounds memory on runs that log without end. The mirror file always has everything.
MAX_LINES = 100_000


class StepLog(Log):
    """`Log` already stops following when the view is not at the end; this adds the file mirror."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, auto_scroll=True, id=id)
        self._mirror: IO[str] | None = None
        self._pending: list[str] = []
        self.border_title = "log"

    def mirror_to(self, path: Path) -> None:
        """Start copying lines to `path`; lines written before this call are copied first."""
        self.close_mirror()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._mirror = path.open("a", encoding="utf-8")
        self._mirror.writelines(line + "\n" for line in self._pending)
        self._mirror.flush()
        self._pending.clear()

    def close_mirror(self) -> None:
        if self._mirror is not None:
            self._mirror.close()
            self._mirror = None

    def add_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        self.write_lines(lines)
        if self._mirror is not None:
            self._mirror.writelines(line + "\n" for line in lines)
            self._mirror.flush()
        else:
            # Keep only the tail until a run folder exists; the pane itself is capped the same way.
            self._pending.extend(lines)
            del self._pending[:-MAX_LINES]

    def on_unmount(self) -> None:
        self.close_mirror()
