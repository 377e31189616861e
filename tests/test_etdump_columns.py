"""The columnar reader and analysis give exactly what the object-per-event ones gave (tests/etdump_legacy).

Compared on the committed real fixtures, the reference run's ETDumps, seeded random hand-built files
(loads inside iterations, events after the last execute, allocation/debug events, integer and empty
delegate ids, repeated operators, wrapped 32-bit times, many runs or one) and corrupted copies. Floats
are compared with ==: the columnar sums run in the same order as the old loop, so they are bit-identical.
Takes ~5 s.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sme2tui.analysis import aggregate
from sme2tui.analysis.categorize import Categorizer
from sme2tui.analysis.cell import analyze_traces
from sme2tui.etdump import EtdumpError, EtdumpTrace, names, parse_etdump, read_etdump
from tests.data.etdump.build_etdump import Allocation, Debug, Profile, RunData, build
from tests.etdump_legacy import analysis as legacy_analysis
from tests.etdump_legacy import reader as legacy_reader
from tests.etdump_legacy.model import EtdumpTrace as LegacyTrace

REPO = Path(__file__).resolve().parent.parent
REAL = sorted((REPO / "tests" / "data" / "etdump").glob("*.etdp")) + sorted(
    (REPO / "runs" / "reference" / "cells").glob("*/etdump*.etdp")
)
NAMES = [
    "Convolution (NHWC, F32) IGEMM #1", "Fully Connected (NC, F32) GEMM #1", "Transpose (ND, X32) #1",
    "Add (ND) #1", "Mystery op #4", "Batch Matrix Multiply (NC, F16) GEMM #2",
]  # fmt: skip
OPERATORS = ["native_call_mean.out", "native_call_add.out", "native_call_weird_thing.out", "custom"]


def summary(trace: EtdumpTrace | LegacyTrace) -> tuple[object, ...]:
    def row(event: object) -> tuple[object, ...]:
        fields = ("name", "chain_index", "instruction_id", "delegate_debug_id_int", "delegate_debug_id_str", "start",
                  "end", "kind", "parent")  # fmt: skip
        return tuple(getattr(event, field) for field in fields)

    iterations = [(it.index, it.total, [row(e) for e in it.events], [row(e) for e in trace.leaf_events(it)])
                  for it in trace.iterations]  # fmt: skip
    return trace.version, trace.event_count, [row(e) for e in trace.load_events], iterations


def assert_same_analysis(new: list[EtdumpTrace], old: list[LegacyTrace], warmup: int) -> None:
    categorizer = Categorizer.load()
    if any(len(t.iterations) <= warmup for t in old):
        return
    got = analyze_traces([(trace, warmup, None) for trace in new], categorizer, "x")[:4]
    want = legacy_analysis.analyze_traces([(trace, warmup) for trace in old], categorizer)
    assert got == want


@pytest.mark.parametrize("path", REAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_traces_read_and_analyze_the_same(path: Path) -> None:
    new, old = read_etdump(path), legacy_reader.read_etdump(path)
    assert summary(new) == summary(old)
    for warmup in (0, 2):
        assert_same_analysis([new], [old], warmup)


def test_rounds_pool_the_same() -> None:
    paths = sorted((REPO / "runs" / "reference" / "cells").glob("*xnnpack*/etdump*.etdp"))
    assert len(paths) > 1
    assert_same_analysis([read_etdump(p) for p in paths], [legacy_reader.read_etdump(p) for p in paths], 1)


def random_runs(rng: random.Random) -> list[RunData]:
    """A random but plausible event stream: iterations of wrappers with children, some oddities."""
    runs = [RunData("Default", [Profile("Method::init", 0, 1, 50, chain_index=-1),
                                Profile("Program::load_method", 0, 0, 60, chain_index=-1)])]  # fmt: skip
    clock = 1000
    for _ in range(rng.randint(0, 6)):
        events: list[Profile | Allocation | Debug] = []
        for _ in range(rng.choice([1, 1, 1, 2])):  # usually one iteration per run, sometimes more
            begin = clock
            for instruction in range(rng.randint(0, 5)):
                choice = rng.random()
                if choice < 0.5:  # a delegate with internal events (maybe none, maybe integer ids)
                    for _ in range(rng.randint(0, 3)):
                        dd_int = rng.choice([-1, -1, -1, rng.randint(0, 3)])
                        name = rng.choice(NAMES)
                        duration = rng.choice([0, 1000, 2000, rng.randint(0, 9999)])
                        events.append(Profile(None, instruction, clock, clock + duration, dd_int=dd_int,
                                              dd_str=None if dd_int != -1 and rng.random() < 0.5 else name))
                        clock += duration
                    events.append(Profile("DELEGATE_CALL", instruction, clock - 5, clock + 100))
                elif choice < 0.8:
                    events.append(Profile(rng.choice(OPERATORS), instruction, clock, clock + rng.randint(0, 500)))
                    events.append(Profile("OPERATOR_CALL", instruction, clock - 1, clock + 600))
                elif choice < 0.9:
                    events.append(rng.choice([Allocation(), Debug(instruction)]))
                else:  # an operator with no wrapper, an empty delegate string, a load step mid-iteration
                    events.append(rng.choice([Profile("native_call_x.out", instruction, clock, clock + 10),
                                              Profile("odd", instruction, clock, clock + 3, dd_str=""),
                                              Profile("Method::init", 0, clock, clock + 7, chain_index=-1)]))
                clock += 700
            if rng.random() < 0.1:  # a 32-bit counter that wrapped
                events.append(Profile("native_call_wrap.out", 9, 2**32 - 100, 50))
            events.append(Profile("Method::execute", 0, begin, clock + 10, chain_index=-1))
        if rng.random() < 0.2:
            events.append(Profile("after_the_last_execute", -1, clock, clock + 5))
        runs.append(RunData("Execute", events))
    return runs


@pytest.mark.parametrize("dense", [True, False], ids=["dense-table", "grouped"])
def test_random_files_read_and_analyze_the_same(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not dense:  # the grouped path is for operators that come and go; force it here
        monkeypatch.setattr(aggregate, "DENSE_FILL", 0)
    rng = random.Random(20261128)
    for _ in range(150):
        data = build(random_runs(rng), version=rng.randint(0, 3), size_prefixed=rng.random() < 0.8)
        new, old = parse_etdump(data, "random.etdp"), legacy_reader.parse_etdump(data, "random.etdp")
        assert summary(new) == summary(old)
        for warmup in (0, 1):
            assert_same_analysis([new], [old], warmup)


def test_name_hash_collisions_never_merge_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a degenerate hash (every string keyed by its last word) names collide all the time; the
    word-by-word check must send them to the exact lookup, so nothing changes."""
    monkeypatch.setattr(names, "_HASH_MULTIPLIER", np.uint64(0))
    rng = random.Random(5)
    for _ in range(40):
        data = build(random_runs(rng))
        assert summary(parse_etdump(data, "x.etdp")) == summary(legacy_reader.parse_etdump(data, "x.etdp"))
    for path in REAL:
        assert summary(read_etdump(path)) == summary(legacy_reader.read_etdump(path))


@pytest.mark.parametrize("path", REAL[:2], ids=lambda p: p.stem)
def test_corrupted_copies_are_read_the_same_or_refused(path: Path) -> None:
    """Random byte damage: whatever the old reader accepted, the new one reads identically (or refuses,
    a stricter check); whatever the old one refused, the new one refuses too."""
    data = path.read_bytes()
    rng = random.Random(99)
    agreed = 0
    for trial in range(1500):
        mutated = bytearray(data)
        for _ in range(1 + trial % 4):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            old = summary(legacy_reader.parse_etdump(bytes(mutated), "x.etdp"))
        except EtdumpError:
            old = None
        try:
            new = summary(parse_etdump(bytes(mutated), "x.etdp"))
        except EtdumpError:
            new = None
        if old is None:
            assert new is None
        elif new is not None:
            assert new == old
            agreed += 1
    assert agreed > 200  # many mutations hit times or names only and still read
