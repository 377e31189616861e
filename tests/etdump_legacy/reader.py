"""`read_etdump`: file -> `EtdumpTrace`, with every failure turned into an `EtdumpError` naming the file."""

from __future__ import annotations

import struct
from pathlib import Path

from sme2tui.etdump.errors import EtdumpError
from tests.etdump_legacy.assemble import Assembler
from tests.etdump_legacy.decode import iter_runs, read_version
from tests.etdump_legacy.model import EtdumpTrace

# The runtimes this tool drives (ExecuTorch's Python runtime and native runners on Linux/Android/macOS)
# use the POSIX PAL, whose ticks are nanoseconds (et_pal_ticks_to_ns_multiplier = 1/1); Inspector
# assumes the same (source_time_scale=NS). The tests check it against wall-clock time.
TICKS_PER_NS = 1.0

_CORRUPT_FIX = (
    "re-run the cell to write a fresh ETDump; if it happens again, check that the runner finished "
    "(a crashed or killed runner can leave a partial file) and that the file was copied completely"
)


def read_etdump(path: Path | str) -> EtdumpTrace:
    """Read every profile event of an ETDump file into iterations (see the package docstring)."""
    path = Path(path)
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EtdumpError(
            f"ETDump file {path.name} does not exist",
            where=where,
            fix="check the path; a run writes one ETDump per cell, next to its stdout/stderr",
        ) from None
    except OSError as exc:
        raise EtdumpError(
            f"cannot read ETDump file {path.name}: {exc.strerror or exc}",
            where=where,
            fix="check that the path is a readable file",
        ) from None
    return parse_etdump(data, path)


def parse_etdump(data: bytes, path: Path | str) -> EtdumpTrace:
    """`read_etdump` for bytes already in memory (e.g. pulled from a device); `path` names them in errors."""
    path = Path(path)
    where = str(path)
    if not data:
        raise EtdumpError(f"ETDump file {path.name} is empty", where=where, fix=_CORRUPT_FIX)
    try:
        version = read_version(data)
        assembler = Assembler()
        for records in iter_runs(data):
            assembler.add_run(records)
    except (struct.error, ValueError, OverflowError) as exc:
        # struct.error: an offset led past the end; ValueError covers the format checks and bad UTF-8.
        raise EtdumpError(
            f"ETDump file {path.name} is truncated, corrupt or not an ETDump: {_explain(exc)}",
            where=where,
            fix=_CORRUPT_FIX,
        ) from exc
    return EtdumpTrace(
        path=path,
        version=version,
        ticks_per_ns=TICKS_PER_NS,
        iterations=tuple(assembler.iterations),
        load_events=tuple(assembler.load_events),
        event_count=assembler.event_count,
    )


def _explain(exc: Exception) -> str:
    if isinstance(exc, struct.error):
        return "data points past the end of the file"
    if isinstance(exc, UnicodeDecodeError):
        return "a name is not valid UTF-8"
    return str(exc)
