"""Per-iteration sums from ETDump columns: end-to-end totals, category sums and operator samples.

This is the arithmetic behind a cell's breakdown (conventions in cell.py), done on the trace's columns
a bounded chunk of iterations at a time: each distinct name is categorized once, sums are `bincount`s in
file order (so every float equals the one a per-event Python loop would produce, bit for bit), and what
is kept grows with iterations x operators, never with a Python object per event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from sme2tui.analysis.categorize import CATEGORIES, normalize_name
from sme2tui.etdump.kinds import DELEGATED_OP

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from sme2tui.analysis.categorize import Categorizer
    from sme2tui.etdump import EtdumpTrace

NS_PER_MS: Final = 1e6
# Events handled per step (whole iterations; one iteration bigger than this is a step of its own).
CHUNK_EVENTS: Final = 1 << 15
_UNKNOWN: Final = -1
# Operator times go into an operators x iterations table when it would be at least 1/DENSE_FILL full.
DENSE_FILL: Final = 2


@dataclass
class OperatorSample:
    """One operator, keyed by (instruction id, name): its per-iteration times over the measured iterations."""

    instruction_id: int
    name: str
    delegated: bool  # as first seen
    category: str
    known: bool
    occurrences: int = 0  # iterations in which it appeared
    median_ms: float = 0.0
    mean_ms: float = 0.0


@dataclass
class TraceSample:
    """Everything the cell analysis needs from its ETDumps' measured iterations, in round order."""

    totals_ms: list[float] = field(default_factory=list)
    category_ms: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})
    operators: list[OperatorSample] = field(default_factory=list)  # in order of first appearance
    unknown_names: set[str] = field(default_factory=set)


class _Categories:
    """Category index per name id of one trace, filled in the first time a name is met."""

    def __init__(self, trace: EtdumpTrace, categorizer: Categorizer, sample: TraceSample) -> None:
        self._names = trace.names
        self._categorizer = categorizer
        self._sample = sample
        self.index = np.full(len(trace.names), _UNKNOWN, dtype=np.int8)
        self.known = np.zeros(len(trace.names), dtype=bool)

    def of(self, name_ids: NDArray[np.int32]) -> NDArray[np.int8]:
        fresh = np.unique(name_ids[self.index[name_ids] == _UNKNOWN])
        for name_id in fresh.tolist():
            name = self._names[name_id]
            result = self._categorizer.categorize(name)
            self.index[name_id] = CATEGORIES.index(result.category)
            self.known[name_id] = result.known
            if not result.known:
                self._sample.unknown_names.add(normalize_name(name))
        categories: NDArray[np.int8] = self.index[name_ids]
        return categories


class _Operators:
    """Operator ids across every trace of a cell, and one (operator, iteration, time) triple per operator
    and measured iteration it appeared in (stored in arrays sized for the measured leaf events)."""

    def __init__(self, sample: TraceSample, capacity: int) -> None:
        self._sample = sample
        self._ids: dict[tuple[int, str], int] = {}
        # np.empty does not touch its pages: only the triples actually written cost memory.
        self._op = np.empty(capacity, dtype=np.int32)
        self._iteration = np.empty(capacity, dtype=np.int32)
        self._ms = np.empty(capacity, dtype=np.float64)
        self._count = 0
        self.iterations = 0  # measured iterations so far, over every trace

    def add(self, trace: EtdumpTrace, categories: _Categories, rows: NDArray[np.int64], iteration: NDArray[np.int64],
            ms: NDArray[np.float64], first_iteration: int) -> None:
        """`iteration` counts from the chunk's first iteration, which is measured iteration `first_iteration`
        of this trace."""
        events = trace.events
        keys = (events.instruction_id[rows].astype(np.int64) << 32) | events.name[rows].astype(np.int64)
        distinct, first, local = np.unique(keys, return_index=True, return_inverse=True)
        del keys
        global_ids = np.empty(distinct.size, dtype=np.int32)
        for slot in np.argsort(first, kind="stable").tolist():  # first-appearance order
            instruction_id, name_id = int(distinct[slot]) >> 32, int(distinct[slot]) & 0xFFFFFFFF
            key = (instruction_id, trace.names[name_id])
            known = self._ids.get(key)
            if known is None:
                known = self._ids[key] = len(self._sample.operators)
                row = int(rows[first[slot]])
                self._sample.operators.append(OperatorSample(
                    instruction_id=instruction_id, name=key[1], delegated=int(events.kind[row]) == DELEGATED_OP,
                    category=CATEGORIES[int(categories.index[name_id])], known=bool(categories.known[name_id])))
            global_ids[slot] = known
        # An operator logged more than once in an iteration counts once, with its times added up
        # (in file order, like the per-event loop did).
        width = distinct.size
        pairs, pair_index = np.unique(iteration * width + local, return_inverse=True)
        stop = self._count + pairs.size
        self._op[self._count : stop] = global_ids[pairs % width]
        self._iteration[self._count : stop] = pairs // width + (self.iterations + first_iteration)
        self._ms[self._count : stop] = np.bincount(pair_index, weights=ms, minlength=pairs.size)
        self._count = stop

    def finish(self) -> None:
        """Median, mean and count per operator."""
        count, operators = self._count, self._sample.operators
        if not count:
            return
        op, ms = self._op[:count], self._ms[:count]
        counts = np.bincount(op, minlength=len(operators))
        if len(operators) * self.iterations <= DENSE_FILL * count:
            # Most operators run every iteration: one row per operator, NaN where it did not run;
            # sorting each row in place puts its values first, in order (NaN sorts last).
            table = np.full((len(operators), self.iterations), np.nan)
            table[op, self._iteration[:count]] = ms
            self._release()
            table.sort(axis=1)
            segments = (table[index, :size] for index, size in enumerate(counts.tolist()))
        else:
            # Operators come and go (or there are very many): group the triples by operator instead.
            order = np.argsort(op, kind="stable")
            grouped = ms[order]
            del order
            self._release()
            stops = np.cumsum(counts).tolist()
            segments = (np.sort(grouped[stop - size : stop]) for stop, size in zip(stops, counts.tolist(),
                                                                                    strict=True))
        for operator, segment in zip(operators, segments, strict=True):
            size = segment.size
            middle = size // 2
            # statistics.median and statistics.fmean, computed the same way on the same floats.
            operator.median_ms = (float(segment[middle]) if size % 2 else
                                  (float(segment[middle - 1]) + float(segment[middle])) / 2)
            operator.mean_ms = math.fsum(segment.tolist()) / size
            operator.occurrences = size

    def _release(self) -> None:
        self._op = self._iteration = np.empty(0, dtype=np.int32)
        self._ms = np.empty(0, dtype=np.float64)


def sample_traces(parts: list[tuple[EtdumpTrace, int]], categorizer: Categorizer) -> TraceSample:
    """Totals, category sums and operator samples over the iterations after each trace's warmup."""
    sample = TraceSample()
    capacity = sum(int(np.count_nonzero(trace.events.leaf[trace.bounds[min(warmup, trace.iteration_count)]:]))
                   for trace, warmup in parts)
    operators = _Operators(sample, capacity)
    for trace, warmup in parts:
        _sample_trace(trace, warmup, categorizer, sample, operators)
        operators.iterations += max(trace.iteration_count - warmup, 0)
    operators.finish()
    return sample


def _sample_trace(trace: EtdumpTrace, warmup: int, categorizer: Categorizer, sample: TraceSample,
                  operators: _Operators) -> None:
    bounds = trace.bounds
    measured = range(min(warmup, trace.iteration_count), trace.iteration_count)
    if not measured:
        return
    totals = trace.totals()[measured.start :].astype(np.float64)
    sample.totals_ms += (totals / (trace.ticks_per_ns * NS_PER_MS)).tolist()
    scale = 1.0 / (trace.ticks_per_ns * NS_PER_MS)
    categories = _Categories(trace, categorizer, sample)
    sums = [sample.category_ms[c] for c in CATEGORIES]
    first = measured.start
    while first < measured.stop:
        stop = _chunk_end(bounds, first, measured.stop)
        lo, hi = int(bounds[first]), int(bounds[stop])
        rows = np.flatnonzero(trace.events.leaf[lo:hi]) + lo
        iteration = np.searchsorted(bounds, rows, side="right") - 1 - first
        ms = trace.events.durations(rows).astype(np.float64) * scale
        category = categories.of(trace.events.name[rows])
        count = stop - first
        per_category = np.bincount(iteration * len(CATEGORIES) + category, weights=ms,
                                   minlength=count * len(CATEGORIES)).reshape(count, len(CATEGORIES))
        for index, values in enumerate(per_category.T.tolist()):
            sums[index] += values
        if rows.size:
            operators.add(trace, categories, rows, iteration, ms, first - measured.start)
        first = stop


def _chunk_end(bounds: NDArray[np.int64], first: int, stop: int) -> int:
    """The end of the run of whole iterations from `first` that holds about CHUNK_EVENTS events."""
    end = int(np.searchsorted(bounds, bounds[first] + CHUNK_EVENTS, side="right")) - 1
    return min(max(end, first + 1), stop)
