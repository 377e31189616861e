"""Bounds-checked reading of the flatbuffer layout that ETDump files use (no generated code).

A flatbuffer table starts with a signed offset to its vtable; the vtable lists, per field, the field's
byte offset inside the table (0 = absent, use the schema default). flatcc (which writes ETDumps)
de-duplicates vtables, so a 200k-event file has only a handful: layouts are decoded once per vtable
position and cached. Every position is checked against the buffer before use, so corrupt input raises
`FlatbufferFormatError` (or `struct.error`, which callers treat the same) instead of reading garbage.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Final

I32: Final = struct.Struct("<i")
U32: Final = struct.Struct("<I")
_VTABLE_HEAD: Final = struct.Struct("<HH")

FILE_IDENTIFIER: Final = b"ED00"


class FlatbufferFormatError(ValueError):
    """The bytes do not follow the flatbuffer layout (an offset or length points outside the buffer)."""


def root_table(data: bytes) -> int:
    """Position of the root table, accepting size-prefixed (what flatcc/ETDumpGen write) and plain buffers.

    Size-prefixed: u32 size, u32 root offset, "ED00". Plain: u32 root offset, "ED00". The size prefix is
    checked against the file length, which is what catches truncated files cheaply and reliably.
    """
    if len(data) >= 12 and data[8:12] == FILE_IDENTIFIER:
        size = U32.unpack_from(data, 0)[0]
        if size > len(data) - 4:
            raise FlatbufferFormatError(
                f"the file is truncated: its header announces {size + 4} bytes but it has {len(data)}"
            )
        base = 4
    elif len(data) >= 8 and data[4:8] == FILE_IDENTIFIER:
        base = 0
    else:
        raise FlatbufferFormatError('no ETDump file identifier ("ED00") at the start of the file')
    root: int = base + U32.unpack_from(data, base)[0]
    check_table(data, root)
    return root


def check_span(data: bytes, start: int, size: int) -> None:
    if start < 0 or size < 0 or start + size > len(data):
        raise FlatbufferFormatError(f"{size} bytes at offset {start} run past the end ({len(data)} bytes)")


def check_table(data: bytes, pos: int) -> None:
    check_span(data, pos, 4)


class VtableCache:
    """Field offsets per vtable position: `fields(data, table_pos)` -> tuple of offsets (0 = absent)."""

    __slots__ = ("_cache", "_count")

    def __init__(self, field_count: int) -> None:
        self._count = field_count
        self._cache: dict[int, tuple[int, tuple[int, ...]]] = {}

    def fields(self, data: bytes, table_pos: int) -> tuple[int, ...]:
        check_table(data, table_pos)
        vtable = table_pos - I32.unpack_from(data, table_pos)[0]
        entry = self._cache.get(vtable)
        if entry is None:
            entry = self._cache[vtable] = read_vtable(data, vtable, self._count)
        table_size, offsets = entry
        check_span(data, table_pos, table_size)
        return offsets


def read_vtable(data: bytes, vtable: int, field_count: int) -> tuple[int, tuple[int, ...]]:
    """(inline table size, first `field_count` field offsets) of the vtable at `vtable`."""
    check_span(data, vtable, 4)
    vtable_size, table_size = _VTABLE_HEAD.unpack_from(data, vtable)
    if vtable_size < 4 or vtable_size % 2 or table_size < 4:
        raise FlatbufferFormatError(f"malformed vtable at offset {vtable}")
    check_span(data, vtable, vtable_size)
    present = min(field_count, (vtable_size - 4) // 2)
    offsets = struct.unpack_from(f"<{present}H", data, vtable + 4) + (0,) * (field_count - present)
    for offset in offsets:
        if offset and not 4 <= offset < table_size:
            raise FlatbufferFormatError(f"vtable at offset {vtable} points outside its table")
    return table_size, offsets


def field_target(data: bytes, table_pos: int, field_offset: int) -> int:
    """Follow the uoffset stored in a (present) field to the table/vector/string it refers to."""
    pos = table_pos + field_offset
    target: int = pos + U32.unpack_from(data, pos)[0]
    return target


def table_vector(data: bytes, pos: int) -> list[int]:
    """Positions of the tables in the vector of tables at `pos` (one struct call for all offsets)."""
    check_span(data, pos, 4)
    count = U32.unpack_from(data, pos)[0]
    first = pos + 4
    check_span(data, first, 4 * count)
    offsets = struct.unpack_from(f"<{count}I", data, first)
    return [first + 4 * index + offset for index, offset in enumerate(offsets)]


class StructLayout:
    """Reads several scalar fields of one table layout with a single `struct` call.

    `fields` are (format char, schema default) in schema order; `offsets` are that vtable's field offsets.
    `read(data, table_pos)` returns the values in schema order, defaults filled in for absent fields.
    Reference fields (format "I") come back as the uoffset value itself; add `table_pos + offset_of(i)`
    to follow them (done by the caller, which knows which fields are references).
    """

    __slots__ = ("_getter", "_struct", "defaults", "offsets")

    def __init__(self, fields: tuple[tuple[str, int], ...], offsets: tuple[int, ...], table_size: int) -> None:
        present = sorted((offset, index) for index, offset in enumerate(offsets[: len(fields)]) if offset)
        fmt = ["<"]
        cursor = 0
        for offset, index in present:
            if offset < cursor:
                raise FlatbufferFormatError("overlapping fields in a table layout")
            code = fields[index][0]
            fmt.append(f"{offset - cursor}x{code}")
            cursor = offset + struct.calcsize("<" + code)
        if cursor > table_size:
            raise FlatbufferFormatError("a field runs past the end of its table")
        self._struct = struct.Struct("".join(fmt))
        self.defaults = tuple(default for _, default in fields)
        self.offsets = offsets
        # Canonical position i comes from the unpacked tuple if present, else from the defaults appended
        # after it; itemgetter does that reordering in C.
        where = {index: slot for slot, (_, index) in enumerate(present)}
        picks = [where.get(index, len(present) + index) for index in range(len(fields))]
        self._getter = itemgetter(*picks)

    def read(self, data: bytes, table_pos: int) -> tuple[int, ...]:
        values: tuple[int, ...] = self._getter(self._struct.unpack_from(data, table_pos) + self.defaults)
        return values
