"""Typed events: the one stream every pipeline step yields and every front-end renders.

Steps never print or read the terminal. They yield these events; the headless CLI prints them to stderr,
the Textual wizard shows them live, and tests assert on them. Events are plain frozen dataclasses so they
can cross thread and process boundaries (workers send them as JSON lines, see `to_json`/`from_json`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Step = Literal["doctor", "build", "export", "run", "analyze", "report"]
CheckStatus = Literal["pass", "warn", "fail", "skip"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class StepStarted:
    step: Step
    title: str


@dataclass(frozen=True, slots=True)
class LogLine:
    step: Step
    text: str
    level: LogLevel = "info"
    source: str = ""  # e.g. "export", "runner:xnnpack", "cmake"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A validation checkpoint. `fix` is required in spirit for warn/fail: what to do about it."""

    step: Step
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""
    subject: str = ""  # which cell/model/tool this is about


def warning_text(name: str, detail: str, subject: str = "") -> str:
    """How a warn checkpoint reads in a run's `warnings` list. One spelling for the manifest (which records
    every warn checkpoint) and the analysis (which adds its own): a warning is listed once, not twice.
    The subject (a cell, a program) is named once: a list of warnings has no checkpoint rows to say whose."""
    if subject and not detail.startswith(f"{subject}: "):
        return f"{name}: {subject}: {detail}"
    return f"{name}: {detail}"


@dataclass(frozen=True, slots=True)
class Progress:
    step: Step
    done: int
    total: int
    label: str = ""
    subject: str = ""  # e.g. a cell id


@dataclass(frozen=True, slots=True)
class ArtifactWritten:
    step: Step
    path: str  # relative to the run folder when inside one
    kind: str  # "pte", "etrecord", "etdump", "manifest", "report", ...
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class CellStatus:
    """State change of one run cell (model x dtype x variant x threads x target)."""

    cell_id: str
    state: Literal["queued", "running", "done", "failed", "skipped"]
    detail: str = ""
    iterations_done: int = 0
    iterations_total: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepFinished:
    step: Step
    ok: bool
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)


Event = StepStarted | LogLine | Checkpoint | Progress | ArtifactWritten | CellStatus | StepFinished

_EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (StepStarted, LogLine, Checkpoint, Progress, ArtifactWritten, CellStatus, StepFinished)
}


def to_json(event: Event) -> str:
    """One JSON line; used by worker subprocesses and `--json` event streams."""
    payload = dataclasses.asdict(event)
    payload["type"] = type(event).__name__
    return json.dumps(payload, sort_keys=True)


def from_json(line: str) -> Event:
    payload = json.loads(line)
    cls = _EVENT_TYPES[payload.pop("type")]
    return cls(**payload)
