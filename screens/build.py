"""Step 2: runner builds — what can be built on this machine, what cannot and why, with a live build log."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static

from screens.base import JobDone, StepScreen
from screens.services import runners_dir
from sme2tui.events import Checkpoint

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from screens.services import BuildOption


def options_text(options: list[BuildOption]) -> Text:
    text = Text()
    for i, option in enumerate(options):
        if i:
            text.append("\n")
        if option.built:
            text.append("✓ ", style="bold green")
        elif option.available:
            text.append("○ ", style="bold")
        else:
            text.append("– ", style="dim")
        text.append(option.title, style="bold" if option.available else "dim")
        if option.built:
            text.append("\n    built: ready to use", style="green")
        elif option.available:
            text.append(f"\n    {option.detail}", style="")
        else:
            text.append("\n    not available on this machine: ", style="yellow")
            text.append(option.detail, style="dim")
    return text


class BuildScreen(StepScreen):
    STEP = "build"
    EMPTY_CHECKS = "looking for runners…"
    RETRY = "b: build"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "build_host", "Build", id="build.host"),
        Binding("s", "build_pair", "SME2 pair", id="build.pair"),
        Binding("c", "cancel", "Cancel", id="build.cancel"),
        *StepScreen.COMMON_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.options: list[BuildOption] = []

    def compose_main(self) -> ComposeResult:
        yield Static("", id="options")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if not self.busy:
            self.refresh_options()

    def refresh_options(self) -> None:
        self.options = self.services.build_options(runners_dir(self.state.config_data), self.state.host)
        self.query_one("#options", Static).update(options_text(self.options))
        host = next((o for o in self.options if o.key == "host-native"), None)
        if host is not None and not any(k[0] == "host runner" for k in self.checks):
            if host.built:
                check = Checkpoint("build", "host runner", "pass", "sme2_runner is built and current")
            else:
                check = Checkpoint(
                    "build", "host runner", "warn",
                    "no native host runner: cells run in the Python runtime (timing still comes from the ETDump)",
                    "press b to build it (seconds), or accept this warning")
            self.add_check(check)
        self.finished = True
        self.refresh_checks()

    def _option(self, key: str) -> BuildOption | None:
        return next((o for o in self.options if o.key == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return bool(self.busy)  # shown only while a build runs: the footer has room for 80 columns
        if action in ("build_host", "build_pair"):
            if self.busy:
                return None
            if action == "build_pair":
                # Hidden where no pair can be built here; the options above say why.
                return any(o.available and o.key != "host-native" for o in self.options)
        return super().check_action(action, parameters)

    def action_build_host(self) -> None:
        host = self._option("host-native")
        what = "Rebuild" if host is not None and host.built else "Build"
        self.confirm(f"{what} the native host runner (sme2_runner)?\nIt takes seconds; the log shows CMake's "
                     "output.", lambda: self._build("host-native"))

    def action_build_pair(self) -> None:
        option = next((o for o in self.options if o.available and o.key != "host-native"), None)
        if option is not None:
            self.confirm(f"Build the {option.title}?\n{option.detail}.", lambda: self._build(option.key))

    def _build(self, key: str) -> None:
        if self.busy:
            return
        self.checks.clear()
        self.finished = False
        self.refresh_checks()
        self.log_pane.mirror_to(self.state.output_root / ".cache" / "tui" / "build.log")
        root, services, cancel = runners_dir(self.state.config_data), self.services, threading.Event()
        self.start_job(key, lambda: services.build(key, root, cancel), cancel=cancel)

    def action_cancel(self) -> None:
        if self.busy:
            self.confirm("Cancel the build?\nIt stops now; b starts it again (finished objects are reused).",
                         self._cancel_now)

    def _cancel_now(self) -> None:
        if self.busy:
            self.cancel.set()
            self.log_pane.add_lines(["cancelling the build…"])

    def job_done(self, done: JobDone) -> None:
        if not done.ok:
            fix = "see the log above; press b to retry" if not done.interrupted else "press b to build again"
            what = done.error.splitlines()[0] if done.error else "build failed"
            self.add_check(Checkpoint("build", "build", "fail", what.removeprefix("error: "), fix))
        self.refresh_options()
