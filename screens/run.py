"""Step 4: the run — per-cell progress (queued → running with iteration counts → done), cancel, resume."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, ProgressBar, Static

from screens.base import JobDone, StepScreen, error_parts
from screens.configedit import model_id, target_kind
from screens.evidence import TIMING_CHECKS
from screens.widgets.table import Table
from sme2tui.errors import ConfigError
from sme2tui.events import CellStatus, Checkpoint, Event, StepStarted
from sme2tui.run.folder import RunFolder

if TYPE_CHECKING:
    from pathlib import Path

    from textual.app import ComposeResult

    from screens.services import PipelineHandle

STATE_STYLE = {"queued": "dim", "running": "bold yellow", "done": "green", "failed": "bold red", "skipped": "dim"}


class RunScreen(StepScreen):
    STEP = "run"
    EMPTY_CHECKS = "press r to run every cell (export → run → analyze → report)"
    TODO = "run the cells first: r."
    RETRY = "r: run again"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run", id="run.start"),
        Binding("u", "resume", "Resume", id="run.resume"),
        Binding("c", "cancel", "Cancel", id="run.cancel"),
        *StepScreen.COMMON_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.handle_: PipelineHandle | None = None
        self.run_dir: Path | None = None
        self.cells: dict[str, CellStatus] = {}
        self.stage = ""
        self.shown_config: dict[str, Any] | None = None  # a resumed run's own config, else the wizard's

    def compose_main(self) -> ComposeResult:
        yield Static("", id="runinfo")
        # Hidden until cells are known: an indeterminate bar would animate with nothing to say.
        bar = ProgressBar(total=1, show_eta=False, id="overall")
        bar.display = False
        yield bar
        yield Table(id="cells", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#cells", DataTable)
        table.add_column("cell", key="cell")
        table.add_column("state", key="state")
        # The round and its seconds (the live part) before the counts: the bar and the line above sum the counts,
        # and at 80 columns (or beside the guide) the last column is the one that scrolls out of view.
        table.add_column("detail", key="detail")
        table.add_column("iterations", key="iterations")
        table.border_title = "cells"
        self.show_info()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_info()

    def show_info(self) -> None:
        data = self.shown_config or self.state.config_data
        models = ", ".join(model_id(m) for m in data.get("models", []))
        variants = ", ".join(str(v.get("name")) for v in data.get("variants", []))
        target = target_kind(data)
        text = Text()
        text.append(f"{models} × {', '.join(data.get('dtypes', ['fp32']))} × {variants}", style="bold")
        text.append(f" · warmup {data.get('warmup', 3)} + {data.get('iterations', 20)} iterations · {target}")
        if target == "emulated":
            text.append(" (QEMU): evidence, not speed", style="yellow")
        if self.run_dir is not None:
            text.append(f"\nrun folder: {self.run_dir.name}", style="dim")
            text.append(f" · {self.stage}" if self.stage else "", style="dim")
            done, total = self._iterations()
            if total:
                finished = sum(1 for c in self.cells.values() if c.state in ("done", "failed", "skipped"))
                text.append(f" · {done}/{total} iterations, {finished}/{len(self.cells)} cells", style="dim")
        elif self.state.resume_dir is not None:
            text.append(f"\ninterrupted run to resume: {self.state.resume_dir.name} (press u)", style="yellow")
        self.query_one("#runinfo", Static).update(text)

    def _iterations(self) -> tuple[int, int]:
        """Measured iterations so far and in all, over every cell: what the bar shows (cells finish
        together at the end of their last round, so counting finished cells sat at 0% until then)."""
        done = total = 0
        for cell in self.cells.values():
            if cell.state == "skipped":
                continue
            total += cell.iterations_total
            done += cell.iterations_total if cell.state in ("done", "failed") else cell.iterations_done
        return done, total

    # --- actions ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Keys appear when they can act: the footer keeps its room (80 columns) for what matters now.
        if action == "cancel":
            return bool(self.busy)
        if action == "run":
            return not self.busy
        if action == "resume":
            return self.state.resume_dir is not None and not self.busy
        return super().check_action(action, parameters)

    def action_run(self) -> None:
        if self.busy:
            return
        data = self.state.config_data
        models, dtypes = len(data.get("models", [])), len(data.get("dtypes", []))
        variants, threads = len(data.get("variants", [])), len(data.get("threads", [1]))
        ready = sum(1 for m in data.get("models", []) if m.get("pte"))
        cells = ((models - ready) * dtypes + ready) * variants * threads  # a ready program runs in its own dtype
        plan = (f"{models} model(s) × {dtypes} dtype(s) × {variants} variant(s) × {threads} thread setting(s), "
                f"warmup {data.get('warmup', 3)} + {data.get('iterations', 20)} iterations each")
        if target_kind(data) == "emulated":
            problem = self.services.emulation_problem()
            if problem is not None:
                # Said before anything starts: the run would stop at its preflight with the same reason.
                self.reset_checks()
                self.add_check(Checkpoint("run", "SME2 emulation", "fail", "the emulated target cannot run here yet",
                                          problem))
                self.refresh_checks()
                return
            self.confirm(f"Run {cells} cell{'s' if cells != 1 else ''} on the emulated Arm CPU?\n{plan}, under QEMU "
                         "with SME2 on and off (the arm64 runner is built first if needed). Emulated rounds take "
                         "seconds to minutes; the answer is which kernels ran and the numerics, never a speedup.",
                         lambda: self.start_run(None))
            return
        self.confirm(f"Run {cells} cell{'s' if cells != 1 else ''}?\n{plan}, then analysis and report.",
                     lambda: self.start_run(None))

    def action_resume(self) -> None:
        resume = self.state.resume_dir
        if resume is not None and not self.busy:
            self.confirm(f"Resume {resume.name}?\nIts finished cells are kept; the rest run with the run's own "
                         "config.", lambda: self.start_run(resume))

    def start_run(self, resume: Path | None) -> None:
        if self.busy:
            return
        try:
            if resume is None:
                config = self.state.config()
                self.shown_config = None
            else:
                # A resumed run continues with its own config, whatever the wizard holds now.
                config = RunFolder.open(resume)[1]
                self.shown_config = json.loads(config.canonical_json())
        except ConfigError as exc:
            self.reset_checks()
            self.add_check(Checkpoint("run", "config", "fail", exc.what, exc.fix or ""))
            self.refresh_checks()
            return
        self.reset_checks()
        self.cells.clear()
        self.query_one("#cells", DataTable).clear()
        self.query_one("#overall", ProgressBar).display = False
        self.run_dir = None
        self.stage = ""
        self.state.run_dir = None
        self.log_pane.clear()
        cancel = threading.Event()
        handle = self.services.pipeline(
            config, config_source=self.state.config_source if resume is None else str(resume / "config.json"),
            config_dir=self.state.config_dir if resume is None else None,
            output_root=self.state.output_root if resume is None else resume.parent, resume=resume,
            cancel=cancel)
        self.handle_ = handle
        self.start_job("run", handle.events, cancel=cancel)
        self.show_info()

    def action_cancel(self) -> None:
        if self.busy:
            self.confirm("Cancel the run?\nThe current cell stops; completed cells are kept and u resumes.",
                         self._cancel_now)

    def _cancel_now(self) -> None:
        if self.busy:
            self.cancel.set()
            self.log_pane.add_lines(["cancelling: the current cell stops, completed cells are kept…"])

    # --- events ----------------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if self.run_dir is None and self.handle_ is not None and self.handle_.run_dir is not None:
            self._run_folder_known(self.handle_.run_dir)
        if isinstance(event, StepStarted):
            self.stage = event.title
            self.show_info()
        elif isinstance(event, CellStatus):
            self._cell(event)

    def add_check(self, check: Checkpoint, *, blocking: bool = True) -> None:
        data = self.shown_config or self.state.config_data
        if target_kind(data) == "emulated" and check.name in TIMING_CHECKS:
            blocking = False  # emulated time is not the answer: its quality does not hold the step
        super().add_check(check, blocking=blocking)

    def _run_folder_known(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_pane.mirror_to(run_dir / "logs" / "tui.log")
        if self.state.accepted_warnings and self.handle_ is not None:
            self.handle_.record_accepted(self.state.accepted_warnings)
        self.show_info()

    def _cell(self, event: CellStatus) -> None:
        table = self.query_one("#cells", DataTable)
        previous = self.cells.get(event.cell_id)
        if previous is not None and event.state == "failed" and not event.iterations_total:
            # A failure carries no counts: keep how far the cell got, and its size in the bar (which would
            # otherwise shrink and jump forward).
            event = dataclasses.replace(event, iterations_done=previous.iterations_done,
                                        iterations_total=previous.iterations_total)
        self.cells[event.cell_id] = event
        iterations = f"{event.iterations_done}/{event.iterations_total}" if event.iterations_total else ""
        state = Text(event.state, style=STATE_STYLE.get(event.state, ""))
        if event.cell_id in table.rows:
            table.update_cell(event.cell_id, "state", state, update_width=True)
            table.update_cell(event.cell_id, "iterations", iterations, update_width=True)
            table.update_cell(event.cell_id, "detail", event.detail, update_width=True)
        else:
            table.add_row(event.cell_id, state, event.detail, iterations, key=event.cell_id)
        done, total = self._iterations()
        bar = self.query_one("#overall", ProgressBar)
        bar.display = True
        bar.update(total=max(1, total), progress=done)
        self.show_info()

    def warnings_accepted(self, texts: list[str]) -> None:
        if self.handle_ is not None and self.run_dir is not None:
            self.handle_.record_accepted(texts)

    def job_done(self, done: JobDone) -> None:
        handle = self.handle_
        if handle is not None and handle.run_dir is not None and self.run_dir is None:
            self._run_folder_known(handle.run_dir)
        status = handle.status if handle is not None else "failed"
        self.state.run_dir = self.run_dir
        if done.interrupted:
            self.state.resume_dir = self.run_dir
            self.add_check(Checkpoint("run", "run", "fail", "interrupted; completed cells are kept",
                                      "press u to resume (or from History)"))
        elif not done.ok:
            first, fix = error_parts(done, "the run failed")
            # The error's own fix when it has one (it says what to change), then the key that runs again.
            self.add_check(Checkpoint("run", "run", "fail", first,
                                      f"{fix}; then press r" if fix else "read the log above, fix, press r"))
        elif status != "complete":
            self.state.resume_dir = self.run_dir
            self.add_check(Checkpoint("run", "cells", "fail", f"run {status}: not every cell was measured",
                                      "see the failed cells in the log; press u to retry them"))
        else:
            self.state.resume_dir = None
            self.add_check(Checkpoint("run", "run", "pass", f"every cell measured and analyzed ({status})"))
        self.finished = done.ok and status == "complete"
        self.stage = status if done.ok else ("interrupted" if done.interrupted else "failed")
        self.show_info()
        self.wizard.run_finished(self.run_dir)
