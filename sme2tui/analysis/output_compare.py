"""Compare program outputs written by the runner (`outputs/outputs.json` + raw `output_<i>.bin`) with each other
or with the eager reference the export saved — without numpy or torch (analysis stays light).

Thresholds depend on how the program computes, which the file names alone do not tell: the loosest of the cell's
dtype, the output tensors' dtype and the XNNPACK type tags seen in the ETDump (F16 → fp16, QP8/QS8/QC8… → int8).
"""

from __future__ import annotations

import array
import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sme2tui.fileio import UnreadableOutput, read_bounded

# On vs off: same program, same runtime, different kernels. Max |a-b| / max |b| and cosine, per numeric class.
# Measured on vs off here: fp32 ≤ 6e-7, fp16 ≤ 6e-3, int8 static bit-exact, int8 dynamic ≤ 4e-8; the limits leave
# room for deeper models and still catch a wrong kernel (QEMU 7.2's int8 SMOPA was off by 1–89 relative).
PAIR_LIMITS: dict[str, tuple[float, float]] = {"fp32": (1e-4, 0.99999), "int8": (2e-2, 0.999),
                                               "fp16": (5e-2, 0.999)}
_ORDER = ("fp32", "int8", "fp16")
_FORMATS = {"float32": "f", "float64": "d", "int8": "b", "uint8": "B", "int16": "h", "int32": "i", "int64": "q",
            "bool": "B"}


@dataclass(frozen=True)
class Comparison:
    status: str  # pass | fail | skip
    detail: str
    max_rel_error: float | None = None
    cosine: float | None = None
    numeric_class: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def numeric_class(cell_dtype: str, output_dtypes: list[str], etdump_types: set[str]) -> str:
    """The loosest class among what the cell says, what the outputs are and what the kernels computed in."""
    found = {"fp16" if cell_dtype == "fp16" else "int8" if cell_dtype.startswith("int8") else "fp32"}
    if any(d in ("float16", "bfloat16") for d in output_dtypes) or etdump_types & {"F16", "PF16", "BF16"}:
        found.add("fp16")
    if any(t.startswith(("QS8", "QC8", "QU8", "QD8", "QDU8", "QP8", "PQS8", "QC4", "QB4")) for t in etdump_types):
        found.add("int8")
    return max(found, key=_ORDER.index)


# Outputs are compared value by value in Python (no numpy here): 16 MB is 4M float32 values, ~130 MB as floats.
MAX_OUTPUT_BYTES = 16 * 2**20
MAX_OUTPUTS_JSON_BYTES = 2**20


class OutputsUnreadable(ValueError):
    """The outputs a runner wrote exist but cannot be compared (too big, damaged description, not files)."""


def read_tensor(path: Path, dtype: str) -> list[float]:
    data = read_bounded(path, MAX_OUTPUT_BYTES, f"output {path.name}")
    if dtype == "float16":
        return [v for (v,) in struct.iter_unpack("<e", data)]
    if dtype == "bfloat16":
        return [struct.unpack("<f", b"\0\0" + data[i:i + 2])[0] for i in range(0, len(data) - 1, 2)]
    values = array.array(_FORMATS[dtype])
    values.frombytes(data[: len(data) - len(data) % values.itemsize])
    return [float(v) for v in values]


def load_outputs(folder: Path) -> list[tuple[str, list[float]]] | None:
    """(dtype, values) per tensor output; None when the runner wrote none, OutputsUnreadable (saying what is
    wrong) when they are there but cannot be read within bounds."""
    try:
        meta = json.loads(read_bounded(folder / "outputs.json", MAX_OUTPUTS_JSON_BYTES, "outputs.json"))
    except FileNotFoundError:
        return None
    except UnreadableOutput as exc:
        raise OutputsUnreadable(str(exc)) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise OutputsUnreadable(f"outputs.json cannot be read ({str(exc)[:80]})") from None
    try:
        return [(o["dtype"], read_tensor(folder / Path(o["file"]).name, o["dtype"])) for o in meta["outputs"]
                if o.get("kind") == "tensor" and o.get("dtype") in (*_FORMATS, "float16", "bfloat16")]
    except UnreadableOutput as exc:
        raise OutputsUnreadable(f"{exc} (limit for a compared output)") from None
    except (OSError, KeyError, TypeError, AttributeError, ValueError, struct.error) as exc:
        raise OutputsUnreadable(f"outputs.json does not describe readable outputs ({type(exc).__name__})") from None


def _measure(a: list[float], b: list[float]) -> tuple[float, float]:
    """(max |a-b| / max |b|, cosine) over finite pairs; identical NaN/inf positions count as equal."""
    diff = scale = dot = na = nb = 0.0
    for x, y in zip(a, b, strict=True):
        if not (math.isfinite(x) and math.isfinite(y)):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return math.inf, -1.0
            continue
        diff = max(diff, abs(x - y))
        scale = max(scale, abs(y))
        dot += x * y
        na += x * x
        nb += y * y
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
    cosine = dot / math.sqrt(na * nb) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return rel, cosine


def compare_outputs(candidate: list[tuple[str, list[float]]], baseline: list[tuple[str, list[float]]],
                    cls: str, limits: tuple[float, float], what: str) -> Comparison:
    if len(candidate) != len(baseline):
        return Comparison("fail", f"{what}: {len(candidate)} vs {len(baseline)} outputs", numeric_class=cls)
    worst_rel, worst_cos = 0.0, 1.0
    for index, ((_, a), (_, b)) in enumerate(zip(candidate, baseline, strict=True)):
        if len(a) != len(b):
            return Comparison("fail", f"{what}: output {index} has {len(a)} vs {len(b)} values", numeric_class=cls)
        rel, cosine = _measure(a, b)
        worst_rel, worst_cos = max(worst_rel, rel), min(worst_cos, cosine)
    max_rel, min_cos = limits
    ok = worst_rel <= max_rel and worst_cos >= min_cos
    limit = f" (limit {max_rel:g})" if math.isfinite(max_rel) else ""
    detail = (f"{what}: max |Δ| {worst_rel:.3g} of the output range{limit}, cosine {worst_cos:.7f} "
              f"(limit {min_cos}) over {len(candidate)} output(s), {cls} limits")
    return Comparison("pass" if ok else "fail", detail, worst_rel, worst_cos, cls)
