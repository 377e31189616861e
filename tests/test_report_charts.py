"""SVG charts from a real run's summary (tests/data/report/summary.json: two fp32 models, portable vs XNNPACK)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sme2tui.report.charts import (
    BUCKETS,
    CATEGORY_COLOURS,
    Chart,
    all_charts,
    category_chart,
    fmt_ms,
    latency_chart,
    reference_chart,
    top_operators_chart,
    write_charts,
)

DATA = Path(__file__).parent / "data" / "report"
NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def summary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "summary.json").read_text())
    return data


def parse(chart: Chart) -> ET.Element:
    return ET.fromstring(chart.svg)


def texts(chart: Chart, css_class: str | None = None) -> list[str]:
    return [el.text or "" for el in parse(chart).iter(f"{NS}text")
            if css_class is None or el.get("class") == css_class]


def bar_rects(chart: Chart) -> list[ET.Element]:
    """Data rectangles: the ones with a tooltip (background, legend swatches and frames have none)."""
    return [el for el in parse(chart).iter(f"{NS}rect") if el.find(f"{NS}title") is not None]


def tooltip(rect: ET.Element) -> str:
    title = rect.find(f"{NS}title")
    assert title is not None
    return title.text or ""


def check_well_formed(chart: Chart) -> None:
    root = parse(chart)
    assert root.tag == f"{NS}svg"
    first, second = list(root)[:2]
    assert first.tag == f"{NS}title" and first.text == chart.title
    assert second.tag == f"{NS}desc" and (second.text or "").strip()
    assert root.get("aria-labelledby") == f"{first.get('id')} {second.get('id')}"
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    assert width > 100 and height > 100
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert chart.alt_text and "\n" not in chart.alt_text
    assert chart.file_name.endswith(".svg") and "/" not in chart.file_name


def test_every_chart_is_well_formed_svg_with_title_and_desc(summary: dict[str, Any]) -> None:
    charts = all_charts(summary)
    names = [c.file_name for c in charts]
    assert names == ["latency.svg", "categories.svg",
                     *[f"top_operators_{cell}.svg" for cell in summary["cells"]], "reference.svg"]
    for chart in charts:
        check_well_formed(chart)


def test_latency_chart_shows_medians_and_speedups_from_the_summary(summary: dict[str, Any]) -> None:
    chart = latency_chart(summary)
    assert chart is not None
    speedups = texts(chart, "speedup")
    assert len(speedups) == len(summary["pairs"]) == 2
    for pair, text in zip(summary["pairs"], speedups, strict=True):
        s = pair["speedup"]
        assert f"{s['value']:.2f}× faster than {pair['baseline']}" in text
        assert f"95% CI {s['ci_low']:.2f}–{s['ci_high']:.2f}" in text
        assert text in chart.alt_text
    values = texts(chart, "value")
    assert values == [f"{fmt_ms(c['latency']['median'])} ms" for c in summary["cells"].values()]
    assert "median of 5 measured iterations; whiskers p10–p90" in " ".join(texts(chart))
    assert any("(ms)" in t for t in texts(chart)), "the axis label names its unit"


def test_latency_chart_uses_log_axis_for_large_ratios_and_says_so(summary: dict[str, Any]) -> None:
    chart = latency_chart(summary)
    assert chart is not None
    assert "median latency per iteration (ms), log scale" in texts(chart)
    bars = {tooltip(r).split(":")[0]: float(r.get("width", "nan")) for r in bar_rects(chart)}
    # On a log axis the baseline (~179× slower) is still the longer bar, and every bar is visible.
    assert bars["mobilenet_quick__fp32__portable__t1"] > bars["mobilenet_quick__fp32__xnnpack__t1"] > 10


def test_latency_chart_linear_axis_bars_are_proportional(summary: dict[str, Any]) -> None:
    for cell, factor in zip(summary["cells"].values(), (1.0, 1.5, 1.2, 1.8), strict=True):
        cell["latency"].update(median=10.0 * factor, p10=9.0 * factor, p90=11.0 * factor)
    chart = latency_chart(summary)
    assert chart is not None
    assert "median latency per iteration (ms)" in texts(chart)
    widths = [float(r.get("width", "nan")) for r in bar_rects(chart)]
    medians = [c["latency"]["median"] for c in summary["cells"].values()]
    for width, median in zip(widths, medians, strict=True):
        assert width / widths[0] == pytest.approx(median / medians[0], abs=0.01)


def test_category_chart_stacks_every_bucket_in_ms_and_share(summary: dict[str, Any]) -> None:
    chart = category_chart(summary)
    assert chart is not None
    root = parse(chart)
    legend = [t for t in texts(chart) if t in BUCKETS]
    assert legend[:6] == list(BUCKETS)
    totals = texts(chart, "total")
    assert [t.split(" (")[0] for t in totals] == [f"{fmt_ms(c['latency']['median'])} ms"
                                                  for c in summary["cells"].values()]
    by_cell: dict[str, list[tuple[str, float, str]]] = {}
    for rect in bar_rects(chart):
        variant, rest = tooltip(rect).split(" ", 1)
        bucket = rest.split(":")[0]
        assert rect.get("fill") == CATEGORY_COLOURS[bucket]
        by_cell.setdefault(variant, []).append((bucket, float(rect.get("width", "nan")), tooltip(rect)))
    assert set(by_cell) == {"portable", "xnnpack"}
    # Both panels draw each positive bucket once per cell: 2 models × 2 panels per variant.
    portable = next(c for c in summary["cells"].values() if c["variant"] == "portable")
    positive = [b for b in BUCKETS if portable["categories_ms"][b] > 0]
    assert [b for b, _, _ in by_cell["portable"][: len(positive)]] == positive
    assert f"CONV: {fmt_ms(portable['categories_ms']['CONV'])} ms" in by_cell["portable"][0][2]
    # The ms panel of the slower variant is the longest bar of its group (same axis for both variants).
    assert root.find(f"{NS}rect") is not None


def test_category_chart_share_panel_adds_up_to_full_width(summary: dict[str, Any]) -> None:
    chart = category_chart(summary)
    assert chart is not None
    rects = bar_rects(chart)
    # The share panel starts right of the 400 px ms panel; its segments, summed per row, fill its 240 px.
    ms_panel_end = min(float(r.get("x", "0")) for r in rects) + 400.0
    rows: dict[str, float] = {}
    for rect in rects:
        if float(rect.get("x", "0")) > ms_panel_end:
            rows[rect.get("y", "")] = rows.get(rect.get("y", ""), 0.0) + float(rect.get("width", "0"))
    assert len(rows) == 4
    for total in rows.values():
        assert total == pytest.approx(240.0, abs=0.5)


def test_category_chart_names_where_the_bottleneck_moved(summary: dict[str, Any]) -> None:
    chart = category_chart(summary)
    assert chart is not None
    assert "the bottleneck moved: CONV dominated portable" in chart.alt_text
    assert "bar too short to see" in " ".join(texts(chart, "total"))


def test_top_operators_are_sorted_and_coloured_by_category(summary: dict[str, Any]) -> None:
    cell_id = "mobilenet_quick__fp32__xnnpack__t1"
    chart = top_operators_chart(summary, cell_id, n=4)
    assert chart is not None
    check_well_formed(chart)
    rects = bar_rects(chart)
    operators = summary["cells"][cell_id]["operators"]
    # Whole-microsecond XNNPACK times tie often: ties break on (instruction id, name), as in the chart.
    expected = sorted(operators, key=lambda o: (-o["median_ms"], o["instruction_id"], o["name"]))[:4]
    assert len(rects) == 4
    for rect, op in zip(rects, expected, strict=True):
        assert tooltip(rect).startswith(f"{op['name']} (instruction {op['instruction_id']}, {op['category']}")
        assert rect.get("fill") == CATEGORY_COLOURS[op["category"]]
    widths = [float(r.get("width", "nan")) for r in rects]
    assert widths == sorted(widths, reverse=True)
    assert texts(chart, "value")[0] == f"{fmt_ms(expected[0]['median_ms'])} ms · {expected[0]['share']:.1%}"
    assert f"4 of {len(operators)} operators shown" in " ".join(texts(chart))


def test_top_operators_unknown_cell_and_cell_without_operators(summary: dict[str, Any]) -> None:
    with pytest.raises(KeyError):
        top_operators_chart(summary, "no_such_cell")
    cell_id = next(iter(summary["cells"]))
    summary["cells"][cell_id]["operators"] = []
    assert top_operators_chart(summary, cell_id) is None


def test_reference_chart_is_labelled_and_not_mixed_with_measurements(summary: dict[str, Any]) -> None:
    chart = reference_chart(summary)
    assert chart is not None
    body = " ".join(texts(chart))
    assert "PUBLISHED REFERENCE — NOT MEASURED HERE" in body
    assert "not measured here" in chart.alt_text and "not measured here" in chart.title.lower()
    for figure in ("SME2 off 556 ms", "SME2 on 304 ms", "SME2 off 1163 ms", "SME2 on 298 ms"):
        assert figure in body
    assert texts(chart, "speedup") == ["1.83× faster with SME2 (published)", "3.9× faster with SME2 (published)"]
    assert "CONV 98.1" in body and "DATA_MOVEMENT 119.1" in body and "298.2 ms" in body
    for cell_id in summary["cells"]:
        assert cell_id not in chart.svg
    latency = latency_chart(summary)
    assert latency is not None and "SqueezeSAM" not in latency.svg and "556" not in latency.svg


def test_same_input_gives_identical_bytes(summary: dict[str, Any], tmp_path: Path) -> None:
    first = [(c.file_name, c.svg) for c in write_charts(summary, tmp_path / "a")]
    second = [(c.file_name, c.svg) for c in write_charts(copy.deepcopy(summary), tmp_path / "b")]
    assert first == second
    for name, _ in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # Only fixed ids (derived from the chart), never counters or random values.
    ids = re.findall(r'\bid="([^"]+)"', "".join(svg for _, svg in first))
    assert all(re.fullmatch(r"[a-z]+(-[A-Za-z0-9_.]+)?-(title|desc)", i) for i in ids)


def test_write_charts_replaces_stale_charts_only(summary: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "analysis" / "charts"
    out.mkdir(parents=True)
    (out / "top_operators_gone_cell.svg").write_text("<svg/>")
    (out / "my_notes.svg").write_text("<svg/>")
    charts = write_charts(summary, out)
    on_disk = sorted(p.name for p in out.iterdir())
    assert on_disk == sorted([c.file_name for c in charts] + ["my_notes.svg"])
    for chart in charts:
        assert (out / chart.file_name).read_text() == chart.svg


def test_run_without_a_pair(summary: dict[str, Any]) -> None:
    summary["cells"] = {k: v for k, v in summary["cells"].items() if v["variant"] == "xnnpack"}
    summary["pairs"] = []
    summary["comparison"] = {"label": "no comparison (one variant)", "is_sme2": False, "note": ""}
    for chart in all_charts(summary):
        check_well_formed(chart)
    latency = latency_chart(summary)
    assert latency is not None
    assert texts(latency, "speedup") == []
    assert len(bar_rects(latency)) == 2
    categories = category_chart(summary)
    assert categories is not None and "faster" not in categories.svg


def test_timing_only_run_has_no_category_or_operator_charts(summary: dict[str, Any], tmp_path: Path) -> None:
    for cell in summary["cells"].values():
        cell.update(categories_ms={}, operators=[], source="timing")
    for pair in summary["pairs"]:
        pair.update(categories={}, top_gains=[], bottleneck_note="")
    assert category_chart(summary) is None
    names = [c.file_name for c in write_charts(summary, tmp_path)]
    assert names == ["latency.svg", "reference.svg"]


def test_run_without_cells_or_reference(summary: dict[str, Any]) -> None:
    summary["cells"], summary["pairs"] = {}, []
    del summary["reference"]
    assert latency_chart(summary) is None
    assert category_chart(summary) is None
    assert reference_chart(summary) is None
    assert all_charts(summary) == []


def test_many_pairs_stack_without_overlap(summary: dict[str, Any]) -> None:
    cells: dict[str, Any] = {}
    pairs = []
    for i in range(12):
        model = f"model{i:02d}"
        for cell in summary["cells"].values():
            if cell["model"] != "mobilenet_quick":
                continue
            clone = copy.deepcopy(cell)
            clone["model"] = model
            clone["cell_id"] = cell["cell_id"].replace("mobilenet_quick", model)
            cells[clone["cell_id"]] = clone
        pair = copy.deepcopy(summary["pairs"][0])
        pair["model"] = model
        pair["speedup"]["value"] = 1.0 + i
        pairs.append(pair)
    summary["cells"], summary["pairs"] = cells, pairs
    latency = latency_chart(summary)
    categories = category_chart(summary)
    assert latency is not None and categories is not None
    for chart in (latency, categories):
        check_well_formed(chart)
    speedups = texts(latency, "speedup")
    assert [s.split("×")[0] for s in speedups] == [f"xnnpack {1.0 + i:.2f}" for i in range(12)]
    ys = [float(r.get("y", "nan")) for r in bar_rects(latency)]
    assert ys == sorted(ys) and len(set(ys)) == 24
    assert float(parse(latency).get("height", "0")) > ys[-1]


def test_markdown_image_escapes_brackets() -> None:
    chart = Chart("latency.svg", "<svg/>", "a [b] c", "t")
    assert chart.markdown() == "![a (b) c](charts/latency.svg)"
