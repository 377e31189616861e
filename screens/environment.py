"""Step 1: the doctor's checks and the SME2 verdict for this host, SME2 emulation and any Android device; the
emulation set-up (a download, asked first) runs from here with a live log and can be cancelled."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static

from screens.base import JobDone, StepScreen
from sme2tui.events import Checkpoint, Event, StepFinished

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
# The doctor's "SME2 emulation" section (checks with required_for == "emulated"), in the order they are read.
CROSS, QEMU, WHEEL = "aarch64 cross compiler", "qemu (SME2 emulation)", "aarch64 executorch wheel"
SETUP_JOB = "setup-emulator"
DOWNLOAD = "about 90 MB"


def emulation_checks(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(c.get("name")): c for c in checks if c.get("required_for") == "emulated"}


def _qemu_words(detail: str) -> str:
    """`QEMU 11.1.3, probe: SME2, SVL 256 bits` from the doctor's detail (which has the whole probe verdict)."""
    version = re.match(r"QEMU [0-9][^ ]*", detail)
    if version is None:
        return detail
    probe = detail.partition("probe ")[2]
    features = "SME2" if re.search(r"\bSME2\b", probe) else ("SME only" if re.search(r"\bSME\b", probe) else "")
    svl = re.search(r"vector length (\d+) bits", probe)
    words = ", ".join(x for x in (features, f"SVL {svl.group(1)} bits" if svl else "") if x)
    return version.group(0) + (f", probe: {words}" if words else "")


def emulation_text(checks: dict[str, dict[str, Any]], checked: bool = False) -> Text:
    """Whether SME2 emulation is available, and the one thing to do when it is not (`checked`: the doctor has
    finished, so no checks means it could not tell)."""
    text = Text()
    text.append("SME2 emulation: ", style="bold")
    if not checks:
        text.append("unknown (the doctor said nothing about it): e sets it up" if checked else "checking…",
                    style="dim")
        return text
    cross, qemu, wheel = (checks.get(name, {}) for name in (CROSS, QEMU, WHEEL))
    if all(c.get("status") == "pass" for c in (cross, qemu, wheel)):
        text.append("ready", style="bold green")
        text.append(f" — {_qemu_words(str(qemu.get('detail', '')))}")
        text.append("\n  t on the Model step: SME2 on/off under QEMU (evidence, not speed)", style="dim")
        return text
    if cross.get("status") != "pass":
        text.append("no aarch64 cross compiler", style="bold yellow")
        text.append("\n  first: apt-get install g++-aarch64-linux-gnu (Debian/Ubuntu), then e sets up the rest",
                    style="dim")
        return text
    if qemu.get("status") == "pass":  # set up, but the wheel does not match the installed exporter
        text.append("set up, the aarch64 wheel is out of date", style="bold yellow")
    elif "not set up" in str(qemu.get("detail", "")):
        text.append("not set up", style="bold yellow")
    else:
        text.append("this QEMU has no SME2", style="bold yellow")
    text.append(f"\n  e: set it up ({DOWNLOAD}; QEMU with SME2 + the aarch64 ExecuTorch runtime)", style="dim")
    return text


def verdict_text(host: dict[str, object], devices: DevicesReport | None, target: str,
                 emulation: dict[str, dict[str, Any]] | None = None, checked: bool = False) -> Text:
    text = Text()
    sme = str(host.get("sme", "unknown"))
    text.append("This host: ", style="bold")
    text.append(f"{host.get('cpu_model', '?')} ({host.get('machine', '?')}) ")
    text.append(VERDICT_TEXT.get(sme, sme), style=VERDICT_STYLE.get(sme, "bold"))
    if sme != "sme2":
        text.append("\n  runs here compare XNNPACK vs portable kernels, labelled as such", style="dim")
    text.append("\n")
    text.append(emulation_text(emulation or {}, checked))
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
        Binding("e", "setup_emulation", "Emulation", id="environment.emulation"),
        Binding("c", "cancel", "Cancel", id="environment.cancel"),
        *StepScreen.COMMON_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.devices: DevicesReport | None = None
        self.emulation: dict[str, dict[str, Any]] = {}
        self.doctor_done = False
        self.job = ""

    def compose_main(self) -> ComposeResult:
        yield Static(Text("checking this machine…", style="dim"), id="verdict")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_recheck()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.busy and self.job == SETUP_JOB  # only the download can be cancelled (the doctor is quick)
        if action in ("recheck", "setup_emulation") and self.busy:
            return None
        return super().check_action(action, parameters)

    def action_recheck(self) -> None:
        if self.busy:
            return
        self.reset_checks()
        self.devices = None
        self.doctor_done = False
        self.job = "doctor"
        self.log_pane.mirror_to(self.state.output_root / ".cache" / "tui" / "environment.log")
        self.start_job("doctor", self._doctor_and_devices)

    def _doctor_and_devices(self) -> Iterator[Event]:
        yield from self.services.doctor(self.state.output_root)
        # A device listing never auto-starts adb (the core probes the socket first).
        self.devices = self.services.devices()

    # --- SME2 emulation set-up -------------------------------------------------------------------------

    def action_setup_emulation(self) -> None:
        if self.busy:
            return
        cross = self.emulation.get(CROSS, {})
        if cross and cross.get("status") != "pass":
            # Nothing to download can fix this: it is a system package (the checkpoint has the full fix).
            message = f"{cross.get('detail', 'no aarch64 cross compiler')}\nfix: {cross.get('fix', '')}"
            self.notify(message, title="install the cross compiler first", severity="warning", timeout=12)
            self.log_pane.add_lines([f"emulation set-up needs the cross compiler first: {cross.get('fix', '')}"])
            return
        ready = bool(self.emulation) and all(c.get("status") == "pass" for c in self.emulation.values())
        if ready:
            question = ("Set up SME2 emulation again?\nEverything is in place: it checks the parts again and "
                        "downloads nothing that is already there.")
        else:
            question = (f"Set up SME2 emulation?\nDownloads {DOWNLOAD} into ~/.cache/sme2tui/emulator: the aarch64 "
                        "ExecuTorch runtime (never installed), and a static QEMU from Debian when this system's is "
                        "older than 10.1. Nothing system-wide changes; c cancels.")
        self.confirm(question, self._setup_now)

    def _setup_now(self) -> None:
        if self.busy:
            return
        self.job = SETUP_JOB
        self.log_pane.mirror_to(self.state.output_root / ".cache" / "tui" / "emulator-setup.log")
        services, cancel = self.services, threading.Event()
        self.start_job(SETUP_JOB, lambda: services.setup_emulator(cancel), cancel=cancel)

    def action_cancel(self) -> None:
        if self.busy and self.job == SETUP_JOB:
            self.confirm("Cancel the emulation set-up?\nWhat finished downloading stays in the cache; e starts "
                         "again.", self._cancel_now)

    def _cancel_now(self) -> None:
        if self.busy:
            self.cancel.set()
            self.log_pane.add_lines(["cancelling the emulation set-up…"])

    def add_check(self, check: Checkpoint, *, blocking: bool = True) -> None:
        if self.job == SETUP_JOB:
            return  # the set-up's checkpoints are in its log; the doctor re-checks when it ends
        super().add_check(check, blocking=blocking)

    # --- events ----------------------------------------------------------------------------------------

    def _target(self) -> str:
        target = self.state.config_data.get("target") or {}
        return str(target.get("kind", "host")) if isinstance(target, dict) else "host"

    def handle(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.step == "doctor":
            self.state.host = dict(event.data.get("host", {}))
            target = self._target()
            checks = list(event.data.get("checks", []))
            self.emulation = emulation_checks(checks)
            self.doctor_done = True
            for check in checks:
                needed = check.get("required_for", "all")
                # Android-only and emulation-only checks block only their target's runs; runner-build tools
                # are the Build step's.
                blocking = needed == "all" or (needed in ("android", "emulated") and target == needed)
                self.set_blocking(str(check.get("name")), blocking)
            self._show_verdict()

    def job_done(self, done: JobDone) -> None:
        job, self.job = self.job, ""
        if job == SETUP_JOB:
            if done.ok:
                self.notify("SME2 emulation is ready — checking again", title="emulation", timeout=6)
                self.action_recheck()
            else:
                lines = done.error.splitlines()
                what = (lines[0] if lines else "set-up failed").removeprefix("error: ")
                fix = next((line.split("fix:", 1)[1].strip() for line in lines if "fix:" in line), "")
                self.add_check(Checkpoint("doctor", "emulation set-up", "fail", what,
                                          fix or ("e sets it up again" if done.interrupted else "see the log; e tries "
                                                  "again")), blocking=self._target() == "emulated")
                self.refresh_checks()
            return
        self.finished = done.ok
        self._show_verdict()

    def _show_verdict(self) -> None:
        self.query_one("#verdict", Static).update(
            verdict_text(self.state.host, self.devices, self._target(), self.emulation, self.doctor_done))
