"""The flatbuffer layout that ETDump files use, read column-wise (no generated code, no recursion).

A flatbuffer table starts with a signed offset to its vtable; the vtable lists, per field, the field's
byte offset inside the table (0 = absent, use the schema default). Reference fields hold an unsigned
offset, relative to the field itself, to a table, vector or string. ETDumps are a fixed-depth tree
(root -> runs -> events -> profile event -> strings), so the reader follows a fixed number of offsets
per event: a corrupt offset that points backwards, into itself or in a cycle just lands on some other
position, which is bounds-checked like any other; nothing is followed recursively and nothing loops.

Tables are handled a column at a time (`table_fields`): writers (flatcc, the flatbuffers builders)
de-duplicate vtables, so consecutive tables almost always share one. Each run of equal vtable positions
is validated once (size, alignment to the table, overlapping fields) and its field offsets are repeated
over the run, so a million events cost a handful of vtable checks and one gather per field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from sme2tui.etdump.bytesview import ByteView, FlatbufferFormatError

if TYPE_CHECKING:
    from numpy.typing import NDArray

FILE_IDENTIFIER: Final = b"ED00"
HEADER_BYTES: Final = 12
_U32: Final = struct.Struct("<I")

__all__ = ["FILE_IDENTIFIER", "HEADER_BYTES", "FlatbufferFormatError", "Header", "parse_header"]


@dataclass(frozen=True)
class Header:
    """Where the flatbuffer sits in the file: `base` (0 plain, 4 size-prefixed) and its end."""

    base: int
    end: int


def parse_header(head: bytes, file_size: int) -> Header:
    """Check the first bytes of a file before anything else is read.

    Size-prefixed (what flatcc's ETDumpGen writes): u32 size, u32 root offset, "ED00"; the announced size
    must fit in the file, which is what catches truncated files cheaply and reliably (bytes after it are
    ignored). Plain: u32 root offset, "ED00"; a cut there shows up as an offset past the end.
    """
    if len(head) >= HEADER_BYTES and head[8:12] == FILE_IDENTIFIER:
        size = _U32.unpack_from(head, 0)[0]
        if size > file_size - 4:
            raise FlatbufferFormatError(
                f"the file is truncated: its header announces {size + 4} bytes but it has {file_size}"
            )
        return Header(base=4, end=size + 4)
    if len(head) >= 8 and head[4:8] == FILE_IDENTIFIER:
        return Header(base=0, end=file_size)
    raise FlatbufferFormatError('no ETDump file identifier ("ED00") at the start of the file')


def root_table(view: ByteView, header: Header) -> int:
    root = header.base + view.scalar("u4", header.base, "the root offset")
    view.check(np.array([root], dtype=np.int64), 4, "the root table")
    return root


@dataclass(frozen=True)
class Fields:
    """Per-table field offsets (0 = absent) for a column of tables, in the order the fields were asked for."""

    tables: NDArray[np.int64]
    offsets: tuple[NDArray[np.int64], ...]

    def present(self, index: int) -> NDArray[np.bool_]:
        mask: NDArray[np.bool_] = self.offsets[index] != 0
        return mask

    def scalar(self, view: ByteView, index: int, code: str, default: int, what: str) -> NDArray[np.int64]:
        """A scalar field for every table (the default where absent)."""
        offsets = self.offsets[index]
        present = offsets != 0
        # Absent fields read a harmless in-bounds position (the file start) and are replaced by the default.
        values = view.read(code, np.where(present, self.tables + offsets, 0), what)
        values[~present] = default
        return values

    def scalar_u64(self, view: ByteView, index: int, what: str) -> NDArray[np.uint64]:
        offsets = self.offsets[index]
        present = offsets != 0
        values = view.read_u64(np.where(present, self.tables + offsets, 0), what)
        values[~present] = 0
        return values

    def target(self, view: ByteView, index: int, what: str, only: NDArray[np.bool_] | None = None
               ) -> NDArray[np.int64]:
        """Where a reference field points, -1 where absent (or not in `only`)."""
        offsets = self.offsets[index]
        present = offsets != 0 if only is None else (offsets != 0) & only
        at = self.tables + offsets
        targets = np.full(at.size, -1, dtype=np.int64)
        targets[present] = at[present] + view.read("u4", at[present], what)
        return targets


def table_fields(view: ByteView, tables: NDArray[np.int64], widths: tuple[int, ...], what: str) -> Fields:
    """Validate the tables at `tables` and return the offsets of their first `len(widths)` fields.

    `widths` are the byte sizes of those fields (4 for references): a present field must lie inside its
    table, fields must not overlap, and the table must lie inside the file.
    """
    count = int(tables.size)
    if count == 0:
        return Fields(tables, tuple(np.zeros(0, dtype=np.int64) for _ in widths))
    vtables = tables - view.read("i4", tables, what)
    change = np.ones(count, dtype=bool)
    np.not_equal(vtables[1:], vtables[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    lengths = np.diff(np.append(starts, count))
    reps = vtables[starts]
    vtable_size = view.read("u2", reps, f"{what}'s vtable")
    table_size = view.read("u2", reps + 2, f"{what}'s vtable")
    bad = (vtable_size < 4) | (vtable_size % 2 == 1) | (table_size < 4)
    _raise_first(bad, reps, f"malformed vtable of {what} at offset {{}}")
    view.check(reps + vtable_size - 2, 2, f"the end of {what}'s vtable")
    rep_offsets = []
    for index, width in enumerate(widths):
        slot = 4 + 2 * index
        offsets = np.zeros(reps.size, dtype=np.int64)
        has = vtable_size >= slot + 2
        offsets[has] = view.read("u2", reps[has] + slot, f"{what}'s vtable")
        outside = (offsets != 0) & ((offsets < 4) | (offsets + width > table_size))
        _raise_first(outside, reps, f"the vtable of {what} at offset {{}} points outside its table")
        rep_offsets.append(offsets)
    _check_no_overlap(rep_offsets, widths, reps, what)
    table_end = tables + np.repeat(table_size, lengths)
    view.check(table_end - 1, 1, f"the end of {what}")
    return Fields(tables, tuple(np.repeat(offsets, lengths) for offsets in rep_offsets))


def _check_no_overlap(offsets: list[NDArray[np.int64]], widths: tuple[int, ...], reps: NDArray[np.int64],
                      what: str) -> None:
    if len(offsets) < 2:
        return
    starts = np.stack(offsets, axis=1)
    ends = np.where(starts != 0, starts + np.array(widths, dtype=np.int64), 0)
    order = np.argsort(starts, axis=1, kind="stable")
    starts = np.take_along_axis(starts, order, axis=1)
    ends = np.take_along_axis(ends, order, axis=1)
    overlap: NDArray[np.bool_] = np.asarray((starts[:, 1:] < ends[:, :-1]).any(axis=1))
    _raise_first(overlap, reps, f"overlapping fields in the vtable of {what} at offset {{}}")


def _raise_first(bad: NDArray[np.bool_], where: NDArray[np.int64], message: str) -> None:
    if bad.any():
        raise FlatbufferFormatError(message.format(int(where[int(np.argmax(bad))])))


def vectors(view: ByteView, positions: NDArray[np.int64], what: str) -> NDArray[np.int64]:
    """Element counts of the vectors at `positions` (each must fit in the file)."""
    counts = view.read("u4", positions, f"the length of {what}")
    view.check(positions + 4 * counts, 4, what)
    return counts


def table_vector(view: ByteView, position: int, what: str) -> NDArray[np.int64]:
    """Positions of the tables in one vector of tables."""
    count = int(vectors(view, np.array([position], dtype=np.int64), what)[0])
    slots = position + 4 + 4 * np.arange(count, dtype=np.int64)
    targets: NDArray[np.int64] = slots + view.read("u4", slots, what)
    return targets
