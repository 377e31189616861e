"""The one seam between the wizard and the core.

Every call into `sme2tui` goes through `CoreServices`, so screens stay free of pipeline logic and tests
can swap in `ReplayServices`, which replays recorded event streams (deterministic snapshots) while the
rest of the UI runs unchanged. Heavy core modules are imported inside the methods: the first frame must
not wait for them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sme2tui.events import Event, from_json


@dataclass(frozen=True)
class DeviceLine:
    """One Android device as the Environment screen shows it."""

    serial: str
    verdict: str  # "sme2" / "sme-only" / "none" / "unknown"
    text: str


@dataclass(frozen=True)
class DevicesReport:
    devices: tuple[DeviceLine, ...] = ()
    unavailable: str = ""  # why no device could be listed ("no ADB server at …")


@dataclass(frozen=True)
class BuildOption:
    """A runner build the Build screen can offer, or explain why it cannot here."""

    key: str  # "host-native", "arm64" (the emulated target's), "host-pair", "android-pair"
    title: str
    available: bool
    detail: str
    built: str = ""  # path of an existing, current binary


@dataclass(frozen=True)
class ProgramFacts:
    """What a ready .pte is, read from the program itself (never from the user): its dtype and delegation."""

    dtype: str  # "fp32", "fp16", "int8", "int8-dynamic", "bf16", "unknown"
    delegation: str  # "xnnpack", "portable" (no delegate), or backends joined with "+"
    evidence: str  # how the dtype was decided


@dataclass(frozen=True)
class ModelChoice:
    """A model the user typed into the Model step, checked: the config entry and what it is in words.

    `program` holds a ready .pte's facts (dtype and delegation read from the program at once).
    """

    spec: dict[str, Any]
    what: str
    program: ProgramFacts | None = None


@dataclass(frozen=True)
class ExportFigures:
    """What one export produced, from its record (the same for a fresh export and a cache hit)."""

    delegation: str  # "80 nodes/1 graph", "none"
    seconds: float  # how long the export that made the cached program took


@dataclass
class RunEntry:
    """One run folder as the History screen lists it (plain data, no pydantic)."""

    path: Path
    name: str
    status: str
    models: list[str]
    target: str
    variants: list[str]
    headline: str
    comparison: str
    created: str


@dataclass
class LoadedRun:
    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    summary: dict[str, Any] | None = None
    report_exists: bool = False


class PipelineHandle(Protocol):
    """What the Run screen needs from a pipeline: its event stream, then its outcome."""

    def events(self) -> Iterator[Event]: ...

    @property
    def run_dir(self) -> Path | None: ...

    @property
    def status(self) -> str: ...

    def record_accepted(self, texts: Sequence[str]) -> None: ...


@dataclass
class _RealPipeline:
    pipeline: Any  # sme2tui.pipeline.Pipeline; imported lazily

    def events(self) -> Iterator[Event]:
        events: Iterator[Event] = self.pipeline.events()
        return events

    @property
    def run_dir(self) -> Path | None:
        run_dir: Path | None = self.pipeline.result.run_dir
        return run_dir

    @property
    def status(self) -> str:
        return str(self.pipeline.result.status)

    def record_accepted(self, texts: Sequence[str]) -> None:
        """Through the pipeline's own RunFolder: its in-memory manifest is the one that gets saved."""
        folder = self.pipeline.folder
        if folder is not None:
            folder.accept_warnings(list(texts))


def runners_dir(config_data: dict[str, Any]) -> Path:
    """Where runners are built and where the run step looks for them: the config's `runners_dir`, else the
    per-user default (the same rule as the pipeline's)."""
    from sme2tui.runners.location import runners_root

    return runners_root(config_data.get("runners_dir") or None)


def executorch_source() -> Path | None:
    """The ExecuTorch tree SME2 pairs build from: $EXECUTORCH_SOURCE_DIR, else the `sme2tui setup` clone."""
    import os

    from sme2tui.runners.source_tree import default_ref, default_source_dir

    if os.environ.get("EXECUTORCH_SOURCE_DIR"):
        return Path(os.environ["EXECUTORCH_SOURCE_DIR"])
    clone = default_source_dir(default_ref())
    return clone if clone.is_dir() else None


class CoreServices:
    """The real core. Every method either returns plain data quickly or an event iterator for a worker."""

    def doctor(self, output_root: Path) -> Iterator[Event]:
        from sme2tui.doctor import run_doctor

        return run_doctor(output_root)

    def devices(self) -> DevicesReport:
        from sme2tui.android.client import AndroidClient
        from sme2tui.android.errors import AndroidDeviceError
        from sme2tui.android.report import list_devices_report

        try:
            facts = list_devices_report(AndroidClient())
        except AndroidDeviceError as exc:
            # The adb checkpoint carries the fix; here one line says why there is nothing to list.
            return DevicesReport(unavailable=exc.what)
        if not facts:
            return DevicesReport(unavailable="ADB server is up, but no device is connected — connect a phone "
                                             "with USB debugging on, or `adb connect HOST:PORT`")
        lines = []
        for f in facts:
            name = " ".join(x for x in (f.manufacturer, f.model) if x) or f.state
            text = f"{name}: {f.error}" if f.error else f"{name} · {f.soc or 'SoC unknown'} · {f.sme_summary}"
            lines.append(DeviceLine(f.serial, f.sme, text))
        return DevicesReport(devices=tuple(lines))

    def build_options(self, root: Path, host: dict[str, Any]) -> list[BuildOption]:
        import os

        from sme2tui.runners.host import find_host_runner

        built = find_host_runner(root)
        options = [BuildOption(
            "host-native", "native host runner (sme2_runner, against the installed executorch wheel)", True,
            "links XNNPACK + portable kernels; takes seconds", str(built) if built else "")]
        options.append(self._arm64_option(root))
        sme = host.get("sme", "unknown")
        machine = host.get("machine", "?")
        source = executorch_source()
        no_source = "needs an ExecuTorch source tree: run `sme2tui setup` or set EXECUTORCH_SOURCE_DIR"
        if sme != "sme2":
            why = f"this {machine} host has no SME2 ({host.get('sme_detail', sme)})"
            options.append(BuildOption("host-pair", "SME2 on/off pair for this host", False, why))
        elif source is None:
            options.append(BuildOption("host-pair", "SME2 on/off pair for this host", False, no_source))
        else:
            options.append(BuildOption("host-pair", "SME2 on/off pair for this host", True,
                                       f"from {source}; about 1 GB and several minutes per variant"))
        ndk = next((os.environ[v] for v in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
                    if os.environ.get(v)), "")
        if not ndk:
            options.append(BuildOption("android-pair", "SME2 on/off pair for Android (arm64-v8a)", False,
                                       "Android NDK missing: install NDK r27+ and export ANDROID_NDK=/path/to/ndk"))
        elif source is None:
            options.append(BuildOption("android-pair", "SME2 on/off pair for Android (arm64-v8a)", False, no_source))
        else:
            options.append(BuildOption("android-pair", "SME2 on/off pair for Android (arm64-v8a)", True,
                                       f"NDK {ndk}, source {source}"))
        return options

    def _arm64_option(self, root: Path) -> BuildOption:
        """The emulated target's runner: cross-built, so it needs the cross compiler and the set-up emulator."""
        from sme2tui.runners.arm64 import find_arm64_runner

        title = "arm64 runner for the emulated target (SME2 on/off under QEMU)"
        problem = self.emulation_problem()
        if problem is not None:
            return BuildOption("arm64", title, False, problem)
        built = find_arm64_runner(root)
        return BuildOption("arm64", title, True, "cross-built against the aarch64 executorch wheel; takes seconds",
                           str(built) if built else "")

    def build(self, key: str, root: Path, cancel: threading.Event) -> Iterator[Event]:
        if key == "host-native":
            from sme2tui.runners.host import build_host_runner, host_build_dir

            return build_host_runner(host_build_dir(root), cancel=cancel)
        if key == "arm64":
            from sme2tui.runners.arm64 import arm64_build_dir, build_arm64_runner

            return build_arm64_runner(arm64_build_dir(root), cancel=cancel)
        import platform

        from sme2tui.runners.pairs import build

        source = executorch_source() or Path()
        if key == "android-pair":
            return build("android", source_dir=source, build_root=root, cancel=cancel)
        # On an SME2 Mac the host pair is a macOS build; elsewhere (Linux arm64) it is a host build.
        if platform.system() == "Darwin":
            return build("macos", source_dir=source, build_root=root, cancel=cancel)
        return build("host", source_dir=source, build_root=root, cancel=cancel)

    def export(self, config: Any, output_root: Path, config_dir: Path | None,
               cancel: threading.Event) -> Iterator[Event]:
        from sme2tui.export.stage import run_exports
        from sme2tui.pipeline import require_runtime

        require_runtime()
        log_dir = output_root / ".cache" / "tui"
        log_dir.mkdir(parents=True, exist_ok=True)
        return run_exports(config, cache_root=output_root / ".cache" / "exports", config_dir=config_dir,
                           log_path=log_dir / "export.log", cancel=cancel, results={})

    def check_model(self, text: str, config_dir: Path | None) -> ModelChoice:
        """A factory (`package.module:function`, its module found without importing it) or a ready .pte
        (a regular file with the ExecuTorch program identifier); ConfigError (what, where, fix) otherwise."""
        from pydantic import ValidationError

        from sme2tui.config import ModelSpec
        from sme2tui.errors import ConfigError
        from sme2tui.models.pte_file import check_program_file
        from sme2tui.run.stage import check_factory

        if text.lower().endswith(".pte") or "/" in text or text.startswith("~") or Path(text).exists():
            program = check_program_file(text)
            facts = self.program_facts(program.path)
            return ModelChoice({"pte": str(program.path)},
                               f"ready program {program.path.name} ({_size(program.size)}): {facts.dtype}, "
                               f"{_delegation_words(facts.delegation)}; runs as exported", facts)
        try:
            ModelSpec.model_validate({"factory": text})
        except ValidationError:
            raise ConfigError(f"`{text}` is neither a factory nor a .pte path", where="your model",
                              fix="write package.module:function (it returns (model, example_inputs)), or the "
                              "path of a .pte") from None
        check_factory(text, config_dir, where=f"factory `{text}`")
        return ModelChoice({"factory": text}, f"factory {text}")

    def program_facts(self, path: Path) -> ProgramFacts:
        """A ready program's dtype and delegation, read from the file (ConfigError when it cannot be read)."""
        from sme2tui.models.pte_info import read_program_info

        info = read_program_info(path)
        return ProgramFacts(info.dtype, info.delegation, info.dtype_evidence)

    def emulation_problem(self) -> str | None:
        """Why the emulated target cannot run here yet, with the fix (None: it can). Fast: no probe run."""
        from sme2tui.emulator.cross import find_cross_compiler
        from sme2tui.emulator.setup import load_emulator
        from sme2tui.errors import EnvironmentProblem

        try:
            find_cross_compiler()
        except EnvironmentProblem:
            return f"no aarch64 cross compiler: {CROSS_INSTALL}"
        try:
            load_emulator()
        except EnvironmentProblem as exc:
            return f"{exc.what}: press e on the Environment step (or `sme2tui setup emulator`)"
        return None

    def setup_emulator(self, cancel: threading.Event) -> Iterator[Event]:
        from sme2tui.emulator.setup import setup_emulator

        return setup_emulator(cancel)

    def planned_exports(self, config: Any) -> list[str]:
        """The programs an export of `config` makes or reuses (model/dtype/delegation), in order."""
        from sme2tui.export.stage import needed_exports

        return [key.subject for key, _spec in needed_exports(config)]

    def export_figures(self, folder: Path) -> ExportFigures | None:
        """The figures of the export recorded in `folder` (None when its record cannot be read)."""
        try:
            record = json.loads((folder / "export.json").read_text())
            delegation = record.get("delegation") or {}
            nodes, graphs = int(delegation.get("delegated_nodes", 0)), int(delegation.get("delegated_subgraphs", 0))
            seconds = float(record["export_seconds"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        took = f"{nodes} nodes/{graphs} graph{'s' if graphs != 1 else ''}" if graphs else "none"
        return ExportFigures(took, seconds)

    def pipeline(self, config: Any, *, config_source: str, config_dir: Path | None, output_root: Path,
                 resume: Path | None, cancel: threading.Event) -> PipelineHandle:
        from sme2tui.pipeline import Pipeline
        from sme2tui.run.folder import RunFolder

        folder = RunFolder.open(resume)[0] if resume is not None else None
        return _RealPipeline(Pipeline(config, config_source=config_source, config_dir=config_dir,
                                      output_root=output_root, resume=folder, cancel=cancel))

    def record_accepted_warnings(self, run_dir: Path, accepted: Sequence[str]) -> None:
        """The user's explicit "yes, I saw these warnings" goes into the manifest with the run."""
        from sme2tui.run.folder import RunFolder

        folder, _config = RunFolder.open(run_dir)
        folder.accept_warnings(list(accepted))

    def list_runs(self, output_root: Path) -> list[RunEntry]:
        entries = []
        if not output_root.is_dir():
            return []
        for path in sorted(output_root.iterdir(), reverse=True):
            manifest_path = path / "manifest.json"
            if path.name.startswith(".") or not manifest_path.is_file():
                continue
            try:
                manifest = json.loads(manifest_path.read_text())
                config = json.loads((path / "config.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            entries.append(_run_entry(path, manifest, config))
        # Newest first by when each run was made: a folder's name is not its age ("reference", a renamed copy).
        return sorted(entries, key=lambda e: (e.created, e.name), reverse=True)

    def load_run(self, run_dir: Path) -> LoadedRun:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        config = json.loads((run_dir / "config.json").read_text())
        summary_path = run_dir / "analysis" / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        return LoadedRun(run_dir, manifest, config, summary, (run_dir / "analysis" / "report.md").is_file())


# The line a Debian/Ubuntu user types; the Guide and `sme2tui doctor` say what to do elsewhere.
CROSS_INSTALL = "`apt-get install g++-aarch64-linux-gnu` (Debian/Ubuntu; elsewhere see the Guide)"


def _delegation_words(delegation: str) -> str:
    if delegation == "portable":
        return "no delegate (portable kernels)"
    return f"delegated to {delegation}"


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def headline(pairs: list[dict[str, Any]], cells: dict[str, Any] | None = None) -> str:
    """The first pair's speedup as one short phrase: "82.7× (65.9–104)", with "noisy"/"very noisy" when a side's
    CV is over the warning limits and "inconclusive" when the interval says no difference: a list of runs
    must not make a shaky number look as solid as the others."""
    from sme2tui.analysis.stats import CV_NOISY, CV_WARN

    if not pairs:
        return "—"
    pair = pairs[0]
    s = pair.get("speedup") or {}
    value = s.get("value")
    if not isinstance(value, (int, float)):
        return "—"
    text = f"{value:.2f}× ({s.get('ci_low', 0):.3g}–{s.get('ci_high', 0):.3g})"
    if s.get("verdict") == "inconclusive":
        text += " inconclusive"
    cvs = [_cv((cells or {}).get(str(pair.get(f"{side}_cell")))) for side in ("baseline", "candidate")]
    worst = max((cv for cv in cvs if isinstance(cv, (int, float))), default=0.0)
    if worst > CV_WARN:
        text += " very noisy" if worst > CV_NOISY else " noisy"
    return text


def _cv(cell: object) -> object:
    latency = cell.get("latency") if isinstance(cell, dict) else None
    return latency.get("cv") if isinstance(latency, dict) else None


def _run_entry(path: Path, manifest: dict[str, Any], config: dict[str, Any]) -> RunEntry:
    pairs: list[dict[str, Any]] = []
    cells: dict[str, Any] = {}
    summary_path = path / "analysis" / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
            pairs, cells = summary.get("pairs", []), summary.get("cells", {})
        except (OSError, json.JSONDecodeError, AttributeError):  # a damaged summary: listed without a figure
            pairs, cells = [], {}
        if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
            pairs = []
    from screens.configedit import model_id

    models = [model_id(m) for m in config.get("models", [])]
    comparison = (manifest.get("comparison") or {}).get("label", "")
    target = str(manifest.get("target", "?"))
    # An emulated run has no speedup to list, by design: say what it holds instead of a bare dash.
    shown = "evidence (emulated)" if target == "emulated" else headline(pairs, cells if isinstance(cells, dict) else {})
    return RunEntry(path=path, name=path.name, status=str(manifest.get("status", "?")), models=models,
                    target=target, variants=[str(v.get("name")) for v in config.get("variants", [])],
                    headline=shown, comparison=comparison, created=str(manifest.get("created_utc", "")))


# --- replay (tests and demos): recorded event streams instead of the live core -----------------------


def read_events(path: Path) -> list[Event]:
    return [from_json(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class _ReplayPipeline:
    recorded: list[Event]
    run_dir_value: Path | None
    stop_after: int | None = None
    final_status: str = "complete"

    def events(self) -> Iterator[Event]:
        from sme2tui.errors import Interrupted

        for index, event in enumerate(self.recorded):
            if self.stop_after is not None and index >= self.stop_after:
                self.final_status = "interrupted"
                raise Interrupted("interrupted; completed cells are kept", where=str(self.run_dir_value))
            yield event

    @property
    def run_dir(self) -> Path | None:
        return self.run_dir_value

    @property
    def status(self) -> str:
        return self.final_status

    def record_accepted(self, texts: Sequence[str]) -> None:
        if self.run_dir_value is not None:
            CoreServices().record_accepted_warnings(self.run_dir_value, texts)


@dataclass
class ReplayServices(CoreServices):
    """The core's file-reading parts stay real; long steps replay recorded events."""

    doctor_events: list[Event] = field(default_factory=list)
    run_events: list[Event] = field(default_factory=list)
    run_dir: Path | None = None
    export_events: list[Event] = field(default_factory=list)
    build_events: list[Event] = field(default_factory=list)
    stop_run_after: int | None = None
    devices_report: DevicesReport = field(default_factory=lambda: DevicesReport(
        unavailable="no ADB server at 127.0.0.1:5037 — start one with `adb start-server`"))
    options: list[BuildOption] | None = None
    setup_events: list[Event] = field(default_factory=list)
    # Why emulation cannot run (None: it can); tests set it, the real check reads this machine.
    emulation: str | None = "SME2 emulation is not set up on this machine: press e on the Environment step"
    calls: list[str] = field(default_factory=list)

    def doctor(self, output_root: Path) -> Iterator[Event]:
        self.calls.append("doctor")
        return iter(self.doctor_events)

    def devices(self) -> DevicesReport:
        return self.devices_report

    def build_options(self, root: Path, host: dict[str, Any]) -> list[BuildOption]:
        if self.options is not None:
            return self.options
        return super().build_options(root, host)

    def build(self, key: str, root: Path, cancel: threading.Event) -> Iterator[Event]:
        self.calls.append(f"build:{key}")
        return iter(self.build_events)

    def emulation_problem(self) -> str | None:
        return self.emulation

    def setup_emulator(self, cancel: threading.Event) -> Iterator[Event]:
        self.calls.append("setup-emulator")
        return _replay_cancellable(self.setup_events, cancel)

    def export(self, config: Any, output_root: Path, config_dir: Path | None,
               cancel: threading.Event) -> Iterator[Event]:
        self.calls.append("export")
        return iter(self.export_events)

    def pipeline(self, config: Any, *, config_source: str, config_dir: Path | None, output_root: Path,
                 resume: Path | None, cancel: threading.Event) -> PipelineHandle:
        self.calls.append(f"pipeline:resume={resume.name if resume else None}")
        return _ReplayPipeline(list(self.run_events), resume or self.run_dir, self.stop_run_after)


def _replay_cancellable(events: list[Event], cancel: threading.Event) -> Iterator[Event]:
    """Recorded events, stopping like the core does when `cancel` is set (Interrupted)."""
    from sme2tui.errors import Interrupted

    for event in events:
        if cancel.is_set():
            raise Interrupted("cancelled", fix="run it again")
        yield event
