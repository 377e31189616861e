"""Yes/no questions over the current screen.

Every single-letter key that starts work (export, run, build, resume) or loses it (quit, cancel, replacing
the wizard's config) asks first, with what it is about to do. Typing meant for a field that did not have
the focus then stops at a question instead of starting an export, and the question absorbs the rest of
the typing (only y, n and esc answer it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.app import App, ComposeResult


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question", markup=False)
            yield Static("[b]y[/b] yes   [b]n[/b] / [b]esc[/b] no", id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def ask(app: App[Any], question: str, on_yes: Callable[[], object]) -> None:
    """Ask `question`; call `on_yes` only on an explicit y."""

    def answered(yes: bool | None) -> None:
        if yes:
            on_yes()

    app.push_screen(ConfirmScreen(question), answered)
