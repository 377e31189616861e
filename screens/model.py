"""Step 3: pick models (built-in or your own), dtypes and variants; export them and show what XNNPACK
took and whether the exported program still matches eager PyTorch."""

from __future__ import annotations

import json
import platform
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, SelectionList
from textual.widgets.selection_list import Selection

from screens.base import JobDone, StepScreen, error_parts
from screens.configedit import (
    AS_EXPORTED,
    DTYPES,
    config_for_file,
    host_pair_variants,
    known_variants,
    model_choices,
    model_id,
    model_key,
    model_label,
    next_target,
    switch_target,
    target_kind,
    with_selection,
)
from screens.save import SaveScreen
from screens.widgets.picklist import PickList
from screens.widgets.table import Table
from sme2tui.errors import ConfigError
from sme2tui.events import ArtifactWritten, Checkpoint, Event, Progress, StepFinished

if TYPE_CHECKING:
    from textual import events
    from textual.app import ComposeResult

    from screens.services import ProgramFacts

NUMBERS = ("warmup", "iterations")


class ModelScreen(StepScreen):
    STEP = "model"
    EMPTY_CHECKS = "press e to export the selection and check its numerics"
    TODO = "export the selection and check its numerics first: e."
    RETRY = "e: export again"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "export", "Export", id="model.export"),
        Binding("t", "switch_target", "Target", id="model.target"),
        Binding("s", "save", "Save", id="model.save"),
        Binding("c", "cancel", "Cancel", id="model.cancel"),
        *StepScreen.COMMON_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.model_specs: list[dict[str, Any]] = []
        self.variant_specs: dict[str, dict[str, Any]] = {}
        self.exports: dict[str, dict[str, str]] = {}
        self._subject = ""
        self._loading = False
        self._pending_hash = ""
        self._export_ok = True
        self._shown_numbers: dict[str, Any] = {}  # warmup/iterations as last said in the log
        self.programs: dict[str, ProgramFacts] = {}  # ready programs' facts, by model key, read from the files
        self._target_settings: dict[str, dict[str, Any]] = {}  # what each target had when `t` left it

    def compose_main(self) -> ComposeResult:
        with Horizontal(id="pickers"):
            yield PickList[int](id="models")
            yield PickList[str](id="dtypes")
            yield PickList[str](id="variants")
        with Horizontal(id="numbers"):
            # Typing elsewhere lands here (see on_key): focusing must not select what was typed so far.
            yield Input(placeholder="add yours: module:function or file.pte ⏎", id="factory", select_on_focus=False)
            yield Input(type="integer", id="warmup", tooltip="warmup iterations (dropped)")
            yield Input(type="integer", id="iterations", tooltip="measured iterations")
        yield Table(id="exports", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#models").border_title = "models"
        self.query_one("#dtypes").border_title = "dtypes"
        self.query_one("#variants").border_title = "variants"
        self.query_one("#warmup").border_title = "warmup"
        self.query_one("#iterations").border_title = "iterations"
        table = self.query_one("#exports", DataTable)
        table.add_columns("export", "XNNPACK took", "vs eager", "time")
        table.border_title = "exports"
        self.load_from_state()
        self.query_one("#models").focus()

    def load_from_state(self) -> None:
        """(Re)fill the pickers from the wizard's config, e.g. after History's "edit"."""
        self._loading = True
        data = self.state.config_data
        self.model_specs = model_choices(data)
        self._target_settings.clear()
        for spec in self.model_specs:
            if spec.get("pte") and model_key(spec) not in self.programs:
                self._read_program(spec)
        chosen = {model_key(m) for m in data.get("models", [])}
        models = self.query_one("#models", SelectionList)
        models.clear_options()
        models.add_options([Selection(self._label(spec), i, model_key(spec) in chosen)
                            for i, spec in enumerate(self.model_specs)])
        dtypes = self.query_one("#dtypes", SelectionList)
        dtypes.clear_options()
        dtypes.add_options([Selection(d, d, d in data.get("dtypes", ["fp32"])) for d in DTYPES])
        self._fill_variants()
        for picker in (models, dtypes):
            picker.highlighted = 0 if picker.option_count else None  # the cursor starts on the first entry
        self._fill_numbers()
        self._loading = False
        self._shown_numbers = {f: data.get(f) for f in NUMBERS}
        self._show_target()
        self._invalidate()

    def _fill_variants(self) -> None:
        """The variants the config's target can run, the config's ticked (names: they are what cells and
        results are called, and they fit the column)."""
        data = self.state.config_data
        ready = any(spec.get("pte") for spec in self.model_specs)
        self.variant_specs = {str(v["name"]): v for v in known_variants(data, ready=ready)}
        selected = {v.get("name") for v in data.get("variants", [])}
        variants = self.query_one("#variants", SelectionList)
        loading, self._loading = self._loading, True
        variants.clear_options()
        variants.add_options([Selection(name, name, name in selected) for name in self.variant_specs])
        variants.highlighted = 0 if variants.option_count else None
        self._loading = loading

    def _fill_numbers(self) -> None:
        data = self.state.config_data
        loading, self._loading = self._loading, True
        for field in NUMBERS:
            self.query_one(f"#{field}", Input).value = str(data.get(field, 3 if field == "warmup" else 20))
        self._loading = loading

    def _show_target(self) -> None:
        """The target in the variants' title (they change with it), the key that switches it below; dtypes
        greyed out when only ready programs are chosen (their dtype is baked in: the list shows each one's)."""
        variants = self.query_one("#variants", SelectionList)
        variants.border_title = f"variants: {target_kind(self.state.config_data)}"
        variants.border_subtitle = "t: target"
        dtypes = self.query_one("#dtypes", SelectionList)
        chosen = [self.model_specs[i] for i in self.query_one("#models", SelectionList).selected]
        ready = [m for m in chosen if m.get("pte")]
        dtypes.disabled = bool(chosen) and len(ready) == len(chosen)
        dtypes.border_subtitle = "not for .pte" if ready else ""

    def _label(self, spec: dict[str, Any]) -> str:
        # The dtype in the list (the dtype picker does not apply to it); the delegation is said when it is added
        # and shown in the export table (the list is 28 columns at 80).
        facts = self.programs.get(model_key(spec))
        return model_label(spec, facts.dtype if facts else "")

    def _program_of(self, subject: str) -> ProgramFacts | None:
        """The facts of the ready program an export subject (`model/dtype/delegate`) names."""
        model = subject.split("/")[0]
        return next((facts for spec in self.model_specs if spec.get("pte") and model_id(spec) == model
                     for facts in [self.programs.get(model_key(spec))] if facts is not None), None)

    def _read_program(self, spec: dict[str, Any]) -> None:
        """A ready program from a config: its facts read now (a file that cannot be read says so at export)."""
        path = Path(str(spec["pte"])).expanduser()
        if not path.is_absolute() and self.state.config_dir is not None:
            path = self.state.config_dir / path
        try:
            self.programs[model_key(spec)] = self.services.program_facts(path)
        except ConfigError:
            return

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.state.exported_hash != self.state.export_hash() and self.finished:
            self._invalidate()

    # --- editing ---------------------------------------------------------------------------------------

    def _apply(self) -> None:
        if self._loading:
            return
        models = [self.model_specs[i] for i in self.query_one("#models", SelectionList).selected]
        dtypes = [d for d in DTYPES if d in self.query_one("#dtypes", SelectionList).selected]
        names = self.query_one("#variants", SelectionList).selected
        variants = [self.variant_specs[n] for n in self.variant_specs if n in names]
        numbers: dict[str, int] = {}
        for field in NUMBERS:
            value = self.query_one(f"#{field}", Input).value.strip()
            if value.isdigit():
                numbers[field] = int(value)
        data = with_selection(self.state.config_data, models=models, dtypes=dtypes, variants=variants, **numbers)
        if models and all(m.get("pte") for m in models):
            data.pop("dtypes", None)  # ready programs only: each runs in its own dtype (the config may leave it out)
        self.state.config_data = self.state.with_name(data)
        self._show_target()
        self._invalidate()

    def _invalidate(self) -> None:
        """Any change means the exports shown no longer describe the selection."""
        if self.busy:
            return
        if self.state.exported_hash and self.state.exported_hash == self.state.export_hash():
            return
        self.checks.clear()
        self.finished = False
        # The rows described the previous selection's export: stale now (e exports the new one).
        self.exports.clear()
        self.query_one("#exports", DataTable).clear()
        self.refresh_checks()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[Any]) -> None:
        self._apply()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in NUMBERS:
            self._apply()

    def on_input_blurred(self, event: Input.Blurred) -> None:
        # A changed number is said out loud: a stray digit must not change a run unnoticed.
        field = event.input.id or ""
        if field in NUMBERS and self.state.config_data.get(field) != self._shown_numbers.get(field):
            self._say_numbers()

    def _say_numbers(self) -> None:
        data = self.state.config_data
        before = self._shown_numbers
        changes = [f"{f} {before.get(f, '?')} → {data.get(f)}" for f in NUMBERS if before.get(f) != data.get(f)]
        self._shown_numbers = {f: data.get(f) for f in NUMBERS}
        if changes:
            self.log_pane.add_lines([f"changed {', '.join(changes)} (used by the run; exports stay valid)"])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in NUMBERS:
            self.leave_field()
            return
        if event.input.id != "factory" or not event.value.strip():
            return
        text = event.value.strip()
        try:
            choice = self.services.check_model(text, self.state.config_dir)
        except ConfigError as exc:
            # The text stays in the field to be corrected; the reason is said now, not at export time.
            self.notify(f"{exc.what}\nfix: {exc.fix}" if exc.fix else exc.what, title="not added",
                        severity="error", timeout=10)
            self.log_pane.add_lines([f"not added: {text}: {exc.what}" + (f" — fix: {exc.fix}" if exc.fix else "")])
            return
        if choice.program is not None:
            self.programs[model_key(choice.spec)] = choice.program
        self.add_model(choice.spec, choice.what)
        event.input.value = ""
        if choice.program is not None:
            self._offer_as_exported(choice.spec)

    def add_model(self, spec: dict[str, Any], what: str) -> None:
        """Add (or find) the model, tick it, and show it: scrolled to, highlighted, said in words."""
        models = self.query_one("#models", SelectionList)
        keys = [model_key(s) for s in self.model_specs]
        if model_key(spec) in keys:
            index, verb = keys.index(model_key(spec)), "already listed"
        else:
            self.model_specs.append(spec)
            index, verb = len(self.model_specs) - 1, "added"
            models.add_option(Selection(self._label(spec), index, False))
            if spec.get("pte") and "as-exported" not in self.variant_specs:
                self._fill_variants()  # a ready program brings its own variant
        models.select(index)
        models.highlighted = index
        models.scroll_to_highlight()
        models.focus()
        self._apply()
        message = f"{verb} {model_id(spec)}: {what} — selected; e exports it"
        self.notify(message, title="model", timeout=8)
        self.log_pane.add_lines([message])

    def _offer_as_exported(self, spec: dict[str, Any]) -> None:
        """A ready program cannot take a delegate pair (its delegation is baked in): offer its own variant now,
        rather than a refusal at export time. The emulated target's pair differs in the CPU, so it applies."""
        data = self.state.config_data
        if target_kind(data) == "emulated":
            return
        chosen = data.get("variants", [])
        settings = {json.dumps({k: v for k, v in variant.items() if k not in ("name", "label", "delegate")},
                               sort_keys=True) for variant in chosen}
        if len(chosen) < 2 or len(settings) == len(chosen):
            return  # one variant, or variants that differ in more than the delegate: they apply to the program
        facts = self.programs.get(model_key(spec))
        baked = f" ({facts.dtype}, {facts.delegation})" if facts else ""
        names = "/".join(str(v.get("name")) for v in chosen)
        self.confirm(f"Measure {Path(str(spec['pte'])).name} as exported?\nIts dtype and delegation{baked} are baked "
                     f"into the program, so the {names} pair cannot apply to it. y: the ready programs alone, with "
                     "their own variant `as-exported`; n: keep this selection (Export will refuse it). "
                     "Or t: the emulated target runs it with SME2 on and off.", self._use_as_exported)

    def _use_as_exported(self) -> None:
        models = self.query_one("#models", SelectionList)
        for index, spec in enumerate(self.model_specs):
            if spec.get("pte"):
                models.select(index)
            else:
                models.deselect(index)
        self.variant_specs.setdefault("as-exported", dict(AS_EXPORTED))
        self.state.config_data = {**self.state.config_data, "variants": [self.variant_specs["as-exported"]]}
        self.state.config_data.pop("compare", None)
        self._fill_variants()
        self._apply()
        self.log_pane.add_lines(["ready programs only, run as exported (variant as-exported)"])

    # --- target ----------------------------------------------------------------------------------------

    def action_switch_target(self) -> None:
        """host ⇄ emulated (and android when the config came with it): the variants and the run's numbers
        switch with the target; what each target had is kept while the wizard runs."""
        if self.busy:
            return
        self._apply()
        data = self.state.config_data
        kind = next_target(data, self._target_settings)
        switched = switch_target(data, kind, self._target_settings)
        self.state.config_data = self.state.with_name(switched)
        self._fill_variants()
        self._fill_numbers()
        self._show_target()
        self._say_numbers()
        self._invalidate()
        variants = ", ".join(str(v.get("name")) for v in switched.get("variants", []))
        message = f"target {kind}: variants {variants}"
        if kind == "emulated":
            message += " (SME2 on/off under QEMU: which kernels ran and the numerics, never a speedup)"
            problem = self.services.emulation_problem()
            if problem:
                self.notify(f"{message}\nnot ready here: {problem}", title="target", severity="warning", timeout=12)
                self.log_pane.add_lines([message, f"emulation not ready: {problem}"])
                return
        self.notify(message, title="target", timeout=6)
        self.log_pane.add_lines([message])

    def leave_field(self) -> None:
        self.query_one("#models").focus()

    def on_key(self, event: events.Key) -> None:
        """Typing while no field has the focus goes into "add yours": the characters that are not keys of
        this step would otherwise vanish, and the ones that are would fire (an export from a module name)."""
        # A text field stops the printable keys it takes, so a printable key here came from elsewhere: also
        # the rest of a burst of typing that was queued for the list before the first key moved the focus.
        if not event.is_printable or not event.character:
            return
        binding = self.active_bindings.get(event.key)
        if binding is not None and binding.enabled:
            return  # a key of this step or of a focused list (space ticks): it does what the footer says
        field = self.query_one("#factory", Input)
        self.set_focus(field)  # at once: the keys already queued behind this one must land in the field too
        field.action_end()
        field.insert_text_at_cursor(event.character)
        event.stop()
        event.prevent_default()

    # --- actions ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return bool(self.busy)  # shown only while an export runs
        if action in ("export", "save", "switch_target") and self.busy:
            return None
        return super().check_action(action, parameters)

    def action_export(self) -> None:
        if self.busy:
            return
        self._apply()
        try:
            config = self.state.config()
        except ConfigError as exc:
            self.checks.clear()
            self.add_check(Checkpoint("export", "config", "fail", exc.what, exc.fix or ""))
            self.finished = False
            self.refresh_checks()
            return
        host_os = str(self.state.host.get("os") or platform.system())
        unrunnable = host_pair_variants(self.state.config_data, host_os)
        if unrunnable:
            # Said before an export: the run would stop at its runner check with no pair to build here.
            names = ", ".join(unrunnable)
            self.checks.clear()
            self.add_check(Checkpoint(
                "export", "variants", "fail",
                f"{names} need{'s' if len(unrunnable) == 1 else ''} an SME2 on/off runner pair, which this "
                f"{host_os} host cannot build for the host target",
                f"untick {names}; to see SME2 kernels run on this machine, t switches to the emulated target "
                "(evidence, not speed); SME2 speed needs an SME2 phone (android target) or an M4/M5 Mac"))
            self.finished = False
            self.refresh_checks()
            return
        try:
            programs = self.services.planned_exports(config)
        except ConfigError as exc:  # e.g. a ready .pte that is no longer readable
            self.checks.clear()
            self.add_check(Checkpoint("export", "config", "fail", exc.what, exc.fix or ""))
            self.finished = False
            self.refresh_checks()
            return
        shown = ", ".join(programs[:4]) + (f" and {len(programs) - 4} more" if len(programs) > 4 else "")
        self.confirm(f"Export and check {len(programs)} program{'s' if len(programs) != 1 else ''}?\n"
                     f"{shown}. Unchanged exports come from the cache in a second.", lambda: self._export(config))

    def _export(self, config: Any) -> None:
        if self.busy:
            return
        self.checks.clear()
        self.exports.clear()
        self.query_one("#exports", DataTable).clear()
        self.add_check(Checkpoint("export", "config", "pass", f"{len(config.models)} model(s) × "
                                  f"{len(config.dtypes)} dtype(s) × {len(config.variants)} variant(s)"))
        self.finished = False
        self.refresh_checks()
        self.log_pane.mirror_to(self.state.output_root / ".cache" / "tui" / "export.log")
        services, root, config_dir, exported = (self.services, self.state.output_root, self.state.config_dir,
                                                self.state.export_hash())
        self._pending_hash = exported
        self._export_ok = True
        cancel = threading.Event()
        self.start_job("export", lambda: services.export(config, root, config_dir, cancel), cancel=cancel)
        self._show_table()

    def _show_table(self) -> None:
        # At 80x24 the table sits below the pickers: bring the rows being filled into view.
        self.query_one("#main").scroll_to_widget(self.query_one("#exports", DataTable), animate=False, top=True)

    def action_cancel(self) -> None:
        if self.busy:
            self.confirm("Cancel the export?\nFinished exports stay cached; e starts again.", self._cancel_now)

    def _cancel_now(self) -> None:
        if self.busy:
            self.cancel.set()
            self.log_pane.add_lines(["cancelling the export…"])

    def action_save(self) -> None:
        """Write the edited config where the user says, validated first."""
        try:
            self.state.config()
        except ConfigError as exc:
            self.notify_error(f"not saved: {exc.what}")
            return
        source = Path(self.state.config_source)
        default = source if source.suffix == ".json" and source.is_file() else \
            Path(f"sme2tui-{self.state.config_data.get('name', 'run')}.json")
        self.app.push_screen(SaveScreen(default), self._save_to)

    def _save_to(self, path: Path | None) -> None:
        if path is None:
            return
        data = config_for_file(self.state.config_data, path, self.state.config_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            self.notify_error(f"not saved: {path}: {exc.strerror}")
            return
        self.state.config_data = data
        self.state.config_source = str(path)
        self.state.config_dir = path.absolute().parent
        self.notify(f"saved {path} — run it headless: sme2tui --auto --config {path}", timeout=8)
        self.log_pane.add_lines([f"saved {path}"])

    # --- events ----------------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.step == "export":
            self._export_ok = event.ok
            if not event.ok:
                failed = ", ".join(map(str, event.data.get("failed", []))) or event.summary
                self.add_check(Checkpoint("export", "export", "fail", f"not exported: {failed}",
                                          "read the error in the log; fix the model or deselect it, then press e"))
            return
        if isinstance(event, Progress) and event.step == "export" and event.subject:
            self._subject = event.subject
            self.exports.setdefault(event.subject, {"delegation": "exporting…", "numerics": "…", "time": ""})
        elif isinstance(event, ArtifactWritten) and event.kind == "export" and self._subject in self.exports:
            # The record of the program, fresh or cached: the same figures either way.
            row = self.exports[self._subject]
            figures = self.services.export_figures(Path(event.path))
            if figures is not None:
                row["delegation"] = figures.delegation
                if not row.get("cached"):
                    row["time"] = f"{figures.seconds:.1f} s"
        elif isinstance(event, Checkpoint) and event.step == "export" and event.subject:
            # Cached programs come without a Progress event: their checkpoints say which one is next.
            self._subject = event.subject
            row = self.exports.setdefault(event.subject, {"delegation": "", "numerics": "", "time": ""})
            if event.name == "numerics vs eager":
                # The cosine (the full detail, with the threshold, is in the checkpoint list).
                mark = {"pass": "✓ ", "warn": "! ", "fail": "✗ "}.get(event.status, "")
                row["numerics"] = mark + event.detail.split(",")[0].split(" (")[0]
            elif event.name == "export cache" and event.status == "pass":
                row["cached"] = "yes"
                row["time"] = "cached"
            elif event.name == "ready .pte":
                facts = self._program_of(event.subject)
                took = f"{facts.delegation} (.pte)" if facts else "as exported (.pte)"
                row.update(delegation=took, numerics="– no eager model", time="given")
        else:
            return
        self._show_exports()

    def _show_exports(self) -> None:
        table = self.query_one("#exports", DataTable)
        table.clear()
        for subject, row in self.exports.items():
            time_text = Text(row["time"], style="dim" if row.get("cached") else "")
            table.add_row(subject, row["delegation"], row["numerics"], time_text, key=subject)

    def job_done(self, done: JobDone) -> None:
        if done.ok and self._export_ok:
            self.finished = True
            self.state.exported_hash = self._pending_hash
        else:
            what, fix = error_parts(done, "export failed")
            self.add_check(Checkpoint("export", "export", "fail", what,
                                      f"{fix}; then press e" if fix else
                                      "see the log; fix the model or deselect it, then press e"))
        self.refresh_checks()
        self._show_table()
