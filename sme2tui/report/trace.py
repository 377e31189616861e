"""ETDumps -> one Chrome-trace JSON (`analysis/trace.json`) to open in Perfetto (ui.perfetto.dev) or chrome://tracing.

Layout: one process per cell (named by its cell id), two tracks per process — "measured iterations" and
"warmup iterations" — so warmups are visible but never mistaken for measurements (they also carry
`args.warmup = true`). Each iteration is an "X" (complete) event `Method::execute` whose duration is the
ETDump's iteration total; wrappers (DELEGATE_CALL, OPERATOR_CALL) and leaf events nest inside it.

Times: `ts`/`dur` are microseconds (floats, from integer nanoseconds). Operator and wrapper events keep their
real start times. XNNPACK-internal events do not: their start times are synthetic and their durations whole
microseconds, so they are laid end to end from their DELEGATE_CALL's start (in logged order), which keeps the
nesting valid (a child never starts before or ends after its parent) without claiming a precise position.
If logged children ever add up to more than their parent, they are shortened to fit and marked
`args.clamped = true`.

Output is deterministic (no timestamps, no absolute paths), so the same ETDumps give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sme2tui.analysis.categorize import Categorizer
from sme2tui.etdump import EtdumpTrace, Iteration, ProfileEvent, read_etdump
from sme2tui.fileio import write_chunks_atomic

MEASURED_TID: Final = 1
WARMUP_TID: Final = 2
NS_PER_US: Final = 1000.0
WRAPPER_CATEGORY: Final = "WRAPPER"
TOTAL_CATEGORY: Final = "ITERATION"


@dataclass(frozen=True, slots=True)
class _Span:
    """An event placed on the timeline, in integer ticks (ns here) relative to the cell's first iteration."""

    start: int
    end: int
    clamped: bool


@dataclass(frozen=True, slots=True)
class _Track:
    """Where an iteration's events go (process = cell, thread = measured/warmup) and the tick -> µs factor."""

    pid: int
    tid: int
    warmup: bool
    ticks_per_us: float


def write_chrome_trace(cells: Sequence[tuple[str, Path, int]], out_path: Path,
                       categorizer: Categorizer | None = None) -> None:
    """Write the trace of every (cell_id, etdump path, warmup count) to `out_path`.

    Streamed: each iteration's events are encoded and written as they are made, so memory stays bounded
    whatever the size of the traces (a 231k-event cell makes a 60 MB file). The bytes are exactly
    `json.dumps(build_chrome_trace(...), separators=(",", ":"), ensure_ascii=False) + "\n"`.
    """
    write_chunks_atomic(out_path, _encoded(cells, categorizer or Categorizer.load()))


def build_chrome_trace(cells: Sequence[tuple[str, Path, int]],
                       categorizer: Categorizer | None = None) -> dict[str, Any]:
    """The Chrome-trace dict (`traceEvents`, `displayTimeUnit`, `metadata`) for the given cells, in memory."""
    described: list[dict[str, Any]] = []
    events = list(_trace_events(cells, categorizer or Categorizer.load(), described))
    return {"traceEvents": events, "displayTimeUnit": "ms", "metadata": _metadata(described)}


def _encoded(cells: Sequence[tuple[str, Path, int]], categorizer: Categorizer) -> Iterator[str]:
    described: list[dict[str, Any]] = []
    yield '{"traceEvents":['
    separator = ""
    for event in _trace_events(cells, categorizer, described):
        yield separator + _dumps(event)
        separator = ","
    yield '],"displayTimeUnit":"ms","metadata":' + _dumps(_metadata(described)) + "}\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _trace_events(cells: Sequence[tuple[str, Path, int]], categorizer: Categorizer,
                  described: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every trace event, cell after cell and iteration after iteration; fills `described` as it goes."""
    for pid, (cell_id, path, warmup) in enumerate(cells, start=1):
        etdump = read_etdump(path)
        yield from _process_metadata(pid, cell_id)
        yield from _cell_events(etdump, pid, warmup, categorizer)
        iterations = etdump.iteration_count
        described.append({"cell_id": cell_id, "pid": pid, "etdump": path.name, "warmup": min(warmup, iterations),
                          "measured": max(iterations - warmup, 0)})


def _metadata(described: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tool": "sme2tui",
        "cells": described,
        "time_unit": "ts and dur in microseconds; each process starts at its first iteration",
        "tracks": {str(MEASURED_TID): "measured iterations", str(WARMUP_TID): "warmup iterations"},
        "synthetic_times": ("delegate-internal (XNNPACK) events are laid end to end inside their DELEGATE_CALL: "
                            "their durations are measured (whole microseconds), their positions are not"),
    }


def _meta(pid: int, tid: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
    # ts/dur on metadata events are not needed by viewers but keep every event in the same shape.
    return {"name": name, "ph": "M", "ts": 0.0, "dur": 0.0, "pid": pid, "tid": tid, "args": args}


def _process_metadata(pid: int, cell_id: str) -> list[dict[str, Any]]:
    return [
        _meta(pid, MEASURED_TID, "process_name", {"name": cell_id}),
        _meta(pid, MEASURED_TID, "process_sort_index", {"sort_index": pid}),
        _meta(pid, MEASURED_TID, "thread_name", {"name": "measured iterations"}),
        _meta(pid, WARMUP_TID, "thread_name", {"name": "warmup iterations"}),
        _meta(pid, MEASURED_TID, "thread_sort_index", {"sort_index": 0}),
        _meta(pid, WARMUP_TID, "thread_sort_index", {"sort_index": 1}),
    ]


def _cell_events(etdump: EtdumpTrace, pid: int, warmup: int, categorizer: Categorizer) -> Iterator[dict[str, Any]]:
    ticks_per_us = etdump.ticks_per_ns * NS_PER_US
    origin: int | None = None
    previous_end = 0
    for iteration in etdump.iterations:  # built one at a time from the trace's columns
        total = iteration.events[-1]
        if origin is None:
            origin = total.start
        # Real start relative to the first iteration; if the clock wrapped or went backwards, place the
        # iteration right after the previous one so each track stays in order.
        start = max(total.start - origin, previous_end)
        previous_end = start + iteration.total
        is_warmup = iteration.index < warmup
        tid = WARMUP_TID if is_warmup else MEASURED_TID
        yield from _iteration_events(iteration, start, _Track(pid, tid, is_warmup, ticks_per_us), categorizer)


def _iteration_events(iteration: Iteration, start: int, track: _Track,
                      categorizer: Categorizer) -> list[dict[str, Any]]:
    """The iteration's total plus every event under it, placed so that children nest in their parents."""
    total_index = len(iteration.events) - 1
    total = iteration.events[total_index]
    children: dict[int, list[int]] = {}
    for index, event in enumerate(iteration.events[:total_index]):
        parent = event.parent if event.parent >= 0 else total_index
        children.setdefault(parent, []).append(index)
    spans = {total_index: _Span(start, start + iteration.total, clamped=False)}
    # The offset that maps this iteration's raw ticks onto the timeline (real-time children keep their spacing).
    shift = start - total.start
    depth = {total_index: 0}
    pending = [total_index]
    while pending:
        parent = pending.pop()
        kids = children.get(parent, [])
        spans.update(_place_children(iteration.events, kids, spans[parent], shift))
        depth.update(dict.fromkeys(kids, depth[parent] + 1))
        pending += kids
    warmup = track.warmup
    total_ms = iteration.total / track.ticks_per_us / 1000.0
    out = {total_index: _x_event(total, spans[total_index], track, TOTAL_CATEGORY,
                                 {"iteration": iteration.index, "warmup": warmup,
                                  "instruction_id": total.instruction_id, "delegated": False, "total_ms": total_ms})}
    for index, event in enumerate(iteration.events[:total_index]):
        category = WRAPPER_CATEGORY if event.kind == "wrapper" and index in children else \
            categorizer.categorize(event.name).category
        args: dict[str, Any] = {"iteration": iteration.index, "warmup": warmup,
                                "instruction_id": event.instruction_id,
                                "delegated": event.kind == "delegated_op" or event.name == "DELEGATE_CALL",
                                "kind": event.kind}
        if event.kind == "delegated_op":
            args["synthetic_start"] = True
        out[index] = _x_event(event, spans[index], track, category, args)
    # The file is in post-order (children before their wrapper); viewers nest best when a parent comes first,
    # so emit by start time, longer (outer) spans first, parents before children on exact ties.
    order = sorted(out, key=lambda i: (spans[i].start, -spans[i].end, depth[i], i))
    return [out[i] for i in order]


def _place_children(events: Sequence[ProfileEvent], kids: list[int], parent: _Span,
                    shift: int) -> dict[int, _Span]:
    """Lay children out in logged order inside the parent, never overlapping each other or leaving it.

    Events with real clocks start at their own time when that fits; delegate-internal events (synthetic
    clocks) start where the previous sibling ended. A child that would run past the parent is moved
    earlier, and if it still does not fit, shortened (marked clamped).
    """
    placed: dict[int, _Span] = {}
    cursor = parent.start
    for index in kids:
        event = events[index]
        duration = event.duration
        wanted = cursor if event.kind == "delegated_op" else event.start + shift
        begin = max(wanted, cursor)
        if begin + duration > parent.end:
            begin = max(cursor, parent.end - duration)
        end = min(begin + duration, parent.end)
        placed[index] = _Span(begin, end, clamped=end - begin < duration)
        cursor = end
    return placed


def _x_event(event: ProfileEvent, span: _Span, track: _Track, category: str,
             args: dict[str, Any]) -> dict[str, Any]:
    # Dividing integer ticks (not multiplying by 1/1000) keeps µs values short: 2.554, not 2.5540000000000003.
    args = {"category": category, **args, "measured_dur_us": event.duration / track.ticks_per_us}
    if span.clamped:
        args["clamped"] = True
    return {"name": event.name, "cat": category, "ph": "X", "ts": span.start / track.ticks_per_us,
            "dur": (span.end - span.start) / track.ticks_per_us, "pid": track.pid, "tid": track.tid, "args": args}
