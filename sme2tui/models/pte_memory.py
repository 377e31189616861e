"""A program's size and planned memory, read from the `.pte` itself (no torch, no executorch).

What peers report as "model size" and "arena size": the file's bytes, and per method the memory-planned
buffers the runtime allocates before the first execution — `ExecutionPlan.non_const_buffer_sizes` in
ExecuTorch's program schema (`schema/program.fbs`: Program field 1 `execution_plan`, ExecutionPlan field 0
`name`, field 8 `non_const_buffer_sizes: [int64]`). Entry 0 is reserved (the schema: "ignore
non_const_buffer_sizes[0]"), so the planned memory is the sum of the others; runners allocate exactly these
(upstream executor_runner and sme2_runner alike, from `MethodMeta::memory_planned_buffer_size`).

The file is memory-mapped and every offset is bounds-checked, so a corrupt file costs bounded time and ends
in `ProgramMemoryError`, never a crash. Constant weights are not in this number: they live in the file
(mapped or copied by the data loader) and a delegate may pack them again at init (XNNPACK does), which only
the process's peak RSS shows.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sme2tui.errors import AnalysisError

IDENTIFIER = b"ET12"
MAX_PLANS = 1024
MAX_BUFFERS = 4096


class ProgramMemoryError(AnalysisError):
    """The file is not a readable ExecuTorch program."""


@dataclass(frozen=True)
class PlanMemory:
    method: str
    planned_bytes: int
    buffers: list[int] = field(default_factory=list)  # non_const_buffer_sizes[1:], in bytes


@dataclass(frozen=True)
class ProgramMemory:
    size_bytes: int
    plans: list[PlanMemory]

    def plan(self, method: str | None = None) -> PlanMemory | None:
        """The named method's plan, else `forward`, else the first (what runners execute by default)."""
        by_name = {p.method: p for p in self.plans}
        return by_name.get(method or "forward") or (self.plans[0] if self.plans else None)

    def to_dict(self) -> dict[str, Any]:
        return {"size_bytes": self.size_bytes, "plans": [asdict(p) for p in self.plans]}


class _Reader:
    def __init__(self, data: mmap.mmap | bytes) -> None:
        self.data = data
        self.size = len(data)

    def u32(self, pos: int) -> int:
        return int(self._unpack("<I", pos))

    def i32(self, pos: int) -> int:
        return int(self._unpack("<i", pos))

    def u16(self, pos: int) -> int:
        return int(self._unpack("<H", pos))

    def _unpack(self, fmt: str, pos: int) -> Any:
        width = struct.calcsize(fmt)
        if pos < 0 or pos + width > self.size:
            raise ValueError(f"offset {pos} is outside the file")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table's field, None when absent."""
        vtable = table - self.i32(table)
        vsize = self.u16(vtable)
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        offset = self.u16(vtable + slot)
        return table + offset if offset else None

    def ref(self, table: int, index: int) -> int | None:
        pos = self.field(table, index)
        return None if pos is None else pos + self.u32(pos)

    def vector(self, table: int, index: int, width: int, limit: int) -> tuple[int, int]:
        start = self.ref(table, index)
        if start is None:
            return 0, 0
        count = self.u32(start)
        if count > limit or start + 4 + count * width > self.size:
            raise ValueError(f"a vector of {count} entries does not fit the file")
        return start + 4, count

    def string(self, table: int, index: int) -> str:
        first, count = self.vector(table, index, 1, 4096)
        return bytes(self.data[first:first + count]).decode("utf-8", errors="replace") if count else ""


def _parse(data: mmap.mmap | bytes, size: int) -> ProgramMemory:
    reader = _Reader(data)
    if size < 8 or bytes(data[4:8]) != IDENTIFIER:
        raise ValueError("no ExecuTorch program identifier (ET12) at byte 4")
    root = reader.u32(0)
    first, count = reader.vector(root, 1, 4, MAX_PLANS)
    plans = []
    for i in range(count):
        where = first + 4 * i
        plan = where + reader.u32(where)
        name = reader.string(plan, 0)
        start, n = reader.vector(plan, 8, 8, MAX_BUFFERS)
        sizes = list(struct.unpack_from(f"<{n}q", data, start)) if n else []
        buffers = sizes[1:]
        if any(s < 0 for s in buffers):
            raise ValueError("a negative planned buffer size")
        plans.append(PlanMemory(method=name, planned_bytes=sum(buffers), buffers=buffers))
    return ProgramMemory(size_bytes=size, plans=plans)


def read_program_memory(path: Path | str) -> ProgramMemory:
    path = Path(path)
    fix = "pass the .pte that ran (a program written by ExecuTorch's to_executorch())"
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size == 0:
                raise ProgramMemoryError(f"{path.name} is empty", where=str(path), fix=fix)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse(data, size)
    except OSError as exc:
        raise ProgramMemoryError(f"cannot read {path.name}: {exc.strerror or exc}", where=str(path),
                                 fix="check the path") from None
    except (ValueError, struct.error) as exc:
        raise ProgramMemoryError(f"{path.name} is not a readable ExecuTorch program: {exc}", where=str(path),
                                 fix=fix) from None
