"""Pilot tests of the wizard's flows on recorded event streams: the Next gate, accepting warnings,
History's re-run / edit / resume, cancelling, quitting mid-run, a flood of log lines, startup weight."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.widgets import SelectionList, Static

from screens.confirm import ConfirmScreen
from screens.environment import EnvironmentScreen
from screens.model import ModelScreen
from screens.run import RunScreen
from screens.services import PipelineHandle, ReplayServices
from screens.widgets.steplog import StepLog
from sme2tui.errors import Interrupted
from sme2tui.events import CellStatus, Event, LogLine, StepStarted
from tests.test_tui_helpers import RUN_NAME, doctor_events, make_app, replay_services, run_async, settle, workspace

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest


@run_async
async def test_failing_checkpoint_holds_next_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(doctor_events=doctor_events(failing="torch")))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EnvironmentScreen)
        assert screen.check_action("next", ()) is True  # live: a press says why it is held
        await pilot.press("a", "n")  # accepting warnings cannot accept a failure
        await settle(pilot)
        assert app.current_mode == "environment"
        assert "environment" not in app.state.passed
        gate = screen.gate_text().plain
        assert gate.startswith("Next is held: 1 check failed (torch; ✗ in the checkpoints)")
        assert "r: re-check" in gate


@run_async
async def test_warnings_need_explicit_acceptance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EnvironmentScreen)
        # The host-SME2 warning blocks; the adb warning does not (host target).
        assert [r.check.name for r in screen.pending_warnings()] == ["host sme2"]
        await pilot.press("n")
        await pilot.pause()
        assert app.current_mode == "environment"
        # Pressing Next says, on screen, why it is held, where the warning is and which key goes on.
        said = screen.gate_text().plain
        assert said == ("Next is held: 1 warning not accepted (host sme2; ! in the checkpoints). a: accept "
                        "(recorded with the run), or fix it, then r: re-check.")
        assert str(screen.query_one("#gate", Static).render()) == said
        assert [n.message for n in app._notifications] == [said]
        await pilot.press("a")
        assert screen.check_action("next", ()) is True
        assert screen.gate_text().plain == "✓ Done. n: on to Build."
        assert not app._notifications  # the "held" toast went with the reason
        await pilot.press("n")
        await settle(pilot)
        assert app.current_mode == "build"
        assert app.state.accepted_warnings[0].startswith("doctor: host sme2: AMD EPYC")


@run_async
async def test_accepted_warnings_are_recorded_in_the_run_manifest(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="run")
    app.state.accepted_warnings.append("doctor: host sme2: no SME2 here")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r", "y")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert screen.finished
        # The recorded run has a "very noisy" warning: Next waits for it, and says so.
        await pilot.press("n")
        await pilot.pause()
        assert app.current_mode == "run"
        assert screen.gate_text().plain.startswith("Next is held: 1 warning not accepted (measurement quality;")
        await pilot.press("a")
        assert screen.gate_open()
        await pilot.press("n")
        await settle(pilot)
        assert app.current_mode == "analyze"
    accepted = json.loads((run_dir / "manifest.json").read_text())["accepted_warnings"]
    assert accepted[0] == "doctor: host sme2: no SME2 here"
    assert any("very noisy" in text for text in accepted[1:])


@run_async
async def test_model_export_shows_delegation_and_numerics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = replay_services()
    app = make_app(services, start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        assert not screen.gate_open()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and services.calls == []  # asks before starting work
        await pilot.press("y")
        await settle(pilot)
        assert services.calls == ["export"]
        # The figures come from each export's record: delegation, numerics, how long the export took.
        assert screen.exports["mobilenet_quick/fp32/xnnpack"]["delegation"] == "80 nodes/1 graph"
        assert screen.exports["mobilenet_quick/fp32/xnnpack"]["time"] == "19.0 s"
        assert screen.exports["mobilenet_quick/fp32/portable"]["numerics"] == "✓ cosine 1.000000"
        assert screen.gate_open()
        # Changing the selection invalidates the export: Next closes again.
        dtypes = screen.query_one("#dtypes", SelectionList)
        dtypes.select("fp16")
        await settle(pilot)
        assert app.state.config_data["dtypes"] == ["fp32", "fp16"]
        assert not screen.gate_open()


@run_async
async def test_model_config_error_is_a_failing_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = replay_services()
    app = make_app(services, start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        screen.query_one("#variants", SelectionList).deselect_all()
        await pilot.press("e")
        await settle(pilot)
        assert services.calls == []  # nothing exported
        failed = screen.failures()
        assert [r.check.name for r in failed] == ["config"]
        assert "variants" in failed[0].check.detail


@run_async
async def test_rerun_from_history_uses_the_runs_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    services = replay_services()
    app = make_app(services, start="history")
    app.state.config_data = {"name": "something-else"}
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await pilot.pause()
        assert app.current_mode == "history" and services.calls == []  # asks first
        await pilot.press("y")
        await settle(pilot)
        assert app.current_mode == "run"
        assert services.calls == ["pipeline:resume=None"]
        assert app.state.config_data == json.loads((run_dir / "config.json").read_text())
        assert app.state.run_dir == run_dir


@run_async
async def test_edit_from_history_opens_the_model_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="history")
    app.state.config_data = {"name": "x", "models": [{"builtin": "vit_quick"}], "dtypes": ["int8"]}
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e", "y")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        models = screen.query_one("#models", SelectionList)
        assert [screen.model_specs[i] for i in models.selected] == [{"builtin": "mobilenet_quick"}]
        assert screen.query_one("#dtypes", SelectionList).selected == ["fp32"]


@dataclass
class _BlockingPipeline:
    """Yields the first cell starting, then waits for cancel like a long-running cell would."""

    cancel: threading.Event
    run_dir_value: Path
    started: threading.Event = field(default_factory=threading.Event)

    def events(self) -> Iterator[Event]:
        yield StepStarted("run", "Run cells on the host")
        yield CellStatus("mobilenet_quick__fp32__portable__t1", "running", "measuring", 1, 3)
        self.started.set()
        if not self.cancel.wait(10):
            raise AssertionError("never cancelled")
        raise Interrupted("interrupted; completed cells are kept", where=str(self.run_dir_value))

    @property
    def run_dir(self) -> Path | None:
        return self.run_dir_value

    @property
    def status(self) -> str:
        return "interrupted"

    def record_accepted(self, texts: Any) -> None:
        raise AssertionError("nothing to record in this test")


@dataclass
class _BlockingServices(ReplayServices):
    handles: list[_BlockingPipeline] = field(default_factory=list)

    def pipeline(self, config: Any, *, config_source: str, config_dir: Path | None, output_root: Path,
                 resume: Path | None, cancel: threading.Event) -> PipelineHandle:
        if resume is not None:  # resuming replays the recorded rest of the run
            return super().pipeline(config, config_source=config_source, config_dir=config_dir,
                                    output_root=output_root, resume=resume, cancel=cancel)
        self.calls.append("pipeline:resume=None")
        handle = _BlockingPipeline(cancel, Path("runs") / RUN_NAME)
        self.handles.append(handle)
        return handle


def _blocking_services() -> _BlockingServices:
    base = replay_services()
    return _BlockingServices(doctor_events=base.doctor_events, run_events=base.run_events, run_dir=base.run_dir,
                             export_events=base.export_events, options=base.options)


@run_async
async def test_cancel_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = _blocking_services()
    app = make_app(services, start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r", "y")
        assert services.handles[0].started.wait(5)
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert screen.busy and screen.check_action("cancel", ()) is True
        await pilot.press("c")
        await pilot.pause()
        assert not services.handles[0].cancel.is_set()  # asks first: a stray c must not stop a run
        await pilot.press("y")
        await settle(pilot)
        assert services.handles[0].cancel.is_set()
        assert app.state.resume_dir == Path("runs") / RUN_NAME
        assert [r.check.detail for r in screen.failures()] == ["interrupted; completed cells are kept"]
        await pilot.press("u", "y")
        await settle(pilot)
        assert services.calls == ["pipeline:resume=None", f"pipeline:resume={RUN_NAME}"]
        assert screen.finished and app.state.resume_dir is None


@run_async
async def test_quit_mid_run_asks_then_cancels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = _blocking_services()
    app = make_app(services, start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r", "y")
        assert services.handles[0].started.wait(5)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # changed my mind: the run goes on
        await pilot.pause()
        assert not services.handles[0].cancel.is_set()
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        for _ in range(100):
            if app.return_value is not None:
                break
            await pilot.pause(0.05)
    assert services.handles[0].cancel.is_set()
    assert app.return_value == 130 and app.return_code == 130


@run_async
async def test_log_copes_with_100k_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        log = screen.query_one(StepLog)
        mirror = tmp_path / "mirror.log"
        log.mirror_to(mirror)
        started = time.monotonic()
        screen.feed([LogLine("run", f"line {i}", "info", "runner") for i in range(100_000)])
        for _ in range(200):
            if not screen._queue:
                break
            await pilot.pause(0.05)
        elapsed = time.monotonic() - started
        assert log.line_count == 100_000
        assert log.is_vertical_scroll_end  # followed the tail
        log.scroll_home(animate=False)
        screen.feed([LogLine("run", "one more", "info", "runner")])
        await pilot.pause()
        assert log.scroll_y == 0  # scrolled up: it stays where the user is
        log.close_mirror()
    lines = mirror.read_text().splitlines()
    assert lines[0] == "[runner] line 0" and lines[-1] == "[runner] one more"
    assert elapsed < 20


def test_startup_imports_neither_torch_nor_executorch() -> None:
    code = ("import sys, time; t = time.process_time(); import screens.app; "
            "from screens.state import WizardState; screens.app.Sme2App(WizardState.load(None)); "
            "heavy = [m for m in ('torch', 'executorch') if m in sys.modules]; "
            "print(heavy, time.process_time() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit(" ", 1)
    assert heavy == "[]"
    assert float(seconds) < 1.0


@run_async
async def test_command_palette_reaches_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to History")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "history"
        await pilot.press("3")  # number keys jump to a step, whatever its gate says
        await settle(pilot)
        assert app.current_mode == "model"
