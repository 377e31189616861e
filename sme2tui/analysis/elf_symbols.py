"""Guest addresses → (library, function): the guest's /proc/self/maps plus the ELF function symbols of each file.

pyelftools reads `.symtab` where the file has one (our runner) and `.dynsym` otherwise (the wheel's stripped
libraries still export their KleidiAI and most XNNPACK micro-kernels). Only addresses inside a symbol's
[start, start + size) are attributed to it; everything else is "unnamed code" of that library, never guessed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

_UNSIZED_LIMIT = 64 * 1024  # a symbol without st_size covers up to the next symbol, at most this much


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str


@dataclass
class FunctionTable:
    path: str
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (p_offset, p_vaddr, p_filesz)

    def vaddr(self, file_offset: int) -> int | None:
        for p_offset, p_vaddr, size in self.segments:
            if p_offset <= file_offset < p_offset + size:
                return file_offset - p_offset + p_vaddr
        return None

    def function_at(self, vaddr: int) -> str | None:
        index = bisect.bisect_right(self.starts, vaddr) - 1
        if index >= 0 and self.starts[index] <= vaddr < self.ends[index]:
            return self.names[index]
        return None


def parse_maps(text: str) -> list[Mapping]:
    """Executable, file-backed mappings from /proc/<pid>/maps text."""
    out = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or "x" not in parts[1] or not parts[5].startswith("/"):
            continue
        try:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            offset = int(parts[2], 16)
        except ValueError:
            continue
        out.append(Mapping(start, end, offset, parts[5].strip()))
    return out


def read_functions(path: str) -> FunctionTable:
    """Function symbols and load segments of one ELF file (an empty table if it is not a readable ELF)."""
    table = FunctionTable(path)
    try:
        with Path(path).open("rb") as handle:
            elf = ELFFile(handle)
            table.segments = [(s["p_offset"], s["p_vaddr"], s["p_filesz"]) for s in elf.iter_segments()
                              if s["p_type"] == "PT_LOAD"]
            found: dict[int, tuple[int, str]] = {}
            for section_name in (".symtab", ".dynsym"):
                section = elf.get_section_by_name(section_name)
                if section is None or not hasattr(section, "iter_symbols"):
                    continue
                for symbol in section.iter_symbols():
                    if symbol["st_info"]["type"] != "STT_FUNC" or not symbol["st_value"] or \
                            symbol["st_shndx"] == "SHN_UNDEF" or not symbol.name:
                        continue
                    found.setdefault(symbol["st_value"], (symbol["st_size"], symbol.name))
    except (OSError, ELFError):
        return table
    starts = sorted(found)
    for i, start in enumerate(starts):
        size, name = found[start]
        if size == 0:
            following = starts[i + 1] if i + 1 < len(starts) else start + _UNSIZED_LIMIT
            size = min(following - start, _UNSIZED_LIMIT)
        table.starts.append(start)
        table.ends.append(start + size)
        table.names.append(name)
    return table


class AddressMapper:
    """Maps guest addresses to (library path, function name or None), caching each file's symbol table."""

    def __init__(self, mappings: list[Mapping]) -> None:
        self.mappings = sorted(mappings, key=lambda m: m.start)
        self._starts = [m.start for m in self.mappings]
        self._tables: dict[str, FunctionTable] = {}

    def table(self, path: str) -> FunctionTable:
        if path not in self._tables:
            self._tables[path] = read_functions(path)
        return self._tables[path]

    def mapping_at(self, address: int) -> Mapping | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address < self.mappings[index].end:
            return self.mappings[index]
        return None

    def lookup(self, address: int) -> tuple[str | None, str | None]:
        mapping = self.mapping_at(address)
        if mapping is None:
            return None, None
        table = self.table(mapping.path)
        vaddr = table.vaddr(address - mapping.start + mapping.offset)
        return mapping.path, (table.function_at(vaddr) if vaddr is not None else None)

    def range_of(self, path: str, function: str) -> tuple[int, int] | None:
        """The guest address range of `function` in `path` (for -dfilter), if mapped."""
        table = self.table(path)
        try:
            index = table.names.index(function)
        except ValueError:
            return None
        start, end = table.starts[index], table.ends[index]
        for mapping in self.mappings:
            if mapping.path != path:
                continue
            for p_offset, p_vaddr, size in table.segments:
                if p_vaddr <= start < p_vaddr + size:
                    file_offset = start - p_vaddr + p_offset
                    if mapping.offset <= file_offset < mapping.offset + (mapping.end - mapping.start):
                        base = mapping.start - mapping.offset + file_offset - start
                        return base + start, base + end
        return None
