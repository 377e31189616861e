"""What the Analyze step plots, as functions of the analysis summary (plain dicts from summary.json).

Each `*_rows` function gives the exact numbers for a DataTable; each `draw_*` draws the same numbers
with plotext. Published reference figures are always labelled as published, never mixed into a series
that was measured here.
"""

from __future__ import annotations

from typing import Any

CATEGORIES = ["CONV", "GEMM", "DATA_MOVEMENT", "ELEMENTWISE", "OTHER", "OVERHEAD"]
SHORT = {"CONV": "conv", "GEMM": "gemm", "DATA_MOVEMENT": "data mv", "ELEMENTWISE": "elemwise", "OTHER": "other",
         "OVERHEAD": "overhead"}
PUBLISHED = "published"


def pair_cells(summary: dict[str, Any], pair: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Baseline then candidate of a pair, or every cell when there is no pair."""
    cells: dict[str, dict[str, Any]] = summary.get("cells", {})
    if pair is None:
        return list(cells.values())
    return [cells[c] for c in (pair["baseline_cell"], pair["candidate_cell"]) if c in cells]


def latency_rows(cells: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for cell in cells:
        lat = cell["latency"]
        rows.append((cell["variant"], f"{lat['p10']:.3f}", f"{lat['median']:.3f}", f"{lat['p90']:.3f}",
                     f"{lat['cv'] * 100:.1f}%", str(lat["n"])))
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
        tail = {q: ms(lat[f"p{q}_ms"]) if lat[f"p{q}_ms"] is not None else f"n<{lat[f'p{q}_min_n']}" for q in (95, 99)}
        rows.append((cell["variant"], ms(p["load"]["method_load_ms"]), ms(p["first_inference"]["ms"]), tail[95],
                     tail[99], format_bytes(p["memory"]["peak_rss_bytes"])))
    return rows


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


def operator_rows(cell: dict[str, Any], limit: int = 10) -> list[tuple[str, str, str, str]]:
    ops = sorted(cell.get("operators", []), key=lambda o: -float(o.get("median_ms", 0.0)))[:limit]
    return [(str(o["name"]), str(o["category"]), f"{o['median_ms']:.4f}", f"{o['share'] * 100:.1f}%")
            for o in ops]


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


def draw_latency(plt: Any, cells: list[dict[str, Any]], width: int | None = None) -> None:
    """Median per variant as bars, p10–p90 as error bars (the spread over measured iterations)."""
    plt.clear_data()
    plt.clear_figure()
    names = [c["variant"] for c in cells]
    medians = [c["latency"]["median"] for c in cells]
    if not cells:
        return
    plt.bar(names, medians, width=0.4)
    # plotext draws a symmetric bar of length yerr around y: centre it on the p10–p90 interval.
    middles = [(c["latency"]["p10"] + c["latency"]["p90"]) / 2 for c in cells]
    spreads = [c["latency"]["p90"] - c["latency"]["p10"] for c in cells]
    plt.error(list(range(1, len(cells) + 1)), middles, yerr=spreads)
    _ticks(plt.xticks, names, width)
    plt.title("latency ms: median, p10–p90")


def draw_categories(plt: Any, cells: list[dict[str, Any]], reference: dict[str, Any] | None,
                    width: int | None = None) -> None:
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
    plt.stacked_bar(names, [[s[c] for s in shares] for c in CATEGORIES], labels=[SHORT[c] for c in CATEGORIES],
                    width=0.5)
    _ticks(plt.xticks, names, width)
    title = "share of end-to-end time, %"
    plt.title(title + ("  (*SqueezeSAM fp16 SME2 on, not measured here)" if reference is not None else ""))


def draw_operators(plt: Any, cell: dict[str, Any] | None, limit: int = 8) -> None:
    plt.clear_data()
    plt.clear_figure()
    if cell is None:
        return
    rows = operator_rows(cell, limit)
    if not rows:
        return
    labels = [short_op(r[0]) for r in reversed(rows)]
    plt.bar(labels, [float(r[2]) for r in reversed(rows)], orientation="horizontal", width=0.6)
    _ticks(plt.yticks, labels)
    plt.title(f"top operators, {cell['variant']} (median ms)")
