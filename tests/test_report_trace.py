"""Chrome-trace export of real ETDumps (tests/data/report: XNNPACK-delegated and portable cells)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sme2tui.analysis.categorize import CATEGORIES
from sme2tui.etdump import EtdumpTrace, EventKind, Iteration, ProfileEvent, read_etdump
from sme2tui.report import trace as trace_module
from sme2tui.report.trace import MEASURED_TID, WARMUP_TID, _place_children, _Span, write_chrome_trace

DATA = Path(__file__).parent / "data" / "report"
XNNPACK = "mobilenet_quick__fp32__xnnpack__t1"
PORTABLE = "transformer_quick__fp32__portable__t1"
REQUIRED = ("name", "ph", "ts", "dur", "pid", "tid")
# ts/dur are floats from integer nanoseconds; comparisons allow for their rounding only.
EPS_US = 1e-6


def summary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "summary.json").read_text())
    return data


def cells() -> list[tuple[str, Path, int]]:
    warmup = int(summary()["config"]["warmup"])
    return [(XNNPACK, DATA / f"{XNNPACK}.etdp", warmup), (PORTABLE, DATA / f"{PORTABLE}.etdp", warmup)]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("trace") / "analysis" / "trace.json"
    write_chrome_trace(cells(), out)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def x_events(trace: dict[str, Any], pid: int | None = None) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and (pid is None or e["pid"] == pid)]


def test_valid_chrome_trace_shape(trace: dict[str, Any]) -> None:
    assert trace["displayTimeUnit"] == "ms"
    assert set(trace) == {"traceEvents", "displayTimeUnit", "metadata"}
    for event in trace["traceEvents"]:
        for key in REQUIRED:
            assert key in event, (key, event)
        assert event["ph"] in ("X", "M")
        assert isinstance(event["ts"], float) and isinstance(event["dur"], float)
        assert event["ts"] >= 0 and event["dur"] >= 0
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
    names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert names == {1: XNNPACK, 2: PORTABLE}
    assert [c["cell_id"] for c in trace["metadata"]["cells"]] == [XNNPACK, PORTABLE]


def test_every_etdump_event_appears_once(trace: dict[str, Any]) -> None:
    for pid, (_, path, _) in enumerate(cells(), start=1):
        etdump = read_etdump(path)
        expected = sorted(e.name for it in etdump.iterations for e in it.events)
        assert sorted(e["name"] for e in x_events(trace, pid)) == expected


def test_iteration_durations_equal_etdump_totals_and_warmups_are_marked(trace: dict[str, Any]) -> None:
    cell_summaries = summary()["cells"]
    for pid, (cell_id, path, warmup) in enumerate(cells(), start=1):
        etdump = read_etdump(path)
        totals = [e for e in x_events(trace, pid) if e["name"] == "Method::execute"]
        assert len(totals) == len(etdump.iterations) == warmup + cell_summaries[cell_id]["latency"]["n"]
        totals.sort(key=lambda e: e["args"]["iteration"])
        for event, iteration in zip(totals, etdump.iterations, strict=True):
            assert event["dur"] == pytest.approx(iteration.total / 1000.0, abs=EPS_US)
            is_warmup = iteration.index < warmup
            assert event["args"]["warmup"] is is_warmup
            assert event["tid"] == (WARMUP_TID if is_warmup else MEASURED_TID)
        measured_ms = [e["dur"] / 1000.0 for e in totals if not e["args"]["warmup"]]
        # The same numbers the analysis reported as this cell's latencies.
        assert measured_ms == pytest.approx(cell_summaries[cell_id]["latencies_ms"], abs=1e-9)


def nest(events: list[dict[str, Any]]) -> dict[int, dict[str, Any] | None]:
    """Parent of each event (by id()) on one track, from a sweep by start; fails on a partial overlap."""
    parents: dict[int, dict[str, Any] | None] = {}
    stack: list[dict[str, Any]] = []
    for event in sorted(events, key=lambda e: (e["ts"], -(e["ts"] + e["dur"]))):
        start, end = event["ts"], event["ts"] + event["dur"]
        # An enclosing span that ended before this one starts is done; a zero-length event exactly at a
        # span's end still counts as inside it (XNNPACK logs many 0 µs ops).
        while stack and (stack[-1]["ts"] + stack[-1]["dur"] < start - EPS_US
                         or (event["dur"] > 0 and stack[-1]["ts"] + stack[-1]["dur"] <= start + EPS_US)):
            stack.pop()
        if stack:
            top = stack[-1]
            assert end <= top["ts"] + top["dur"] + EPS_US, f"{event['name']} partially overlaps {top['name']}"
        parents[id(event)] = stack[-1] if stack else None
        stack.append(event)
    return parents


def test_events_on_each_track_nest_without_partial_overlaps(trace: dict[str, Any]) -> None:
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for event in x_events(trace):
        tracks[(event["pid"], event["tid"])].append(event)
    assert set(tracks) == {(1, MEASURED_TID), (1, WARMUP_TID), (2, MEASURED_TID), (2, WARMUP_TID)}
    for events in tracks.values():
        parents = nest(events)
        for event in events:
            parent = parents[id(event)]
            if event["name"] == "Method::execute":
                assert parent is None
                continue
            assert parent is not None, f"{event['name']} is outside every iteration"
            assert parent["args"]["iteration"] == event["args"]["iteration"]
            if event["args"]["kind"] == "delegated_op" and event["dur"] > 0:
                assert parent["name"] == "DELEGATE_CALL"


def test_children_sit_inside_their_own_wrapper(trace: dict[str, Any]) -> None:
    """Independent of the sweep above: each wrapper's logged children lie within its span, in order."""
    for pid, (_, path, _warmup) in enumerate(cells(), start=1):
        etdump = read_etdump(path)
        by_iteration: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for placed in x_events(trace, pid):
            by_iteration[placed["args"]["iteration"]].append(placed)
        for iteration in etdump.iterations:  # warmups too: they are drawn as well
            spans = _spans_in_file_order(iteration.events, by_iteration[iteration.index])
            total = spans[-1]  # Method::execute is logged last
            for index, logged in enumerate(iteration.events):
                child, parent = spans[index], (spans[logged.parent] if logged.parent >= 0 else total)
                assert parent[0] - EPS_US <= child[0] and child[1] <= parent[1] + EPS_US, logged.name


def _spans_in_file_order(events: tuple[ProfileEvent, ...], placed: list[dict[str, Any]]) -> list[tuple[float, float]]:
    # Trace events carry no file index; match by (name, instruction id) occurrence order, which is unique
    # because siblings are laid out in logged order.
    pools: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for placed_event in sorted(placed, key=lambda e: (e["ts"] + e["dur"], e["ts"])):
        pools[(placed_event["name"], placed_event["args"]["instruction_id"])].append(placed_event)
    spans = []
    for event in events:
        match = pools[(event.name, event.instruction_id)].pop(0)
        spans.append((match["ts"], match["ts"] + match["dur"]))
    return spans


def test_args_carry_category_instruction_and_delegation(trace: dict[str, Any]) -> None:
    delegated = [e for e in x_events(trace, 1) if e["args"].get("kind") == "delegated_op"]
    assert delegated, "the XNNPACK cell has delegate-internal events"
    for event in delegated:
        assert event["args"]["delegated"] is True and event["args"]["synthetic_start"] is True
        assert event["args"]["category"] in CATEGORIES
        assert event["cat"] == event["args"]["category"]
    assert any(e["args"]["category"] == "CONV" and e["name"].startswith("Convolution") for e in delegated)
    portable = x_events(trace, 2)
    assert not any(e["args"]["delegated"] for e in portable)
    addmm = [e for e in portable if e["name"] == "native_call_addmm.out"]
    assert addmm and all(e["args"]["category"] == "GEMM" for e in addmm)
    wrappers = [e for e in portable if e["name"] == "OPERATOR_CALL"]
    assert wrappers and all(e["args"]["category"] == "WRAPPER" for e in wrappers)
    for event in x_events(trace):
        assert isinstance(event["args"]["instruction_id"], int)


def test_output_is_deterministic_and_has_no_absolute_paths(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_chrome_trace(cells(), first)
    write_chrome_trace(cells(), second)
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    assert str(DATA) not in text and str(tmp_path) not in text


def _event(kind: EventKind, start: int, end: int, name: str = "op") -> ProfileEvent:
    return ProfileEvent(name=name, chain_index=0, instruction_id=1, delegate_debug_id_int=-1,
                        delegate_debug_id_str=None, start=start, end=end, kind=kind, parent=0)


def test_synthetic_children_are_laid_end_to_end_and_clamped_to_the_parent() -> None:
    # XNNPACK-style: synthetic start times (here all 0), durations 50 + 40 + 30 > the parent's 100.
    events = [_event("delegated_op", 0, 50), _event("delegated_op", 0, 40), _event("delegated_op", 0, 30)]
    placed = _place_children(events, [0, 1, 2], _Span(1000, 1100, clamped=False), shift=0)
    assert placed[0] == _Span(1000, 1050, clamped=False)
    assert placed[1] == _Span(1050, 1090, clamped=False)
    assert placed[2] == _Span(1090, 1100, clamped=True)


def test_real_time_children_keep_their_position_but_never_leave_the_parent() -> None:
    events = [_event("operator", 5, 15), _event("operator", 40, 60), _event("operator", 95, 125)]
    placed = _place_children(events, [0, 1, 2], _Span(10, 110, clamped=False), shift=0)
    assert placed[0] == _Span(10, 20, clamped=False)  # started before the parent: moved in
    assert placed[1] == _Span(40, 60, clamped=False)  # fits: real time kept
    assert placed[2] == _Span(80, 110, clamped=False)  # would end after the parent: moved earlier


def test_out_of_span_synthetic_times_still_give_a_valid_trace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A delegate whose internal events carry start times outside its span (and sum past it) still nests."""

    def iteration(index: int, base: int) -> Iteration:
        ops = [ProfileEvent("Convolution (NHWC, F32) IGEMM #1", 0, 1, 0, None, 0, 600, "delegated_op", 2),
               ProfileEvent("Add (ND) #1", 0, 1, 1, None, 600, 1000, "delegated_op", 2)]
        wrapper = ProfileEvent("DELEGATE_CALL", 0, 1, -1, None, base + 100, base + 900, "wrapper", -1)
        total = ProfileEvent("Method::execute", 0, 0, -1, None, base, base + 1000, "total", -1)
        return Iteration(index=index, total=1000, events=(*ops, wrapper, total))

    fake = EtdumpTrace.from_objects(tmp_path / "x.etdp", [iteration(0, 10_000), iteration(1, 20_000)])
    assert [it.events for it in fake.iterations] == [iteration(0, 10_000).events, iteration(1, 20_000).events]
    monkeypatch.setattr(trace_module, "read_etdump", lambda _path: fake)
    write_chrome_trace([("synthetic", tmp_path / "x.etdp", 1)], tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    events = x_events(data)
    for tid in (WARMUP_TID, MEASURED_TID):
        nest([e for e in events if e["tid"] == tid])
    conv = [e for e in events if e["name"].startswith("Convolution")]
    add = [e for e in events if e["name"].startswith("Add")]
    assert [(e["ts"], e["dur"]) for e in conv] == [(0.1, 0.6), (10.1, 0.6)]
    assert [(e["ts"], e["dur"], e["args"]["clamped"]) for e in add] == [(0.7, 0.2, True), (10.7, 0.2, True)]
    assert all(e["args"]["measured_dur_us"] == 0.4 for e in add)
