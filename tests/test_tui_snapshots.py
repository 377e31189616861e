"""Snapshot tests of every screen in its main states (pytest-textual-snapshot; SVGs in tests/__snapshots__/).

Deterministic: fixed terminal sizes, recorded event streams (ReplayServices), the fixture run folder copied
into a temporary working directory, so no clock, hostname or absolute path is in view.
Regenerate after an intended change: `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at
the SVGs before committing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import TabbedContent

from screens.run import RunScreen
from tests.test_tui_helpers import doctor_events, make_app, replay_services, run_events, settle, workspace

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
                        run_before=_settled("e"))


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


def test_run_interrupted(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    events = run_events()
    cut = next(i for i, e in enumerate(events) if getattr(e, "state", "") == "running") + 1
    app = make_app(replay_services(stop_run_after=cut), start="run")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled("r"))


def test_analyze_results(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled())


def test_analyze_published_reference(snap_compare: SnapCompare, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled("f"))


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
