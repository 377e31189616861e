"""The whole job, step after step, as one event stream: doctor → export → run → analyze → report.

Front-ends (the headless CLI, the wizard) iterate `Pipeline.events()` and render what comes out; the
pipeline itself records every event in the run folder (`logs/events.jsonl`) and every checkpoint in the
manifest, and leaves the folder in a truthful state however it stops (done, failed, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sme2tui.analysis.stage import analyze_run
from sme2tui.config import RunConfig
from sme2tui.doctor import check_package
from sme2tui.errors import ConfigError, EnvironmentProblem, Interrupted, Sme2Error
from sme2tui.events import ArtifactWritten, Checkpoint, Event, LogLine, StepFinished, StepStarted, to_json
from sme2tui.exit_codes import ExitCode
from sme2tui.export.stage import ExportedProgram, ExportKey, run_exports
from sme2tui.fileio import write_text_atomic
from sme2tui.report.markdown import render_report
from sme2tui.run.cells import plan_cells
from sme2tui.run.folder import RunFolder, resume_hint, utc_now
from sme2tui.run.stage import preflight, run_cells
from sme2tui.storage import is_user_oserror, storage_error


@dataclass
class PipelineResult:
    exit_code: ExitCode = ExitCode.OK
    run_dir: Path | None = None
    summary: dict[str, Any] | None = None
    failed_checkpoints: list[Checkpoint] = field(default_factory=list)
    status: str = "running"


def require_runtime() -> None:
    """torch and executorch must be installed (checked from their files, without importing them)."""
    for name, pin in (("torch", "2.13.0"), ("executorch", "1.5.1")):
        check = check_package(name, pin)
        if check.status == "fail":
            raise EnvironmentProblem(check.detail, where="python environment", fix=check.fix)


class Pipeline:
    def __init__(self, config: RunConfig, *, config_source: str | None, config_dir: Path | None,
                 output_root: Path, resume: RunFolder | None = None, categories: Path | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.config = config
        self.config_source = config_source
        self.config_dir = config_dir
        self.output_root = output_root
        self.folder = resume
        self.resuming = resume is not None
        self.categories = categories
        self.cancel = cancel or threading.Event()
        self.result = PipelineResult()

    def _record(self, events: Iterator[Event]) -> Iterator[Event]:
        """Mirror every event into the run folder before handing it on."""
        assert self.folder is not None
        path = self.folder.root / "logs" / "events.jsonl"
        try:
            log = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise storage_error(exc, action="open the run's event log", path=path,
                                after=resume_hint(self.folder.root)) from None
        try:
            for event in events:
                try:
                    log.write(to_json(event) + "\n")
                    log.flush()
                except OSError as exc:
                    raise storage_error(exc, action="write the run's event log", path=path,
                                        after=resume_hint(self.folder.root)) from None
                if isinstance(event, Checkpoint):
                    self.folder.add_checkpoint({"step": event.step, "name": event.name, "status": event.status,
                                                "detail": event.detail, "fix": event.fix, "subject": event.subject})
                    if event.status == "fail":
                        self.result.failed_checkpoints.append(event)
                yield event
        finally:
            with contextlib.suppress(OSError):  # a full disk may refuse the last flush; the manifest says so
                log.close()

    def _doctor(self) -> Generator[Event, None, list[Checkpoint]]:
        """The environment check, first. A failed check that every run needs stops here, before any work."""
        from sme2tui.doctor import run_doctor

        checks: list[Checkpoint] = []
        adb_server = getattr(self.config.target, "adb_server", None)  # an Android config's own server
        for event in run_doctor(self.output_root, target=self.config.target.kind, adb_server=adb_server,
                                runners_dir=self.config.runners_path):
            if isinstance(event, Checkpoint):
                checks.append(event)
            yield event
        blocking = [c for c in checks if c.status == "fail" and c.name in ("python", "torch", "executorch", "disk")]
        if blocking:
            first = blocking[0]
            if first.name == "disk" and "is a file, not a folder" in first.detail:
                # A usage error (exit 2, as the README says), not the machine's: the path names a file.
                raise ConfigError(first.detail, where=str(self.output_root), fix=first.fix)
            raise EnvironmentProblem(first.detail, where=f"doctor: {first.name}", fix=first.fix)
        return checks

    def _resume(self, folder: RunFolder) -> Iterator[Event]:
        """Take over an interrupted (or stopped) run: note a stale lock, re-queue cells whose files are gone."""
        entry: dict[str, Any] = {"utc": utc_now()}
        note = folder.folder_lock.note if folder.folder_lock is not None else None
        if note:
            entry["lock"] = note
            yield LogLine("run", note, "warning", "sme2tui")
        damaged = folder.damaged_cells(plan_cells(self.config))
        for cell_id, reason in damaged.items():
            moved = folder.requeue(cell_id, reason)
            aside = f"; its remaining files were moved to {moved}" if moved else ""
            yield LogLine("run", f"cell {cell_id} was done, but {reason}: measuring it again{aside}", "warning",
                          "sme2tui")
        if damaged:
            entry["remeasured"] = damaged
        done = sum(1 for c in folder.manifest["cells"].values() if c.get("status") == "done")
        entry["cells_already_done"] = done
        folder.manifest["resumed"].append(entry)
        folder.make_reserve()
        folder.update(status="running")
        yield LogLine("run", f"resuming {folder.root}: {done} cells already done", "info", "sme2tui")

    def events(self) -> Generator[Event, None, None]:
        require_runtime()
        preflight(self.config, self.config_dir)
        if self.folder is not None:
            self.folder.lock("resume")  # a live run in this folder is refused before any work
        try:
            yield from self._events()
        finally:
            if self.folder is not None:
                self.folder.unlock()

    def _events(self) -> Generator[Event, None, None]:
        doctor_checks = yield from self._doctor()
        if self.folder is None:
            self.folder = RunFolder.create(self.config, output_root=self.output_root, config_source=self.config_source)
            self.result.run_dir = self.folder.root
            yield LogLine("run", f"run folder: {self.folder.root}", "info", "sme2tui")
        folder = self.folder
        self.result.run_dir = folder.root
        try:
            if self.resuming:
                yield from self._resume(folder)
            # The environment as found (kept apart from the run's warnings: an absent ADB server is not news
            # for a host run).
            folder.update(environment=[{"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}
                                       for c in doctor_checks])
            yield from self._record(self._steps(folder))
            folder.finish(self.result.status)  # after the event log is closed, so its hash is final
        except GeneratorExit:
            # The consumer stopped iterating (Ctrl-C while it was busy with an event, a closed window):
            # the generator is suspended at a yield, so this is where the interruption lands.
            self._stop(folder, "interrupted")
            self.result.exit_code = ExitCode.INTERRUPTED
            raise
        except (KeyboardInterrupt, Interrupted):
            self._stop(folder, "interrupted")
            self.result.exit_code = ExitCode.INTERRUPTED
            raise self.interrupted_error() from None
        except Sme2Error as exc:
            self._stop(folder, "failed", exc)
            raise
        except OSError as exc:
            if not is_user_oserror(exc):
                self._stop(folder, "failed")
                raise
            error = storage_error(exc, action="continue the run", after=resume_hint(folder.root))
            self._stop(folder, "failed", error)
            raise error from None
        except BaseException:
            self._stop(folder, "failed")
            raise

    def interrupted_error(self) -> Interrupted:
        where = str(self.result.run_dir) if self.result.run_dir else "the run"
        return Interrupted("interrupted; completed cells are kept", where=where,
                           fix=f"continue with: sme2tui --auto --resume {where}")

    def _stop(self, folder: RunFolder, status: str, error: Sme2Error | None = None) -> None:
        for cell in folder.manifest["cells"].values():
            if cell.get("status") in ("running", "queued"):
                cell["status"] = "interrupted" if status == "interrupted" else "not-run"
        self.result.status = status
        record = {**error.to_dict(), "utc": utc_now()} if error is not None else None
        # If even the reserve cannot make room, the error still reaches the user; the manifest keeps its last
        # state, and --resume redoes whatever it does not list as done.
        with contextlib.suppress(Sme2Error, OSError):
            folder.finish(status, record)

    def _build_host_runner(self) -> Iterator[Event]:
        """Build the native host runner when a host variant wants it and it is missing or stale.

        `auto` variants fall back to the Python runtime if the build cannot happen (say no compiler);
        that is a warning, recorded in the manifest. `native` variants make it an error.
        """
        from sme2tui.errors import Sme2Error
        from sme2tui.runners.host import build_host_runner, find_host_runner, host_build_dir

        wanted = {v.runner for v in self.config.variants} & {"auto", "native"}
        runners_dir = self.config.runners_path
        if self.config.target.kind != "host" or not wanted or find_host_runner(runners_dir) is not None:
            return
        try:
            yield from build_host_runner(host_build_dir(runners_dir), cancel=self.cancel, reuse_current=True)
        except Sme2Error as exc:
            if "native" in wanted:
                raise
            yield Checkpoint("build", "native host runner", "warn",
                             f"could not build the native runner ({exc.what}); using the ExecuTorch Python runtime",
                             exc.fix or "see `sme2tui doctor`")

    def _build_arm64_runner(self) -> Iterator[Event]:
        """The emulated target's arm64 runner, built (seconds) when missing or stale."""
        from sme2tui.runners.arm64 import arm64_build_dir, build_arm64_runner, find_arm64_runner

        runners_dir = self.config.runners_path
        if self.config.target.kind == "emulated" and find_arm64_runner(runners_dir) is None:
            yield from build_arm64_runner(arm64_build_dir(runners_dir), cancel=self.cancel, reuse_current=True)

    def _steps(self, folder: RunFolder) -> Iterator[Event]:
        yield from self._build_host_runner()
        yield from self._build_arm64_runner()
        programs: dict[ExportKey, ExportedProgram] = {}
        export_ok = True
        for event in run_exports(self.config, cache_root=self.output_root / ".cache" / "exports",
                                 config_dir=self.config_dir, log_path=folder.root / "logs" / "export.log",
                                 cancel=self.cancel, results=programs):
            if isinstance(event, StepFinished):
                export_ok = event.ok
            yield event
        run_ok = True
        for event in run_cells(self.config, folder, programs, cancel=self.cancel):
            if isinstance(event, StepFinished):
                run_ok = event.ok
            yield event
        summary: dict[str, Any] | None = None
        analyze_ok = True
        for event in analyze_run(folder, self.config, categories=self.categories):
            if isinstance(event, StepFinished):
                analyze_ok = event.ok
                summary = event.data.get("summary")
            yield event
        if summary is not None:
            folder.record_analysis(summary)  # the run's result as it finished; analysis/ stays the source
        yield StepStarted("report", "Write the report")
        if summary is not None:
            report = folder.root / "analysis" / "report.md"
            try:
                write_text_atomic(report, render_report(summary, folder.manifest))
            except OSError as exc:
                raise storage_error(exc, action="write the report", path=report,
                                    after=resume_hint(folder.root)) from None
            yield ArtifactWritten("report", "analysis/report.md", "report")
        self.result.summary = summary
        cells = folder.manifest["cells"].values()
        all_done = all(c.get("status") == "done" for c in cells)
        status = "complete" if all_done else "partial"
        self.result.status = status
        yield StepFinished("report", ok=True, summary=f"run {status}: {folder.root.name}")
        if not export_ok:
            self.result.exit_code = ExitCode.EXPORT
        elif not run_ok:
            self.result.exit_code = ExitCode.RUN
        elif not analyze_ok:
            self.result.exit_code = ExitCode.ANALYSIS
        elif self.result.failed_checkpoints:
            self.result.exit_code = ExitCode.CHECKPOINT
