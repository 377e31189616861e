"""Write ETDump flatbuffers by hand (with the `flatbuffers` library), for shapes the runtime here never
produces: integer delegate ids, allocation/debug events between profile events, a delegate without
internal events, events outside any execute, a 32-bit counter that wrapped, one run for everything.

The field numbers follow executorch/devtools/etdump/etdump_schema_flatcc.fbs; the tests check that
ExecuTorch's Inspector reads these files exactly as it reads runtime-written ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import flatbuffers


@dataclass(frozen=True)
class Profile:
    name: str | None = None
    instruction_id: int = -1
    start: int = 0
    end: int = 0
    chain_index: int = 0
    dd_int: int = -1
    dd_str: str | None = None


@dataclass(frozen=True)
class Allocation:
    allocator_id: int = 0
    size: int = 64


@dataclass(frozen=True)
class Debug:
    instruction_id: int = 0
    int_value: int = 1


@dataclass(frozen=True)
class RunData:
    name: str
    events: Sequence[Profile | Allocation | Debug] = field(default_factory=list)


def build(runs: list[RunData], version: int = 0, size_prefixed: bool = True) -> bytes:
    builder = flatbuffers.Builder(1024)
    run_tables = [_run(builder, run) for run in runs]
    run_vector = _vector(builder, run_tables)
    builder.StartObject(2)  # ETDump
    builder.PrependUint32Slot(0, version, 0)
    builder.PrependUOffsetTRelativeSlot(1, run_vector, 0)
    root = builder.EndObject()
    if size_prefixed:
        builder.FinishSizePrefixed(root, file_identifier=b"ED00")
    else:
        builder.Finish(root, file_identifier=b"ED00")
    return bytes(builder.Output())


def _vector(builder: flatbuffers.Builder, tables: list[int]) -> int:
    builder.StartVector(4, len(tables), 4)
    for table in reversed(tables):
        builder.PrependUOffsetTRelative(table)
    vector: int = builder.EndVector()
    return vector


def _run(builder: flatbuffers.Builder, run: RunData) -> int:
    events = [_event(builder, event) for event in run.events]
    events_vector = _vector(builder, events)
    name = builder.CreateString(run.name)
    builder.StartObject(4)  # RunData
    builder.PrependUOffsetTRelativeSlot(0, name, 0)
    builder.PrependUOffsetTRelativeSlot(3, events_vector, 0)
    table: int = builder.EndObject()
    return table


def _event(builder: flatbuffers.Builder, event: Profile | Allocation | Debug) -> int:
    if isinstance(event, Profile):
        slot, inner = 0, _profile(builder, event)
    elif isinstance(event, Allocation):
        builder.StartObject(2)  # AllocationEvent
        builder.PrependInt32Slot(0, event.allocator_id, 0)
        builder.PrependUint64Slot(1, event.size, 0)
        slot, inner = 1, builder.EndObject()
    else:
        builder.StartObject(1)  # Int
        builder.PrependInt64Slot(0, event.int_value, 0)
        value = builder.EndObject()
        builder.StartObject(8)  # Value: val = Int (1), int_value
        builder.PrependInt8Slot(0, 1, 0)
        builder.PrependUOffsetTRelativeSlot(3, value, 0)
        entry = builder.EndObject()
        builder.StartObject(6)  # DebugEvent
        builder.PrependInt32Slot(1, event.instruction_id, -1)
        builder.PrependUOffsetTRelativeSlot(2, entry, 0)
        slot, inner = 2, builder.EndObject()
    builder.StartObject(3)  # Event: exactly one of profile/allocation/debug
    builder.PrependUOffsetTRelativeSlot(slot, inner, 0)
    table: int = builder.EndObject()
    return table


def _profile(builder: flatbuffers.Builder, event: Profile) -> int:
    name = builder.CreateString(event.name) if event.name is not None else 0
    dd_str = builder.CreateString(event.dd_str) if event.dd_str is not None else 0
    builder.StartObject(8)  # ProfileEvent
    if name:
        builder.PrependUOffsetTRelativeSlot(0, name, 0)
    builder.PrependInt32Slot(1, event.chain_index, 0)
    builder.PrependInt32Slot(2, event.instruction_id, -1)
    builder.PrependInt32Slot(3, event.dd_int, -1)
    if dd_str:
        builder.PrependUOffsetTRelativeSlot(4, dd_str, 0)
    builder.PrependUint64Slot(6, event.start, 0)
    builder.PrependUint64Slot(7, event.end, 0)
    table: int = builder.EndObject()
    return table
