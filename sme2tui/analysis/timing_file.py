"""A cell's `timing.json` as the analysis reads it: bounded, and with the shape sme2tui writes.

The file is written by sme2tui itself (from the runner's timing output), but it sits in a folder people copy,
edit and commit; a wrong shape is a damaged cell (exit 6, with the fix), never a TypeError deep inside.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from sme2tui.errors import AnalysisError

MAX_TIMING_BYTES = 32 * 2**20  # 100k iterations of nanosecond integers are ~2 MB
_FIX = "re-measure the cell: sme2tui --auto --resume RUN_DIR (damaged cells are measured again)"


def _fail(path: Path, what: str) -> AnalysisError:
    return AnalysisError(f"{path.parent.name}: timing.json {what}", where=str(path), fix=_FIX)


def _plain_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "/" not in value and "\\" not in value and \
        value not in (".", "..") and "\0" not in value


def _durations(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value)


def read_timing(path: Path) -> dict[str, Any]:
    """The parsed timing.json of a cell ({} when the cell has none)."""
    from sme2tui.run.folder import RunFolderDamaged, read_json_file

    if not os.path.lexists(path):
        return {}
    try:
        data = read_json_file(path, limit=MAX_TIMING_BYTES, what="timing.json", damaged_fix=_FIX)
    except RunFolderDamaged as exc:
        raise AnalysisError(f"{path.parent.name}: {exc.what}", where=exc.where, fix=exc.fix) from None
    if not isinstance(data, dict):
        raise _fail(path, "is not a JSON object")
    for key in ("iterations_ns", "warmup_ns"):
        if key in data and not _durations(data[key]):
            raise _fail(path, f"`{key}` is not a list of durations (finite, non-negative numbers)")
    if "etdump" in data and not _plain_name(data["etdump"]):
        raise _fail(path, "`etdump` is not a file name in the cell folder")
    rounds = data.get("rounds", [])
    if not isinstance(rounds, list):
        raise _fail(path, "`rounds` is not a list")
    for index, entry in enumerate(rounds):
        if not isinstance(entry, dict):
            raise _fail(path, f"`rounds[{index}]` is not an object")
        if "etdump" in entry and not _plain_name(entry["etdump"]):
            raise _fail(path, f"`rounds[{index}].etdump` is not a file name in the cell folder")
        for key, low in (("warmup", 0), ("iterations", 1)):
            value = entry.get(key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
                raise _fail(path, f"`rounds[{index}].{key}` is not a whole number ≥ {low}")
    # Each round once, each with its own ETDump: a round listed twice would count its iterations twice.
    dumps = [entry["etdump"] for entry in rounds if "etdump" in entry]
    if len(set(dumps)) != len(dumps):
        raise _fail(path, "two `rounds` name the same ETDump")
    numbers = [entry["round"] for entry in rounds if "round" in entry]
    if len(set(map(str, numbers))) != len(numbers):
        raise _fail(path, "a round is listed twice in `rounds`")
    measured = data.get("iterations_ns")
    # (An upstream runner times nothing per iteration: its `iterations_ns` is empty and only the ETDump counts.)
    if rounds and isinstance(measured, list) and measured and \
            sum(entry["iterations"] for entry in rounds) != len(measured):
        raise _fail(path, f"its rounds add up to {sum(entry['iterations'] for entry in rounds)} iterations, but "
                          f"`iterations_ns` times {len(measured)}")
    return data
