"""Fast tests of sme2tui.etdump on the committed real ETDumps (tests/data/etdump/README.md).

Agreement with ExecuTorch's Inspector on fresh traces is in test_etdump_inspector.py (slow).
"""

from __future__ import annotations

import ast
import json
import random
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from sme2tui.errors import AnalysisError
from sme2tui.etdump import (
    EtdumpError,
    EtdumpTrace,
    EventKind,
    Iteration,
    ProfileEvent,
    iteration_total_ns,
    parse_etdump,
    read_etdump,
)
from sme2tui.etdump.model import make_event
from tests.data.etdump.build_etdump import Allocation, Debug, Profile, RunData, build

DATA = Path(__file__).parent / "data" / "etdump"
XNNPACK = DATA / "xnnpack_fp32.etdp"
PORTABLE = DATA / "portable_fp16.etdp"
FIXTURES = (XNNPACK, PORTABLE)
PACKAGE = Path(__file__).parent.parent / "sme2tui" / "etdump"
EXECUTORCH = Path(sysconfig.get_paths()["purelib"]) / "executorch"
FLATC = EXECUTORCH / "data" / "bin" / "flatc"
SCHEMA = EXECUTORCH / "devtools" / "etdump" / "etdump_schema_flatcc.fbs"

# XNNPACK reports its internal times in whole microseconds, so a child may read up to 1 µs long.
XNNPACK_ROUNDING_NS = 1000


def _trace_summary(trace: EtdumpTrace) -> list[tuple[object, ...]]:
    """Everything read, as comparable tuples (load events, then each iteration's events)."""
    rows: list[tuple[object, ...]] = [("load", *_row(event)) for event in trace.load_events]
    for iteration in trace.iterations:
        rows.append(("iteration", iteration.index, iteration.total))
        rows.extend(("event", *_row(event)) for event in iteration.events)
    return rows


def _row(event: ProfileEvent) -> tuple[object, ...]:
    return (
        event.name,
        event.chain_index,
        event.instruction_id,
        event.delegate_debug_id_int,
        event.delegate_debug_id_str,
        event.start,
        event.end,
        event.kind,
        event.parent,
    )


# --- what is read -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_iterations_and_load_events(path: Path) -> None:
    trace = read_etdump(path)
    assert trace.path == path
    assert trace.version == 0
    assert trace.ticks_per_ns == 1.0
    assert [iteration.index for iteration in trace.iterations] == [0, 1, 2]  # three executions
    assert [event.name for event in trace.load_events] == ["Method::init", "Program::load_method"]
    assert all(event.kind == "load" for event in trace.load_events)
    assert trace.event_count == len(trace.load_events) + sum(len(it.events) for it in trace.iterations)
    for iteration in trace.iterations:
        total = iteration.events[-1]
        assert (total.name, total.kind) == ("Method::execute", "total")
        assert iteration.total == total.duration > 0
        assert sum(event.kind == "total" for event in iteration.events) == 1
    assert iteration_total_ns(trace) == [float(it.total) for it in trace.iterations]


def test_xnnpack_events_are_named_and_nested_as_inspector_shows_them() -> None:
    iteration = read_etdump(XNNPACK).iterations[1]
    names = [(event.name, event.kind, event.parent) for event in iteration.events]
    assert names == [
        ("Transpose (ND, X32) #1", "delegated_op", 3),
        ("Convolution (NHWC, F32) IGEMM #1", "delegated_op", 3),
        ("Transpose (ND, X32) #2", "delegated_op", 3),
        ("DELEGATE_CALL", "wrapper", -1),
        ("native_call_mean.out", "operator", 5),
        ("OPERATOR_CALL", "wrapper", -1),
        ("Fully Connected (NC, F32) GEMM #1", "delegated_op", 7),
        ("DELEGATE_CALL", "wrapper", -1),
        ("Method::execute", "total", -1),
    ]
    conv = iteration.events[1]
    assert conv.delegate_debug_id_str == conv.name
    assert conv.delegate_debug_id_int == -1
    assert iteration.events[4].delegate_debug_id_str is None


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_nesting_rule_holds(path: Path) -> None:
    for iteration in read_etdump(path).iterations:
        events = iteration.events
        for index, event in enumerate(events):
            if event.kind in ("wrapper", "total"):
                assert event.parent == -1
                continue
            assert event.parent > index, "a wrapper is logged after its children"
            wrapper = events[event.parent]
            assert wrapper.kind == "wrapper"
            assert wrapper.instruction_id == event.instruction_id
            if event.kind == "delegated_op":
                assert wrapper.name == "DELEGATE_CALL"
            if event.name.startswith("native_call_"):
                assert wrapper.name == "OPERATOR_CALL"
        for index, wrapper in enumerate(events):
            children = [event for event in events if event.parent == index]
            if wrapper.kind != "wrapper":
                assert not children
                continue
            assert children, f"{wrapper.name} of instruction {wrapper.instruction_id} has no children"
            slack = XNNPACK_ROUNDING_NS * len(children)
            assert sum(child.duration for child in children) <= wrapper.duration + slack


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_leaf_events_count_each_nanosecond_once(path: Path) -> None:
    trace = read_etdump(path)
    for iteration in trace.iterations:
        leaves = trace.leaf_events(iteration)
        assert leaves
        assert all(event.kind in ("operator", "delegated_op") for event in leaves)
        wrappers = sum(event.kind == "wrapper" for event in iteration.events)
        assert len(leaves) == len(iteration.events) - 1 - wrappers
        assert sum(event.duration for event in leaves) <= iteration.total


def test_a_wrapper_without_children_is_a_leaf(tmp_path: Path) -> None:
    # A delegate built without internal profiling logs only its DELEGATE_CALL.
    path = tmp_path / "childless.etdp"
    path.write_bytes(build([RunData("Execute", [
        Profile("DELEGATE_CALL", 4, 10, 20),
        Profile("Method::execute", 0, 0, 30, chain_index=-1),
    ])]))  # fmt: skip
    trace = read_etdump(path)
    wrapper, total = trace.iterations[0].events
    assert trace.leaf_events(trace.iterations[0]) == [wrapper]
    assert trace.events.leaf.tolist() == [True, False]
    # leaf_events works on any Iteration, e.g. one built by hand.
    assert trace.leaf_events(Iteration(0, 30, (wrapper, total))) == [wrapper]


def test_leaf_column_matches_leaf_events() -> None:
    for path in FIXTURES:
        trace = read_etdump(path)
        for iteration in trace.iterations:
            first, stop = int(trace.bounds[iteration.index]), int(trace.bounds[iteration.index + 1])
            marked = [event for event, leaf in zip(iteration.events, trace.events.leaf[first:stop].tolist(),
                                                   strict=True) if leaf]
            assert marked == trace.leaf_events(iteration)


def test_fast_constructor_builds_the_same_object_as_the_dataclass() -> None:
    values: tuple[str, int, int, int, str, int, int, EventKind, int] = (
        "Add (ND) #1", 0, 3, -1, "Add (ND) #1", 5_000_000_000, 5_000_001_000, "delegated_op", 7
    )  # fmt: skip
    fast = make_event(*values)
    assert fast == ProfileEvent(*values)
    assert repr(fast) == repr(ProfileEvent(*values))
    assert hash(fast) == hash(ProfileEvent(*values))
    with pytest.raises(AttributeError):
        fast.name = "x"  # type: ignore[misc]


def test_duration_follows_inspectors_32_bit_wraparound() -> None:
    assert make_event("a", 0, 0, -1, None, 5, 9, "operator", -1).duration == 4
    # Inspector: (2**32 - 1 - start) + end when a 32-bit counter wrapped.
    assert make_event("a", 0, 0, -1, None, 2**32 - 10, 5, "operator", -1).duration == 14


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_raw_field_matches_flatc(path: Path, tmp_path: Path) -> None:
    """Decode with the flatc binary shipped in the executorch wheel and compare field by field."""
    if not FLATC.exists():
        pytest.skip(f"flatc not found at {FLATC}")
    subprocess.run(
        [str(FLATC), "--json", "--strict-json", "--defaults-json", "--size-prefixed", "--raw-binary",
         "-o", str(tmp_path), str(SCHEMA), "--", str(path)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    decoded = json.loads((tmp_path / f"{path.stem}.json").read_text())
    expected = []
    for run in decoded["run_data"]:
        for event in run.get("events", []):
            profile = event["profile_event"]
            dd_int = profile["delegate_debug_id_int"]
            dd_str = profile.get("delegate_debug_id_str") or None
            name = str(dd_int) if dd_int != -1 else dd_str or profile.get("name", "")
            expected.append(
                (name, profile["chain_index"], profile["instruction_id"], dd_int, dd_str,
                 profile["start_time"], profile["end_time"])
            )  # fmt: skip
    trace = read_etdump(path)
    got = [_row(event)[:7] for event in (*trace.load_events, *(e for it in trace.iterations for e in it.events))]
    assert sorted(got, key=lambda row: (row[5], row[6], str(row[0]))) == sorted(
        expected, key=lambda row: (row[5], row[6], str(row[0]))
    )
    assert trace.version == decoded.get("version", 0)


def test_plain_and_padded_buffers_read_the_same(tmp_path: Path) -> None:
    data = XNNPACK.read_bytes()
    reference = _trace_summary(read_etdump(XNNPACK))
    plain = tmp_path / "plain.etdp"  # the same flatbuffer without flatcc's 4-byte size prefix
    plain.write_bytes(data[4:])
    assert _trace_summary(read_etdump(plain)) == reference
    padded = tmp_path / "padded.etdp"  # bytes after the announced size are ignored
    padded.write_bytes(data + bytes(16))
    assert _trace_summary(read_etdump(padded)) == reference


# --- hand-built files: shapes the runtime here does not produce -----------------------------------

WRAP = 2**32  # a 32-bit tick counter wraps here


def crafted_iteration(offset: int) -> list[Profile | Allocation | Debug]:
    """One execute block: integer delegate ids, allocation/debug events in between, a delegate without
    internal events, an operator whose 32-bit times wrapped, an event with an empty delegate string."""
    return [
        Profile(None, 3, offset + 10, offset + 20, dd_int=7),
        Allocation(),
        Debug(3),
        Profile(None, 3, offset + 20, offset + 25, dd_int=8),
        Profile("DELEGATE_CALL", 3, offset + 9, offset + 30),
        Profile("native_call_x.out", 4, WRAP - 100, 50),
        Profile("OPERATOR_CALL", 4, WRAP - 200, 100),
        Profile("DELEGATE_CALL", 5, offset + 110, offset + 120),
        Profile("custom", 6, offset + 121, offset + 122, dd_str=""),
        Profile("Method::execute", 0, offset + 1, offset + 200, chain_index=-1),
    ]


CRAFTED_LOAD = [
    Profile("Method::init", 0, 1, 5, chain_index=-1),
    Profile("Program::load_method", 0, 0, 6, chain_index=-1),
]
CRAFTED_RUNS = [
    RunData("Default", list(CRAFTED_LOAD)),
    RunData("Execute", crafted_iteration(1000)),
    RunData("Execute", crafted_iteration(2000)),
]


def test_crafted_file_names_kinds_and_nesting(tmp_path: Path) -> None:
    path = tmp_path / "crafted.etdp"
    path.write_bytes(build(CRAFTED_RUNS, version=3))
    trace = read_etdump(path)
    assert trace.version == 3
    assert trace.event_count == 2 + 2 * 8  # allocation and debug events are not profile events
    assert [it.total for it in trace.iterations] == [199, 199]
    events = trace.iterations[1].events
    assert [(e.name, e.kind, e.parent) for e in events] == [
        ("7", "delegated_op", 2),  # Inspector names events by their integer delegate id
        ("8", "delegated_op", 2),
        ("DELEGATE_CALL", "wrapper", -1),
        ("native_call_x.out", "operator", 4),
        ("OPERATOR_CALL", "wrapper", -1),
        ("DELEGATE_CALL", "wrapper", -1),
        ("custom", "operator", -1),  # an empty delegate string counts as absent
        ("Method::execute", "total", -1),
    ]
    assert (events[0].delegate_debug_id_int, events[0].delegate_debug_id_str) == (7, None)
    assert events[6].delegate_debug_id_str is None
    assert events[3].duration == 149 and events[4].duration == 299  # wrapped 32-bit counters
    leaves = trace.leaf_events(trace.iterations[1])
    assert [(e.name, e.instruction_id) for e in leaves] == [
        ("7", 3),
        ("8", 3),
        ("native_call_x.out", 4),
        ("DELEGATE_CALL", 5),  # no internal events: the wrapper is the measurement
        ("custom", 6),
    ]
    plain = tmp_path / "plain.etdp"
    plain.write_bytes(build(CRAFTED_RUNS, version=3, size_prefixed=False))
    assert _trace_summary(read_etdump(plain)) == _trace_summary(trace)


def test_iterations_are_delimited_by_method_execute_not_by_blocks(tmp_path: Path) -> None:
    """A runner that never opens event blocks logs everything into one run."""
    one_run = [
        *CRAFTED_LOAD,
        Profile("native_call_a.out", 0, 10, 20),
        Profile("OPERATOR_CALL", 0, 9, 21),
        Profile("Method::execute", 0, 8, 22, chain_index=-1),
        Profile("native_call_a.out", 0, 30, 40),
        Profile("OPERATOR_CALL", 0, 29, 41),
        Profile("Method::execute", 0, 28, 42, chain_index=-1),
        Profile("flush", -1, 50, 60),  # after the last execute: belongs to no iteration
    ]
    path = tmp_path / "one_run.etdp"
    path.write_bytes(build([RunData("Default", one_run)]))
    trace = read_etdump(path)
    assert [len(it.events) for it in trace.iterations] == [3, 3]
    assert [it.total for it in trace.iterations] == [14, 14]
    assert [(e.name, e.kind) for e in trace.load_events] == [
        ("Method::init", "load"),
        ("Program::load_method", "load"),
        ("flush", "load"),
    ]
    assert trace.event_count == 9


def test_a_wrapper_only_contains_its_own_instruction(tmp_path: Path) -> None:
    run = [
        Profile("native_call_a.out", 1, 10, 20),  # instruction 1 has no OPERATOR_CALL of its own
        Profile("OPERATOR_CALL", 2, 21, 22),
        Profile("Method::execute", 0, 0, 30, chain_index=-1),
    ]
    path = tmp_path / "instr.etdp"
    path.write_bytes(build([RunData("Execute", run)]))
    trace = read_etdump(path)
    assert [e.parent for e in trace.iterations[0].events] == [-1, -1, -1]
    assert [e.name for e in trace.leaf_events(trace.iterations[0])] == [
        "native_call_a.out",
        "OPERATOR_CALL",
    ]


def test_a_file_without_runs_has_no_iterations(tmp_path: Path) -> None:
    path = tmp_path / "no_runs.etdp"
    path.write_bytes(build([]))
    trace = read_etdump(path)
    assert (len(trace.iterations), trace.load_events, trace.event_count) == (0, (), 0)


# --- failures -----------------------------------------------------------------------------------


def _assert_names_file(error: EtdumpError, path: Path) -> None:
    assert isinstance(error, AnalysisError)
    assert error.where == str(path)
    assert path.name in error.what
    assert error.fix


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.etdp"
    with pytest.raises(EtdumpError, match="does not exist") as caught:
        read_etdump(path)
    _assert_names_file(caught.value, path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(EtdumpError) as caught:
        read_etdump(tmp_path)
    _assert_names_file(caught.value, tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.etdp"
    path.write_bytes(b"")
    with pytest.raises(EtdumpError, match="empty") as caught:
        read_etdump(path)
    _assert_names_file(caught.value, path)


@pytest.mark.parametrize(
    "content",
    [b"hello, world\n" * 10, bytes(range(256)), b"\x00" * 64, b"ED00", b"\x08\x00\x00\x00ED00"],
    ids=["text", "bytes", "zeros", "identifier-only", "header-only"],
)
def test_not_an_etdump(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(EtdumpError) as caught:
        read_etdump(path)
    _assert_names_file(caught.value, path)


def test_a_program_file_is_not_an_etdump(tmp_path: Path) -> None:
    path = tmp_path / "model.pte"
    # An ExecuTorch program header: root offset then the "ET12" identifier.
    path.write_bytes(struct.pack("<I", 16) + b"ET12" + bytes(64))
    with pytest.raises(EtdumpError, match="not an ETDump") as caught:
        read_etdump(path)
    _assert_names_file(caught.value, path)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_truncation_is_an_etdump_error(path: Path) -> None:
    data = path.read_bytes()
    name = f"cut-{path.name}"
    for length in range(1, len(data)):
        with pytest.raises(EtdumpError) as caught:
            parse_etdump(data[:length], name)
        assert caught.value.where == name


def test_truncated_files_on_disk(tmp_path: Path) -> None:
    data = XNNPACK.read_bytes()
    cut = tmp_path / "cut.etdp"
    for length in (1, 4, 8, 11, 12, 100, len(data) // 2, len(data) - 1):
        cut.write_bytes(data[:length])
        with pytest.raises(EtdumpError, match="truncated") as caught:
            read_etdump(cut)
        _assert_names_file(caught.value, cut)


def test_truncated_plain_buffers_fail_or_read_everything() -> None:
    """Without the size prefix a cut can only be noticed when an offset leads past the end."""
    data = XNNPACK.read_bytes()[4:]
    reference = _trace_summary(parse_etdump(data, "plain.etdp"))
    for length in range(1, len(data)):
        try:
            summary = _trace_summary(parse_etdump(data[:length], "plain.etdp"))
        except EtdumpError:
            continue
        assert summary == reference, f"a cut at {length} bytes changed what was read"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_corrupt_bytes_never_escape_as_other_exceptions(path: Path) -> None:
    data = path.read_bytes()
    rng = random.Random(1234)
    failures = 0
    for trial in range(3000):
        mutated = bytearray(data)
        for _ in range(1 + trial % 4):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            parse_etdump(bytes(mutated), "corrupt.etdp")
        except EtdumpError as error:
            assert error.where == "corrupt.etdp"
            failures += 1
    assert failures > 1500  # most random damage hits offsets, vtables or the size prefix and is caught


def test_event_that_ends_before_it_starts(tmp_path: Path) -> None:
    data = bytearray(XNNPACK.read_bytes())
    total = read_etdump(XNNPACK).iterations[0].events[-1]
    at = data.find(struct.pack("<Q", total.start))
    assert at > 0
    data[at : at + 8] = struct.pack("<Q", 2**40)  # not a wrapped 32-bit counter: impossible
    path = tmp_path / "backwards.etdp"
    path.write_bytes(bytes(data))
    with pytest.raises(EtdumpError, match="before its start") as caught:
        read_etdump(path)
    _assert_names_file(caught.value, path)


# --- light process ------------------------------------------------------------------------------


def test_package_imports_only_stdlib_and_numpy() -> None:
    allowed_outside = {"numpy", "numpy.typing", "sme2tui.errors"}
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert (
                    top in sys.stdlib_module_names or name.startswith("sme2tui.etdump") or name in allowed_outside
                ), f"{module.name} imports {name}"


def test_reading_loads_no_torch_or_executorch() -> None:
    code = (
        "import sys\n"
        "from sme2tui.etdump import read_etdump\n"
        f"read_etdump({str(XNNPACK)!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent.parent
    )
    assert done.stdout.strip() == "[]"
