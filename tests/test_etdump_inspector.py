"""sme2tui.etdump against ExecuTorch's own Inspector, on traces made now with the real runtime.

Slow: one session fixture exports four small models (XNNPACK and portable, fp32 and fp16) and runs
each a few times with ETDump on (see tests/data/etdump/make_etdumps.py).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sme2tui.etdump import EtdumpTrace, ProfileEvent, iteration_total_ns, read_etdump
from tests.data.etdump.build_etdump import Allocation, RunData, build
from tests.data.etdump.make_etdumps import VARIANTS, Made, make
from tests.test_etdump_reader import CRAFTED_RUNS

if TYPE_CHECKING:
    from collections.abc import Sequence

pytestmark = pytest.mark.slow

ITERATIONS = 8
WARMUP = 2
DATA = Path(__file__).parent / "data" / "etdump"
NS_PER_MS = 1e6

# (name, instruction id, delegate debug identifier) identifies an event within an Inspector EventBlock.
Key = tuple[str, int, int | str | None]
Block = dict[Key, list[float]]


@pytest.fixture(scope="session")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    out = tmp_path_factory.mktemp("etdump")
    return {variant: make(out, variant, ITERATIONS) for variant in VARIANTS}


def _key(event: ProfileEvent) -> Key:
    identifier = event.delegate_debug_id_int if event.delegate_debug_id_int != -1 else event.delegate_debug_id_str
    return (event.name, event.instruction_id, identifier)


def _our_blocks(trace: EtdumpTrace) -> list[Block]:
    """Group our events the way Inspector builds EventBlocks: one block for the load run, then one per
    distinct sequence of iteration events (identical iterations share a block), in first-seen order;
    each event maps to its durations in ms, one per iteration of the block."""
    load: Block = defaultdict(list)
    for event in trace.load_events:
        load[_key(event)].append(event.duration / NS_PER_MS)
    groups: dict[tuple[Key, ...], Block] = {}
    for iteration in trace.iterations:
        block = groups.setdefault(tuple(_key(event) for event in iteration.events), defaultdict(list))
        for event in iteration.events:
            block[_key(event)].append(event.duration / NS_PER_MS)
    return [dict(load), *(dict(block) for block in groups.values())]


def _inspector_blocks(etdump: Path, etrecord: Path | None) -> list[Block]:
    from executorch.devtools import Inspector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Output Buffer not found": no debug buffer is expected
        inspector = Inspector(etdump_path=str(etdump), etrecord=str(etrecord) if etrecord else None)
    blocks: list[Block] = []
    for event_block in inspector.event_blocks:
        block: Block = {}
        for event in event_block.events:
            if event.perf_data is None:
                continue
            key = (event.name, event._instruction_id, event.delegate_debug_identifier)
            assert key not in block, f"duplicate event {key}: the comparison would be ambiguous"
            block[key] = list(event.perf_data.raw)
        blocks.append(block)
    return blocks


def _assert_same(ours: Sequence[Block], theirs: Sequence[Block]) -> None:
    assert len(ours) == len(theirs)
    for our_block, their_block in zip(ours, theirs, strict=True):
        assert our_block.keys() == their_block.keys()
        for key, durations in our_block.items():
            expected = their_block[key]
            assert len(durations) == len(expected), key
            for got, want in zip(durations, expected, strict=True):
                # Inspector scales a delegate event's start and end separately, so allow float rounding.
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (key, got, want)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_events_and_durations_as_inspector(traces: dict[str, Made], variant: str) -> None:
    made = traces[variant]
    trace = read_etdump(made.etdump)
    theirs = _inspector_blocks(made.etdump, made.etrecord)
    _assert_same(_our_blocks(trace), theirs)
    assert trace.event_count == sum(len(raw) for block in theirs for raw in block.values())
    # Per-iteration totals, in execution order, are Inspector's Method::execute values.
    their_totals = [
        ms for block in theirs for (name, _, _), raw in block.items() if name == "Method::execute" for ms in raw
    ]
    assert len(trace.iterations) == ITERATIONS
    assert sorted(total / NS_PER_MS for total in iteration_total_ns(trace)) == pytest.approx(sorted(their_totals))


def test_debug_events_are_skipped(traces: dict[str, Made], tmp_path: Path) -> None:
    """With a debug buffer the runtime also logs DebugEvents (intermediate and program outputs) into the
    same event vectors; they are not profile events and must not disturb iterations or nesting."""
    import torch
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(traces["xnnpack_fp32"].pte), enable_etdump=True, debug_buffer_size=1 << 20)
    method = program.load_method("forward")
    for _ in range(3):
        method.execute([torch.randn(1, 8, 32, 32)])
    etdump = tmp_path / "debug.etdp"
    program.write_etdump_result_to_file(str(etdump), str(tmp_path / "debug.bin"))

    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    decoded = deserialize_from_etdump_flatcc(etdump.read_bytes())
    kinds = [
        (event.profile_event is not None, event.debug_event is not None)
        for run in decoded.run_data
        for event in run.events or []
    ]
    assert (False, True) in kinds, "the runtime logged no debug events: this test checks nothing"
    trace = read_etdump(etdump)
    assert trace.event_count == kinds.count((True, False))
    assert len(trace.iterations) == 3
    _assert_same(_our_blocks(trace), _inspector_blocks(etdump, None))


def test_crafted_file_agrees_with_inspector(tmp_path: Path) -> None:
    """Integer delegate ids, debug events, a childless delegate, wrapped 32-bit times.

    Allocation events are left out: Inspector 1.5.1 itself fails on them ("Unable to find populated
    event"); test_etdump_reader.py checks that sme2tui skips them."""
    runs = [RunData(run.name, [e for e in run.events if not isinstance(e, Allocation)]) for run in CRAFTED_RUNS]
    path = tmp_path / "crafted.etdp"
    path.write_bytes(build(runs))
    trace = read_etdump(path)
    theirs = _inspector_blocks(path, None)
    _assert_same(_our_blocks(trace), theirs)
    assert trace.event_count == sum(len(raw) for block in theirs for raw in block.values())


@pytest.mark.parametrize("path", sorted(DATA.glob("*.etdp")), ids=lambda p: p.stem)
def test_committed_fixtures_agree_with_inspector(path: Path) -> None:
    _assert_same(_our_blocks(read_etdump(path)), _inspector_blocks(path, None))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_ticks_are_nanoseconds(traces: dict[str, Made], variant: str) -> None:
    """Method::execute must fit inside the wall time of the Python execute() call around it, and fill
    a good part of it: ticks in µs would be ~1000x too small, CPU cycles ~3x too large.

    The fill is judged on the best iteration, not on the sum: on a busy machine a pre-emption in the Python
    part of one call (outside Method::execute) inflates that call's wall time alone, and a sum lets one such
    call drag the whole ratio down. A wrong tick unit is wrong in every iteration, the best one included."""
    made = traces[variant]
    trace = read_etdump(made.etdump)
    totals = iteration_total_ns(trace)
    assert all(total <= wall for total, wall in zip(totals, made.wall_ns, strict=True))
    assert max(total / wall for total, wall in zip(totals, made.wall_ns, strict=True)) > 0.2


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_wrappers_contain_their_children(traces: dict[str, Made], variant: str) -> None:
    for iteration in read_etdump(traces[variant].etdump).iterations:
        events = iteration.events
        for index, wrapper in enumerate(events):
            children = [event for event in events if event.parent == index]
            if wrapper.kind != "wrapper":
                assert not children
                continue
            assert children
            assert all(child.instruction_id == wrapper.instruction_id for child in children)
            # XNNPACK rounds its internal times to whole µs.
            assert sum(child.duration for child in children) <= wrapper.duration + 1000 * len(children)


@pytest.mark.parametrize("variant", [v for v, (delegate, _) in VARIANTS.items() if delegate])
def test_xnnpack_internal_events_cover_most_of_their_delegate_call(traces: dict[str, Made], variant: str) -> None:
    """For the conv delegate (the one doing real work), XNNPACK's own events add up to most of the
    DELEGATE_CALL; the rest is the delegate's call overhead (FACTS.md: ~0.85-0.98).

    "Most" is judged on the least disturbed iteration (the highest ratio): a pre-emption between two XNNPACK
    events adds uncovered time to that call only (it was 0.78 in a median when two cores were busy), while
    children that do not belong to their delegate call would fall short in every iteration. The upper bound
    stays on the median: a pre-emption inside an XNNPACK event raises one iteration's ratio, not most."""
    ratios = []
    for iteration in read_etdump(traces[variant].etdump).iterations[WARMUP:]:
        events = iteration.events
        calls = [(index, event) for index, event in enumerate(events) if event.name == "DELEGATE_CALL"]
        index, biggest = max(calls, key=lambda call: call[1].duration)
        children = sum(event.duration for event in events if event.parent == index)
        ratios.append(children / biggest.duration)
    assert max(ratios) >= 0.8, ratios
    assert statistics.median(ratios) <= 0.99, ratios
