"""ETDump bytes -> classified profile-event records, run by run (the hot loop; layout in flatbuf.py).

Schema: executorch/devtools/etdump/etdump_schema_flatcc.fbs (ExecuTorch 1.5.1). Field numbers used here:
  ETDump       0 version:uint, 1 run_data:[RunData]
  RunData      3 events:[Event] (0 name is "Default"/"Execute" and not needed: see __init__.py)
  Event        0 profile_event (1 allocation_event and 2 debug_event are skipped)
  ProfileEvent 0 name:string, 1 chain_index:int, 2 instruction_id:int = -1,
               3 delegate_debug_id_int:int = -1, 4 delegate_debug_id_str:string, 6 start_time:ulong,
               7 end_time:ulong (5 delegate_debug_metadata is not read)

Speed matters here (a 200k-event file must read in well under a second), hence one function with
local-variable aliases, one `struct` call per table, cached layouts and strings, and no name decoding
for events whose display name comes from the delegate debug string.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from tests.etdump_legacy.flatbuf import (
    I32,
    U32,
    FlatbufferFormatError,
    StructLayout,
    VtableCache,
    field_target,
    read_vtable,
    root_table,
    table_vector,
)
from tests.etdump_legacy.kinds import kind_of_name

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.etdump_legacy.model import EventKind

# (struct code, schema default) per ProfileEvent field, in schema order. Reference fields are read as
# their raw uoffset ("I", 0 = absent); delegate_debug_metadata is read (as an unused uoffset) only to keep
# the tuple positional.
_PROFILE_FIELDS: Final = (("I", 0), ("i", 0), ("i", -1), ("i", -1), ("I", 0), ("I", 0), ("Q", 0), ("Q", 0))
_NAME, _DD_STR = 0, 4
_MAX_U32: Final = 2**32 - 1

# One profile event, classified: (display name, chain_index, instruction_id, delegate_debug_id_int,
# delegate_debug_id_str, start, end, kind). A plain tuple: one is built per event in the hot loop and
# dropped as soon as its iteration is assembled.
Record = tuple[str, int, int, int, str | None, int, int, "EventKind"]


def read_version(data: bytes) -> int:
    """Schema version from the root table (checks the header too)."""
    root = root_table(data)
    field = VtableCache(2).fields(data, root)[0]
    version: int = U32.unpack_from(data, root + field)[0] if field else 0
    return version


def iter_runs(data: bytes) -> Iterator[list[Record]]:
    """Decode the runs one at a time, in file order, so that only one run's records exist at once.

    Raises FlatbufferFormatError (or struct.error / UnicodeDecodeError) on bytes that are not a
    well-formed ETDump.
    """
    root = root_table(data)
    root_fields = VtableCache(2).fields(data, root)
    if not root_fields[1]:
        return
    runs_cache = VtableCache(4)
    decoder = _EventDecoder(data)
    for run in table_vector(data, field_target(data, root, root_fields[1])):
        events_field = runs_cache.fields(data, run)[3]
        yield decoder.records(field_target(data, run, events_field)) if events_field else []


class _EventDecoder:
    """Per-file caches: Event vtables, ProfileEvent layouts and decoded strings (shared, not copied)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._event_layouts: dict[int, int] = {}
        self._profile_layouts: dict[int, StructLayout] = {}
        # Names repeat every iteration; one str per distinct name keeps memory flat. Keyed by the raw
        # bytes so that a repeated name costs a slice and a lookup, not a decode.
        self._strings: dict[bytes, str] = {}
        self._kinds: dict[str, EventKind] = {}
        self._int_names: dict[int, str] = {}

    def records(self, vector: int) -> list[Record]:
        data = self._data
        size = len(data)
        i32 = I32.unpack_from
        u32 = U32.unpack_from
        event_layouts = self._event_layouts
        profile_layouts = self._profile_layouts
        strings = self._strings
        kinds = self._kinds
        out: list[Record] = []
        append = out.append
        for event in table_vector(data, vector):
            vtable = event - i32(data, event)[0]
            profile_field = event_layouts.get(vtable)
            if profile_field is None:
                profile_field = event_layouts[vtable] = self._event_layout(vtable)
            if not profile_field:
                continue  # an allocation or debug event
            pos = event + profile_field
            pos += u32(data, pos)[0]
            if pos + 4 > size:
                raise FlatbufferFormatError(f"a profile event at offset {pos} runs past the end of the file")
            vtable = pos - i32(data, pos)[0]
            layout = profile_layouts.get(vtable)
            if layout is None:
                layout = profile_layouts[vtable] = self._profile_layout(vtable)
            name_ref, chain, instruction, dd_int, dd_str_ref, _, start, end = layout.read(data, pos)
            if end < start and (start > _MAX_U32 or end > _MAX_U32):
                raise FlatbufferFormatError(
                    f"a profile event (instruction {instruction}) ends at {end}, before its start {start}, "
                    "and the times are not 32-bit counters that could have wrapped"
                )
            dd_str: str | None = None
            if dd_str_ref:
                at = pos + layout.offsets[_DD_STR] + dd_str_ref
                length = u32(data, at)[0]
                raw = data[at + 4 : at + 4 + length]
                cached = strings.get(raw)
                dd_str = cached if cached is not None and len(raw) == length else self._new_string(raw, at)
                # Inspector treats an empty delegate string as absent.
                dd_str = dd_str or None
            # Inspector's naming (Event._populate_event_signature_fields): a delegate debug id, the
            # integer one first, replaces the logged name; such events are delegate-internal ops.
            if dd_int != -1:
                display = self._int_name(dd_int)
                kind: EventKind = "delegated_op"
            elif dd_str is not None:
                display = dd_str
                kind = "delegated_op"
            else:
                display = ""
                if name_ref:
                    at = pos + layout.offsets[_NAME] + name_ref
                    length = u32(data, at)[0]
                    raw = data[at + 4 : at + 4 + length]
                    cached = strings.get(raw)
                    display = cached if cached is not None and len(raw) == length else self._new_string(raw, at)
                known = kinds.get(display)
                kind = known if known is not None else self._new_kind(display)
            append((display, chain, instruction, dd_int, dd_str, start, end, kind))
        return out

    def _event_layout(self, vtable: int) -> int:
        if vtable < 0:
            raise FlatbufferFormatError(f"an event's vtable offset points before the file start ({vtable})")
        _, offsets = read_vtable(self._data, vtable, 1)
        return offsets[0]

    def _profile_layout(self, vtable: int) -> StructLayout:
        if vtable < 0:
            raise FlatbufferFormatError(f"a profile event's vtable points before the file start ({vtable})")
        table_size, offsets = read_vtable(self._data, vtable, len(_PROFILE_FIELDS))
        return StructLayout(_PROFILE_FIELDS, offsets, table_size)

    def _new_string(self, raw: bytes, at: int) -> str:
        length = U32.unpack_from(self._data, at)[0]
        if len(raw) != length:
            raise FlatbufferFormatError(f"a string at offset {at} runs past the end of the file")
        text = self._strings[raw] = raw.decode("utf-8")
        return text

    def _new_kind(self, name: str) -> EventKind:
        kind = self._kinds[name] = kind_of_name(name)
        return kind

    def _int_name(self, value: int) -> str:
        name = self._int_names.get(value)
        if name is None:
            name = self._int_names[value] = str(value)
        return name
