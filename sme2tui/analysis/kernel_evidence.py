"""Which kernels ran in an emulated cell: translated blocks (QEMU log aggregates) mapped to ELF functions and
classified SME2 / SME / NEON / SVE / scalar by the micro-kernel naming conventions of KleidiAI (`kai_*_sme2_*`,
`*_sme_*`, `*_neon_*`) and XNNPACK (`xnn_*_ukernel_*__neonsme2`, `__neonfp16arith`, `__scalar`, …).

A function "ran" when QEMU translated one of its blocks: QEMU translates a block right before its first
execution. Compute kernels are told apart from their helpers (`kai_get_*`, `*_get_mr`): only compute kernels
make evidence; and an SME/SME2 compute kernel also shows SME/SVE-encoded instructions in its translated code.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sme2tui.analysis.elf_symbols import AddressMapper
from sme2tui.analysis.qemu_log import LogStats

Family = Literal["SME2", "SME", "NEON", "SVE", "scalar", "other"]
EVIDENCE_SCHEMA = "sme2tui.emulated_evidence/1"
EVIDENCE_FILE = "evidence.json"
_COMPUTE = re.compile(r"^kai_(kernel|run)_|ukernel")
_HELPER = re.compile(r"_get_[a-z_]+$|^kai_get_|^kai_(kernel|run)_.*vector_length")


def kernel_family(name: str) -> Family | None:
    """The instruction-set family a kernel's name declares (None for functions that are not kernels)."""
    lower = name.lower()
    if not (lower.startswith(("kai_", "xnn_")) or "ukernel" in lower):
        return None
    if "sme2" in lower:
        return "SME2"
    if re.search(r"(?:^|_)sme(?:_|$)|neonsme(?:_|$)", lower):
        return "SME"
    if "neon" in lower or "aarch64" in lower or "dotprod" in lower or "i8mm" in lower:
        return "NEON"
    if "sve" in lower:
        return "SVE"
    if "scalar" in lower:
        return "scalar"
    return "other"


def is_compute(name: str) -> bool:
    return bool(_COMPUTE.search(name)) and not _HELPER.search(name)


@dataclass
class FunctionRecord:
    name: str
    library: str
    family: Family | None
    compute: bool
    blocks: int = 0
    instructions: int = 0
    sme_instructions: int = 0
    sve_instructions: int = 0
    simd_fp_instructions: int = 0
    block_executions: int | None = None
    executed_instructions: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_evidence(stats: LogStats, mapper: AddressMapper, *, cpu: str, qemu: dict[str, Any],
                   probe: dict[str, Any]) -> dict[str, Any]:
    """The evidence.json document for one emulated cell."""
    functions: dict[tuple[str, str], FunctionRecord] = {}
    unnamed: dict[str, dict[str, int]] = {}
    totals = {"blocks": 0, "instructions": 0, "sme_instructions": 0, "sve_instructions": 0,
              "simd_fp_instructions": 0}
    for pc, block in stats.blocks.items():
        path, name = mapper.lookup(pc)
        library = Path(path).name if path else "(anonymous or JIT memory)"
        totals["blocks"] += 1
        totals["instructions"] += block.instructions
        totals["sme_instructions"] += block.sme
        totals["sve_instructions"] += block.sve
        totals["simd_fp_instructions"] += block.simd_fp
        if name is None:
            entry = unnamed.setdefault(library, {"blocks": 0, "instructions": 0, "sme_instructions": 0,
                                                 "sve_instructions": 0, "simd_fp_instructions": 0})
            entry["blocks"] += 1
            entry["instructions"] += block.instructions
            entry["sme_instructions"] += block.sme
            entry["sve_instructions"] += block.sve
            entry["simd_fp_instructions"] += block.simd_fp
            continue
        record = functions.get((library, name))
        if record is None:
            record = functions[(library, name)] = FunctionRecord(name, library, kernel_family(name), is_compute(name))
        record.blocks += 1
        record.instructions += block.instructions
        record.sme_instructions += block.sme
        record.sve_instructions += block.sve
        record.simd_fp_instructions += block.simd_fp
        executions = stats.executions.get(pc)
        if executions is not None:
            record.block_executions = (record.block_executions or 0) + executions
            record.executed_instructions = (record.executed_instructions or 0) + executions * block.instructions
    kernels = sorted((r for r in functions.values() if r.family is not None),
                     key=lambda r: (r.family or "", -r.instructions, r.name))
    by_family: dict[str, list[str]] = {}
    for record in kernels:
        if record.compute:
            by_family.setdefault(record.family or "other", []).append(record.name)
    return {
        "schema": EVIDENCE_SCHEMA,
        "source": "QEMU `-d in_asm`: every translated block (= code that ran at least once), its guest address "
                  "mapped to ELF function symbols of the runner and its libraries through the guest's "
                  "/proc/self/maps",
        "cpu": cpu,
        "probe": probe,
        "qemu": qemu,
        "kernels_by_family": {k: sorted(v) for k, v in sorted(by_family.items())},
        "sme2_kernels": sorted(by_family.get("SME2", [])),
        "sme_kernels": sorted(by_family.get("SME", [])),
        "kernels": [r.to_dict() for r in kernels],
        "totals": totals,
        "unnamed_code": unnamed,
        "log": {"lines": stats.lines, "bytes": stats.bytes, "translations": stats.translations,
                "distinct_blocks": len(stats.blocks), "truncated": stats.truncated,
                "execution_counts": bool(stats.executions),
                "kept": "aggregates only: the raw log was streamed through a pipe and never written to disk"},
    }
