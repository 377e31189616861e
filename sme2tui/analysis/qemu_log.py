"""Stream-parse QEMU's `-d in_asm` (and `-d exec,nochain`) log into per-block aggregates, in bounded memory.

`in_asm` prints every translated block once, as it is translated, i.e. the first time it is about to run:
`IN: [symbol]` then one line per guest instruction, `0x<address>:  <opcode word>  <disassembly>`. `exec` prints
`Trace <cpu>: <host ptr> [<flags>/<guest pc>/<flags>/<cflags>] ...` each time a block runs. The log is never
stored: lines are consumed as QEMU writes them and only one small record per distinct block is kept.

Instruction classes come from the A64 encoding of each opcode word (top-level op0/op1 fields), so they do not
depend on QEMU's disassembler (which cannot decode SME2): SME (op0=1, op1=0000 — ZA-array instructions, incl.
SME2's multi-vector ones), SVE (op1=0010 — incl. streaming SVE), SIMD&FP (Advanced SIMD/FP data processing and
vector register loads/stores), other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_BLOCKS = 2_000_000  # distinct translated blocks kept (a large model translates ~20k)
MAX_LINE = 4096
_INSN = re.compile(r"^0x([0-9a-fA-F]+):\s+([0-9a-fA-F]{8})\b")
_TRACE = re.compile(r"^Trace \d+: 0x[0-9a-fA-F]+ \[[0-9a-fA-F]+/([0-9a-fA-F]+)/")
CLASSES = ("sme", "sve", "simd_fp", "other")


def instruction_class(word: int) -> str:
    op1 = (word >> 25) & 0xF
    if word >> 31 == 1 and op1 == 0:
        return "sme"
    if op1 == 0b0010:
        return "sve"
    if op1 & 0b0111 == 0b0111:
        return "simd_fp"
    if op1 & 0b0101 == 0b0100 and (word >> 26) & 1:
        return "simd_fp"  # loads/stores of SIMD&FP registers (V bit set)
    return "other"


@dataclass
class Block:
    pc: int
    instructions: int = 0
    sme: int = 0
    sve: int = 0
    simd_fp: int = 0

    def add(self, word: int) -> None:
        self.instructions += 1
        kind = instruction_class(word)
        if kind != "other":
            setattr(self, kind, getattr(self, kind) + 1)


@dataclass
class LogStats:
    blocks: dict[int, Block] = field(default_factory=dict)
    executions: dict[int, int] = field(default_factory=dict)
    lines: int = 0
    bytes: int = 0
    translations: int = 0  # blocks translated, including re-translations of the same address
    truncated: bool = False
    _current: Block | None = None

    def feed(self, line: str) -> None:
        self.lines += 1
        self.bytes += len(line)
        if line.startswith("0x"):
            match = _INSN.match(line)
            if match is None:
                return
            address, word = int(match[1], 16), int(match[2], 16)
            if self._current is None:
                self.translations += 1
                if address in self.blocks:
                    self._current = Block(address)  # a re-translation: counted once, not stored again
                elif len(self.blocks) >= MAX_BLOCKS:
                    self.truncated = True
                    self._current = Block(address)
                else:
                    self._current = self.blocks[address] = Block(address)
            self._current.add(word)
        elif line.startswith("IN:") or line.startswith("----"):
            self._current = None
        elif line.startswith("Trace "):
            self._current = None
            match = _TRACE.match(line)
            if match is not None:
                pc = int(match[1], 16)
                if pc in self.executions or len(self.executions) < MAX_BLOCKS:
                    self.executions[pc] = self.executions.get(pc, 0) + 1
                else:
                    self.truncated = True
        else:
            self._current = None if not line.strip() else self._current


def parse_log(lines: Iterable[str]) -> LogStats:
    stats = LogStats()
    for line in lines:
        stats.feed(line[:MAX_LINE])
    return stats
