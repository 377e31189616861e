"""Snapshot tests of every screen in its main states (pytest-textual-snapshot; SVGs in tests/__snapshots__/).

Deterministic: fixed terminal sizes, recorded event streams (ReplayServices), the fixture run folder copied
into a temporary working directory, so no clock, hostname or absolute path is in view.
Regenerate after an intended change: `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at
the SVGs before committing them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.widgets import DataTable, Input, TabbedContent

from screens.run import RunScreen
from screens.services import ReplayServices, read_events
from screens.state import WizardState
from sme2tui.events import CellStatus, Event, StepStarted
from tests.test_tui_helpers import (
    EMULATED_FIXTURE,
    EMULATED_NAME,
    FIXTURE,
    cached_export_events,
    doctor_events,
    make_app,
    replay_services,
    run_events,
    settle,
    workspace,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pytest
    from textual.pilot import Pilot

SnapCompare = Any  # the plugin's fixture: (app, press=..., terminal_size=..., run_before=...) -> bool


def _settled(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_environment_fresh(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services()), terminal_size=(80, 24), run_before=_settled())


def test_environment_failed_checkpoint(snap_compare: SnapCompare, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(doctor_events=doctor_events(failing="torch")))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled())


def test_environment_next_held(snap_compare: SnapCompare, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Next pressed before the x86 host's warning is accepted: why it is held, where, and which key goes on."""
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services()), terminal_size=(80, 24), run_before=_settled("n"))


def test_environment_guide(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services()), terminal_size=(80, 24), run_before=_settled("g"))


def test_build(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services(), start="build"), terminal_size=(80, 24), run_before=_settled())


def test_model_fresh(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(80, 24), run_before=_settled())


def test_model_exported(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(80, 24),
                        run_before=_settled("e", "y"))


def test_model_export_cached(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second export: every program from the cache, shown as cached with its original figures."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(export_events=cached_export_events()), start="model")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled("e", "y"))


def test_model_added(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Typed with no field focused, added with enter: the new row scrolled to, ticked, highlighted, said."""
    workspace(tmp_path, monkeypatch)
    (tmp_path / "my_model.py").write_text("def build():\n    raise NotImplementedError\n")

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press(*"my_model:build", "enter")
        await settle(pilot)

    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(80, 24), run_before=run_before)


def test_model_wide_with_guide(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """120x40, guide beside the step: every model name whole, the iterations label whole."""
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(120, 40),
                        run_before=_settled())


def test_model_field_focused(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A field has the focus: the footer says esc leaves it and keeps the step's keys (greyed)."""
    workspace(tmp_path, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        field = pilot.app.screen.query_one("#factory", Input)
        field.cursor_blink = False  # a blinking cursor is on or off depending on when the picture is taken
        pilot.app.screen.set_focus(field)
        await settle(pilot)

    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(80, 24), run_before=run_before)


def test_run_fresh(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services(), start="run"), terminal_size=(80, 24), run_before=_settled())


def test_run_running(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mid-run: the recorded stream up to the first cell measuring, fed straight into the screen."""
    workspace(tmp_path, monkeypatch)
    events = run_events()
    cut = next(i for i, e in enumerate(events) if getattr(e, "state", "") == "running") + 1

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, RunScreen)
        screen.feed(events[:cut])
        await settle(pilot)

    app = make_app(replay_services(), start="run")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_run_progress(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cells in their last round: the bar follows measured iterations, each cell says its round."""
    workspace(tmp_path, monkeypatch)
    cells = ["mobilenet_quick__fp32__portable__t1", "mobilenet_quick__fp32__xnnpack__t1"]
    events = [StepStarted("run", "Run cells on the host"),
              *(CellStatus(c, "queued", "", 0, 200) for c in cells),
              CellStatus(cells[0], "running", "round 3/3: 4 s", 134, 200),
              CellStatus(cells[1], "running", "round 2/3 done", 134, 200)]

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, RunScreen)
        screen.feed(events)
        await settle(pilot)

    assert snap_compare(make_app(replay_services(), start="run"), terminal_size=(80, 24), run_before=run_before)


def test_run_interrupted(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    events = run_events()
    cut = next(i for i, e in enumerate(events) if getattr(e, "state", "") == "running") + 1
    app = make_app(replay_services(stop_run_after=cut), start="run")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _settled("r", "y")(pilot)
        # Wait for the condition, not for quiet: on a loaded box the confirmed run's worker can start after
        # `settle` saw three idle polls, and the snapshot would catch the screen before the interruption.
        screen = pilot.app.screen
        assert isinstance(screen, RunScreen)
        table = screen.query_one("#cells", DataTable)
        for _ in range(600):
            # The interruption and the cell rows arrive through the event queue separately: wait for both.
            if screen.stage == "interrupted" and not screen.busy and table.row_count > 0:
                break
            await pilot.pause(0.05)
        assert screen.stage == "interrupted", f"the run never ended interrupted (stage {screen.stage!r})"
        assert table.row_count > 0, "the interrupted run shows no cells"
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_analyze_results(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled())


def test_analyze_published_reference(snap_compare: SnapCompare, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled("f"))


def test_analyze_wide_with_guide(snap_compare: SnapCompare, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """120x40 with the guide: log-axis latency chart, the whole stats table."""
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_settled())


def test_analyze_categories_wide(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wider terminal: the guide sits beside the step; the categories tab with the published split."""
    run_dir = workspace(tmp_path, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "tab-categories"
        await pilot.press("f")
        await settle(pilot)

    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    assert snap_compare(app, terminal_size=(150, 40), run_before=run_before)


def test_history(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    assert snap_compare(make_app(replay_services(), start="history"), terminal_size=(80, 24),
                        run_before=_settled())


# --- the emulated target (issue 11) and ready programs --------------------------------------------------


class _SetUpOnce(ReplayServices):
    """The doctor finds emulation missing, the set-up runs, the doctor then finds it ready."""

    def doctor(self, output_root: Path) -> Iterator[Event]:
        self.calls.append("doctor")
        return iter(doctor_events(emulation="ready" if "setup-emulator" in self.calls else "missing"))


def test_environment_emulation_ready(snap_compare: SnapCompare, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(doctor_events=doctor_events(emulation="ready")))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled())


def test_environment_emulation_set_up(snap_compare: SnapCompare, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """e, y: the set-up's live log, then the doctor again, now saying ready."""
    workspace(tmp_path, monkeypatch)
    defaults = replay_services()
    services = _SetUpOnce(options=defaults.options, setup_events=read_events(EMULATED_FIXTURE / "setup_events.jsonl"))
    assert snap_compare(make_app(services), terminal_size=(80, 24), run_before=_settled("e", "y"))


def test_model_emulated_target(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """t: the SME2 on/off pair under QEMU, its short run, the target in the variants' title."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(emulation=None), start="model")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled("t"))


def test_model_emulated_target_wide(snap_compare: SnapCompare, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(emulation=None), start="model")
    assert snap_compare(app, terminal_size=(120, 40), run_before=_settled("t"))


def test_model_ready_program_offer(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ready .pte added on the host: its dtype and delegation at once, and its own variant offered."""
    workspace(tmp_path, monkeypatch)
    (tmp_path / "mine.pte").write_bytes((FIXTURE.parent / "pte" / "int8_xnnpack.pte").read_bytes())

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press(*"mine.pte", "enter")
        await settle(pilot)

    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(80, 24), run_before=run_before)


def test_model_ready_program_as_exported(snap_compare: SnapCompare, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """…accepted: the program alone, its own variant, dtypes greyed out (it has its own)."""
    workspace(tmp_path, monkeypatch)
    (tmp_path / "mine.pte").write_bytes((FIXTURE.parent / "pte" / "int8_xnnpack.pte").read_bytes())

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press(*"mine.pte", "enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        pilot.app.clear_notifications()  # the toast covers the lists at 80x24
        await settle(pilot)

    assert snap_compare(make_app(replay_services(), start="model"), terminal_size=(80, 24), run_before=run_before)


def _emulated_app(services: ReplayServices, start: str, run_dir: Path | None = None) -> Any:
    app = make_app(services, start=start, run_dir=run_dir)
    host = app.state.host
    app.state = WizardState.load(Path("runs") / EMULATED_NAME / "config.json", Path("runs"))
    app.state.config_source = "emulated_sme2.json"
    app.state.host, app.state.run_dir = host, run_dir
    return app


def _emulated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workspace(tmp_path, monkeypatch)
    shutil.copytree(EMULATED_FIXTURE / EMULATED_NAME, tmp_path / "runs" / EMULATED_NAME)
    return Path("runs") / EMULATED_NAME


def test_run_emulated_rounds(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded emulated run up to its first heartbeat: the round, what it is for, how long so far."""
    _emulated_workspace(tmp_path, monkeypatch)
    events = read_events(EMULATED_FIXTURE / EMULATED_NAME / "logs" / "events.jsonl")
    cut = next(i for i, e in enumerate(events) if isinstance(e, CellStatus) and e.detail.endswith(" s")) + 1

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, RunScreen)
        screen.feed(events[:cut])
        await settle(pilot)

    app = _emulated_app(replay_services(emulation=None), "run")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_analyze_emulated_evidence(snap_compare: SnapCompare, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _emulated_workspace(tmp_path, monkeypatch)
    app = _emulated_app(replay_services(), "analyze", run_dir)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled())


def test_analyze_emulated_evidence_wide(snap_compare: SnapCompare, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """120x40 with the guide: the panels, the numerics, the published figures and the kernel names."""
    run_dir = _emulated_workspace(tmp_path, monkeypatch)
    app = _emulated_app(replay_services(), "analyze", run_dir)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_settled("v"))
