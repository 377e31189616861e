"""Step 1: the doctor's checks and the SME2 verdict for this host and any Android device."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static

from screens.base import JobDone, StepScreen
from sme2tui.events import Event, StepFinished

if TYPE_CHECKING:
    from collections.abc import Iterator

    from textual.app import ComposeResult

    from screens.services import DevicesReport

VERDICT_STYLE = {"sme2": "bold green", "sme-only": "bold yellow", "none": "bold red", "unknown": "bold yellow"}
VERDICT_TEXT = {
    "sme2": "SME2 — on/off comparisons here measure SME2",
    "sme-only": "SME without SME2 — not enough for SME2 kernels",
    "none": "no SME2",
    "unknown": "unknown",
}


def verdict_text(host: dict[str, object], devices: DevicesReport | None, target: str) -> Text:
    text = Text()
    sme = str(host.get("sme", "unknown"))
    text.append("This host: ", style="bold")
    text.append(f"{host.get('cpu_model', '?')} ({host.get('machine', '?')}) ")
    text.append(VERDICT_TEXT.get(sme, sme), style=VERDICT_STYLE.get(sme, "bold"))
    if sme != "sme2":
        text.append("\n  runs here compare XNNPACK vs portable kernels, labelled as such", style="dim")
    text.append("\nAndroid: ", style="bold")
    if devices is None:
        text.append("checking…", style="dim")
    elif devices.unavailable:
        text.append("not available on this machine: ", style="yellow")
        text.append(devices.unavailable, style="dim")
    else:
        for line in devices.devices:
            text.append(f"\n  {line.serial} ")
            text.append(line.verdict, style=VERDICT_STYLE.get(line.verdict, "bold"))
            text.append(f" {line.text}")
    text.append(f"\nConfig target: {target}", style="dim")
    return text


class EnvironmentScreen(StepScreen):
    STEP = "environment"
    EMPTY_CHECKS = "running the doctor…"
    TODO = "the doctor is checking this machine (r: check again)."
    RETRY = "r: re-check"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "recheck", "Re-check", id="environment.recheck"),
        *StepScreen.COMMON_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.devices: DevicesReport | None = None

    def compose_main(self) -> ComposeResult:
        yield Static(Text("checking this machine…", style="dim"), id="verdict")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_recheck()

    def action_recheck(self) -> None:
        if self.busy:
            return
        self.reset_checks()
        self.devices = None
        self.log_pane.mirror_to(self.state.output_root / ".cache" / "tui" / "environment.log")
        self.start_job("doctor", self._doctor_and_devices)

    def _doctor_and_devices(self) -> Iterator[Event]:
        yield from self.services.doctor(self.state.output_root)
        # A device listing never auto-starts adb (the core probes the socket first).
        self.devices = self.services.devices()

    def _target(self) -> str:
        target = self.state.config_data.get("target") or {}
        return str(target.get("kind", "host")) if isinstance(target, dict) else "host"

    def handle(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.step == "doctor":
            self.state.host = dict(event.data.get("host", {}))
            target = self._target()
            for check in event.data.get("checks", []):
                needed = check.get("required_for", "all")
                # Android-only checks do not block a host run; runner-build tools are the Build step's.
                blocking = needed == "all" or (needed == "android" and target == "android")
                self.set_blocking(str(check.get("name")), blocking)
            self._show_verdict()

    def job_done(self, done: JobDone) -> None:
        self.finished = done.ok
        self._show_verdict()

    def _show_verdict(self) -> None:
        self.query_one("#verdict", Static).update(verdict_text(self.state.host, self.devices, self._target()))
