"""The one real run: the wizard driven by keys on this host, with the real core (doctor, export,
Python-runtime run, analysis), from launch to an analyzed run. About 30 s; marked slow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from screens.analyze import AnalyzeScreen
from screens.app import Sme2App
from screens.base import StepScreen
from screens.state import WizardState
from tests.test_tui_helpers import run_async, settle

if TYPE_CHECKING:
    from typing import Any

    from textual.pilot import Pilot

TINY = {
    "name": "tiny",
    "models": [{"builtin": "mobilenet_quick"}],
    "dtypes": ["fp32"],
    "variants": [{"name": "portable", "label": "portable kernels", "delegate": "portable"},
                 {"name": "xnnpack", "label": "XNNPACK", "delegate": "xnnpack"}],
    "compare": {"baseline": "portable", "candidate": "xnnpack"},
    "warmup": 1,
    "iterations": 3,
}


async def _next(pilot: Pilot[Any], expected: str) -> None:
    """Accept what the step warns about (explicitly, as a user would), then go on."""
    screen = pilot.app.screen
    assert isinstance(screen, StepScreen)
    assert not screen.failures(), [r.check for r in screen.failures()]
    if screen.pending_warnings():
        await pilot.press("a")
    await pilot.press("n")
    await settle(pilot)
    assert pilot.app.current_mode == expected


@pytest.mark.slow
@run_async
async def test_first_run_on_this_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny.json").write_text(json.dumps(TINY))
    app = Sme2App(WizardState.load(Path("tiny.json")))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _next(pilot, "build")
        await _next(pilot, "model")
        await pilot.press("e", "y")  # keys that start work ask first
        await settle(pilot)
        await _next(pilot, "run")
        await pilot.press("r", "y")
        await settle(pilot)
        await _next(pilot, "analyze")
        screen = app.screen
        assert isinstance(screen, AnalyzeScreen)
        assert screen.run is not None and screen.run.summary is not None
        pair = screen.run.summary["pairs"][0]
        assert (pair["baseline"], pair["candidate"]) == ("portable", "xnnpack")
        console = Console(width=200, record=True)
        console.print(screen.query_one("#headline").render())
        headline = console.export_text()
        assert "xnnpack is" in headline and "than portable" in headline
        assert "sme2tui --auto --config runs/" in str(screen.query_one("#headless").render())
        run_dir = app.state.run_dir
    assert run_dir is not None
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert (run_dir / "logs" / "tui.log").read_text().strip()
    assert (run_dir / "analysis" / "report.md").is_file()
