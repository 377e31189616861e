"""Snapshot tests of every screen in its main states (pytest-textual-snapshot; SVGs in tests/__snapshots__/).

Deterministic: fixed terminal sizes, recorded event streams (ReplayServices), the fixture run folder copied
into a temporary working directory, so no clock, hostname or absolute path is in view.
Regenerate after an intended change: `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at
the SVGs before committing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import Input, TabbedContent

from screens.run import RunScreen
from sme2tui.events import CellStatus, StepStarted
from tests.test_tui_helpers import (
    cached_export_events,
    doctor_events,
    make_app,
    replay_services,
    run_events,
    settle,
    workspace,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

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
              CellStatus(cells[1], "running", "round 2/3 measured", 134, 200)]

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
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled("r", "y"))


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
