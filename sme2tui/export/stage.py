"""The export step as the pipeline sees it: which exports a config needs, run the worker, collect records.

Torch-free: the worker subprocess does the heavy lifting; this side only plans and reads `export.json`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sme2tui.config import ModelSpec, RunConfig
from sme2tui.errors import ExportError
from sme2tui.events import ArtifactWritten, Checkpoint, Event, LogLine, Progress, StepFinished, StepStarted
from sme2tui.export.cache import builtin_cache_key, cached_entry
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
    read_from_program: dict[str, str] | None = None  # a ready .pte: its dtype and delegation, and the evidence

    @property
    def numerics(self) -> NumericsCheck:
        if self.record is None:
            return NumericsCheck(status="skip", detail="a ready .pte has no eager model to compare with")
        return self.record.numerics


def needed_exports(config: RunConfig) -> list[tuple[ExportKey, ModelSpec]]:
    """Every program the config's cells run, once: a ready .pte is one program (its own dtype and delegation);
    a model sme2tui exports is one program per dtype and per delegate its variants ask for."""
    delegates = list(dict.fromkeys(v.export_delegate for v in config.variants))
    wanted: list[tuple[ExportKey, ModelSpec]] = []
    for i, model in enumerate(config.models):
        if model.builtin:
            builtin_model(model.builtin, where=f"models[{i}].builtin")  # unknown names fail before any work
        if model.pte:
            facts = model.program_facts()
            wanted.append((ExportKey(model.id, facts.dtype, facts.delegation), model))
            continue
        for dtype in config.dtypes:
            for delegate in delegates:
                wanted.append((ExportKey(model.id, dtype, delegate), model))
    return wanted


def _from_cache(key: ExportKey, folder: Path, record: ExportRecord) -> ExportedProgram:
    return ExportedProgram(key, folder, folder / record.pte, folder / record.etrecord if record.etrecord else None,
                           record.pte_sha256, record)


def _cache_hit_events(key: ExportKey, folder: Path, record: ExportRecord) -> Iterator[Event]:
    """The events the export worker sends for a program it found in the cache."""
    yield Checkpoint("export", "export cache", "pass", f"unchanged since last export ({record.key[:12]}), reused",
                     subject=key.subject)
    n = record.numerics
    yield Checkpoint("export", "numerics vs eager", n.status, n.detail, n.fix, subject=key.subject)
    yield ArtifactWritten("export", str(folder), "export", record.pte_sha256)


def run_exports(
    config: RunConfig,
    *,
    cache_root: Path,
    config_dir: Path | None = None,
    log_path: Path | None = None,
    cancel: threading.Event | None = None,
    results: dict[ExportKey, ExportedProgram] | None = None,
) -> Iterator[Event]:
    """Yield export events; fill `results` with every program that is ready to run.

    Ready programs and cached built-ins are served here, without a worker (and so without importing torch);
    only programs that must be exported, and factories (keyed on their content, see export/cache.py), go to
    the export worker. Programs are served under the name the config uses now, whatever name exported them.
    """
    results = {} if results is None else results
    yield StepStarted("export", "Export models to ExecuTorch")
    items = []
    wanted = needed_exports(config)
    explicit_dtypes = "dtypes" in config.model_fields_set
    for key, spec in wanted:
        if spec.pte:
            pte = Path(spec.pte)
            facts = spec.program_facts()
            results[key] = ExportedProgram(key, None, pte, Path(spec.etrecord) if spec.etrecord else None,
                                           sha256_file(pte), None, facts.model_dump())
            note = f"; `dtypes` ({', '.join(config.dtypes)}) does not apply to it" if explicit_dtypes and \
                config.dtypes != [facts.dtype] else ""
            yield Checkpoint("export", "ready .pte", "pass",
                             f"using {pte.name} as given (no export): {facts.dtype} program ({facts.dtype_evidence}), "
                             f"delegation {facts.delegation}, read from the program{note}", subject=key.subject)
            continue
        item: dict[str, Any] = {
            "subject": key.subject,
            "model_id": key.model,
            "model": spec.model_dump(mode="json"),
            "dtype": key.dtype,
            "delegate": key.delegate,
            "seed": config.seed,
            "validate": config.validate_numerics,
            "config_dir": str(config_dir) if config_dir else None,
        }
        if spec.builtin:
            item["cache_key"] = builtin_cache_key(spec, key.dtype, key.delegate, config.seed)
            hit = cached_entry(cache_root, item["cache_key"], want_numerics=config.validate_numerics)
            if hit is not None:
                results[key] = _from_cache(key, *hit)
                yield from _cache_hit_events(key, *hit)
                continue
        items.append(item)
    by_subject = {k.subject: k for k, _ in wanted}
    reported: set[str] = set()  # subjects whose failure the worker said in a checkpoint
    if items:
        job = {"cache_root": str(cache_root), "items": items}
        current: ExportKey | None = None  # the worker announces each item with a Progress event first
        try:
            for event in run_worker("sme2tui.export.worker", job, step="export", cancel=cancel,
                                    stderr_log=log_path):
                if isinstance(event, Progress):
                    current = by_subject.get(event.subject)
                if isinstance(event, Checkpoint) and event.status == "fail" and event.subject:
                    reported.add(event.subject)
                if isinstance(event, ArtifactWritten) and event.kind == "export" and current is not None:
                    folder = Path(event.path)
                    record = ExportRecord.model_validate_json((folder / "export.json").read_text())
                    results[current] = _from_cache(current, folder, record)
                yield event
        except WorkerFailed as exc:
            yield LogLine("export", exc.stderr_tail, "error", "export")
            doing = f" while exporting {current.subject}" if current is not None else ""
            raise ExportError(
                f"the export worker crashed (exit {exc.returncode}){doing}",
                where=str(log_path) if log_path else f"export worker{doing}",
                fix="read the end of the export log; a crash inside ExecuTorch is worth reporting upstream "
                "with the model",
            ) from None
    missing = [s for s, k in by_subject.items() if k not in results]
    unsaid = [s for s in missing if s not in reported] if items else []
    if unsaid:
        # The worker ended cleanly with items neither exported nor failed: its process was ended from inside
        # (a factory calling os._exit(), a library killing its process), so nothing could be said then.
        which = "it" if len(unsaid) == 1 else f"{', '.join(unsaid)}"
        yield Checkpoint("export", "export", "fail",
                         f"the export worker ended before finishing {which}, without an error (the process was "
                         "ended from inside, e.g. a factory calling os._exit())",
                         "make the factory return (model, example_inputs) without exiting; then export again",
                         subject=unsaid[0])
    yield StepFinished("export", ok=not missing,
                       summary=f"{len(results)} program{'s' if len(results) != 1 else ''} ready"
                       + (f", {len(missing)} failed" if missing else ""),
                       data={"failed": missing})
