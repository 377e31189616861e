"""The wizard app: one mode per step (each keeps its state while you move around), global keys,
command palette, and a quit that never loses work (it cancels the running step, which leaves the run
folder interrupted and resumable)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import HelpPanel

from screens.analyze import AnalyzeScreen
from screens.build import BuildScreen
from screens.confirm import ConfirmScreen
from screens.environment import EnvironmentScreen
from screens.history import HistoryScreen
from screens.model import ModelScreen
from screens.run import RunScreen
from screens.services import CoreServices
from screens.state import WizardState
from screens.widgets.stepbar import STEPS
from sme2tui.exit_codes import ExitCode

if TYPE_CHECKING:
    from textual.screen import Screen


class Sme2App(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "sme2tui"
    SUB_TITLE = "SME2 on vs off, with evidence"
    MODES: ClassVar[dict[str, Any]] = {
        "environment": EnvironmentScreen,
        "build": BuildScreen,
        "model": ModelScreen,
        "run": RunScreen,
        "analyze": AnalyzeScreen,
        "history": HistoryScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(i), f"goto('{key}')", title, id=f"nav.{key}", show=False)
          for i, (key, title) in enumerate(STEPS, start=1)),
        # The trail at the top says "h History": the footer keeps its room for the step's own keys.
        Binding("h", "goto('history')", "History", id="nav.history", show=False),
        Binding("question_mark", "toggle_help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        # Replaces Textual's own ctrl+q (same action, but its tooltip made the help panel read "Quit Quit …").
        Binding("ctrl+q", "quit", "Quit", id="app.quit-ctrl", show=False, priority=True),
    ]

    def __init__(self, state: WizardState, services: CoreServices | None = None, *,
                 start: str = "environment") -> None:
        super().__init__()
        self.state = state
        self.services = services or CoreServices()
        self.start = start
        self._jobs: set[threading.Event] = set()
        self._jobs_lock = threading.Lock()
        self._quitting = False
        self.last_step = start if start != "history" else "environment"  # where History's Back goes

    def on_mount(self) -> None:
        self.switch_mode(self.start)

    # --- navigation ------------------------------------------------------------------------------------

    def goto(self, step: str) -> None:
        if step != self.current_mode:
            self._leaving()
            self.switch_mode(step)

    def _leaving(self) -> None:
        """Remember the step being left: History's Back returns there."""
        if self.current_mode in self.MODES and self.current_mode != "history":
            self.last_step = self.current_mode

    def action_goto(self, step: str) -> None:
        self.goto(step)

    async def _show(self, step: str) -> Screen[Any]:
        if step != self.current_mode:
            self._leaving()
            await self.switch_mode(step)
        return self.screen

    async def open_run(self, run_dir: Path) -> None:
        self.state.run_dir = run_dir
        await self._show("analyze")

    async def rerun(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.state.replace_config(config, source=str(run_dir / "config.json"), config_dir=None)
        screen = await self._show("run")
        if isinstance(screen, RunScreen):
            screen.start_run(None)

    async def edit(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.state.replace_config(config, source=str(run_dir / "config.json"), config_dir=None)
        screen = await self._show("model")
        if isinstance(screen, ModelScreen):
            screen.load_from_state()

    async def resume(self, run_dir: Path) -> None:
        self.state.resume_dir = run_dir
        screen = await self._show("run")
        if isinstance(screen, RunScreen):
            screen.start_run(run_dir)

    def run_finished(self, run_dir: Path | None) -> None:
        if run_dir is not None and "run" in self.state.passed:
            self.notify(f"{run_dir.name}: analyzed — press n for the results", timeout=6)

    # --- jobs and quitting -----------------------------------------------------------------------------

    def job_started(self, cancel: threading.Event) -> None:
        with self._jobs_lock:
            self._jobs.add(cancel)

    def job_stopped(self, cancel: threading.Event) -> None:
        """Called from the worker thread when its job ends (however it ends)."""
        with self._jobs_lock:
            self._jobs.discard(cancel)
            done = self._quitting and not self._jobs
        if done:
            self.call_from_thread(self.exit, int(ExitCode.INTERRUPTED), int(ExitCode.INTERRUPTED))

    @property
    def busy(self) -> bool:
        with self._jobs_lock:
            return bool(self._jobs)

    async def action_quit(self) -> None:
        """Always asks: a stray q (typing meant for a field) must not end the session."""
        if not self.busy:
            def quit_now(yes: bool | None) -> None:
                if yes:
                    self.exit(int(ExitCode.OK))

            self.push_screen(ConfirmScreen(f"Quit sme2tui?\nRun folders stay in {self.state.output_root}/ (h lists "
                                           "them); the wizard's choices are kept only if saved (s on the Model "
                                           "step)."), quit_now)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            with self._jobs_lock:
                self._quitting = True
                jobs = list(self._jobs)
            self.notify("cancelling the running step; the run folder stays resumable…", timeout=30)
            for cancel in jobs:
                cancel.set()
            if not self.busy:
                self.exit(int(ExitCode.INTERRUPTED), int(ExitCode.INTERRUPTED))

        self.push_screen(ConfirmScreen("A step is still running. Quit anyway?\nIt is cancelled; completed "
                                       "cells are kept and the run can be resumed from History."), answered)

    # --- help and command palette ----------------------------------------------------------------------

    def action_toggle_help(self) -> None:
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for i, (key, title) in enumerate(STEPS, start=1):
            yield SystemCommand(f"Go to {title}", f"step {i} ({i})", lambda key=key: self.goto(key))
        yield SystemCommand("Go to History", "every run folder (h)", lambda: self.goto("history"))
        for binding in screen.active_bindings.values():
            b = binding.binding
            if binding.enabled and b.show and b.description and b.action.isidentifier():
                yield SystemCommand(b.description, f"on this screen ({self.get_key_display(b)})",
                                    lambda action=b.action: self.run_action(action, screen))


def run_app(config_path: Path | None = None, output_root: Path | None = None) -> int:
    """Entry point for `sme2tui` without arguments (called by the CLI)."""
    state = WizardState.load(config_path, output_root)
    app = Sme2App(state)
    code = app.run()
    return int(code) if code is not None else int(ExitCode.OK)
