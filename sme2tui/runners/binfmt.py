"""Read the target architecture straight from a binary's header (ELF e_machine, Mach-O cputype).

This is how a build proves what it produced: an "arm64 Android runner" that is really x86-64 (a wrong
toolchain file, a host compiler picked up by mistake) is caught before anything is pushed to a phone.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_ELF_MACHINES = {
    3: "x86",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    40: "arm",
    62: "x86-64",
    183: "aarch64",
    243: "riscv",
}
_MACHO_CPUS = {7: "x86", 0x01000007: "x86-64", 12: "arm", 0x0100000C: "arm64", 0x0200000C: "arm64_32"}
_MACHO_MAGIC = {
    b"\xcf\xfa\xed\xfe": ("<", 64),
    b"\xce\xfa\xed\xfe": ("<", 32),
    b"\xfe\xed\xfa\xcf": (">", 64),
    b"\xfe\xed\xfa\xce": (">", 32),
}
_FAT_MAGIC = b"\xca\xfe\xba\xbe"

# Architecture names as the rest of sme2tui speaks them, per binary-format spelling.
CANONICAL = {"x86-64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


_HOST_MACHINES = {"x86_64": "x86_64", "AMD64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def host_canonical() -> str:
    """This machine's architecture in the same spelling as `BinaryArch.canonical`."""
    machine = platform.machine()
    return _HOST_MACHINES.get(machine, machine)


class NotABinary(ValueError):
    """The file is neither ELF nor Mach-O (or is truncated)."""


@dataclass(frozen=True, slots=True)
class BinaryArch:
    format: str  # "ELF" | "Mach-O" | "Mach-O fat"
    machine: str  # format's own spelling: "aarch64", "x86-64", "arm64", ...
    bits: int
    endian: str  # "little" | "big"
    interpreter: str = ""  # ELF PT_INTERP, e.g. /system/bin/linker64 for Android
    slices: tuple[str, ...] = ()  # fat Mach-O: every architecture inside

    @property
    def canonical(self) -> str:
        """`x86_64` or `arm64` (others unchanged), so ELF and Mach-O results compare equal."""
        return CANONICAL.get(self.machine, self.machine)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["canonical"] = self.canonical
        data["slices"] = list(self.slices)
        return data


def _elf(data: bytes) -> BinaryArch:
    if len(data) < 52:
        raise NotABinary("truncated ELF header")
    bits = {1: 32, 2: 64}.get(data[4])
    endian = {1: "little", 2: "big"}.get(data[5])
    if bits is None or endian is None:
        raise NotABinary("invalid ELF class or data encoding")
    e = "<" if endian == "little" else ">"
    (machine,) = struct.unpack_from(e + "H", data, 18)
    if bits == 64:
        phoff, phentsize, phnum = (
            struct.unpack_from(e + "Q", data, 32)[0],
            *struct.unpack_from(e + "HH", data, 54),
        )
    else:
        phoff, phentsize, phnum = (
            struct.unpack_from(e + "I", data, 28)[0],
            *struct.unpack_from(e + "HH", data, 42),
        )
    interpreter = ""
    for i in range(phnum):
        base = phoff + i * phentsize
        if base + phentsize > len(data):
            break
        (p_type,) = struct.unpack_from(e + "I", data, base)
        if p_type != 3:  # PT_INTERP
            continue
        if bits == 64:
            offset, size = (
                struct.unpack_from(e + "Q", data, base + 8)[0],
                struct.unpack_from(e + "Q", data, base + 32)[0],
            )
        else:
            offset, size = (
                struct.unpack_from(e + "I", data, base + 4)[0],
                struct.unpack_from(e + "I", data, base + 16)[0],
            )
        interpreter = data[offset : offset + size].split(b"\0", 1)[0].decode(errors="replace")
        break
    return BinaryArch("ELF", _ELF_MACHINES.get(machine, f"e_machine={machine}"), bits, endian, interpreter)


def _macho(data: bytes) -> BinaryArch:
    e, bits = _MACHO_MAGIC[data[:4]]
    (cputype,) = struct.unpack_from(e + "i", data, 4)
    cpu = cputype & 0xFFFFFFFF
    return BinaryArch("Mach-O", _MACHO_CPUS.get(cpu, f"cputype={cpu:#x}"), bits, "little" if e == "<" else "big")


def _fat(data: bytes) -> BinaryArch:
    (count,) = struct.unpack_from(">I", data, 4)
    # Java class files share this magic; their "count" is a version number well above any arch count.
    if count == 0 or count > 16 or len(data) < 8 + 20 * count:
        raise NotABinary("not a fat Mach-O")
    cpus = [struct.unpack_from(">I", data, 8 + 20 * i)[0] for i in range(count)]
    names = tuple(_MACHO_CPUS.get(c, f"cputype={c:#x}") for c in cpus)
    return BinaryArch("Mach-O fat", names[0] if count == 1 else "+".join(names), 64, "big", slices=names)


def read_arch(path: Path) -> BinaryArch:
    """The architecture of the executable at `path`; raises NotABinary for anything else."""
    with path.open("rb") as f:
        data = f.read(64 * 1024)  # headers and PT_INTERP sit at the start of every real binary
    if data[:4] == b"\x7fELF":
        return _elf(data)
    if data[:4] in _MACHO_MAGIC:
        return _macho(data)
    if data[:4] == _FAT_MAGIC:
        return _fat(data)
    raise NotABinary(f"{path} is neither ELF nor Mach-O")
