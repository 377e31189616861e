"""Classified records -> load events and iterations with wrapper nesting (rules in __init__.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.etdump_legacy.model import Iteration, ProfileEvent, make_event

if TYPE_CHECKING:
    from tests.etdump_legacy.decode import Record


class Assembler:
    """Consumes runs in file order and accumulates load events and iterations."""

    def __init__(self) -> None:
        self.iterations: list[Iteration] = []
        self.load_events: list[ProfileEvent] = []
        self.event_count = 0

    def add_run(self, records: list[Record]) -> None:
        self.event_count += len(records)
        start = 0
        for index, record in enumerate(records):
            kind = record[7]
            if kind == "total":
                self._add_iteration(records, start, index + 1)
                start = index + 1
        # Events after the run's last Method::execute belong to no iteration (e.g. a runner's own events
        # outside execute): keep them as non-iteration (kind "load") events rather than drop them.
        for name, chain, instruction, dd_int, dd_str, begin, end, _ in records[start:]:
            self.load_events.append(make_event(name, chain, instruction, dd_int, dd_str, begin, end, "load", -1))

    def _add_iteration(self, records: list[Record], first: int, stop: int) -> None:
        chunk = records[first:stop]
        loads = [record for record in chunk if record[7] == "load"]
        if loads:
            # Load steps logged inside an execute block (not seen in practice) still never join it.
            self.load_events.extend(make_event(*record, -1) for record in loads)
            chunk = [record for record in chunk if record[7] != "load"]
        events = tuple(
            make_event(name, chain, instruction, dd_int, dd_str, begin, end, kind, parent)
            for (name, chain, instruction, dd_int, dd_str, begin, end, kind), parent in zip(
                chunk, _parents(chunk), strict=True
            )
        )
        self.iterations.append(Iteration(index=len(self.iterations), total=events[-1].duration, events=events))


def _parents(records: list[Record]) -> list[int]:
    """Index of the wrapper that contains each event, -1 for none.

    Events are logged when they end, so a wrapper comes after what it contains: its children are the
    events right before it with the same instruction id, back to the previous wrapper (or total).
    """
    parents = [-1] * len(records)
    for index, record in enumerate(records):
        if record[7] != "wrapper":
            continue
        instruction = record[2]
        child = index - 1
        while child >= 0:
            candidate = records[child]
            if candidate[2] != instruction or candidate[7] in ("wrapper", "total"):
                break
            parents[child] = index
            child -= 1
    return parents
