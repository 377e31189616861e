"""The emulated SME2 target in the wizard (issue 11, item 6) and ready programs on the Model step: Environment
says whether emulation is available and sets it up (asked, live, cancellable), Build offers the arm64 runner,
Model switches the target and reads a .pte at once, Run replays a real emulated run, Analyze shows the evidence.

Pilot tests on recorded event streams and the recorded emulated run folder (tests/data/tui_emulated); the
matching screens are in test_tui_snapshots.py. Plus the pure functions behind them.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from textual.widgets import DataTable, SelectionList, Static, TabbedContent

from screens import evidence
from screens.analyze import AnalyzeScreen
from screens.build import BuildScreen
from screens.configedit import EMULATED_COMPARE, EMULATED_RUN, EMULATED_VARIANTS, REPO, switch_target
from screens.confirm import ConfirmScreen
from screens.environment import EnvironmentScreen, _qemu_words
from screens.model import ModelScreen
from screens.run import RunScreen
from screens.services import BuildOption, ReplayServices, read_events
from screens.state import WizardState
from sme2tui.errors import Interrupted
from sme2tui.events import CellStatus, Event, StepStarted
from tests.test_tui_helpers import (
    EMULATED_FIXTURE,
    EMULATED_NAME,
    doctor_events,
    make_app,
    replay_services,
    run_async,
    settle,
    workspace,
)

if TYPE_CHECKING:
    from textual.app import App

PROGRAM = Path(__file__).parent / "data" / "pte" / "int8_xnnpack.pte"  # a real, small exported program
READY = "SME2 emulation is not set up on this machine: press e on the Environment step"


def setup_events() -> list[Event]:
    return read_events(EMULATED_FIXTURE / "setup_events.jsonl")


def emulated_run_events() -> list[Event]:
    return read_events(EMULATED_FIXTURE / EMULATED_NAME / "logs" / "events.jsonl")


def emulated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host fixture's workspace plus the recorded emulated run under runs/."""
    workspace(tmp_path, monkeypatch)
    shutil.copytree(EMULATED_FIXTURE / EMULATED_NAME, tmp_path / "runs" / EMULATED_NAME)
    return Path("runs") / EMULATED_NAME


def emulated_app(services: ReplayServices, *, start: str, run_dir: Path | None = None) -> Any:
    """The wizard on the recorded emulated run's own config (target emulated, sme2-off vs sme2-on)."""
    app = make_app(services, start=start, run_dir=run_dir)
    app.state = WizardState.load(Path("runs") / EMULATED_NAME / "config.json", Path("runs"))
    app.state.config_source = "emulated_sme2.json"
    app.state.host = make_app(services).state.host
    app.state.run_dir = run_dir
    return app


def notes(app: App[Any]) -> list[str]:
    return [n.message for n in app._notifications]


# --- Environment ----------------------------------------------------------------------------------------


@run_async
async def test_environment_says_emulation_is_missing_and_sets_it_up(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    services = replay_services(setup_events=setup_events())
    app = make_app(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EnvironmentScreen)
        verdict = str(screen.query_one("#verdict", Static).render())
        assert "SME2 emulation: not set up" in verdict and "e: set it up (about 90 MB" in verdict
        # Emulation checks do not hold a host config's Environment step.
        assert {r.check.name for r in screen.pending_warnings()} == {"host sme2"}
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)  # a download is asked for first
        assert "Downloads about 90 MB" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert services.calls == ["doctor", "setup-emulator", "doctor"]  # set up, then checked again
        log = "\n".join(screen.log_pane.lines)
        assert "== Set up SME2 emulation" in log and "pass: qemu: qemu-aarch64 version 11.1.3" in log
        assert "SME2 emulation is ready — checking again" in notes(app)


@run_async
async def test_environment_emulation_ready_blocks_only_an_emulated_config(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    emulated_workspace(tmp_path, monkeypatch)
    app = emulated_app(replay_services(doctor_events=doctor_events(emulation="no-cross")), start="environment")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EnvironmentScreen)
        # On an emulated config the emulation checks hold the step.
        assert {r.check.name for r in screen.pending_warnings()} >= {"aarch64 cross compiler",
                                                                     "qemu (SME2 emulation)"}
        verdict = str(screen.query_one("#verdict", Static).render())
        assert "no aarch64 cross compiler" in verdict and "apt-get install g++-aarch64-linux-gnu" in verdict
        await pilot.press("e")  # nothing a download can fix: said, not started
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert "setup-emulator" not in app.services.calls
        assert "apt-get install g++-aarch64-linux-gnu" in notes(app)[-1]


class _SlowSetup(ReplayServices):
    """A set-up that runs until it is cancelled (as a download would), then stops like the core does."""

    def setup_emulator(self, cancel: threading.Event) -> Iterator[Event]:
        self.calls.append("setup-emulator")
        yield StepStarted("build", "Set up SME2 emulation (QEMU user mode + the aarch64 ExecuTorch runtime)")
        if not cancel.wait(20):
            raise AssertionError("the set-up was never cancelled")
        raise Interrupted("cancelled", fix="run `sme2tui setup emulator` again")


@run_async
async def test_environment_setup_can_be_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    defaults = replay_services()
    services = _SlowSetup(doctor_events=defaults.doctor_events, options=defaults.options)
    app = make_app(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EnvironmentScreen)
        await pilot.press("e", "y")
        for _ in range(50):
            await pilot.pause(0.05)
            if screen.busy:
                break
        assert screen.busy and screen.check_action("cancel", ()) is True
        await pilot.press("c", "y")
        await settle(pilot)
        assert not screen.busy
        failed = [r for r in screen.checks.values() if r.check.name == "emulation set-up"]
        assert failed and failed[0].check.status == "fail" and not failed[0].blocking  # a host config goes on
        assert "cancelling the emulation set-up…" in screen.log_pane.lines


def test_qemu_words_from_the_doctor() -> None:
    detail = ("QEMU 11.1.3 (debian-sid, /cache/qemu-aarch64); probe -cpu max: SME, SME2, SME2p1, streaming vector "
              "length 256 bits (HWCAP2 0x7fffbff47fc77fff)")
    assert _qemu_words(detail) == "QEMU 11.1.3, probe: SME2, SVL 256 bits"
    assert _qemu_words("QEMU 10.0.2 (system, /usr/bin/qemu-aarch64); probe -cpu max: SME, streaming vector length "
                       "128 bits") == "QEMU 10.0.2, probe: SME only, SVL 128 bits"
    assert _qemu_words("something else") == "something else"


# --- Build ----------------------------------------------------------------------------------------------


@run_async
async def test_build_offers_the_arm64_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    missing = replay_services()
    app = make_app(missing, start="build")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BuildScreen)
        assert "arm64 runner for the emulated target" in str(screen.query_one("#options", Static).render())
        await pilot.press("e")  # cannot be built yet: says what is missing, starts nothing
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen) and "build:arm64" not in missing.calls
        assert "press e on the Environment step" in notes(app)[-1]
        row = next(r for r in screen.checks.values() if r.check.name == "arm64 runner")
        assert row.check.status == "skip" and not row.blocking  # a host config does not need it
    options = [BuildOption("host-native", "native host runner", True, "takes seconds", "build/runners/x"),
               BuildOption("arm64", "arm64 runner for the emulated target", True, "takes seconds")]
    ready = replay_services(options=options)
    app = make_app(ready, start="build")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen) and "arm64 runner" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert ready.calls[-1] == "build:arm64"


# --- Model: the target and ready programs ---------------------------------------------------------------


def test_the_wizard_pair_is_the_example_config() -> None:
    example = json.loads((REPO / "configs" / "examples" / "emulated_sme2.json").read_text())
    assert example["variants"] == EMULATED_VARIANTS
    assert example["compare"] == EMULATED_COMPARE
    assert {k: example[k] for k in EMULATED_RUN} == EMULATED_RUN
    assert example["target"] == {"kind": "emulated"}


def test_switching_the_target_keeps_what_each_target_had() -> None:
    quickstart = json.loads((REPO / "sme2tui" / "data" / "quickstart.json").read_text())
    saved: dict[str, dict[str, Any]] = {}
    edited = {**quickstart, "iterations": 50, "dtypes": ["fp16"]}
    emulated = switch_target(edited, "emulated", saved)
    assert emulated["target"] == {"kind": "emulated"} and emulated["variants"] == EMULATED_VARIANTS
    assert emulated["iterations"] == 4 and emulated["rounds"] == 2 and emulated["dtypes"] == ["fp16"]
    back = switch_target({**emulated, "iterations": 6}, "host", saved)
    assert back == edited  # the host settings as they were, models and dtypes as they are
    assert switch_target(back, "emulated", saved)["iterations"] == 6


@run_async
async def test_model_switches_to_the_emulated_target_and_back(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(emulation=None), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        await pilot.press("t")
        await settle(pilot)
        data = app.state.config_data
        assert data["target"] == {"kind": "emulated"}
        assert [v["name"] for v in data["variants"]] == ["sme2-off", "sme2-on"]
        variants = screen.query_one("#variants", SelectionList)
        assert variants.border_title == "variants: emulated" and variants.selected == ["sme2-off", "sme2-on"]
        assert app.state.config().target.kind == "emulated"  # valid as it stands
        assert "target emulated: variants sme2-off, sme2-on" in notes(app)[-1]
        await pilot.press("t")
        await settle(pilot)
        assert app.state.config_data["target"]["kind"] == "host"
        assert [v["name"] for v in app.state.config_data["variants"]] == ["portable", "xnnpack"]


@run_async
async def test_model_warns_when_emulation_is_not_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        note = list(app._notifications)[-1]
        assert note.severity == "warning" and READY in note.message


@run_async
async def test_a_ready_program_on_the_emulated_target_keeps_the_pair(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(tmp_path, monkeypatch)
    (tmp_path / "mine.pte").write_bytes(PROGRAM.read_bytes())
    app = make_app(replay_services(emulation=None), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        await pilot.press("t")
        await settle(pilot)
        await pilot.press(*"mine.pte", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)  # the pair differs in the CPU: it applies
        models = screen.query_one("#models", SelectionList)
        assert str(models.get_option_at_index(models.option_count - 1).prompt) == "mine (.pte int8)"
        assert "int8, delegated to xnnpack" in notes(app)[-1]
        config = app.state.config()
        assert config.cell_count() == 2 + 2  # mobilenet_quick fp32 and the program in its own dtype, on and off
        assert screen.query_one("#dtypes").border_subtitle == "not for .pte"


@run_async
async def test_a_ready_program_alone_keeps_its_own_variant_on_the_host(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Declined at first ("n"), the config is refused at export with the core's fix; the as-exported variant is
    in the list to tick by hand."""
    workspace(tmp_path, monkeypatch)
    (tmp_path / "mine.pte").write_bytes(PROGRAM.read_bytes())
    app = make_app(replay_services(), start="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        await pilot.press(*"mine.pte", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert "as-exported" in screen.variant_specs
        await pilot.press("e")
        await settle(pilot)
        failed = [r.check for r in screen.failures()]
        assert failed and "differ only in `delegate`" in failed[0].detail


# --- Run ------------------------------------------------------------------------------------------------


@run_async
async def test_run_replays_an_emulated_run_with_live_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = emulated_workspace(tmp_path, monkeypatch)
    events = emulated_run_events()
    beats = [i for i, e in enumerate(events) if isinstance(e, CellStatus) and e.detail.endswith(" s")]
    assert beats, "the recorded run has a heartbeat"
    services = replay_services(run_events=events, run_dir=run_dir, emulation=None)
    app = emulated_app(services, start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        info = str(screen.query_one("#runinfo", Static).render())
        assert "emulated (QEMU): evidence, not speed" in info
        screen.feed(events[: beats[0] + 1])
        await settle(pilot)
        beat = events[beats[0]]
        assert isinstance(beat, CellStatus)
        table = screen.query_one("#cells", DataTable)
        assert str(table.get_cell(beat.cell_id, "detail")) == beat.detail  # "round 1/2 (evidence): 1 s"
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen) and "on the emulated Arm CPU" in app.screen.question
        assert "never a speedup" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        assert all(c.state == "done" for c in screen.cells.values()) and len(screen.cells) == 6
        # Timing-quality warnings are shown but do not hold an emulated run.
        assert screen.gate_open(), [r.check.name for r in screen.pending_warnings()]


@run_async
async def test_run_refuses_an_emulated_run_before_emulation_is_set_up(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    emulated_workspace(tmp_path, monkeypatch)
    services = replay_services()
    app = emulated_app(services, start="run")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await pilot.press("r")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert not [c for c in services.calls if c.startswith("pipeline")]
        (failed,) = screen.failures()
        assert failed.check.name == "SME2 emulation" and READY in failed.check.fix


# --- Analyze --------------------------------------------------------------------------------------------


@run_async
async def test_analyze_shows_the_evidence_and_never_a_speedup(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = emulated_workspace(tmp_path, monkeypatch)
    app = emulated_app(replay_services(), start="analyze", run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AnalyzeScreen)
        assert screen.query_one(TabbedContent).active == "tab-evidence"
        headline = str(screen.query_one("#headline", Static).render())
        assert headline.startswith("emulated: evidence, not speed")
        assert "sme2-on ran 4 SME2 kernels" in headline and "sme2-off none" in headline
        assert "×" not in headline.replace("×1t", "") and "faster" not in headline
        off = str(screen.query_one("#panel-baseline", Static).render())
        on = str(screen.query_one("#panel-candidate", Static).render())
        assert "CPU: no SME" in off and "✓ SME2 kernels: none ran" in off
        assert "CPU: SME2, SVL 256 bits" in on and "✓ SME2 kernels: 4 ran" in on and "947,739" in on
        kernels = str(screen.query_one("#evidence-kernels", Static).render())
        assert "kai_run_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa" in kernels
        assert str(screen.query_one("#evidence-reference", Static).render()).startswith("published, not measured")
        assert str(screen.query_one(TabbedContent).get_tab("tab-latency").label) == "Emulated ms"
        assert screen.gate_open()  # the timing-quality warnings do not hold it
        await pilot.press("v")
        await settle(pilot)
        assert "mobilenet_quick fp16" in str(screen.query_one("#headline", Static).render())
        assert "340,119" in str(screen.query_one("#panel-candidate", Static).render())


@run_async
async def test_analyze_of_a_host_run_has_no_evidence_tab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = workspace(tmp_path, monkeypatch)
    app = make_app(replay_services(), start="analyze", run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "tab-latency" and not tabs.get_tab("tab-evidence").display


def test_evidence_texts_of_a_run_without_a_pair() -> None:
    summary = json.loads((EMULATED_FIXTURE / EMULATED_NAME / "analysis" / "summary.json").read_text())
    alone = {**summary, "emulated": {**summary["emulated"], "pairs": []}}
    pairs = evidence.evidence_pairs(alone)
    assert len(pairs) == 6 and all("baseline" not in p["evidence"] for p in pairs)
    assert "sme2-off ran 0 SME2 kernels" in str(evidence.headline(alone, 0))
    assert str(evidence.numerics_text(pairs[0])) == "one variant: nothing to compare on vs off"
    broken = {"cpu": "max,sme=off", "cpu_features": "none", "sme2_kernels": ["kai_x_sme2"], "sme_kernels": []}
    assert "✗ SME2 kernels: 1 ran" in str(evidence.panel_text(broken))  # evidence against the CPU: flagged
