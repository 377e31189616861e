"""What an ETDump holds once read: profile events as columns, grouped into iterations.

Events are stored column-wise (`EventTable`: ~40 bytes per event, names as ids into one table of
distinct strings), so a multi-million-event trace costs tens of MB, not a Python object per event.
Code that wants objects gets them on demand: `trace.iterations[i]` builds that iteration's
`ProfileEvent`s when asked, and `trace.load_events` is small. Analyses work on the columns directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final, Literal, overload

import numpy as np

from sme2tui.etdump.kinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from numpy.typing import NDArray

EventKind = Literal["total", "load", "wrapper", "delegated_op", "operator"]

# Inspector's rule for a start time later than the end time (`Event._calculate_elapsed_time`): assume a
# 32-bit tick counter wrapped around. The reader rejects backwards events outside 32 bits, so `duration`
# never has to fail.
_MAX_U32: Final = 2**32 - 1


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    """One profile event as logged by the runtime.

    `name` is what ExecuTorch's Inspector shows as `Event.name`: for an event with a delegate debug id
    (e.g. XNNPACK's "Convolution (NHWC, F32) IGEMM #1") it is that id, otherwise the logged name.
    """

    name: str
    chain_index: int
    instruction_id: int
    delegate_debug_id_int: int
    delegate_debug_id_str: str | None
    start: int
    end: int
    kind: EventKind
    parent: int

    @property
    def duration(self) -> int:
        """Elapsed ticks (`end - start`), with Inspector's 32-bit wrap-around rule."""
        if self.end >= self.start:
            return self.end - self.start
        return (_MAX_U32 - self.start) + self.end


@dataclass(frozen=True, slots=True)
class Iteration:
    """One `Method::execute` call: its total and every profile event it logged, in file order."""

    index: int
    total: int
    events: tuple[ProfileEvent, ...]


@dataclass(frozen=True, eq=False)
class EventTable:
    """Profile events as columns, one row per event.

    `name`/`dd_str` are ids into the trace's `names` (`dd_str` -1 = no delegate debug string); `kind` is
    an index into `kinds.KINDS`; `parent` is the index (within the event's iteration) of the wrapper
    that contains it, -1 for none; `leaf` marks events whose time no other event of the iteration also
    counts (operators, delegate-internal ops, and wrappers without children).
    """

    name: NDArray[np.int32]
    dd_str: NDArray[np.int32]
    chain_index: NDArray[np.int32]
    instruction_id: NDArray[np.int32]
    dd_int: NDArray[np.int32]
    start: NDArray[np.uint64]
    end: NDArray[np.uint64]
    kind: NDArray[np.uint8]
    parent: NDArray[np.int32]
    leaf: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.kind.size)

    def durations(self, rows: slice | NDArray[np.int64] = slice(None)) -> NDArray[np.uint64]:
        """Elapsed ticks of the given rows, with Inspector's 32-bit wrap-around rule."""
        start, end = self.start[rows], self.end[rows]
        with np.errstate(over="ignore"):
            wrapped: NDArray[np.uint64] = (np.uint64(_MAX_U32) - start) + end
            return np.where(end >= start, end - start, wrapped)

    def objects(self, names: Sequence[str], first: int, stop: int) -> tuple[ProfileEvent, ...]:
        """Rows `first:stop` as ProfileEvent objects."""
        rows = slice(first, stop)
        columns = zip(
            [names[i] for i in self.name[rows].tolist()],
            self.chain_index[rows].tolist(),
            self.instruction_id[rows].tolist(),
            self.dd_int[rows].tolist(),
            [names[i] if i >= 0 else None for i in self.dd_str[rows].tolist()],
            self.start[rows].tolist(),
            self.end[rows].tolist(),
            [KINDS[k] for k in self.kind[rows].tolist()],
            self.parent[rows].tolist(),
            strict=True,
        )
        return tuple(make_event(*row) for row in columns)


@dataclass(frozen=True, eq=False)
class EtdumpTrace:
    """A whole ETDump file: load-time events plus one iteration per execute call (warmups included).

    `events` holds the iteration events, iteration after iteration: iteration i is rows
    `bounds[i]:bounds[i + 1]`, and its last row is its `Method::execute` total. `load` holds the events
    outside any iteration (`Method::init`, `Program::load_method`, anything logged after a run's last
    execute). `names` is the table that name ids point into.
    """

    path: Path
    version: int
    ticks_per_ns: float
    names: tuple[str, ...]
    events: EventTable
    bounds: NDArray[np.int64]
    load: EventTable

    @classmethod
    def from_objects(cls, path: Path, iterations: Sequence[Iteration], load_events: Sequence[ProfileEvent] = (),
                     *, version: int = 0, ticks_per_ns: float = 1.0) -> EtdumpTrace:
        """A trace from event objects (tests and hand-made traces; the reader builds columns directly).

        Each iteration's last event must be its total; `parent` indexes within the iteration as usual.
        """
        names: dict[str, int] = {}
        events = [event for iteration in iterations for event in iteration.events]
        leaf: list[bool] = []
        for iteration in iterations:
            parents = {event.parent for event in iteration.events}
            leaf += [event.kind in ("operator", "delegated_op") or (event.kind == "wrapper" and index not in parents)
                     for index, event in enumerate(iteration.events)]
        sizes = [len(iteration.events) for iteration in iterations]
        return cls(
            path=path, version=version, ticks_per_ns=ticks_per_ns, names=(), events=_table(events, names, leaf),
            bounds=np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
            load=_table(list(load_events), names, [False] * len(load_events)),
        ).with_names(tuple(names))

    def with_names(self, names: tuple[str, ...]) -> EtdumpTrace:
        return EtdumpTrace(self.path, self.version, self.ticks_per_ns, names, self.events, self.bounds, self.load)

    @property
    def event_count(self) -> int:
        return len(self.events) + len(self.load)

    @property
    def iteration_count(self) -> int:
        return int(self.bounds.size) - 1

    @property
    def iterations(self) -> Iterations:
        """The iterations as objects, built on access (index, slice or iterate)."""
        return Iterations(self)

    @property
    def load_events(self) -> tuple[ProfileEvent, ...]:
        return self.load.objects(self.names, 0, len(self.load))

    def totals(self) -> NDArray[np.uint64]:
        """Each iteration's `Method::execute` duration in ticks, in execution order."""
        if self.iteration_count == 0:
            return np.zeros(0, dtype=np.uint64)
        return self.events.durations(self.bounds[1:] - 1)

    def iteration_index(self) -> NDArray[np.int32]:
        """The iteration each row of `events` belongs to."""
        return np.repeat(np.arange(self.iteration_count, dtype=np.int32), np.diff(self.bounds))

    def leaf_events(self, iteration: Iteration) -> list[ProfileEvent]:
        """Events whose time is not also counted by another event of the iteration.

        That excludes the total, load events and wrappers that have children; a wrapper without children
        (e.g. a delegate that logs no internal events) is itself the finest measurement, so it stays.
        """
        parents = {event.parent for event in iteration.events}
        return [
            event
            for index, event in enumerate(iteration.events)
            if event.kind not in ("total", "load") and not (event.kind == "wrapper" and index in parents)
        ]


def _table(events: list[ProfileEvent], names: dict[str, int], leaf: list[bool]) -> EventTable:
    def name_id(name: str | None) -> int:
        return -1 if name is None else names.setdefault(name, len(names))

    def column(values: list[int], dtype: type[np.generic]) -> NDArray[Any]:
        return np.array(values, dtype=dtype)

    return EventTable(
        name=column([name_id(e.name) for e in events], np.int32),
        dd_str=column([name_id(e.delegate_debug_id_str) for e in events], np.int32),
        chain_index=column([e.chain_index for e in events], np.int32),
        instruction_id=column([e.instruction_id for e in events], np.int32),
        dd_int=column([e.delegate_debug_id_int for e in events], np.int32),
        start=column([e.start for e in events], np.uint64),
        end=column([e.end for e in events], np.uint64),
        kind=column([KINDS.index(e.kind) for e in events], np.uint8),
        parent=column([e.parent for e in events], np.int32),
        leaf=np.array(leaf, dtype=bool),
    )


class Iterations(Sequence[Iteration]):
    """A trace's iterations, each built from the columns when it is accessed (nothing is cached)."""

    def __init__(self, trace: EtdumpTrace) -> None:
        self._trace = trace

    def __len__(self) -> int:
        return self._trace.iteration_count

    @overload
    def __getitem__(self, index: int) -> Iteration: ...

    @overload
    def __getitem__(self, index: slice) -> list[Iteration]: ...

    def __getitem__(self, index: int | slice) -> Iteration | list[Iteration]:
        if isinstance(index, slice):
            return [self._build(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("iteration index out of range")
        return self._build(index)

    def __iter__(self) -> Iterator[Iteration]:
        return (self._build(i) for i in range(len(self)))

    def _build(self, index: int) -> Iteration:
        trace = self._trace
        first, stop = int(trace.bounds[index]), int(trace.bounds[index + 1])
        events = trace.events.objects(trace.names, first, stop)
        return Iteration(index=index, total=events[-1].duration, events=events)


def _fast_event_factory() -> Callable[[str, int, int, int, str | None, int, int, EventKind, int], ProfileEvent]:
    """A constructor for ProfileEvent about twice as fast as the frozen dataclass `__init__`.

    The generated frozen `__init__` goes through `object.__setattr__` by name for each of the nine
    fields; setting the slots through their descriptors gives an identical object (tests compare the two).
    """
    new = object.__new__
    (s_name, s_chain, s_instr, s_dd_int, s_dd_str, s_start, s_end, s_kind, s_parent) = (
        getattr(ProfileEvent, field.name).__set__ for field in fields(ProfileEvent)
    )

    def make(
        name: str,
        chain_index: int,
        instruction_id: int,
        delegate_debug_id_int: int,
        delegate_debug_id_str: str | None,
        start: int,
        end: int,
        kind: EventKind,
        parent: int,
    ) -> ProfileEvent:
        event = new(ProfileEvent)
        s_name(event, name)
        s_chain(event, chain_index)
        s_instr(event, instruction_id)
        s_dd_int(event, delegate_debug_id_int)
        s_dd_str(event, delegate_debug_id_str)
        s_start(event, start)
        s_end(event, end)
        s_kind(event, kind)
        s_parent(event, parent)
        return event

    return make


make_event: Final = _fast_event_factory()


def iteration_total_ns(trace: EtdumpTrace) -> list[float]:
    """Per-iteration `Method::execute` time in nanoseconds, warmups included, in execution order."""
    return [total / trace.ticks_per_ns for total in trace.totals().tolist()]
