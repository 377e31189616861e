"""SME2 evidence: did SME2 (and KleidiAI) kernels actually run in a variant? Seen, not seen, or unknown.

Event names alone cannot prove SME2: KleidiAI's packed types (PF16, PF32, QP8, PQS8) show that KleidiAI
kernels ran, but KleidiAI also has NEON paths. Only XNNPACK's kernel log from a log-enabled runner names the
micro-kernels, and SME2 ones carry `sme2` in their names. So: a kernel log decides SME2; without one the
answer is "cannot be known", said plainly.

Kernel logs are whatever a runner or a device printed, so they are streamed a chunk at a time (memory stays at a
chunk and the names found) and refused past a size limit (`SME2TUI_LOG_MAX_MB`, default 1024): a partial scan
could say "not seen" about SME2 kernels printed after the cut, so an over-long log is an error, never a guess.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sme2tui.analysis.cell import CellAnalysis
from sme2tui.errors import AnalysisError, ConfigError
from sme2tui.fileio import UnreadableOutput, iter_text_chunks

Seen = Literal["seen", "not seen", "unknown"]
KERNEL_LOGS = ("kernel.log", "stderr.log", "runner-stderr.log")
_SME2_KERNEL = re.compile(r"\b\w*sme2\w*\b", re.IGNORECASE)
_KLEIDI_KERNEL = re.compile(r"\b\w*kai_\w+|\bkleidiai\b", re.IGNORECASE)
_XNN_KERNEL = re.compile(r"\bxnn_\w+_ukernel\w*|\bukernel\b", re.IGNORECASE)
LOG_MAX_MB_VARIABLE = "SME2TUI_LOG_MAX_MB"
DEFAULT_LOG_MAX_MB = 1024
MAX_NAMES = 4096  # distinct SME2 kernel names kept (a real log names a few dozen; only 20 are reported)


@dataclass(frozen=True)
class VariantEvidence:
    variant: str
    claims_sme2: str | None  # the variant's own "sme2": "on"/"off"/None
    sme2: Seen
    kleidiai: Seen
    detail: str
    sme2_kernels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scan_kernel_log(text: str) -> tuple[bool, set[str], bool]:
    """(the log names micro-kernels at all, SME2 kernel names found, KleidiAI kernels found)."""
    names_kernels = bool(_XNN_KERNEL.search(text) or _KLEIDI_KERNEL.search(text))
    return names_kernels, set(_SME2_KERNEL.findall(text)), bool(_KLEIDI_KERNEL.search(text))


def log_max_bytes() -> int:
    """The size limit for kernel logs, from SME2TUI_LOG_MAX_MB (megabytes, 10**6 bytes)."""
    raw = os.environ.get(LOG_MAX_MB_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_LOG_MAX_MB * 10**6
    if not raw.isdigit() or len(raw) > 9 or int(raw) == 0:
        raise ConfigError(f"{LOG_MAX_MB_VARIABLE}={raw[:40]!r} is not a size in megabytes",
                          where=f"environment variable {LOG_MAX_MB_VARIABLE}",
                          fix=f"set it to a whole number of megabytes, e.g. {LOG_MAX_MB_VARIABLE}=4096, or unset it "
                          f"(default {DEFAULT_LOG_MAX_MB})")
    return int(raw) * 10**6


def scan_kernel_log_file(path: Path, limit: int | None = None) -> tuple[bool, set[str], bool]:
    """`scan_kernel_log` over a log file of any size, streamed; AnalysisError (exit 6) when it cannot be read
    whole within the limit (too big, still growing, or not a regular file)."""
    limit = log_max_bytes() if limit is None else limit
    names_kernels, kleidi = False, False
    sme2: set[str] = set()
    try:
        for chunk in iter_text_chunks(path, limit, f"kernel log {path.name}"):
            has, names, has_kleidi = scan_kernel_log(chunk)
            names_kernels |= has
            kleidi |= has_kleidi
            if len(sme2) < MAX_NAMES:
                sme2 |= set(sorted(names)[: MAX_NAMES - len(sme2)])
    except UnreadableOutput as exc:
        raise AnalysisError(f"{exc}, so which kernels ran cannot be told from it", where=str(path),
                            fix=f"if the log is genuine, raise the limit ({LOG_MAX_MB_VARIABLE}="
                            f"{max(DEFAULT_LOG_MAX_MB, limit // 10**6 * 4)}) and analyze again; else delete or "
                            "trim it (it is the runner's output, not a measurement) and analyze again") from None
    except FileNotFoundError:
        return False, set(), False  # gone since it was listed: it proves nothing either way
    except OSError as exc:
        raise AnalysisError(f"cannot read kernel log {path.name}: {exc.strerror or exc}", where=str(path),
                            fix="check the file's permissions, then analyze again") from None
    return names_kernels, sme2, kleidi


def variant_evidence(variant: str, claims: str | None, cells: list[tuple[CellAnalysis, Path]]) -> VariantEvidence:
    kleidi_events = any(c.kleidiai_seen for c, _ in cells)
    delegated_events = any(o.delegated for c, _ in cells for o in c.operators)
    # Native runners write one stderr per round (stderr-r<N>.log): a log-enabled runner's kernel lines land there.
    logs = [d / name for _, d in cells for name in KERNEL_LOGS if (d / name).is_file()] + \
        [p for _, d in cells for p in sorted(d.glob("stderr-r*.log"))]
    sme2_names: set[str] = set()
    log_has_kernels = False
    kleidi_log = False
    for log in logs:
        has, names, kleidi = scan_kernel_log_file(log)
        log_has_kernels |= has
        sme2_names |= names
        kleidi_log |= kleidi
    has_events = any(c.operators for c, _ in cells)
    if log_has_kernels:
        sme2: Seen = "seen" if sme2_names else "not seen"
        how = f"XNNPACK kernel log ({len(logs)} file(s))"
    elif has_events and not delegated_events:
        sme2 = "not seen"
        how = "no operator is delegated to XNNPACK; ExecuTorch's portable kernels have no SME2 code"
    else:
        sme2 = "unknown"
        how = "no kernel log (build the kernel-log runner variant to prove which micro-kernels ran)"
    if kleidi_events or kleidi_log:
        kleidiai: Seen = "seen"
    elif delegated_events:
        kleidiai = "not seen"
    else:
        kleidiai = "unknown"
    detail = f"SME2 kernels {sme2} ({how}); KleidiAI kernels {kleidiai}" + (
        " (packed types such as PF16/QP8 in XNNPACK event names)" if kleidi_events else "")
    return VariantEvidence(variant, claims, sme2, kleidiai, detail, tuple(sorted(sme2_names))[:20])
