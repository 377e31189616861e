"""Shared pieces of the TUI tests (fixture run folder, recorded events, app factory, settling), plus
tests of the pure functions the Analyze and History screens render."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import math
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from screens import charts
from screens.app import Sme2App
from screens.services import ReplayServices, headline, read_events
from screens.state import WizardState
from sme2tui.events import Checkpoint, Event, LogLine, Progress, StepFinished

if TYPE_CHECKING:
    from textual.pilot import Pilot

FIXTURE = Path(__file__).parent / "data" / "tui_run"
RUN_NAME = "20261123T212444Z-tiny"


EMULATED_FIXTURE = Path(__file__).parent / "data" / "tui_emulated"
EMULATED_NAME = "20261128T082457Z-emulated-sme2"
CROSS_OK = ("aarch64 cross compiler", "pass",
            "aarch64-linux-gnu-g++ (Debian 12.2.0-14) 12.2.0 (/usr/bin/aarch64-linux-gnu-g++)", "")
# The doctor's "SME2 emulation" section as the core words it (sme2tui.emulator.setup.emulation_checks), recorded
# on this machine with an empty cache, with the cache set up, and without the cross compiler.
EMULATION_CHECKS: dict[str, list[tuple[str, str, str, str]]] = {
    "missing": [CROSS_OK,
                ("qemu (SME2 emulation)", "warn",
                 "SME2 emulation is not set up on this machine (no qemu-aarch64 on PATH)",
                 "run `sme2tui setup emulator`"),
                ("aarch64 executorch wheel", "warn", "not downloaded", "run `sme2tui setup emulator`")],
    "ready": [CROSS_OK,
              ("qemu (SME2 emulation)", "pass",
               "QEMU 11.1.3 (debian-sid, ~/.cache/sme2tui/emulator/qemu-11.1.3+ds-1/qemu-aarch64); probe -cpu max: "
               "SME, SME2, SME2p1, streaming vector length 256 bits (HWCAP2 0x7fffbff47fc77fff)", ""),
              ("aarch64 executorch wheel", "pass", "executorch 1.5.1+cpu aarch64 at ~/.cache/sme2tui/emulator/"
               "executorch-1.5.1-aarch64/executorch (sha256 8ee02348a3ea80dd…)", "")],
    "no-cross": [("aarch64 cross compiler", "warn", "no aarch64 cross compiler (aarch64-linux-gnu-g++) on PATH",
                  "Debian/Ubuntu: `apt-get install g++-aarch64-linux-gnu` (brings the aarch64 glibc and libstdc++ "
                  "under /usr/aarch64-linux-gnu); other Linux: install an aarch64-linux-gnu GCC with a glibc sysroot "
                  "and set SME2TUI_AARCH64_SYSROOT to it; macOS: not supported (QEMU has no user mode there)"),
                 ("qemu (SME2 emulation)", "warn",
                  "SME2 emulation is not set up on this machine (no qemu-aarch64 on PATH)",
                  "run `sme2tui setup emulator`"),
                 ("aarch64 executorch wheel", "warn", "not downloaded", "run `sme2tui setup emulator`")],
}


def _with_emulation(events: list[Event], emulation: str) -> list[Event]:
    """The recorded doctor run (made before the emulation section existed) with that section as it reads now."""
    checks = EMULATION_CHECKS[emulation]
    out: list[Event] = []
    for event in events:
        if isinstance(event, StepFinished):
            out += [Checkpoint("doctor", name, status, detail, fix) for name, status, detail, fix in checks]  # type: ignore[arg-type]
            rows = [{"name": n, "status": st, "detail": d, "fix": f, "required_for": "emulated"}
                    for n, st, d, f in checks]
            event = dataclasses.replace(event, data={**event.data, "checks": [*event.data["checks"], *rows]})
        out.append(event)
    return out


def doctor_events(failing: str | None = None, emulation: str = "missing") -> list[Event]:
    """The recorded doctor run; `failing` turns that check into a failure (as a missing package would);
    `emulation`: the SME2 emulation section says "missing", "ready" or "no-cross" (no cross compiler)."""
    events = _with_emulation(read_events(FIXTURE / "doctor_events.jsonl"), emulation)
    if failing is None:
        return events
    out: list[Event] = []
    for event in events:
        if isinstance(event, Checkpoint) and event.name == failing:
            event = dataclasses.replace(event, status="fail", detail=f"{failing} is not installed",
                                        fix=f"pip install '{failing}==2.13.0' (see README setup)")
        elif isinstance(event, StepFinished):
            checks = [dict(c, status="fail", detail=f"{failing} is not installed") if c["name"] == failing else c
                      for c in event.data["checks"]]
            event = dataclasses.replace(event, ok=False, data={**event.data, "checks": checks})
        out.append(event)
    return out


def run_events() -> list[Event]:
    return read_events(FIXTURE / RUN_NAME / "logs" / "events.jsonl")


def export_events() -> list[Event]:
    return [e for e in run_events() if getattr(e, "step", "") == "export"]


def cached_export_events() -> list[Event]:
    """The recorded export as a second export sees it: every program served from the cache without the
    worker (no Progress, no delegation summary: "export cache", the numerics, the program, as run_exports
    sends them)."""
    out: list[Event] = []
    for event in export_events():
        if isinstance(event, LogLine | Progress):
            continue
        if isinstance(event, Checkpoint) and event.name == "numerics vs eager":
            out.append(Checkpoint("export", "export cache", "pass", "unchanged since last export, reused",
                                  subject=event.subject))
        out.append(event)
    return out


def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding `runs/<fixture run>` and the export records its events name (paths in
    view are relative: "runs/…")."""
    shutil.copytree(FIXTURE / RUN_NAME, tmp_path / "runs" / RUN_NAME)
    shutil.copytree(FIXTURE / "exports", tmp_path / "runs" / ".cache" / "exports")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return Path("runs") / RUN_NAME


def replay_services(**kwargs: Any) -> ReplayServices:
    from screens.services import BuildOption

    defaults: dict[str, Any] = {
        "doctor_events": doctor_events(),
        "export_events": export_events(),
        "run_events": run_events(),
        "run_dir": Path("runs") / RUN_NAME,
        "options": [
            BuildOption("host-native", "native host runner (sme2_runner)", True, "takes seconds"),
            BuildOption("arm64", "arm64 runner for the emulated target (SME2 on/off under QEMU)", False,
                        "SME2 emulation is not set up on this machine: press e on the Environment step (or "
                        "`sme2tui setup emulator`)"),
            BuildOption("host-pair", "SME2 on/off pair for this host", False, "this x86_64 host has no SME2"),
            BuildOption("android-pair", "SME2 on/off pair for Android", False,
                        "Android NDK missing: export ANDROID_NDK=/path/to/ndk"),
        ],
    }
    defaults.update(kwargs)
    return ReplayServices(**defaults)


def make_app(services: ReplayServices, *, start: str = "environment", run_dir: Path | None = None) -> Sme2App:
    state = WizardState.load(Path("runs") / RUN_NAME / "config.json", Path("runs"))
    state.config_source = "tiny.json"
    state.host = json.loads((FIXTURE / RUN_NAME / "manifest.json").read_text())["host"]
    state.run_dir = run_dir
    app = Sme2App(state, services, start=start)
    app.animation_level = "none"  # tab underlines and scrolls land at once: screenshots are repeatable
    return app


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test on a fresh event loop (the project has no async pytest plugin)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until every worker finished and every queued event reached the screen."""
    app = pilot.app
    await app.workers.wait_for_complete()
    quiet = 0
    for _ in range(200):
        await pilot.pause(0.05)
        idle = not getattr(app.screen, "_queue", None) and not getattr(app.screen, "busy", False)
        quiet = quiet + 1 if idle else 0
        if quiet >= 3:  # idle on three polls in a row: a loaded CI box can leave one drain tick pending
            break
    # Widgets such as DataTable size their columns on a later refresh: let those land too.
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)
    await pilot.pause()


# --- the pure functions behind the Analyze tables -------------------------------------------------------


def _summary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURE / RUN_NAME / "analysis" / "summary.json").read_text())
    return data


def test_pair_cells_are_baseline_then_candidate() -> None:
    summary = _summary()
    cells = charts.pair_cells(summary, summary["pairs"][0])
    assert [c["variant"] for c in cells] == ["portable", "xnnpack"]


def test_category_shares_add_up_to_100_percent() -> None:
    for cell in _summary()["cells"].values():
        assert sum(charts.category_shares(cell).values()) == pytest.approx(100.0)


def test_reference_shares_come_from_the_published_split() -> None:
    shares = charts.reference_category_shares(_summary()["reference"])
    # Published fp16 SME2-on SqueezeSAM: data movement ~40% of 298 ms.
    assert shares["DATA_MOVEMENT"] == pytest.approx(100 * 119.1 / 298.2)
    assert shares["OVERHEAD"] == 0.0


def test_operator_rows_are_the_slowest_first() -> None:
    cell = _summary()["cells"]["mobilenet_quick__fp32__xnnpack__t1"]
    rows = charts.operator_rows(cell, limit=5)
    times = [float(r[3]) for r in rows]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    assert len(rows) == 5
    assert times == sorted(times, reverse=True)


def test_short_operator_labels_keep_kind_and_index() -> None:
    assert charts.short_op("Fully Connected (NC, F32) GEMM #3") == "FC GEMM #3"
    assert charts.short_op("Convolution (NHWC, F32) IGEMM #1") == "Conv IGEMM #1"
    assert charts.short_op("Convolution (NHWC, F32) DWConv #1") == "Conv DWConv #1"
    assert charts.short_op("Transpose (ND, X32) #2") == "Transpose #2"
    assert charts.short_op("native_call_convolution.out") == "convolution"
    assert charts.short_op("native_call__native_batch_norm_legit_no_training.out") == "_native_batch_norm_…"


def test_headline_uses_the_first_pair_with_its_interval() -> None:
    pairs = _summary()["pairs"]
    s = pairs[0]["speedup"]
    assert headline(pairs) == f"{s['value']:.2f}× ({s['ci_low']:.3g}–{s['ci_high']:.3g})"
    assert headline([]) == "—"


def test_headline_says_noisy_and_inconclusive() -> None:
    """History lists many runs side by side: a shaky figure must say so there too, not only in its report."""
    summary = _summary()
    pair = dict(summary["pairs"][0])
    cells = json.loads(json.dumps(summary["cells"]))
    cells[pair["baseline_cell"]]["latency"]["cv"] = 0.02
    cells[pair["candidate_cell"]]["latency"]["cv"] = 0.02
    assert headline([pair], cells).endswith(")")
    cells[pair["candidate_cell"]]["latency"]["cv"] = 0.07
    assert headline([pair], cells).endswith(") noisy")
    cells[pair["baseline_cell"]]["latency"]["cv"] = 0.5
    assert headline([pair], cells).endswith(") very noisy")
    pair["speedup"] = {**pair["speedup"], "verdict": "inconclusive"}
    assert headline([pair], cells).endswith(") inconclusive very noisy")
    cells[pair["baseline_cell"]] = {"latency": None}  # a damaged summary: the figure, without a marker
    cells[pair["candidate_cell"]] = "?"
    assert headline([pair], cells).endswith(") inconclusive")


def test_repeated_operator_names_get_their_instruction() -> None:
    """XNNPACK numbers operators per delegate: a transformer has a `FC GEMM #1` in every graph."""
    ops = [{"name": "Fully Connected (NC, F32) GEMM #1", "instruction_id": i, "category": "GEMM",
            "median_ms": 0.004, "share": 0.1} for i in (14, 28, 2)]
    ops.append({"name": "Transpose (ND, X32) #1", "instruction_id": 14, "category": "DATA_MOVEMENT",
                "median_ms": 0.001, "share": 0.01})
    rows = charts.operator_rows({"operators": ops})
    assert [r[1] for r in rows] == ["FC GEMM #1 @14", "FC GEMM #1 @28", "FC GEMM #1 @2", "Transpose #1"]
    assert rows[3][2] == "data mv"
    assert len({r[1] for r in rows}) == len(rows)


class _Recorder:
    """Stands in for plotext: records what a draw function asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: self.calls.append((name, args))


def test_latency_chart_uses_a_log_axis_in_real_milliseconds() -> None:
    cells = charts.pair_cells(_summary(), _summary()["pairs"][0])
    plt = _Recorder()
    charts.draw_latency(plt, cells, 40)
    (yticks,) = [args for name, args in plt.calls if name == "yticks"]
    assert yticks[1] == ["0.1", "1", "10", "100"]  # decades spanning 0.2 ms to 90 ms, labelled in ms
    medians = [args[1][0] for name, args in plt.calls if name == "scatter"]
    assert medians == pytest.approx([math.log10(c["latency"]["median"]) for c in cells])
    assert charts.latency_rows(cells)[0][0] == "portable" and len(charts.LATENCY_HEADERS) == 5
