"""Decoded columns -> iterations and wrapper nesting (rules in __init__.py), a few array passes in all.

The rules, restated as array operations over the events in file order:

* Iteration number of an event = number of `Method::execute` totals logged before it. The event belongs
  to that iteration if the next total is in the same run; otherwise it comes after its run's last total
  and is kept as a load (non-iteration) event, like `Method::init` and `Program::load_method` always are.
* Parent: split each iteration's events into maximal groups of consecutive non-wrapper, non-total events
  with one instruction id. A group's parent is the event right after it if that is a wrapper with the
  same instruction id (a wrapper is logged after what it contains); otherwise it has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np

from sme2tui.etdump.kinds import DELEGATED_OP, LOAD, OPERATOR, TOTAL, WRAPPER
from sme2tui.etdump.model import EventTable

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from sme2tui.etdump.decode import Columns

CHUNK_EVENTS: Final = 1 << 15
TABLE_FIELDS: Final = ("name", "dd_str", "chain_index", "instruction_id", "dd_int", "start", "end", "kind")


def assemble(columns: Columns) -> tuple[EventTable, EventTable, NDArray[np.int64]]:
    """(iteration events grouped by iteration, load events, iteration bounds into the first table).

    Consumes `columns` (its arrays are moved into the tables). Runs over every event of the file, so the
    work is done CHUNK_EVENTS at a time: besides the tables, only a one-byte mask per event is allocated.
    """
    kind, run = columns.kind, columns.run
    count = kind.size
    totals_at = np.flatnonzero(kind == TOTAL)
    # An event belongs to an iteration if a total follows it in its own run, i.e. it is not after its
    # run's last total (and it is not a load step).
    last_total = np.full(int(run[-1]) + 1 if count else 0, -1, dtype=np.int64)
    if totals_at.size:
        total_runs = run[totals_at]
        last_of_run = np.append(total_runs[1:] != total_runs[:-1], True)
        last_total[total_runs[last_of_run]] = totals_at[last_of_run]
    in_iteration = np.empty(count, dtype=bool)
    for first in range(0, count, CHUNK_EVENTS):
        stop = min(first + CHUNK_EVENTS, count)
        np.less_equal(np.arange(first, stop), last_total[run[first:stop]], out=in_iteration[first:stop])
        in_iteration[first:stop] &= kind[first:stop] != LOAD
    columns.run = run = run[:0]
    members = _rows(in_iteration)
    loads = np.flatnonzero(~in_iteration)
    del in_iteration
    # Iteration i ends at its total: it holds the members up to and including totals_at[i].
    if isinstance(members, slice):
        bounds = np.concatenate(([0], totals_at + 1 - members.start)).astype(np.int64)
    else:
        bounds = np.concatenate(([0], np.searchsorted(members, totals_at, side="right"))).astype(np.int64)
    iterations = totals_at.size
    size = int(bounds[-1])
    parent = np.empty(size, dtype=np.int32)
    leaf = np.empty(size, dtype=bool)
    # Nesting never crosses an iteration, so it is worked out a bounded run of iterations at a time.
    first = 0
    while first < iterations:
        stop = min(max(int(np.searchsorted(bounds, bounds[first] + CHUNK_EVENTS, side="right")) - 1, first + 1),
                   iterations)
        lo, hi = int(bounds[first]), int(bounds[stop])
        rows = _sub(members, lo, hi)
        iteration = np.repeat(np.arange(first, stop, dtype=np.int32), np.diff(bounds[first : stop + 1]))
        parent[lo:hi], leaf[lo:hi] = _nesting(kind[rows], columns.instruction_id[rows], iteration, bounds)
        first = stop
    events, load = _split(columns, members, parent, leaf, loads)
    return events, load, bounds


def _sub(rows: slice | NDArray[np.int64], lo: int, hi: int) -> slice | NDArray[np.int64]:
    if isinstance(rows, slice):
        return slice(rows.start + lo, rows.start + hi)
    return rows[lo:hi]


def _rows(mask: NDArray[np.bool_]) -> slice | NDArray[np.int64]:
    """The rows where `mask` is set: a slice when they are one stretch (the normal case: load events
    come first), so that selecting them is a view, not a copy."""
    count = int(np.count_nonzero(mask))
    if count == 0:
        return slice(0, 0)
    first = int(np.argmax(mask))
    if bool(mask[first : first + count].all()):
        return slice(first, first + count)
    return np.flatnonzero(mask)


def _nesting(kind: NDArray[np.uint8], instruction: NDArray[np.int32], iteration: NDArray[np.int32],
             bounds: NDArray[np.int64]) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
    """Parent of each iteration event (index within its iteration, -1 for none) and whether it is a leaf."""
    count = kind.size
    if count == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=bool)
    breaks = (kind == WRAPPER) | (kind == TOTAL)
    starts_group = np.ones(count, dtype=bool)
    if count > 1:
        starts_group[1:] = breaks[1:]
        starts_group[1:] |= breaks[:-1]
        starts_group[1:] |= instruction[1:] != instruction[:-1]
        starts_group[1:] |= iteration[1:] != iteration[:-1]
    group = np.cumsum(starts_group, dtype=np.int32)
    group -= 1
    group_starts = np.flatnonzero(starts_group).astype(np.int32)
    del starts_group
    after = np.append(group_starts[1:], np.int32(count))[group]  # the index right after each event's group
    del group, group_starts
    candidate = np.minimum(after, count - 1)
    contained = ~breaks
    contained &= after < count
    contained &= kind[candidate] == WRAPPER
    contained &= instruction[candidate] == instruction
    contained &= iteration[candidate] == iteration
    del candidate
    parent = np.full(count, -1, dtype=np.int32)
    parent[contained] = (after[contained] - bounds[iteration[contained]]).astype(np.int32)
    has_children = np.zeros(count, dtype=bool)
    has_children[after[contained]] = True
    del after, contained
    # A wrapper without children (a delegate that logs no internal events) is itself the finest
    # measurement, so it is a leaf; totals, wrappers with children and load events are not.
    leaf = (kind == OPERATOR) | (kind == DELEGATED_OP)
    leaf |= (kind == WRAPPER) & ~has_children
    return parent, leaf


def _split(columns: Columns, rows: slice | NDArray[np.int64], parent: NDArray[np.int32], leaf: NDArray[np.bool_],
           loads: NDArray[np.int64]) -> tuple[EventTable, EventTable]:
    """The iteration events and the load events as two tables, consuming `columns` one field at a time
    so that at most one extra column exists at once (none when `rows` is a slice: views, not copies)."""
    iteration_fields: dict[str, NDArray[Any]] = {}
    load_fields: dict[str, NDArray[Any]] = {}
    for field in TABLE_FIELDS:
        values = getattr(columns, field)
        iteration_fields[field] = values[rows]
        load_fields[field] = values[loads]
        setattr(columns, field, values[:0])
    # Everything outside an iteration is a load (non-iteration) event, whatever its name.
    load_fields["kind"] = np.full(loads.size, LOAD, dtype=np.uint8)
    events = EventTable(**iteration_fields, parent=parent, leaf=leaf)
    load = EventTable(**load_fields, parent=np.full(loads.size, -1, dtype=np.int32),
                      leaf=np.zeros(loads.size, dtype=bool))
    return events, load
