"""Step 2: runner builds — what can be built on this machine, what cannot and why, with a live build log."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static

from screens.base import JobDone, StepScreen, error_parts
from screens.services import runners_dir
from sme2tui.events import Checkpoint

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from screens.services import BuildOption


PAIRS = ("host-pair", "android-pair")  # the SME2 on/off builds from an ExecuTorch source tree (s)
KEYS = {"host-native": "b", "arm64": "e", "host-pair": "s", "android-pair": "s"}


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
        key = KEYS.get(option.key, "")
        if option.built:
            text.append("\n    built: ready to use", style="green")
            if key:
                text.append(f" ({key} rebuilds)", style="dim")
        elif option.available:
            text.append("\n    ")
            if key:
                text.append(key, style="bold")
                text.append(" builds it: ")
            text.append(option.detail)
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
        Binding("e", "build_arm64", "arm64", id="build.arm64"),
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
        arm64 = self._option("arm64")
        if arm64 is not None and not any(k[0] == "arm64 runner" for k in self.checks):
            check = self._arm64_check(arm64)
            self.add_check(check, blocking=check.status == "warn")
        self.finished = True
        self.refresh_checks()

    def _arm64_check(self, option: BuildOption) -> Checkpoint:
        """The emulated target's runner. Not built yet holds nothing (an emulated run builds it first); cannot be
        built here holds an emulated config only (its run would stop), and says what is missing."""
        emulated = (self.state.config_data.get("target") or {}).get("kind") == "emulated"
        if option.built:
            return Checkpoint("build", "arm64 runner", "pass", "built and current (the emulated target's runner)")
        if not option.available:
            if emulated:
                return Checkpoint("build", "arm64 runner", "warn", "the emulated target's runner cannot be built "
                                  "here yet", option.detail)
            return Checkpoint("build", "arm64 runner", "skip", f"only for the emulated target; {option.detail}")
        return Checkpoint("build", "arm64 runner", "skip", "not built yet: an emulated run builds it first, or e "
                          "now (seconds)")

    def _option(self, key: str) -> BuildOption | None:
        return next((o for o in self.options if o.key == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return bool(self.busy)  # shown only while a build runs: the footer has room for 80 columns
        if action in ("build_host", "build_pair", "build_arm64"):
            if action == "build_pair" and not any(o.available and o.key in PAIRS for o in self.options):
                return False  # hidden where no pair can be built here; the options above say why
            if action == "build_arm64" and self._option("arm64") is None:
                return False
            if self.busy:
                return None
        return super().check_action(action, parameters)

    def action_build_host(self) -> None:
        host = self._option("host-native")
        what = "Rebuild" if host is not None and host.built else "Build"
        self.confirm(f"{what} the native host runner (sme2_runner)?\nIt takes seconds; the log shows CMake's "
                     "output.", lambda: self._build("host-native"))

    def action_build_arm64(self) -> None:
        option = self._option("arm64")
        if option is None:
            return
        if not option.available:
            # Said, not silently refused: what is missing and the command that provides it.
            self.notify(option.detail, title="the arm64 runner cannot be built yet", severity="warning", timeout=12)
            self.log_pane.add_lines([f"arm64 runner: {option.detail}"])
            return
        what = "Rebuild" if option.built else "Build"
        self.confirm(f"{what} the arm64 runner for the emulated target?\nCross-compiled against the aarch64 "
                     "ExecuTorch runtime; it takes seconds; the log shows CMake's output.",
                     lambda: self._build("arm64"))

    def action_build_pair(self) -> None:
        option = next((o for o in self.options if o.available and o.key in PAIRS), None)
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
            what, fix = error_parts(done, "build failed")
            key = {"host-native": "b", "arm64": "e"}.get(done.name, "s")  # the key that started this build
            if done.interrupted:
                fix = f"press {key} to build again"
            else:
                fix = f"{fix}; then press {key}" if fix else f"see the log above; press {key} to retry"
            self.add_check(Checkpoint("build", "build", "fail", what, fix))
        self.refresh_options()
