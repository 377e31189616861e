"""Step 3: pick models (built-in or your own), dtypes and variants; export them and show what XNNPACK
took and whether the exported program still matches eager PyTorch."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, SelectionList
from textual.widgets.selection_list import Selection

from screens.base import JobDone, StepScreen
from screens.configedit import DTYPES, known_variants, model_choices, model_key, model_label, with_selection
from screens.widgets.picklist import PickList
from sme2tui.errors import ConfigError
from sme2tui.events import Checkpoint, Event, LogLine, Progress, StepFinished

if TYPE_CHECKING:
    from textual.app import ComposeResult


class ModelScreen(StepScreen):
    STEP = "model"
    EMPTY_CHECKS = "press e to export the selection and check its numerics"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "export", "Export + check", id="model.export"),
        Binding("s", "save", "Save config", id="model.save"),
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

    def compose_main(self) -> ComposeResult:
        with Horizontal(id="pickers"):
            yield PickList[int](id="models")
            yield PickList[str](id="dtypes")
            yield PickList[str](id="variants")
        with Horizontal(id="numbers"):
            yield Input(placeholder="your model: package.module:function ⏎", id="factory")
            yield Input(type="integer", id="warmup", tooltip="warmup iterations (dropped)")
            yield Input(type="integer", id="iterations", tooltip="measured iterations")
        yield DataTable(id="exports", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#models").border_title = "models"
        self.query_one("#dtypes").border_title = "dtypes"
        self.query_one("#variants").border_title = "variants"
        self.query_one("#warmup").border_title = "warmup"
        self.query_one("#iterations").border_title = "iterations"
        table = self.query_one("#exports", DataTable)
        table.add_columns("export", "XNNPACK took", "numerics vs eager")
        table.border_title = "exports"
        self.load_from_state()

    def load_from_state(self) -> None:
        """(Re)fill the pickers from the wizard's config, e.g. after History's "edit"."""
        self._loading = True
        data = self.state.config_data
        self.model_specs = model_choices(data)
        chosen = {model_key(m) for m in data.get("models", [])}
        models = self.query_one("#models", SelectionList)
        models.clear_options()
        models.add_options([Selection(model_label(spec), i, model_key(spec) in chosen)
                            for i, spec in enumerate(self.model_specs)])
        dtypes = self.query_one("#dtypes", SelectionList)
        dtypes.clear_options()
        dtypes.add_options([Selection(d, d, d in data.get("dtypes", ["fp32"])) for d in DTYPES])
        self.variant_specs = {str(v["name"]): v for v in known_variants(data)}
        selected = {v.get("name") for v in data.get("variants", [])}
        variants = self.query_one("#variants", SelectionList)
        variants.clear_options()
        variants.add_options([Selection(str(v.get("label") or name), name, name in selected)
                              for name, v in self.variant_specs.items()])
        self.query_one("#warmup", Input).value = str(data.get("warmup", 3))
        self.query_one("#iterations", Input).value = str(data.get("iterations", 20))
        self._loading = False
        self._invalidate()

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
        for field in ("warmup", "iterations"):
            value = self.query_one(f"#{field}", Input).value.strip()
            if value.isdigit():
                numbers[field] = int(value)
        self.state.config_data = with_selection(self.state.config_data, models=models, dtypes=dtypes,
                                                variants=variants, **numbers)
        self._invalidate()

    def _invalidate(self) -> None:
        """Any change means the exports shown no longer describe the selection."""
        if self.busy:
            return
        if self.state.exported_hash and self.state.exported_hash == self.state.export_hash():
            return
        self.checks.clear()
        self.finished = False
        self.refresh_checks()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[Any]) -> None:
        self._apply()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("warmup", "iterations"):
            self._apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "factory" or not event.value.strip():
            return
        spec = {"factory": event.value.strip()}
        if model_key(spec) not in {model_key(s) for s in self.model_specs}:
            self.model_specs.append(spec)
            models = self.query_one("#models", SelectionList)
            models.add_option(Selection(model_label(spec), len(self.model_specs) - 1, True))
        event.input.value = ""
        self._apply()

    # --- actions ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return True if self.busy else None
        if action in ("export", "save") and self.busy:
            return None
        return super().check_action(action, parameters)

    def action_export(self) -> None:
        if self.busy:
            return
        self._apply()
        self.checks.clear()
        self.exports.clear()
        self.query_one("#exports", DataTable).clear()
        try:
            config = self.state.config()
        except ConfigError as exc:
            self.add_check(Checkpoint("export", "config", "fail", exc.what, exc.fix or ""))
            self.finished = False
            self.refresh_checks()
            return
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

    def action_cancel(self) -> None:
        if self.busy:
            self.cancel.set()
            self.log_pane.add_lines(["cancelling the export…"])

    def action_save(self) -> None:
        """Write the edited config where the user can keep it, validated first."""
        try:
            self.state.config()
        except ConfigError as exc:
            self.notify_error(f"not saved: {exc.what}")
            return
        name = str(self.state.config_data.get("name", "run"))
        path = Path(f"sme2tui-{name}.json")
        path.write_text(json.dumps(self.state.config_data, indent=2) + "\n", encoding="utf-8")
        self.state.config_source = str(path)
        self.notify(f"saved {path} — run it headless: sme2tui --auto --config {path}", timeout=8)

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
            self.exports.setdefault(event.subject, {"delegation": "exporting…", "numerics": "…"})
        elif isinstance(event, LogLine) and event.step == "export" and self._subject \
                and event.text.startswith(f"{self._subject}: "):
            # The export worker's one-line delegation summary for the program just exported.
            # Keep the headline ("80 nodes in 1 XNNPACK subgraphs"); the op list stays in the log.
            summary = event.text.removeprefix(f"{self._subject}: ").split(";")[0]
            self.exports[self._subject]["delegation"] = summary.replace(" XNNPACK subgraphs", " subgraphs")
        elif isinstance(event, Checkpoint) and event.step == "export" and event.subject:
            row = self.exports.setdefault(event.subject, {"delegation": "", "numerics": ""})
            if event.name == "numerics vs eager":
                # The first clause (cosine vs threshold); the full detail is in the checkpoint list.
                mark = {"pass": "✓ ", "warn": "! ", "fail": "✗ "}.get(event.status, "")
                row["numerics"] = mark + event.detail.split(",")[0]
            elif event.name == "ready .pte":
                row["delegation"] = event.detail
        else:
            return
        self._show_exports()

    def _show_exports(self) -> None:
        table = self.query_one("#exports", DataTable)
        table.clear()
        for subject, row in self.exports.items():
            table.add_row(subject, row["delegation"], row["numerics"], key=subject)

    def job_done(self, done: JobDone) -> None:
        if done.ok and self._export_ok:
            self.finished = True
            self.state.exported_hash = self._pending_hash
        else:
            what = done.error.splitlines()[0].removeprefix("error: ") if done.error else "export failed"
            self.add_check(Checkpoint("export", "export", "fail", what,
                                      "see the log; fix the model or deselect it, then press e"))
        self.refresh_checks()
