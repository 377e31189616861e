"""What the Analyze step plots, as functions of the analysis summary (plain dicts from summary.json).

Each `*_rows` function gives the exact numbers for a DataTable; each `draw_*` draws the same numbers
with plotext. Published reference figures are always labelled as published, never mixed into a series
that was measured here.
"""

from __future__ import annotations

import math
from typing import Any

CATEGORIES = ["CONV", "GEMM", "DATA_MOVEMENT", "ELEMENTWISE", "OTHER", "OVERHEAD"]
SHORT = {"CONV": "conv", "GEMM": "gemm", "DATA_MOVEMENT": "data mv", "ELEMENTWISE": "elemwise", "OTHER": "other",
         "OVERHEAD": "overhead"}
PUBLISHED = "published"
# 256-colour codes (plotext and Rich both take them): one per category, told apart also without red/green.
CATEGORY_COLORS = {"CONV": 166, "GEMM": 33, "DATA_MOVEMENT": 44, "ELEMENTWISE": 141, "OTHER": 245, "OVERHEAD": 239}


def pair_cells(summary: dict[str, Any], pair: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Baseline then candidate of a pair, or every cell when there is no pair."""
    cells: dict[str, dict[str, Any]] = summary.get("cells", {})
    if pair is None:
        return list(cells.values())
    return [cells[c] for c in (pair["baseline_cell"], pair["candidate_cell"]) if c in cells]


def fmt_ms(value: float) -> str:
    """Three significant digits, the precision a latency spread supports: 72.99 → "73.0", 0.1402 → "0.140"."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if value >= 0.1 else f"{value:.3g}"


LATENCY_HEADERS = ("variant", "median", "p10–p90", "CV", "n")


def latency_rows(cells: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """Per variant: median and p10–p90 in ms, CV, and n (measured iterations), narrow enough for 80 columns."""
    rows = []
    for cell in cells:
        lat = cell["latency"]
        rows.append((cell["variant"], fmt_ms(lat["median"]), f"{fmt_ms(lat['p10'])}–{fmt_ms(lat['p90'])}",
                     f"{lat['cv'] * 100:.0f}%" if lat["cv"] >= 0.1 else f"{lat['cv'] * 100:.1f}%", str(lat["n"])))
    return rows


def peer_rows(cells: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Load, first inference, tail and peak memory per cell (summary `peers`; runs analyzed before have none)."""
    from sme2tui.analysis.peers import format_bytes

    def ms(value: Any) -> str:
        return "—" if value is None else f"{value:.3f}"

    rows: list[tuple[str, ...]] = []
    for cell in cells:
        p = cell.get("peers")
        if not p:
            continue
        lat = p["latency"]
        # A percentile from too few iterations is about the maximum: shown, marked "≈max" (the report says why).
        tail = {q: ms(lat[f"p{q}_ms"]) + ("" if lat.get(f"p{q}_estimable", True) else " ≈max") for q in (95, 99)}
        rows.append((cell["variant"], ms(p["load"]["method_load_ms"]), ms(p["first_inference"]["ms"]), tail[95],
                     tail[99], format_bytes(p["memory"]["peak_rss_bytes"])))
    return rows


PEER_METRICS = ("load ms", "first ms", "p95 ms", "p99 ms", "peak RSS")


def peer_table(cells: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The peer metrics with a row per metric and a column per variant (as the category table): two variants
    fit beside the latency chart at 80 columns, where a row per variant was cut after p95."""
    rows = peer_rows(cells)
    headers = ("metric", *(row[0] for row in rows))
    return headers, [(metric, *(row[i + 1] for row in rows)) for i, metric in enumerate(PEER_METRICS)]


def category_shares(cell: dict[str, Any]) -> dict[str, float]:
    values = {c: float(cell.get("categories_ms", {}).get(c, 0.0)) for c in CATEGORIES}
    total = sum(values.values()) or 1.0
    return {c: 100.0 * v / total for c, v in values.items()}


def category_rows(cells: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows = []
    for category in CATEGORIES:
        row = [category]
        for cell in cells:
            ms = float(cell.get("categories_ms", {}).get(category, 0.0))
            row.append(f"{ms:.3f} ({category_shares(cell)[category]:.0f}%)")
        rows.append(tuple(row))
    return rows


def reference_category_shares(reference: dict[str, Any]) -> dict[str, float]:
    split = reference.get("categories_fp16_sme2_on") or {}
    total = float(split.get("total") or sum(float(split.get(c, 0.0)) for c in CATEGORIES)) or 1.0
    return {c: 100.0 * float(split.get(c, 0.0)) / total for c in CATEGORIES}


def reference_latency_rows(reference: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(str(r["dtype"]), f"{r['sme2_off']}", f"{r['sme2_on']}", f"{r['speedup']:.2f}×")
            for r in reference.get("latency", [])]


def _top_operators(cell: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    return sorted(cell.get("operators", []), key=lambda o: -float(o.get("median_ms", 0.0)))[:limit]


def operator_names(ops: list[dict[str, Any]], shorten: bool = False) -> list[str]:
    """Names that tell the operators apart: XNNPACK numbers its operators per delegate, so a transformer
    has a `FC GEMM #1` in every graph; where names repeat, the program instruction (`@12`) is added."""
    names = [short_op(str(o["name"])) if shorten else str(o["name"]) for o in ops]
    repeated = {n for n in names if names.count(n) > 1}
    return [f"{n} @{o.get('instruction_id', '?')}" if n in repeated else n for n, o in zip(names, ops, strict=True)]


OPERATOR_HEADERS = ("#", "operator", "category", "median ms", "share")
EMULATED_OPERATOR_HEADERS = ("#", "operator", "category", "emulated ms", "share")


def operator_rows(cell: dict[str, Any], limit: int = 10) -> list[tuple[str, str, str, str, str]]:
    """The slowest operators, ranked, with short names (kernel kind and number: the full XNNPACK names are in
    the report and the trace), made distinct where they repeat."""
    ops = _top_operators(cell, limit)
    names = operator_names(ops, shorten=True)
    return [(str(rank), name, SHORT.get(str(o["category"]), str(o["category"])), f"{o['median_ms']:.4f}",
             f"{o['share'] * 100:.1f}%") for rank, (name, o) in enumerate(zip(names, ops, strict=True), start=1)]


ABBREVIATIONS = {"Convolution": "Conv", "Fully Connected": "FC", "Batch Matrix Multiply": "BMM"}


def short_op(name: str, width: int = 20) -> str:
    """An axis label that still tells operators apart: "Convolution (NHWC, F32) DWConv #1" → "Conv DWConv #1",
    "native_call_convolution.out" → "convolution"."""
    if name.startswith("native_call_"):  # a non-delegated portable op
        name = name.removeprefix("native_call_").removesuffix(".out")
    head, _, rest = name.partition(" (")
    kernel = rest.partition(") ")[2]  # "IGEMM #1", "GEMM #4" or "#2" (what follows the layout/type)
    if not kernel and "#" in rest:
        kernel = "#" + rest.rpartition("#")[2]
    label = " ".join(x for x in (ABBREVIATIONS.get(head, head), kernel) if x)
    return label if len(label) <= width else label[: width - 1] + "…"


def _ticks(set_ticks: Any, labels: list[str], width: int | None = None) -> None:
    """Every bar labelled, each label short enough not to collide with its neighbour: plotext drops
    colliding labels, and which one it drops is not stable from one process to the next."""
    if width:
        room = max(4, (width - 8) // max(1, len(labels)) - 1)
        labels = [label if len(label) <= room else label[: room - 1] + "…" for label in labels]
    set_ticks(list(range(1, len(labels) + 1)), labels)


def _fit_title(plt: Any, titles: list[str], width: int | None, y_ticks: list[str]) -> None:
    """The first title that fits the plot (the widget less the y tick labels' column): plotext drops a
    title that does not fit, whole."""
    room = None if width is None else width - max((len(t) for t in y_ticks), default=0) - 1
    plt.title(next((t for t in titles if room is None or len(t) <= room), titles[-1]))


def draw_latency(plt: Any, cells: list[dict[str, Any]], width: int | None = None, emulated: bool = False) -> None:
    """Median (◆, with its value) and the p10–p90 spread (│) per variant on a log axis: the variants of a
    pair can differ 500×, and on a linear axis the fast one is an invisible sliver at zero. The log is
    taken here and the ticks say real milliseconds (plotext's own log scale breaks on bars and ticks)."""
    plt.clear_data()
    plt.clear_figure()
    if not cells:
        return
    log = math.log10
    for i, cell in enumerate(cells, start=1):
        lat = cell["latency"]
        low, median, high = (max(float(lat[k]), 1e-6) for k in ("p10", "median", "p90"))
        plt.plot([i, i], [log(low), log(high)], marker="│")
        plt.scatter([i], [log(median)], marker="◆")
        # "default": no background of its own, the canvas shows through (plotext would paint its white default).
        plt.text(fmt_ms(median), i + 0.12, log(median), alignment="left", background="default")
    low = min(max(float(c["latency"]["p10"]), 1e-6) for c in cells)
    high = max(max(float(c["latency"]["p90"]), 1e-6) for c in cells)
    decades = list(range(math.floor(log(low)), max(math.ceil(log(high)), math.floor(log(low)) + 1) + 1))
    ticks = [f"{10.0 ** k:g}" for k in decades]
    plt.yticks(decades, ticks)
    plt.ylim(decades[0], decades[-1])
    plt.xlim(0.5, len(cells) + 0.5)
    _ticks(plt.xticks, [c["variant"] for c in cells], width)
    # Emulated milliseconds are a record of the run, not hardware time: the chart says so in its title, which
    # must fit (plotext drops a title wider than the plot, and with it the word "emulated").
    unit = "emulated ms" if emulated else "ms"
    titles = [f"{unit}, log: median ◆ p10–p90 │", f"{unit}, log: ◆ median", f"{unit}, log"]
    _fit_title(plt, titles, width, ticks)


def draw_categories(plt: Any, cells: list[dict[str, Any]], reference: dict[str, Any] | None,
                    width: int | None = None, emulated: bool = False) -> None:
    """Stacked shares of end-to-end time; shares, because the two sides can differ 100× in total."""
    plt.clear_data()
    plt.clear_figure()
    names = [c["variant"] for c in cells]
    shares = [category_shares(c) for c in cells]
    if reference is not None:
        names.append(f"{PUBLISHED}*")
        shares.append(reference_category_shares(reference))
    if not names:
        return
    # No plotext legend (it is drawn over the first bar): the table beside the chart is the legend, each
    # category with a swatch of its colour.
    plt.stacked_bar(names, [[s[c] for s in shares] for c in CATEGORIES],
                    color=[CATEGORY_COLORS[c] for c in CATEGORIES], width=0.5)
    _ticks(plt.xticks, names, width)
    # Round quarters: plotext's own ticks read 100.0, 83.3, 66.7, 33.3 (and dropped 50 on a short chart).
    plt.yticks([0, 25, 50, 75, 100], ["0", "25", "50", "75", "100"])
    plt.ylim(0, 100)
    title = "share of emulated time, %" if emulated else "share of end-to-end time, %"
    plt.title(title + ("  (*SqueezeSAM fp16 SME2 on, not measured here)" if reference is not None else ""))


NARROW_OPERATOR_CHART = 44  # below this width the names leave no room for bars: ranks label them instead


def draw_operators(plt: Any, cell: dict[str, Any] | None, limit: int = 8, width: int | None = None,
                   emulated: bool = False) -> None:
    """The slowest operators as horizontal bars, labelled with their names, or with their rank (the `#`
    column of the table beside it) when the chart is too narrow for names and bars both."""
    plt.clear_data()
    plt.clear_figure()
    if cell is None:
        return
    ops = _top_operators(cell, limit)
    if not ops:
        return
    narrow = width is not None and width < NARROW_OPERATOR_CHART
    names = [str(i) for i in range(1, len(ops) + 1)] if narrow else operator_names(ops, shorten=True)
    labels = list(reversed(names))
    values = [float(o["median_ms"]) for o in reversed(ops)]
    plt.bar(labels, values, orientation="horizontal", width=0.6)
    _ticks(plt.yticks, labels)
    # Zero, half and the slowest, in the table's milliseconds (plotext's own read 0.0000 0.0110 0.0165).
    top = max(values)
    if top > 0:
        plt.xticks([0, top / 2, top], ["0", fmt_ms(top / 2), fmt_ms(top)])
        plt.xlim(0, top)
    repeated = not narrow and any("@" in label for label in labels)
    # The variant even when narrow (the table's own title is not drawn), and emulated time said as such.
    unit = "emulated ms" if emulated else "median ms"
    variant = str(cell["variant"])
    if narrow:
        titles = [f"{variant}: {unit}, by #", f"{variant}: {unit}", f"{variant}, by #", unit]
    else:
        titles = [f"{variant}: {unit}" + (", @N: instruction N" if repeated else ""), f"{variant}: {unit}", unit]
    _fit_title(plt, titles, width, labels)
