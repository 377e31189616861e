"""The frame every wizard step shares: trail, why-line, step content, checkpoints, guide, live log.

Long work runs in a thread worker that iterates a core generator and appends events to a queue; a 20 Hz
timer on the UI side drains the queue in batches. Batching keeps the UI responsive when a build or a
runner floods the log, and the queue keeps events in order with the job's own end marker.
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Input, Static

from screens.confirm import ask
from screens.guide import GUIDE, WHY
from screens.widgets.checklist import CheckList, CheckRow, warning_text
from screens.widgets.footer import StepFooter
from screens.widgets.stepbar import STEPS, StepBar
from screens.widgets.steplog import StepLog
from sme2tui.errors import Interrupted, Sme2Error
from sme2tui.events import (
    ArtifactWritten,
    CellStatus,
    Checkpoint,
    Event,
    LogLine,
    Progress,
    StepFinished,
    StepStarted,
)

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.widget import Widget

    from screens.app import Sme2App
    from screens.services import CoreServices
    from screens.state import WizardState

DRAIN_BATCH = 5000


@dataclass(frozen=True)
class JobDone:
    """End marker a worker appends after the last event of its job."""

    name: str
    ok: bool
    error: str = ""
    interrupted: bool = False


def error_parts(done: JobDone, default: str) -> tuple[str, str]:
    """(what, fix) of a failed job from its rendered error (Sme2Error.render: "error: …", "  fix:   …");
    `default` when it says nothing, and an empty fix when it has none (the caller words its own)."""
    lines = done.error.splitlines()
    what = lines[0].removeprefix("error: ") if lines else default
    fix = next((line.split("fix:", 1)[1].strip() for line in lines if line.lstrip().startswith("fix:")), "")
    return what, fix


def format_event(event: Event) -> str | None:
    """The log line for an event (None: nothing worth a line)."""
    if isinstance(event, StepStarted):
        return f"== {event.title}"
    if isinstance(event, LogLine):
        prefix = {"warning": "warning: ", "error": "error: "}.get(event.level, "")
        source = f"[{event.source}] " if event.source else ""
        return f"{source}{prefix}{event.text}"
    if isinstance(event, Checkpoint):
        subject = f" [{event.subject}]" if event.subject else ""
        return f"{event.status}: {event.name}{subject}: {event.detail}"
    if isinstance(event, ArtifactWritten):
        return f"wrote {event.kind}: {event.path}"
    if isinstance(event, StepFinished):
        return f"{'done' if event.ok else 'finished with problems'}: {event.summary}"
    if isinstance(event, CellStatus) and event.state in ("done", "failed", "skipped"):
        return f"cell {event.cell_id}: {event.state}" + (f" ({event.detail})" if event.detail else "")
    if isinstance(event, Progress) and event.label:
        # "[1/2] exporting b" read as "item 1 of 2" while it meant "1 done": say which it is.
        return event.label if event.done >= event.total else f"{event.label} ({event.done} of {event.total} done)"
    return None


class StepScreen(Screen[None]):
    """Subclasses set STEP, compose their content in `compose_main`, and react to events in `handle`."""

    STEP: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    EMPTY_CHECKS: ClassVar[str] = "no checkpoints yet"
    # What opens Next when the step's work has not run yet, and how to try again after a fix.
    TODO: ClassVar[str] = ""
    RETRY: ClassVar[str] = ""

    # Each step lists its own keys first and then these, so at 80 columns the footer starts with what
    # the step is about (Run, Cancel, Export…) rather than with the keys every step shares.
    COMMON_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "next", "Next", id="step.next"),
        Binding("a", "accept_warnings", "Accept", id="step.accept"),
        Binding("p", "previous", "Back", id="step.previous"),
        Binding("g", "toggle_guide", "Guide", id="step.guide"),
        Binding("escape", "leave_field", "Leave field", id="step.leave-field"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # 80 columns: the guide replaces the step content on demand; from 120: beside it.
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        # Below 30 rows a step may drop what only repeats (see app.tcss: the Analyze charts need the rows).
        self.VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
        self.checks: dict[tuple[str, str], CheckRow] = {}
        self.finished = False  # the step's work completed (checkpoints are final)
        self.busy = False
        self.cancel = threading.Event()
        self._queue: deque[Event | JobDone] = deque()
        self._focus_before_guide: Widget | None = None  # what had the keys when the guide replaced the step

    # --- access to the app -----------------------------------------------------------------------------

    @property
    def wizard(self) -> Sme2App:
        return cast("Sme2App", self.app)

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    @property
    def services(self) -> CoreServices:
        return self.wizard.services

    # --- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP, id="stepbar")
        yield Static(WHY[self.STEP], id="why")
        with Horizontal(id="body"):
            with VerticalScroll(id="main"):
                yield from self.compose_main()
                yield CheckList(id="checks")
            with VerticalScroll(id="guide"):  # focusable: arrows and PgUp/PgDn scroll it from the keyboard
                # Rich's Markdown renders synchronously (Textual's Markdown widget mounts blocks later).
                yield Static(RichMarkdown(GUIDE[self.STEP]), id="guide-text")
        # Says, at all times, whether Next is open and what opens it (a refused Next was silent before).
        yield Static("", id="gate")
        yield StepLog(id="log")
        yield StepFooter(compact=True)

    def compose_main(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.set_interval(0.05, self._drain)
        self.refresh_checks()

    def on_screen_resume(self) -> None:
        self.query_one(StepBar).show(self.state.passed)
        self.refresh_bindings()

    @property
    def log_pane(self) -> StepLog:
        return self.query_one(StepLog)

    # --- jobs ------------------------------------------------------------------------------------------

    def start_job(self, name: str, make_events: Callable[[], Iterator[Event]],
                  cancel: threading.Event | None = None) -> None:
        """Run `make_events()` in a thread; its events arrive in `handle` on the UI thread, in order.

        `cancel` is the Event the core step watches (pass it when the step object was built with it)."""
        self.cancel = cancel or threading.Event()
        self.busy = True
        self.wizard.job_started(self.cancel)
        self.refresh_bindings()
        self.show_gate()
        self._run_job(name, make_events, self.cancel)

    @work(thread=True, group="step-job")
    def _run_job(self, name: str, make_events: Callable[[], Iterator[Event]], cancel: threading.Event) -> None:
        try:
            for event in make_events():
                self._queue.append(event)
        except Interrupted as exc:
            self._queue.append(JobDone(name, False, exc.render(), interrupted=True))
        except Sme2Error as exc:
            self._queue.append(JobDone(name, False, exc.render()))
        except Exception:  # a bug in the core or here: show it, keep the app alive
            self._queue.append(JobDone(name, False, "internal error:\n" + traceback.format_exc()))
        else:
            self._queue.append(JobDone(name, True))
        finally:
            self.wizard.job_stopped(cancel)

    def feed(self, events: list[Event]) -> None:
        """Render events as if a job had produced them (replays, tests)."""
        self._queue.extend(events)
        self._drain()

    def _drain(self) -> None:
        if not self._queue:
            return
        lines: list[str] = []
        changed_checks = False
        count = 0
        while self._queue and count < DRAIN_BATCH:
            item = self._queue.popleft()
            count += 1
            if isinstance(item, JobDone):
                self.log_pane.add_lines(lines)
                lines = []
                if item.error:
                    self.log_pane.add_lines(item.error.splitlines())
                self.busy = False
                self.job_done(item)
                changed_checks = True
                continue
            line = format_event(item)
            if line is not None:
                lines.append(line)
            if isinstance(item, Checkpoint):
                self.add_check(item)
                changed_checks = True
            self.handle(item)
        self.log_pane.add_lines(lines)
        if changed_checks:
            self.refresh_checks()

    def handle(self, event: Event) -> None:
        """Step-specific rendering of one event (Checkpoint rows are handled already)."""

    def job_done(self, done: JobDone) -> None:
        """Step-specific end of a job."""

    # --- checkpoints and the Next gate -----------------------------------------------------------------

    def add_check(self, check: Checkpoint, *, blocking: bool = True) -> None:
        accepted = warning_text(check) in self.state.accepted_warnings
        self.checks[(check.name, check.subject)] = CheckRow(check, blocking, accepted)

    def set_blocking(self, name: str, blocking: bool) -> None:
        for key, row in list(self.checks.items()):
            if key[0] == name:
                self.checks[key] = CheckRow(row.check, blocking, row.accepted)

    def pending_warnings(self) -> list[CheckRow]:
        return [r for r in self.checks.values() if r.blocking and r.check.status == "warn" and not r.accepted]

    def failures(self) -> list[CheckRow]:
        return [r for r in self.checks.values() if r.blocking and r.check.status == "fail"]

    def gate_open(self) -> bool:
        return self.finished and not self.busy and not self.failures() and not self.pending_warnings()

    def refresh_checks(self) -> None:
        self.query_one(CheckList).show(list(self.checks.values()), self.EMPTY_CHECKS)
        if self.gate_open():
            self.state.passed.add(self.STEP)
        else:
            self.state.passed.discard(self.STEP)
        self.query_one(StepBar).show(self.state.passed)
        self.refresh_bindings()
        self.show_gate()

    def reset_checks(self) -> None:
        self.checks.clear()
        self.finished = False
        self.refresh_checks()

    # --- the Next gate, said in words ------------------------------------------------------------------

    def next_step(self) -> tuple[str, str] | None:
        keys = [k for k, _ in STEPS]
        index = keys.index(self.STEP)
        return STEPS[index + 1] if index + 1 < len(STEPS) else None

    def gate_text(self) -> Text:
        """Why Next is held and what opens it, or where Next goes."""
        following = self.next_step()
        if following is None:
            return Text("The last step. h: every run (open, compare, re-run, resume) · p: back", style="dim")
        retry = f", then {self.RETRY}" if self.RETRY else ""
        if self.busy:
            return Text("Working… Next opens when this step finishes.", style="dim")
        failures = self.failures()
        if failures:
            text = Text("Next is held: ", style="bold red")
            text.append(f"{_count(failures, 'check')} failed ({_names(failures)}; ✗ in the checkpoints): "
                        f"do what its fix: line says{retry}.")
            return text
        pending = self.pending_warnings()
        if pending:
            text = Text("Next is held: ", style="bold yellow")
            text.append(f"{_count(pending, 'warning')} not accepted ({_names(pending)}; ! in the checkpoints). ")
            text.append("a", style="bold")
            text.append(f": accept (recorded with the run), or fix it{retry}.")
            return text
        if not self.finished:
            text = Text("Next is held: ", style="bold")
            text.append(self.TODO or "this step has not finished yet.")
            return text
        text = Text("✓ Done. ", style="bold green")
        text.append("n", style="bold")
        text.append(f": on to {following[1]}.")
        return text

    def show_gate(self) -> None:
        self.query_one("#gate", Static).update(self.gate_text())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None greys a key out in the footer (visible, explains itself); False hides it.
        if action == "next":
            # Always live: pressing it when the gate is closed says why (a greyed key swallowed the press).
            return self.next_step() is not None
        if action == "accept_warnings":
            return bool(self.pending_warnings() and not self.busy)
        if action == "previous":
            return STEPS[0][0] != self.STEP
        if action == "leave_field":
            return isinstance(self.focused, Input)
        return True

    def action_next(self) -> None:
        following = self.next_step()
        if following is None:
            return
        if self.gate_open():
            self.wizard.goto(following[0])
            return
        # Held: say it where the eye is (a toast), keep it on screen (the gate line, flashed), and bring
        # the checkpoints that hold it into view.
        self.app.bell()
        gate = self.query_one("#gate", Static)
        gate.add_class("-alert")
        self.set_timer(1.5, lambda: gate.remove_class("-alert"))
        self.notify(self.gate_text().plain, title="Next is held", severity="warning", timeout=6)
        checks = self.query_one(CheckList)
        if self.failures() or self.pending_warnings():
            self.query_one("#main", VerticalScroll).scroll_to_widget(checks, animate=False, top=True)

    def action_previous(self) -> None:
        keys = [k for k, _ in STEPS]
        if self.STEP in keys[1:]:
            self.wizard.goto(keys[keys.index(self.STEP) - 1])

    def action_accept_warnings(self) -> None:
        """Explicit, recorded acceptance: the texts go into the run's manifest (`accepted_warnings`)."""
        rows = self.pending_warnings()
        texts = [warning_text(r.check) for r in rows]
        for text in texts:
            if text not in self.state.accepted_warnings:
                self.state.accepted_warnings.append(text)
        for key, row in list(self.checks.items()):
            if row in rows:
                self.checks[key] = CheckRow(row.check, row.blocking, True)
        self.log_pane.add_lines([f"accepted warning: {t}" for t in texts])
        self.warnings_accepted(texts)
        self.refresh_checks()
        if self.gate_open():
            self.app.clear_notifications()  # a "Next is held" toast would now say the opposite of the gate line

    def warnings_accepted(self, texts: list[str]) -> None:
        """Hook: the Run step writes them into the run folder's manifest right away."""

    def action_toggle_guide(self) -> None:
        # Narrow: the guide replaces the step content; wide: it sits beside it (the class inverts that).
        body = self.query_one("#body")
        body.toggle_class("guide")
        guide = self.query_one("#guide", VerticalScroll)
        if self.has_class("-narrow") and body.has_class("guide"):
            # It replaced the step: it takes the keys, so arrows and PgDn read on (the step had them).
            self._focus_before_guide = self.focused
            guide.focus()
        elif guide.has_focus or self.focused is None:
            before = self._focus_before_guide
            if before is not None and before.is_attached and before.display:
                before.focus()
            else:
                self.focus_next()
        if not body.has_class("guide") or not self.has_class("-narrow"):
            self._focus_before_guide = None

    def action_leave_field(self) -> None:
        """Escape always leaves a text field; the step's keys work again."""
        self.leave_field()

    def leave_field(self) -> None:
        self.query_one("#main", VerticalScroll).focus()

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()  # the footer lists the step's keys differently while a field has the focus

    def on_descendant_blur(self) -> None:
        self.refresh_bindings()

    def confirm(self, question: str, on_yes: Callable[[], object]) -> None:
        """Keys that start or lose work ask first (see screens/confirm.py)."""
        ask(self.app, question, on_yes)

    def notify_error(self, text: str) -> None:
        self.notify(text, severity="error", timeout=8)


def _count(rows: list[CheckRow], what: str) -> str:
    return f"{len(rows)} {what}{'s' if len(rows) != 1 else ''}"


def _names(rows: list[CheckRow]) -> str:
    names = list(dict.fromkeys(r.check.name for r in rows))
    return ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
