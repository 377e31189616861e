"""What a ready `.pte` program is, read from the program itself: its dtype, its delegation, its operators.

Torch-free and hostile-input safe. A `.pte` is an ExecuTorch `Program` flatbuffer (schema:
`executorch/schema/program.fbs`, file identifier "ET12") optionally followed by segments (delegate
payloads, constants) that an extended header ("eh00" at byte 8) locates. XNNPACK payloads are themselves
a small header ("XH00") plus an `XNNGraph` flatbuffer (`backends/xnnpack/serialization/schema.fbs`,
identifier "XN01") whose tensor values carry XNNPACK datatypes.

The file is memory-mapped (never read whole) and refused unless it is a regular file; every offset is
checked against the mapped bytes, and the number of tables visited is capped, so a corrupt or malicious
file costs bounded time and memory and ends in a `ProgramReadError` (a ConfigError: exit 2).

How the dtype is decided (the same evidence a person would use):
1. int8, dynamic: XNNPACK values with the dynamically quantized datatype `qdint8` or per-token dynamic
   quantization parameters, or a `choose_qparams*` kernel outside any delegate (activations quantized at run
   time from scales computed at run time).
2. int8, static: XNNPACK values quantized per tensor/channel with fixed parameters (`qint8`/`quint8`
   activations), or quantize/dequantize kernels outside any delegate with no `choose_qparams` (scales
   fixed at export from calibration).
3. Otherwise the floating type of the method's floating-point inputs (what an fp16 export takes), else the
   type most activations have (memory-planned program values and non-constant XNNPACK values; weights are
   left out because XNNPACK may keep fp16 models' static weights in fp32): fp32, fp16 or bf16.
A program whose tensors tell nothing (no float, no quantized tensor) is `unknown`.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sme2tui.errors import ConfigError

PROGRAM_IDENTIFIER = b"ET12"
XNNPACK_GRAPH_IDENTIFIER = b"XN01"
XNNPACK_HEADER_MAGIC = b"XH00"
EXTENDED_HEADER_MAGIC = b"eh00"
MAX_TABLES = 2_000_000  # tables visited per file: far above real programs (a ViT has ~10k values)
MAX_NAME_BYTES = 1024

# executorch_flatbuffer.ScalarType (schema/scalar_type.fbs)
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                7: "float64", 11: "bool", 12: "qint8", 13: "quint8", 14: "qint32", 15: "bfloat16"}
# fb_xnnpack.XNNDatatype (backends/xnnpack/serialization/schema.fbs)
XNN_DATATYPES = {1: "fp32", 2: "fp16", 3: "qint8", 4: "quint8", 5: "qint32", 6: "qcint8", 7: "qcint32",
                 8: "qcint4", 9: "qdint8", 10: "qbint4", 11: "qpint8", 12: "int32", 13: "pfp32", 14: "bf16"}
_FLOAT_NAMES = {"float32": "fp32", "fp32": "fp32", "pfp32": "fp32", "float16": "fp16", "fp16": "fp16",
                "bfloat16": "bf16", "bf16": "bf16"}
_XNN_DYNAMIC = {"qdint8", "qpint8"}
_XNN_STATIC_ACTIVATIONS = {"qint8", "quint8"}
_XNN_PER_TOKEN_DYNAMIC = 3  # XNNQuantParams union tag of PerTokenDynamicQuant
_BACKEND_LABELS = {"XnnpackBackend": "xnnpack"}


class ProgramReadError(ConfigError):
    """The file is not a readable ExecuTorch program."""


class _Corrupt(Exception):
    """Internal: an offset or size points outside the file, or a structure is malformed."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ProgramInfo:
    """What `read_program_info` found. `delegation` is the label cells use: `portable` (no delegate),
    `xnnpack`, or the backends joined with `+`."""

    path: str
    size: int
    methods: tuple[str, ...]
    dtype: str
    dtype_evidence: str
    delegation: str
    delegates: dict[str, int] = field(default_factory=dict)  # backend id -> delegate blobs
    operators: dict[str, int] = field(default_factory=dict)  # kernels outside delegates -> calls
    delegate_calls: int = 0
    inputs: tuple[TensorInfo, ...] = ()
    tensor_types: dict[str, int] = field(default_factory=dict)  # what the dtype was decided from

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "methods": list(self.methods), "dtype": self.dtype,
                "dtype_evidence": self.dtype_evidence, "delegation": self.delegation,
                "delegates": dict(self.delegates), "operators": dict(self.operators),
                "delegate_calls": self.delegate_calls,
                "inputs": [{"dtype": t.dtype, "shape": list(t.shape)} for t in self.inputs],
                "tensor_types": dict(self.tensor_types)}


# --- a minimal bounds-checked flatbuffer reader --------------------------------------------------------


class _Buffer:
    """Bounds-checked little-endian reads inside [start, end) of a mapped file, with a table budget."""

    def __init__(self, data: Any, start: int, end: int, budget: list[int]) -> None:
        self.data, self.start, self.end, self.budget = data, start, end, budget

    def _check(self, pos: int, size: int) -> None:
        if pos < self.start or size < 0 or pos + size > self.end:
            raise _Corrupt(f"{size} bytes at offset {pos} lie outside the structure ({self.start}–{self.end})")

    def unpack(self, fmt: str, pos: int) -> Any:
        self._check(pos, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def table(self, pos: int) -> _Table:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise _Corrupt(f"more than {MAX_TABLES} tables: not a real program")
        return _Table(self, pos)


class _Table:
    def __init__(self, buf: _Buffer, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - buf.unpack("i", pos)
        vsize, tsize = buf.unpack("H", vtable), buf.unpack("H", vtable + 2)
        if vsize < 4 or vsize % 2 or tsize < 4:
            raise _Corrupt(f"malformed vtable at offset {vtable}")
        buf._check(vtable, vsize)
        buf._check(pos, tsize)
        self.vtable, self.vsize, self.tsize = vtable, vsize, tsize

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot + 2 > self.vsize:
            return 0
        offset: int = self.buf.unpack("H", self.vtable + slot)
        if offset and offset >= self.tsize:
            raise _Corrupt(f"a field of the table at {self.pos} lies outside it")
        return offset

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        offset = self._field(index)
        return default if not offset else int(self.buf.unpack(fmt, self.pos + offset))

    def _ref(self, index: int) -> int | None:
        offset = self._field(index)
        if not offset:
            return None
        where = self.pos + offset
        return int(where + self.buf.unpack("I", where))

    def table(self, index: int) -> _Table | None:
        target = self._ref(index)
        return None if target is None else self.buf.table(target)

    def vector(self, index: int, width: int) -> tuple[int, int]:
        """(position of the first element, element count); (0, 0) when absent."""
        target = self._ref(index)
        if target is None:
            return 0, 0
        count = int(self.buf.unpack("I", target))
        self.buf._check(target + 4, count * width)
        return target + 4, count

    def tables(self, index: int) -> Iterator[_Table]:
        first, count = self.vector(index, 4)
        for i in range(count):
            where = first + 4 * i
            yield self.buf.table(where + self.buf.unpack("I", where))

    def scalars(self, index: int, fmt: str) -> list[int]:
        first, count = self.vector(index, struct.calcsize(fmt))
        if not count:
            return []
        return list(struct.unpack_from(f"<{count}{fmt}", self.buf.data, first))

    def string(self, index: int) -> str:
        first, count = self.vector(index, 1)
        return bytes(self.buf.data[first:first + min(count, MAX_NAME_BYTES)]).decode("utf-8", errors="replace")


# --- reading a program -----------------------------------------------------------------------------------


def read_program_info(path: Path | str) -> ProgramInfo:
    """Dtype, delegation, operators and inputs of the `.pte` at `path` (raises ProgramReadError)."""
    path = Path(path)
    where = str(path)
    fix = "pass a .pte written by ExecuTorch (`to_executorch()` … `.buffer`), or re-export the model"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ProgramReadError(f"cannot open the program: {exc.strerror}", where=where,
                               fix="check the path and its permissions") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ProgramReadError("not a regular file (a device, pipe or folder cannot be a .pte)", where=where,
                                   fix=fix)
        if info.st_size < 32:
            raise ProgramReadError(f"too small to be a program ({info.st_size} bytes)", where=where, fix=fix)
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
            try:
                return _parse(data, info.st_size, where)
            except (_Corrupt, struct.error, ValueError, IndexError) as exc:
                raise ProgramReadError(f"the program is damaged or not an ExecuTorch program: {exc}", where=where,
                                       fix=fix) from None
    finally:
        os.close(fd)


def _parse(data: Any, size: int, where: str) -> ProgramInfo:
    identifier = bytes(data[4:8])
    if identifier != PROGRAM_IDENTIFIER:
        shown = identifier.decode("ascii", errors="replace") if identifier.isascii() else identifier.hex()
        raise ProgramReadError(
            f'no ExecuTorch program identifier ("ET12") at the start of the file (found {shown!r})', where=where,
            fix="pass a .pte written by this ExecuTorch generation (1.x); bundled programs and other formats "
            "are not supported")
    program_end, segment_base = size, 0
    if bytes(data[8:12]) == EXTENDED_HEADER_MAGIC:
        program_size, segment_base = struct.unpack_from("<QQ", data, 16)
        if not 0 < program_size <= size or segment_base > size:
            raise _Corrupt("the extended header announces sizes beyond the file")
        program_end = program_size
    budget = [MAX_TABLES]
    buf = _Buffer(data, 0, program_end, budget)
    root = buf.table(buf.unpack("I", 0))
    plans = list(root.tables(1))
    if not plans:
        raise _Corrupt("the program has no methods")
    inline_data = [t.vector(0, 1) for t in root.tables(3)]
    segments = [(t.scalar(0, "Q"), t.scalar(1, "Q")) for t in root.tables(4)]

    tensor_types: Counter[str] = Counter()
    activation_types: Counter[str] = Counter()
    operators: Counter[str] = Counter()
    delegates: Counter[str] = Counter()
    xnn_types: Counter[str] = Counter()
    xnn_dynamic_params = 0
    delegate_calls = 0
    methods: list[str] = []
    inputs: tuple[TensorInfo, ...] = ()
    for plan_index, plan in enumerate(plans):
        methods.append(plan.string(0))
        values = list(plan.tables(2))
        tensors: dict[int, TensorInfo] = {}
        for value_index, value in enumerate(values):
            if value.scalar(0, "B") == 5:  # KernelTypes.Tensor
                tensor = value.table(1)
                if tensor is not None:
                    dtype = SCALAR_TYPES.get(tensor.scalar(0, "b"), "other")
                    tensors[value_index] = TensorInfo(dtype, tuple(tensor.scalars(2, "i")))
                    tensor_types[dtype] += 1
                    if tensor.table(6) is not None:  # allocation_info: memory-planned, not a constant
                        activation_types[dtype] += 1
        if plan_index == 0:
            inputs = tuple(tensors[i] for i in plan.scalars(3, "i") if i in tensors)
        names = [_operator_name(op) for op in plan.tables(6)]
        for chain in plan.tables(5):
            for instruction in chain.tables(2):
                kind = instruction.scalar(0, "B")
                args = instruction.table(1)
                if kind == 1 and args is not None:  # KernelCall
                    op_index = args.scalar(0, "i")
                    operators[names[op_index] if 0 <= op_index < len(names) else "?"] += 1
                elif kind == 2:  # DelegateCall
                    delegate_calls += 1
        for delegate in plan.tables(7):
            backend = delegate.string(0)
            delegates[backend] += 1
            if backend == "XnnpackBackend":
                payload = _delegate_payload(delegate, inline_data, segments, segment_base, data, size, budget)
                if payload is not None:
                    xnn_dynamic_params += _xnnpack_types(payload, xnn_types, activation_types)
    dtype, evidence = _decide_dtype(inputs, tensor_types, activation_types, xnn_types, xnn_dynamic_params,
                                    operators)
    labels = sorted({_BACKEND_LABELS.get(b, _backend_label(b)) for b in delegates})
    return ProgramInfo(
        path=where, size=size, methods=tuple(methods), dtype=dtype, dtype_evidence=evidence,
        delegation="+".join(labels) if labels else "portable", delegates=dict(delegates),
        operators=dict(operators.most_common()), delegate_calls=delegate_calls, inputs=inputs,
        tensor_types=dict(tensor_types + Counter({f"xnnpack:{k}": v for k, v in xnn_types.items()})),
    )


def _operator_name(op: _Table) -> str:
    name, overload = op.string(0), op.string(1)
    return f"{name}.{overload}" if overload else name


def _backend_label(backend_id: str) -> str:
    """`CoreMLBackend` -> `coreml`: lowercase letters and digits only, so it can go into file names."""
    text = backend_id.removesuffix("Backend").lower()
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())[:32] or "delegate"


def _delegate_payload(delegate: _Table, inline: list[tuple[int, int]], segments: list[tuple[int, int]],
                      segment_base: int, data: Any, size: int, budget: list[int]) -> _Buffer | None:
    reference = delegate.table(1)
    if reference is None:
        return None
    location, index = reference.scalar(0, "b"), reference.scalar(1, "I")
    if location == 0:  # INLINE
        if index >= len(inline):
            raise _Corrupt(f"delegate data index {index} out of range")
        start, length = inline[index]
    else:  # SEGMENT
        if index >= len(segments):
            raise _Corrupt(f"segment index {index} out of range")
        offset, length = segments[index]
        start = segment_base + offset
    if start + length > size:
        raise _Corrupt("a delegate payload runs past the end of the file")
    return _Buffer(data, start, start + length, budget)


def _xnnpack_types(payload: _Buffer, types: Counter[str], activations: Counter[str]) -> int:
    """Count the XNNPACK datatypes of the payload's tensor values (non-constant ones also in `activations`);
    returns how many use dynamic quantization parameters."""
    base = payload.start
    if bytes(payload.data[base + 4:base + 8]) == XNNPACK_HEADER_MAGIC:
        fb_offset, fb_size = payload.unpack("I", base + 10), payload.unpack("I", base + 14)
        graph_start = base + fb_offset
        graph = _Buffer(payload.data, graph_start, min(payload.end, graph_start + fb_size), payload.budget)
    else:
        graph_start, graph = base, payload
    if bytes(payload.data[graph_start + 4:graph_start + 8]) != XNNPACK_GRAPH_IDENTIFIER:
        return 0  # an XNNPACK payload format this reader does not know: no claim made from it
    root = graph.table(graph_start + graph.unpack("I", graph_start))
    dynamic = 0
    for value in root.tables(2):  # XNNGraph.xvalues
        kind, inner = value.scalar(0, "B"), value.table(1)
        if inner is None:
            continue
        tensor = inner if kind == 1 else inner.table(0) if kind == 2 else None  # XNNTensorValue / Quantized
        if tensor is not None:
            name = XNN_DATATYPES.get(tensor.scalar(0, "h"), "other")
            types[name] += 1
            if tensor.scalar(3, "I") == 0:  # constant_buffer_idx 0: not a constant (an input or activation)
                activations[name] += 1
        if kind == 2 and inner.scalar(1, "B") == _XNN_PER_TOKEN_DYNAMIC:
            dynamic += 1
    return dynamic


def _float_counts(*counters: Counter[str]) -> Counter[str]:
    floats: Counter[str] = Counter()
    for counter in counters:
        for name, count in counter.items():
            if name in _FLOAT_NAMES:
                floats[_FLOAT_NAMES[name]] += count
    return floats


def _decide_dtype(inputs: tuple[TensorInfo, ...], tensor_types: Counter[str], activation_types: Counter[str],
                  xnn_types: Counter[str], xnn_dynamic_params: int, operators: Counter[str]) -> tuple[str, str]:
    choose_qparams = sorted(op for op in operators if "choose_qparams" in op)
    quant_ops = sorted(op for op in operators if "quantize_per_" in op)
    xnn_dynamic = sorted(t for t in xnn_types if t in _XNN_DYNAMIC)
    if xnn_dynamic or xnn_dynamic_params or choose_qparams:
        shown = xnn_dynamic + (["per-token dynamic parameters"] if xnn_dynamic_params else []) + choose_qparams
        return "int8-dynamic", ("dynamically quantized: activations are quantized at run time with scales "
                                f"computed at run time ({', '.join(shown[:4])})")
    xnn_static = sorted(t for t in xnn_types if t in _XNN_STATIC_ACTIVATIONS)
    int8_values = tensor_types.get("int8", 0) + tensor_types.get("qint8", 0) + tensor_types.get("uint8", 0)
    if xnn_static or (quant_ops and int8_values):
        shown = [f"XNNPACK {t} values" for t in xnn_static] + quant_ops
        return "int8", ("statically quantized: fixed quantization parameters from calibration, no run-time "
                        f"choose_qparams ({', '.join(shown[:4])})")
    input_floats = _float_counts(Counter(t.dtype for t in inputs))
    if input_floats:
        dtype, count = input_floats.most_common(1)[0]
        total = sum(input_floats.values())
        return dtype, f"floating point: {count} of the method's {total} floating-point input(s) are {dtype}"
    for what, floats in (("activations", _float_counts(activation_types)),
                         ("tensors", _float_counts(tensor_types, xnn_types))):
        if floats:
            (dtype, count), total = floats.most_common(1)[0], sum(floats.values())
            mix = ", ".join(f"{k} {v}" for k, v in floats.most_common())
            return dtype, f"floating point: {count} of {total} float {what} are {dtype} ({mix})"
    return "unknown", "no floating-point or quantized tensor found in the program"
