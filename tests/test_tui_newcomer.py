"""The wizard as a newcomer drives it (issue 12): keys that explain themselves, typing that never starts
work, fields that let go, feedback on every addition, names after what was chosen, layouts that fit.

Pilot tests on recorded event streams (no torch); the matching screens are in test_tui_snapshots.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from textual import events
from textual.widgets import DataTable, Input, ProgressBar, SelectionList, Static
from textual.widgets._footer import FooterKey

from screens.analyze import AnalyzeScreen
from screens.base import StepScreen, format_event
from screens.charts import PEER_METRICS
from screens.configedit import config_for_file, named_after_selection
from screens.confirm import ConfirmScreen
from screens.history import HistoryScreen
from screens.model import ModelScreen
from screens.run import RunScreen
from screens.save import SaveScreen
from screens.state import WizardState
from screens.widgets.picklist import CURSOR, PickList
from sme2tui.config import load_config
from sme2tui.errors import ConfigError
from sme2tui.events import CellStatus, Checkpoint, Event, Progress, StepStarted
from sme2tui.models.pte_file import check_program_file
from tests.test_tui_helpers import (
    RUN_NAME,
    cached_export_events,
    make_app,
    replay_services,
    run_async,
    settle,
    workspace,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from textual.app import App

PROGRAM = Path(__file__).parent / "data" / "pte" / "fp32_xnnpack.pte"  # a real, small exported program

MODULE = '''
import torch


def build():
    return torch.nn.Linear(4, 2).eval(), (torch.ones(1, 4),)
'''


def footer_keys(app: App[Any]) -> list[tuple[str, bool]]:
    """(key, enabled) for every key the footer shows, left to right."""
    keys = sorted(app.screen.query(FooterKey), key=lambda k: k.region.x)
    return [(k.key, not k.has_class("-disabled")) for k in keys]


# --- Escape, the footer and stray typing -----------------------------------------------------------------


@run_async
async def test_escape_leaves_a_field_and_the_footer_keeps_the_steps_keys(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.set_focus(screen.query_one("#warmup", Input))
        await pilot.pause()
        keys = footer_keys(app)
        # The way out first; the step's keys stay listed, greyed (they type into the field now).
        assert keys[0] == ("escape", True)
        assert ("e", False) in keys and ("n", False) in keys and ("q", False) in keys
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.focused, Input)
        assert ("e", True) in footer_keys(app) and ("escape", True) not in footer_keys(app)


@run_async
async def test_typing_with_no_field_focused_goes_into_the_model_field(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = replay_services()
    app = make_app(services, start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, SelectionList)
        await pilot.press(*"my_model:build")  # 'e', 's' and 'q' are step keys: none of them fires
        await pilot.pause()
        assert app.screen.query_one("#factory", Input).value == "my_model:build"
        assert services.calls == [] and isinstance(app.screen, ModelScreen)
        assert not list(tmp_path.glob("*.json"))  # nothing saved


@run_async
async def test_keys_that_start_or_lose_work_ask_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = replay_services()
    app = make_app(services, start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*"export_utils")  # a module name that starts with the Export key
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # the question absorbs the rest of the typing
        assert "Export and check 2 programs?" in app.screen.question
        await pilot.press("escape")
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and app.return_value is None  # quitting asks too
        await pilot.press("n")
        await pilot.pause()
        assert services.calls == [] and app.is_running


# --- adding a model --------------------------------------------------------------------------------------


@run_async
async def test_adding_a_factory_scrolls_to_it_selects_it_and_says_so(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    (tmp_path / "my_model.py").write_text(MODULE)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*"my_model:build", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        models = screen.query_one("#models", PickList)
        last = models.option_count - 1
        assert screen.model_specs[last] == {"factory": "my_model:build"}
        assert last in models.selected and models.highlighted == last and models.has_focus
        assert models.scroll_offset.y > 0  # below the first six rows: scrolled into view
        assert str(models.get_option_at_index(last).prompt) == "my_model (yours)"  # named after the module
        assert [n.message for n in app._notifications] == [
            "added my_model: factory my_model:build — selected; e exports it"]
        assert screen.query_one("#factory", Input).value == ""
        assert [m.get("factory") for m in app.state.config_data["models"]] == [None, "my_model:build"]


@run_async
async def test_a_factory_that_cannot_be_found_is_refused_at_once(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*"missing_module:build", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        assert len(screen.model_specs) == screen.query_one("#models", PickList).option_count == 6
        assert screen.query_one("#factory", Input).value == "missing_module:build"  # kept, to be corrected
        (note,) = app._notifications
        assert note.title == "not added" and "cannot find module `missing_module`" in note.message


@run_async
async def test_a_ready_pte_is_added_as_a_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    (tmp_path / "progs").mkdir()
    (tmp_path / "progs" / "mine.pte").write_bytes(PROGRAM.read_bytes())
    (tmp_path / "progs" / "notes.pte").write_bytes(b"not a program at all")
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        for bad in ("progs/notes.pte", "progs", "progs/missing.pte"):
            field = screen.query_one("#factory", Input)
            field.value = bad
            screen.set_focus(field)
            await pilot.press("enter")
            await pilot.pause()
        assert [n.title for n in app._notifications] == ["not added"] * 3
        messages = [n.message for n in app._notifications]
        assert 'notes.pte is not an ExecuTorch program: no "ET12" identifier' in messages[0]
        assert "is a folder" in messages[1] and "no such file" in messages[2]
        screen.query_one("#factory", Input).value = "progs/mine.pte"
        await pilot.press("enter")
        await pilot.pause()
        spec = screen.model_specs[-1]
        assert spec == {"pte": str(tmp_path / "progs" / "mine.pte")}  # a program, not a factory row
        models = screen.query_one("#models", PickList)
        # Its dtype and delegation, read from the program at once: in the list and in what is said.
        assert str(models.get_option_at_index(models.option_count - 1).prompt) == "mine (.pte fp32)"
        size = PROGRAM.stat().st_size / 1000
        assert list(app._notifications)[-1].message == (
            f"added mine: ready program mine.pte ({size:.1f} kB): fp32, delegated to xnnpack; runs as exported — "
            "selected; e exports it")
        # The portable/xnnpack pair cannot apply to it: its own variant is offered now, not refused at export.
        assert isinstance(app.screen, ConfirmScreen)
        assert "the portable/xnnpack pair cannot apply" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        data = app.state.config_data
        assert [m for m in data["models"]] == [spec]
        assert [v["name"] for v in data["variants"]] == ["as-exported"] and "compare" not in data
        assert "dtypes" not in data  # a ready program runs in its own dtype
        assert screen.query_one("#dtypes", PickList).disabled
        config = app.state.config()
        assert config.cell_count() == 1 and config.variants[0].delegate == "as-exported"


def test_program_file_check() -> None:
    here = Path(__file__).parent / "data" / "tui_run"
    with pytest.raises(ConfigError, match="is a folder"):
        check_program_file(here)
    with pytest.raises(ConfigError, match="no such file"):
        check_program_file(here / "none.pte")
    with pytest.raises(ConfigError, match=r"export\.json is not an ExecuTorch program"):
        check_program_file(here / "exports" / "7b2f2b19d8cdeecbc07d" / "export.json")


# --- names ----------------------------------------------------------------------------------------------


def test_a_wizard_config_is_named_after_what_was_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    state = WizardState.load(None)
    assert state.auto_named and state.config_data["name"] == "quickstart"
    changed = {**state.config_data, "models": [{"builtin": "vit_quick"}, {"factory": "my_model:build"}],
               "dtypes": ["fp16"]}
    named = state.with_name(changed)
    assert named["name"] == "vit_quick-my_model-fp16"
    assert named["description"] == ("Chosen in the sme2tui wizard: vit_quick, my_model × fp16 × portable vs "
                                    "xnnpack.")
    assert state.with_name(dict(state.config_data))["name"] == "quickstart"  # the quickstart's own selection
    assert state.with_name({**state.config_data, "iterations": 200})["name"] == "mobilenet_quick-fp32"
    many = named_after_selection({"models": [{"builtin": b} for b in ("mobilenet", "vit_quick", "vit_tiny")],
                                  "dtypes": ["fp32", "fp16", "int8"], "variants": []})
    assert many["name"] == "mobilenet-vit_quick-and-1-more"
    # A config the user loaded keeps the name they gave it.
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({**state.config_data, "name": "mine"}))
    loaded = WizardState.load(own)
    assert loaded.with_name({**loaded.config_data, "dtypes": ["fp16"]})["name"] == "mine"


def test_a_saved_config_points_at_the_schema_and_its_programs_from_where_it_is_saved(tmp_path: Path) -> None:
    (tmp_path / "progs").mkdir()
    program = tmp_path / "progs" / "m.pte"
    program.write_bytes(PROGRAM.read_bytes())
    saved = tmp_path / "configs" / "deep" / "mine.json"
    saved.parent.mkdir(parents=True)
    data = config_for_file({"$schema": "../schema.json", "name": "x", "models": [{"pte": "progs/m.pte"}],
                            "variants": [{"name": "a"}]}, saved, config_dir=tmp_path)
    saved.write_text(json.dumps(data))
    assert next(iter(data)) == "$schema"
    assert (saved.parent / data["$schema"]).resolve() == (Path(__file__).parents[1] / "configs" / "schema.json")
    assert data["models"] == [{"pte": "../../progs/m.pte"}]
    assert load_config(saved).models[0].pte == str(program)


@run_async
async def test_save_asks_where_and_replaces_only_on_a_second_enter(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    (tmp_path / "tiny.json").write_text("{}")  # the file the config came from: the default, and it exists
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        async def save(name: str | None = None) -> str:
            if not isinstance(app.screen, SaveScreen):
                await pilot.press("s")
                await pilot.pause()
            if name is not None:
                app.screen.query_one("#save-path", Input).value = name
            await pilot.press("enter")
            await pilot.pause()
            return str(app.screen.query_one("#confirm-keys", Static).render()) \
                if isinstance(app.screen, SaveScreen) else "saved"

        assert await save() == "tiny.json exists: enter again to replace it, or change the name"
        assert (tmp_path / "tiny.json").read_text() == "{}"
        assert await save("mine") == "saved"  # ".json" added
        data = json.loads((tmp_path / "mine.json").read_text())
        assert (tmp_path / data["$schema"]).resolve() == Path(__file__).parents[1] / "configs" / "schema.json"
        assert load_config(tmp_path / "mine.json").name == "tiny"
        assert await save() == "mine.json exists: enter again to replace it, or change the name"
        assert await save() == "saved"


# --- export and run progress -----------------------------------------------------------------------------


@run_async
async def test_cached_exports_show_cached_and_the_original_figures(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(export_events=cached_export_events()), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e", "y")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        rows = {k: (v["delegation"], v["numerics"], v["time"]) for k, v in screen.exports.items()}
        assert rows == {"mobilenet_quick/fp32/portable": ("none", "✓ cosine 1.000000", "cached"),
                        "mobilenet_quick/fp32/xnnpack": ("80 nodes/1 graph", "✓ cosine 1.000000", "cached")}
        assert screen.gate_open()


def test_progress_lines_say_what_is_done() -> None:
    assert format_event(Progress("export", 1, 2, "exporting b", "b")) == "exporting b (1 of 2 done)"
    assert format_event(Progress("export", 2, 2, "exports done")) == "exports done"


@run_async
async def test_the_run_bar_follows_measured_iterations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        screen.feed([CellStatus("a__fp32__x__t1", "queued", "", 0, 200),
                     CellStatus("b__fp32__x__t1", "queued", "", 0, 200),
                     CellStatus("a__fp32__x__t1", "running", "round 3/3", 134, 200),
                     CellStatus("b__fp32__x__t1", "running", "round 2/3 done", 134, 200)])
        await pilot.pause()
        bar = screen.query_one("#overall", ProgressBar)
        assert bar.percentage == pytest.approx(0.67)  # cells finish together at the end: 0% before
        table = screen.query_one("#cells", DataTable)
        assert [table.get_cell(k, "iterations") for k in ("a__fp32__x__t1", "b__fp32__x__t1")] == ["134/200", "134/200"]
        # A failed cell keeps how far it got and its size: the bar counts it as ended, it does not shrink.
        screen.feed([CellStatus("a__fp32__x__t1", "failed", "runner exited with 6")])
        await pilot.pause()
        assert bar.percentage == pytest.approx((200 + 134) / 400)
        assert table.get_cell("a__fp32__x__t1", "iterations") == "134/200"


# --- layout ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 50)])
def test_labels_fit_at_every_width(size: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    @run_async
    async def check() -> None:
        workspace(tmp_path, monkeypatch)
        app = make_app(replay_services(), start="model")
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            for guide in (False, True):
                if guide:
                    await pilot.press("g")
                    await pilot.pause()
                    if not app.screen.query_one("#main").display:
                        continue  # 80 columns: the guide replaces the step
                iterations = app.screen.query_one("#iterations", Input)
                assert iterations.outer_size.width >= len("▊▔ iterations ▔▎")
                models = app.screen.query_one("#models", PickList)
                room = models.scrollable_content_region.width - 4  # the box and its space
                assert room >= len("transformer_quick"), (size, guide, room)

    check()


@run_async
async def test_the_footer_fits_80_columns_on_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="environment", run_dir=run_dir)
    app.state.resume_dir = run_dir  # the Run step with the most keys: run and resume
    async with app.run_test(size=(80, 24)) as pilot:
        for step in ("environment", "build", "model", "run", "analyze", "history"):
            app.goto(step)
            await settle(pilot)
            keys = sorted(app.screen.query(FooterKey), key=lambda k: k.region.x)
            *steps, palette = keys
            assert palette.has_class("-command-palette")
            assert steps[-1].region.right <= palette.region.x, (step, [k.key for k in steps])


# --- Analyze ----------------------------------------------------------------------------------------------


@run_async
async def test_analyze_at_80x24_shows_n_and_the_published_figures(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AnalyzeScreen)
        table = screen.query_one("#table-latency", DataTable)
        assert [str(c.label) for c in table.columns.values()][-1] == "n"
        assert table.virtual_size.width <= table.scrollable_content_region.width  # no column cut
        await pilot.press("f")
        await settle(pilot)
        headline = screen.query_one("#headline", Static)
        assert "published, not measured here: SqueezeSAM SME2 off→on" in str(headline.render())
        assert headline.region.bottom <= screen.query_one("#main").region.bottom  # in view, not below the fold


@run_async
async def test_help_and_palette_name_keys_as_they_are_typed(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Help"] == "on this screen (?)"
        await pilot.press("question_mark")
        await pilot.pause()
        from rich.console import Console
        from textual.widgets._key_panel import BindingsTable

        console = Console(width=80, record=True)
        console.print(app.screen.query_one(BindingsTable).render_bindings_table())
        lines = [" ".join(line.split()) for line in console.export_text().splitlines()]
        assert "^q q Quit" in lines  # was "^q q Quit Quit the app…": two bindings, one with a tooltip


@run_async
async def test_highlight_reads_without_colour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(replay_services(), start="model")
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        models = app.screen.query_one("#models", PickList)
        await pilot.press("down")
        await pilot.pause()
        line = "".join(segment.text for segment in models.render_line(1))
        assert line.startswith(f"▐ ▌{CURSOR}mobilenet ")  # the cursor mark, unselected box empty
        assert models.get_component_rich_style("option-list--option-highlighted").reverse
        app.goto("history")
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).get_component_rich_style("datatable--cursor").reverse


@run_async
async def test_history_enter_opens_the_row_the_arrows_reached(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    older = run_dir.with_name("20261122T000000Z-older")
    older.mkdir()
    for name in ("config.json", "manifest.json"):
        (older / name).write_text((run_dir / name).read_text())
    app = make_app(replay_services(), start="history")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.current_mode == "analyze" and app.state.run_dir == older
        assert isinstance(app.screen, StepScreen)
        assert RUN_NAME not in str(app.state.run_dir)


@run_async
async def test_space_ticks_the_entry_it_was_pressed_on_even_in_a_burst(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """tmux delivers keys faster than the list handles them: ticks must follow the keys, not the cursor."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key, character in (("space", " "), ("down", None), ("down", None), ("space", " ")):
            app.post_message(events.Key(key, character))
        await settle(pilot)
        models = app.screen.query_one("#models", PickList)
        assert models.selected == [2] and models.highlighted == 2
        assert app.state.config_data["models"] == [{"builtin": "transformer_quick"}]


# 120 columns: the guide beside the step takes 46, and the chart keeps 32 (both markers and ticks still read).
@pytest.mark.parametrize(("size", "chart_room"), [((80, 24), AnalyzeScreen.CHART_ROOM), ((120, 40), 32),
                                                  ((160, 45), AnalyzeScreen.CHART_ROOM)])
def test_peer_metrics_never_squeeze_the_latency_chart(size: tuple[int, int], chart_room: int, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart keeps its room and both tables are whole: the peer metrics, a row per metric, show p99 and
    peak RSS at 80 columns (a row per variant was cut after p95, also at 120 with the guide open)."""
    run_dir = workspace(tmp_path, monkeypatch)
    summary_path = run_dir / "analysis" / "summary.json"
    summary = json.loads(summary_path.read_text())
    for cell in summary["cells"].values():  # what a run analyzed with peer metrics carries
        cell["peers"] = {"load": {"method_load_ms": 0.348}, "first_inference": {"ms": 52.083},
                         "latency": {"p95_ms": 52.543, "p99_ms": None, "p99_min_n": 100},
                         "memory": {"peak_rss_bytes": 10 * 2**20}}
    summary_path.write_text(json.dumps(summary))

    @run_async
    async def check() -> None:
        app = make_app(replay_services(), start="analyze", run_dir=run_dir)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            screen = app.screen
            latency = screen.query_one("#table-latency", DataTable)
            assert latency.virtual_size.width <= latency.scrollable_content_region.width  # n in view
            assert screen.query_one("#plot-latency").size.width >= chart_room
            peers = screen.query_one("#table-peers", DataTable)
            assert peers.virtual_size.width <= peers.scrollable_content_region.width  # every column in view
            assert [str(c.label) for c in peers.ordered_columns] == ["metric", "portable", "xnnpack"]
            assert [peers.get_row_at(i)[0] for i in range(peers.row_count)] == list(PEER_METRICS)
            assert peers.get_row_at(3)[1:] == ["—", "—"]  # p99 from 20 iterations: not estimable, said so

    check()


@run_async
async def test_history_lists_newest_runs_first_whatever_their_folder_names(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder named `reference` (made earlier) sorted above today's runs by name; it goes below them."""
    run_dir = workspace(tmp_path, monkeypatch)
    for name, created in (("reference", "2026-11-01T10:00:00Z"), ("20261120T000000Z-later", "2026-11-24T08:00:00Z")):
        copy = run_dir.with_name(name)
        copy.mkdir()
        (copy / "config.json").write_text((run_dir / "config.json").read_text())
        manifest = json.loads((run_dir / "manifest.json").read_text())
        (copy / "manifest.json").write_text(json.dumps({**manifest, "created_utc": created}))
    app = make_app(replay_services(), start="history")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        shown = [entry.path.name for entry in app.screen.entries]
        assert shown == ["20261120T000000Z-later", RUN_NAME, "reference"]


@run_async
async def test_a_changed_selection_clears_the_export_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export table described the previous selection: after a change it is empty until e exports again."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(export_events=cached_export_events()), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e", "y")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen) and screen.gate_open()
        table = screen.query_one("#exports", DataTable)
        assert table.row_count == 2
        screen.query_one("#dtypes", SelectionList).select("fp16")
        await settle(pilot)
        assert table.row_count == 0 and not screen.exports and not screen.gate_open()
        assert screen.gate_text().plain.endswith("first: e.")


@run_async
async def test_the_guide_takes_the_keys_when_it_replaces_the_step(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """80 columns: g shows the guide in place of the step and gives it the focus, so PgDn reads on; g again
    brings the step back with its focus. At 120 the guide sits beside the step and takes nothing."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        models = screen.query_one("#models")
        assert screen.focused is models
        await pilot.press("g")
        await settle(pilot)
        guide = screen.query_one("#guide")
        assert screen.focused is guide and guide.max_scroll_y > 0
        await pilot.press("pagedown")
        await settle(pilot)
        assert guide.scroll_y > 0
        await pilot.press("g")
        await settle(pilot)
        assert screen.focused is models and not guide.display
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("g", "g")
        await settle(pilot)
        assert screen.focused is screen.query_one("#models")


@run_async
async def test_history_has_a_way_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """History listed no key back to the steps (only hidden digits): escape (shown) or p returns to the step
    it was opened from."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        assert app.current_mode == "history"
        assert ("escape", True) in footer_keys(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.current_mode == "model"
        await pilot.press("2")  # back goes to the step History was opened from, not the first one
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert app.current_mode == "build"


@run_async
async def test_a_pair_variant_the_host_cannot_run_is_refused_before_export(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The host list offers sme2-on/sme2-off (an M4/M5 Mac builds them): on this Linux host, e says at once
    that they cannot run here and what to do instead (it used to export, then stop the run at its runner check
    with a generic fix)."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(export_events=cached_export_events()), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        variants = screen.query_one("#variants", SelectionList)
        variants.select("sme2-on")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)  # nothing to export: said at once
        (row,) = screen.checks.values()
        assert row.check.status == "fail" and row.check.name == "variants"
        assert row.check.detail.startswith("sme2-on needs an SME2 on/off runner pair, which this Linux host")
        assert "untick sme2-on" in row.check.fix and "t switches to the emulated target" in row.check.fix
        variants.deselect("sme2-on")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)


class _RefusedPipeline:
    """A run the core refuses before any cell (as the runner check does): what, where and fix."""

    run_dir = None
    status = "failed"

    def events(self) -> Iterator[Event]:
        yield StepStarted("run", "Run cells on the host")
        raise ConfigError("variant `sme2-on` asks for runner `sme2-on`, which is not built for this host",
                          where="variants[2].runner", fix="on an Apple M4/M5 Mac: `sme2tui build macos`")

    def record_accepted(self, texts: Any) -> None:
        raise AssertionError("no run folder to record in")


@run_async
async def test_a_refused_run_shows_the_errors_own_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint said "read the log above, fix, press r" while the fix was cut off at 80 columns in the log:
    the error's own fix goes into the checkpoint, then the key."""
    workspace(tmp_path, monkeypatch)
    services = replay_services()
    monkeypatch.setattr(services, "pipeline", lambda *a, **k: _RefusedPipeline())
    app = make_app(services, start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        screen.start_run(None)
        await settle(pilot)
        (row,) = [r for r in screen.checks.values() if r.check.status == "fail"]
        assert row.check.detail.startswith("variant `sme2-on` asks for runner `sme2-on`")
        assert row.check.fix == "on an Apple M4/M5 Mac: `sme2tui build macos`; then press r"


def test_error_parts_read_what_and_fix() -> None:
    from screens.base import JobDone, error_parts

    rendered = ConfigError("bad", where="x", fix="do this").render()
    assert error_parts(JobDone("run", False, rendered), "failed") == ("bad", "do this")
    assert error_parts(JobDone("run", False, "error: bad\n  where: x"), "failed") == ("bad", "")
    assert error_parts(JobDone("run", False, ""), "failed") == ("failed", "")


@run_async
async def test_the_run_table_keeps_its_counts_in_view_at_80_columns(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With the checkpoints long enough for the step to scroll (its scrollbar takes two columns), the
    widest details a native round says leave the iterations column whole ("iteration" was cut)."""
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        a, b = "mobilenet_quick__fp32__portable__t1", "mobilenet_quick__fp32__xnnpack__t1"
        screen.feed([CellStatus(a, "running", "round 1/3: 99 s", 1199, 1200),
                     CellStatus(b, "running", "round 2/3 done", 800, 1200)])
        for i in range(8):
            screen.add_check(Checkpoint("run", f"check {i}", "warn", "a long warning " * 6, "fix it"))
        screen.refresh_checks()
        await settle(pilot)
        main = screen.query_one("#main")
        assert main.max_scroll_y > 0  # the scrollbar is there
        table = screen.query_one("#cells", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width, "the counts are cut"


def _drawn(draw: Any, width: int = 40, height: int = 14) -> str:
    import plotext as plt

    draw(plt)
    plt.plotsize(width, height)
    plt.theme("clear")
    text: str = plt.build()
    return plt.uncolorize(text)  # type: ignore[no-any-return]


def test_chart_axes_read_in_round_numbers() -> None:
    """Shares on 0/25/50/75/100 (plotext wrote 100.0 83.3 66.7 33.3 and dropped 50); operator times on 0, half
    and the slowest in the table's precision (plotext wrote 0.0000 0.0110 0.0165)."""
    from screens.charts import draw_categories, draw_operators

    cell = {"variant": "xnnpack", "categories_ms": {"CONV": 1.0, "GEMM": 2.0},
            "operators": [{"name": "Fully Connected (NC, F32) GEMM #1", "category": "GEMM", "median_ms": 0.022,
                           "share": 0.15, "instruction_id": 3},
                          {"name": "Transpose (ND, X32) #1", "category": "DATA_MOVEMENT", "median_ms": 0.008,
                           "share": 0.05, "instruction_id": 4}]}
    shares = _drawn(lambda plt: draw_categories(plt, [cell], None, width=40))
    assert [label for label in ("100", "75", "50", "25") if f"{label}┤" in shares] == ["100", "75", "50", "25"]
    assert "83.3" not in shares and "100.0" not in shares
    times = _drawn(lambda plt: draw_operators(plt, cell, width=60), width=60)
    axis = times.splitlines()[-1]
    assert axis.split() == ["0", "0.011", "0.022"], axis
    assert "0.0000" not in times and "0.0165" not in times


@pytest.mark.parametrize("width", [30, 38, 60])
def test_the_emulated_latency_chart_always_says_emulated(width: int) -> None:
    """At 80 columns the chart is ~36 wide: its title ("emulated ms, log: …", 36 characters) was dropped whole."""
    from screens.charts import draw_latency

    cells = [{"variant": v, "latency": {"p10": m * 0.9, "median": m, "p90": m * 1.2}}
             for v, m in (("sme2-off", 58.1), ("sme2-on", 126.0))]
    drawn = _drawn(lambda plt: draw_latency(plt, cells, width=width, emulated=True), width=width)
    assert "emulated ms, log" in drawn.splitlines()[0]


@run_async
async def test_an_emulated_run_says_emulated_on_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator table of an emulated run read "median ms" (its table title, which said the variant, is not
    drawn): its times are emulated, and the charts say so too, with the variant."""
    from screens.charts import draw_categories, draw_operators
    from tests.test_tui_emulated import emulated_app, emulated_workspace

    run_dir = emulated_workspace(tmp_path, monkeypatch)
    app = emulated_app(replay_services(), start="analyze", run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#table-operators", DataTable)
        assert [str(c.label) for c in table.ordered_columns][3] == "emulated ms"
    cell = {"variant": "sme2-on", "categories_ms": {"CONV": 75.2, "GEMM": 42.3},
            "operators": [{"name": "Convolution (NHWC, F32) IGEMM #1", "category": "CONV", "median_ms": 70.29,
                           "share": 0.56, "instruction_id": 1}]}
    for width in (26, 30, 60):  # 26-30: the chart beside the table at 80 columns (rank labels)
        title = _drawn(lambda plt, w=width: draw_operators(plt, cell, width=w, emulated=True),
                       width=width).splitlines()[0]
        assert "sme2-on: emulated ms" in title, title
    shares = _drawn(lambda plt: draw_categories(plt, [cell], None, width=40, emulated=True))
    assert "share of emulated time" in shares.splitlines()[0]
