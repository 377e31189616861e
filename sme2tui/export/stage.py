"""The export step as the pipeline sees it: which exports a config needs, run the worker, collect records.

Torch-free: the worker subprocess does the heavy lifting; this side only plans and reads `export.json`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sme2tui.config import ModelSpec, RunConfig
from sme2tui.errors import ExportError
from sme2tui.events import ArtifactWritten, Checkpoint, Event, LogLine, StepFinished, StepStarted
from sme2tui.export.results import ExportRecord, NumericsCheck
from sme2tui.fileio import sha256_file
from sme2tui.models.registry import builtin_model
from sme2tui.workers.launcher import WorkerFailed, run_worker


@dataclass(frozen=True)
class ExportKey:
    model: str
    dtype: str
    delegate: str

    @property
    def subject(self) -> str:
        return f"{self.model}/{self.dtype}/{self.delegate}"


@dataclass(frozen=True)
class ExportedProgram:
    """A .pte ready to run: from our export (with record) or provided by the user."""

    key: ExportKey
    folder: Path | None
    pte: Path
    etrecord: Path | None
    pte_sha256: str
    record: ExportRecord | None

    @property
    def numerics(self) -> NumericsCheck:
        if self.record is None:
            return NumericsCheck(status="skip", detail="a ready .pte has no eager model to compare with")
        return self.record.numerics


def needed_exports(config: RunConfig) -> list[tuple[ExportKey, ModelSpec]]:
    delegates = list(dict.fromkeys(v.delegate for v in config.variants))
    wanted: list[tuple[ExportKey, ModelSpec]] = []
    for i, model in enumerate(config.models):
        if model.builtin:
            builtin_model(model.builtin, where=f"models[{i}].builtin")  # unknown names fail before any work
        for dtype in config.dtypes:
            for delegate in delegates:
                wanted.append((ExportKey(model.id, dtype, delegate), model))
    return wanted


def run_exports(
    config: RunConfig,
    *,
    cache_root: Path,
    config_dir: Path | None = None,
    log_path: Path | None = None,
    cancel: threading.Event | None = None,
    results: dict[ExportKey, ExportedProgram] | None = None,
) -> Iterator[Event]:
    """Yield export events; fill `results` with every program that is ready to run."""
    results = {} if results is None else results
    yield StepStarted("export", "Export models to ExecuTorch")
    items = []
    for key, spec in needed_exports(config):
        if spec.pte:
            pte = Path(spec.pte)
            results[key] = ExportedProgram(key, None, pte, Path(spec.etrecord) if spec.etrecord else None,
                                           sha256_file(pte), None)
            yield Checkpoint("export", "ready .pte", "pass", f"using {pte.name} as given (no export)",
                             subject=key.subject)
            continue
        items.append({
            "subject": key.subject,
            "model_id": key.model,
            "model": spec.model_dump(mode="json"),
            "dtype": key.dtype,
            "delegate": key.delegate,
            "seed": config.seed,
            "validate": config.validate_numerics,
            "config_dir": str(config_dir) if config_dir else None,
        })
    by_subject = {f"{k.model}/{k.dtype}/{k.delegate}": k for k, _ in needed_exports(config)}
    failures: list[Checkpoint] = []
    if items:
        job = {"cache_root": str(cache_root), "items": items}
        try:
            for event in run_worker("sme2tui.export.worker", job, step="export", cancel=cancel,
                                    stderr_log=log_path):
                if isinstance(event, ArtifactWritten) and event.kind == "export":
                    folder = Path(event.path)
                    record = ExportRecord.model_validate_json((folder / "export.json").read_text())
                    key = ExportKey(record.model, record.dtype, record.delegate)
                    results[key] = ExportedProgram(
                        key, folder, folder / record.pte, folder / record.etrecord if record.etrecord else None,
                        record.pte_sha256, record,
                    )
                if isinstance(event, Checkpoint) and event.name == "export" and event.status == "fail":
                    failures.append(event)
                yield event
        except WorkerFailed as exc:
            yield LogLine("export", exc.stderr_tail, "error", "export")
            raise ExportError(
                f"the export worker crashed (exit {exc.returncode})",
                where=str(log_path) if log_path else "export worker",
                fix="read the end of the export log; a crash inside ExecuTorch is worth reporting upstream "
                "with the model",
            ) from None
    missing = [s for s, k in by_subject.items() if k not in results]
    yield StepFinished("export", ok=not missing,
                       summary=f"{len(results)} programs ready" + (f", {len(missing)} failed" if missing else ""),
                       data={"failed": missing})
