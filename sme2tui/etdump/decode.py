"""ETDump bytes -> one column per profile-event field, decoded in bounded chunks (layout in flatbuf.py).

Schema: executorch/devtools/etdump/etdump_schema_flatcc.fbs (ExecuTorch 1.5.1). Field numbers used here:
  ETDump       0 version:uint, 1 run_data:[RunData]
  RunData      3 events:[Event] (0 name is "Default"/"Execute" and not needed: see __init__.py)
  Event        0 profile_event (1 allocation_event and 2 debug_event are skipped)
  ProfileEvent 0 name:string, 1 chain_index:int, 2 instruction_id:int = -1,
               3 delegate_debug_id_int:int = -1, 4 delegate_debug_id_str:string, 6 start_time:ulong,
               7 end_time:ulong (5 delegate_debug_metadata is not read)

Every event becomes a row of fixed-size integers; strings become ids into one table of distinct names
(a 3M-event trace has a few hundred), so memory per event is ~40 bytes and never a Python object.
Event slots are decoded CHUNK_EVENTS at a time, so the temporaries stay small whatever the file size, and
the caller can drop the file pages a chunk has finished with (`release`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from sme2tui.etdump.bytesview import Buffer, ByteView, FlatbufferFormatError
from sme2tui.etdump.flatbuf import Header, table_fields, table_vector, vectors
from sme2tui.etdump.flatbuf import root_table as find_root
from sme2tui.etdump.kinds import DELEGATED_OP
from sme2tui.etdump.names import Names

if TYPE_CHECKING:
    from numpy.typing import NDArray

CHUNK_EVENTS: Final = 1 << 14
RUN_CHUNK: Final = 1 << 10
_MAX_U32: Final = 2**32 - 1
# ProfileEvent fields in schema order with their widths (references are 4-byte offsets).
_PROFILE_WIDTHS: Final = (4, 4, 4, 4, 4, 4, 8, 8)
_NAME, _CHAIN, _INSTRUCTION, _DD_INT, _DD_STR, _START, _END = 0, 1, 2, 3, 4, 6, 7

Release = Callable[[int, int], None]


@dataclass
class Columns:
    """Profile events in file order, one array per field (`run` is the RunData each came from)."""

    name: NDArray[np.int32]
    dd_str: NDArray[np.int32]  # name id of delegate_debug_id_str, -1 when absent or empty
    chain_index: NDArray[np.int32]
    instruction_id: NDArray[np.int32]
    dd_int: NDArray[np.int32]
    start: NDArray[np.uint64]
    end: NDArray[np.uint64]
    kind: NDArray[np.uint8]
    run: NDArray[np.int32]

    @classmethod
    def empty(cls, size: int) -> Columns:
        # np.empty does not touch its pages: slots that turn out to be allocation or debug events cost no RSS.
        arrays: list[Any] = [np.empty(size, dtype=dtype) for dtype in _COLUMN_DTYPES]
        return cls(*arrays)

    def head(self, size: int) -> Columns:
        return Columns(*(getattr(self, field)[:size] for field in _COLUMN_FIELDS))


_COLUMN_FIELDS: Final = ("name", "dd_str", "chain_index", "instruction_id", "dd_int", "start", "end", "kind", "run")
_COLUMN_DTYPES: Final = (np.int32, np.int32, np.int32, np.int32, np.int32, np.uint64, np.uint64, np.uint8, np.int32)
# The least an event takes that is its own: its 4-byte slot, an Event table (offset to itself + one reference)
# and the smallest allocation or profile event table behind it. Real ETDumps take several times more; this
# bounds the decoded columns (41 bytes per event) to a few times the file's size, whatever the file claims.
MIN_EVENT_BYTES: Final = 16


@dataclass
class Decoded:
    version: int
    names: Names
    columns: Columns


def decode(buffer: Buffer, header: Header, release: Release | None = None) -> Decoded:
    """Decode every profile event. Raises FlatbufferFormatError on bytes that are not a well-formed ETDump."""
    view = ByteView(buffer)
    root = find_root(view, header)
    fields = table_fields(view, np.array([root], dtype=np.int64), (4, 4), "the root table")
    version = int(fields.scalar(view, 0, "u4", 0, "the schema version")[0])
    names = Names()
    run_vector = int(fields.target(view, 1, "the run list")[0])
    if run_vector < 0:
        return Decoded(version, names, Columns.empty(0))
    runs = table_vector(view, run_vector, "the run list")
    event_vectors, counts = _event_lists(view, runs, release)
    _check_disjoint(event_vectors, counts)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    total = int(bounds[-1])
    if total * MIN_EVENT_BYTES > view.size:
        # Slots pointing at shared tables: a small file that would decode to an unbounded number of events.
        raise FlatbufferFormatError(
            f"the event lists hold {total:,} events in a file of {view.size:,} bytes, fewer than the "
            f"{MIN_EVENT_BYTES} bytes every event needs of its own: the events share their tables (corrupt or "
            "crafted), so the file is not read")
    columns = Columns.empty(total)
    filled = 0
    for first in range(0, total, CHUNK_EVENTS):
        slots = np.arange(first, min(first + CHUNK_EVENTS, total), dtype=np.int64)
        run = np.searchsorted(bounds, slots, side="right") - 1
        slot_at = event_vectors[run] + 4 + 4 * (slots - bounds[run])
        filled = _decode_chunk(view, names, slot_at, run, columns, filled, release)
    return Decoded(version, names, columns.head(filled))


def _event_lists(view: ByteView, runs: NDArray[np.int64], release: Release | None
                 ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(position, length) of each run's event list (-1, 0 for a run without one).

    Run tables are spread over the whole file (one per execute call), so they are read a slice at a time
    and the pages of each slice handed back: touching them all at once would map the whole file.
    """
    positions = np.full(runs.size, -1, dtype=np.int64)
    counts = np.zeros(runs.size, dtype=np.int64)
    for first in range(0, runs.size, RUN_CHUNK):
        part = slice(first, first + RUN_CHUNK)
        fields = table_fields(view, runs[part], (4, 4, 4, 4), "a run")
        lists = fields.target(view, 3, "a run's event list")
        has_events = lists >= 0
        part_counts = np.zeros(lists.size, dtype=np.int64)
        part_counts[has_events] = vectors(view, lists[has_events], "a run's event list")
        positions[part], counts[part] = lists, part_counts
        if release is not None:
            touched = np.concatenate((runs[part], lists[has_events]))
            release(int(touched.min()), int(touched.max()) + 4)
    return positions, counts


def _check_disjoint(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> None:
    """Event lists of different runs never share bytes in a file a writer made; a corrupt file whose runs
    all point at one big list would otherwise multiply its events (and the memory they take)."""
    used = counts > 0
    if not used.any():
        return
    order = np.argsort(starts[used], kind="stable")
    begin = starts[used][order]
    end = begin + 4 + 4 * counts[used][order]
    if (begin[1:] < end[:-1]).any():
        raise FlatbufferFormatError("two runs share event-list bytes (the run table offsets are corrupt)")


def _decode_chunk(view: ByteView, names: Names, slot_at: NDArray[np.int64], run: NDArray[np.int64],
                  out: Columns, filled: int, release: Release | None) -> int:
    events = slot_at + view.read("u4", slot_at, "an event offset")
    event_fields = table_fields(view, events, (4, 4, 4), "an event")
    profiles_at = event_fields.target(view, 0, "a profile event")
    is_profile = profiles_at >= 0  # allocation and debug events are skipped
    profiles = profiles_at[is_profile]
    run = run[is_profile]
    fields = table_fields(view, profiles, _PROFILE_WIDTHS, "a profile event")
    chain = fields.scalar(view, _CHAIN, "i4", 0, "a chain index")
    instruction = fields.scalar(view, _INSTRUCTION, "i4", -1, "an instruction id")
    dd_int = fields.scalar(view, _DD_INT, "i4", -1, "a delegate debug id")
    start = fields.scalar_u64(view, _START, "a start time")
    end = fields.scalar_u64(view, _END, "an end time")
    backwards = (end < start) & ((start > _MAX_U32) | (end > _MAX_U32))
    if backwards.any():
        at = int(np.argmax(backwards))
        raise FlatbufferFormatError(
            f"a profile event (instruction {int(instruction[at])}) ends at {int(end[at])}, before its start "
            f"{int(start[at])}, and the times are not 32-bit counters that could have wrapped"
        )
    # Inspector's naming (Event._populate_event_signature_fields): a delegate debug id, the integer one
    # first, replaces the logged name, and an empty delegate string counts as absent.
    dd_str_at, dd_str_end = _strings(view, fields.target(view, _DD_STR, "a delegate debug string"))
    dd_str = np.full(profiles.size, -1, dtype=np.int32)
    has_dd_str = dd_str_end > dd_str_at + 4
    dd_str[has_dd_str] = names.ids(view, dd_str_at[has_dd_str] + 4, dd_str_end[has_dd_str])
    has_dd_int = dd_int != -1
    named_by_str = has_dd_str & ~has_dd_int
    logged = ~has_dd_int & ~has_dd_str
    name_at, name_end = _strings(view, fields.target(view, _NAME, "a name", only=logged))
    name = np.empty(profiles.size, dtype=np.int32)
    name[named_by_str] = dd_str[named_by_str]
    has_name = logged & (name_at >= 0)
    name[has_name] = names.ids(view, name_at[has_name] + 4, name_end[has_name])
    unnamed = logged & (name_at < 0)
    if unnamed.any():
        name[unnamed] = names.id_of(b"")
    if has_dd_int.any():
        values, inverse = np.unique(dd_int[has_dd_int], return_inverse=True)
        ids = np.array([names.id_of(str(int(value)).encode()) for value in values], dtype=np.int32)
        name[has_dd_int] = ids[inverse]
    kind = np.asarray(names.kinds, dtype=np.uint8)[name]
    kind[has_dd_int | has_dd_str] = DELEGATED_OP
    stop = filled + profiles.size
    for column, values in (("name", name), ("dd_str", dd_str), ("chain_index", chain), ("instruction_id", instruction),
                           ("dd_int", dd_int), ("start", start), ("end", end), ("kind", kind), ("run", run)):
        getattr(out, column)[filled:stop] = values
    if release is not None and slot_at.size:
        touched = [positions[positions >= 0] for positions in (slot_at, events, profiles, dd_str_end, name_end)]
        release(min(int(a.min()) for a in touched if a.size), max(int(a.max()) for a in touched if a.size))
    return stop


def _strings(view: ByteView, at: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(position, end) of each string (-1, -1 where absent); lengths are checked against the file."""
    present = at >= 0
    end = np.full(at.size, -1, dtype=np.int64)
    lengths = view.read("u4", at[present], "a string")
    end[present] = at[present] + 4 + lengths
    view.check(end[present] - 1, 1, "the end of a string")
    return at, end
