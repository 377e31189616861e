"""Charts of an analyzed run as hand-written SVG files (`analysis/charts/*.svg`).

Why hand-written: matplotlib is not a dependency, and plain SVG text is byte-stable (no timestamps, no
random ids, fixed number formatting), opens in every browser and Markdown viewer, and can be diffed.

Every chart carries a `<title>` and `<desc>` (screen readers, hover) and comes with alt text for the
Markdown report. Colours are the Okabe–Ito palette (safe for the common colour-vision deficiencies) and
each category keeps one colour in every chart. Each chart says which statistic it draws.

Input is the `analysis/summary.json` dict written by the analyze step (see `sme2tui.analysis.stage`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from sme2tui.fileio import write_text_atomic

# The six buckets in drawing order (the analysis' ALL_BUCKETS; repeated so this module needs no analysis import).
BUCKETS = ("CONV", "GEMM", "DATA_MOVEMENT", "ELEMENTWISE", "OTHER", "OVERHEAD")

# Okabe–Ito. OVERHEAD is grey: it is a residual (time outside any operator), not a kind of work.
CATEGORY_COLOURS: dict[str, str] = {
    "CONV": "#0072B2",
    "GEMM": "#E69F00",
    "DATA_MOVEMENT": "#009E73",
    "ELEMENTWISE": "#CC79A7",
    "OTHER": "#56B4E9",
    "OVERHEAD": "#999999",
}
BASELINE_COLOUR = "#8C8C8C"
CANDIDATE_COLOUR = "#0072B2"
# Variants beyond the compared pair (or every variant when there is no pair) cycle through these.
EXTRA_VARIANT_COLOURS = ("#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")
TEXT = "#1A1A1A"
MUTED = "#555555"
GRID = "#DDDDDD"
FONT = "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"

TITLE_SIZE = 16
LABEL_SIZE = 12
SMALL_SIZE = 11
# No font metrics at hand: a wide sans-serif averages about 0.62 em per character, which sizes label columns
# generously enough that text never runs into the bars.
CHAR_EM = 0.62
PLOT_WIDTH = 480
MAX_LABEL_CHARS = 48
# Above this max/min ratio a linear axis makes the faster variant's bar invisible, so the latency chart
# switches to a log axis (and says so).
LOG_SCALE_RATIO = 20.0

CHART_FILES = ("latency.svg", "categories.svg", "reference.svg")
TOP_OPERATORS_PREFIX = "top_operators_"


@dataclass(frozen=True)
class Chart:
    """One chart: the file name it is written under, its SVG text, alt text for Markdown, and its title."""

    file_name: str
    svg: str
    alt_text: str
    title: str

    def markdown(self, directory: str = "charts") -> str:
        """`![alt](directory/file)` for a report that sits next to the charts folder."""
        return f"![{_markdown_safe(self.alt_text)}]({directory}/{self.file_name})"


# --------------------------------------------------------------------------------------------------- formatting


def fmt_ms(value: float) -> str:
    """Milliseconds with about four significant digits, the same text in every chart and alt text."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def speedup_text(pair: dict[str, Any]) -> str:
    """'xnnpack 83.37× faster than portable (95% CI 79.66–98.17)', matching the Markdown headline's digits."""
    s = pair["speedup"]
    ci = f"95% CI {s['ci_low']:.2f}–{s['ci_high']:.2f}"
    if s["verdict"] == "inconclusive":
        return f"{pair['candidate']} vs {pair['baseline']}: {s['value']:.2f}×, not measurably different ({ci})"
    word = "faster" if s["verdict"] == "faster" else "slower"
    return f"{pair['candidate']} {s['value']:.2f}× {word} than {pair['baseline']} ({ci})"


def _num(value: float) -> str:
    # One decimal is sub-pixel precision; fixed formatting keeps the bytes identical across runs.
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_EM


def _truncate(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _markdown_safe(text: str) -> str:
    return text.replace("\n", " ").replace("[", "(").replace("]", ")")


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    """Escaped for XML text and without the characters XML 1.0 forbids even when escaped (control characters,
    lone surrogates, U+FFFE/U+FFFF): operator names come from ETDumps, which any runner may write."""
    return escape(_XML_INVALID.sub("\ufffd", text))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "cell"


# --------------------------------------------------------------------------------------------------- SVG builder


class _Svg:
    """Collects SVG elements; the root element is written last so the height can follow the content."""

    def __init__(self, ident: str, width: float, title: str, desc: str) -> None:
        self.ident = ident
        self.width = width
        self.title = title
        self.desc = desc
        self.body: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tooltip: str | None = None,
             extra: str = "") -> None:
        attrs = f'x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0.0))}" height="{_num(h)}" fill="{fill}"{extra}'
        if tooltip is None:
            self.body.append(f"<rect {attrs}/>")
        else:
            self.body.append(f"<rect {attrs}><title>{_xml(tooltip)}</title></rect>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1.0,
             extra: str = "") -> None:
        self.body.append(f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
                         f'stroke="{stroke}" stroke-width="{_num(width)}"{extra}/>')

    def text(self, x: float, y: float, content: str, size: int = LABEL_SIZE, anchor: str = "start",
             bold: bool = False, fill: str = TEXT, css_class: str | None = None) -> None:
        attrs = f'x="{_num(x)}" y="{_num(y)}" font-size="{size}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if bold:
            attrs += ' font-weight="bold"'
        if fill != TEXT:
            attrs += f' fill="{fill}"'
        if css_class:
            attrs += f" class={quoteattr(css_class)}"
        self.body.append(f"<text {attrs}>{_xml(content)}</text>")

    def mark(self) -> int:
        """Position in the element list, for drawing something behind what follows (see `_draw_axis`)."""
        return len(self.body)

    def render(self, height: float) -> str:
        w, h = _num(self.width), _num(height)
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
                f'role="img" aria-labelledby="{self.ident}-title {self.ident}-desc" '
                f'font-family={quoteattr(FONT)} fill="{TEXT}">')
        lines = [
            head,
            f'<title id="{self.ident}-title">{_xml(self.title)}</title>',
            f'<desc id="{self.ident}-desc">{_xml(self.desc)}</desc>',
            f'<rect x="0" y="0" width="{w}" height="{h}" fill="#FFFFFF"/>',
            *self.body,
            "</svg>",
        ]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------- scales


@dataclass(frozen=True)
class _Scale:
    """Maps values to x pixels on [x0, x0 + width], linear from 0 or log10."""

    low: float
    high: float
    x0: float
    width: float
    log: bool

    def x(self, value: float) -> float:
        if self.log:
            value = min(max(value, self.low), self.high)
            fraction = (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        else:
            fraction = (value - self.low) / (self.high - self.low) if self.high > self.low else 0.0
        return self.x0 + min(max(fraction, 0.0), 1.0) * self.width

    def ticks(self) -> list[float]:
        if self.log:
            return _log_ticks(self.low, self.high)
        step = _nice_step(self.high / 5)
        count = round(self.high / step)
        return [i * step for i in range(count + 1)]


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _nice_max(value: float) -> float:
    """Smallest multiple of a nice step (about five ticks) that is ≥ value."""
    if value <= 0:
        return 1.0
    step = _nice_step(value / 5)
    return math.ceil(value / step - 1e-9) * step


def _linear_scale(max_value: float, x0: float, width: float) -> _Scale:
    return _Scale(0.0, _nice_max(max_value), x0, width, log=False)


def _log_ticks(low: float, high: float) -> list[float]:
    first, last = round(math.log10(low)), round(math.log10(high))
    decades = [10.0**k for k in range(first, last + 1)]
    if last - first > 2:
        return decades
    # Few decades: add 2× and 5× so the axis has enough labelled gridlines to read values from.
    return sorted({v * m for v in decades for m in (1, 2, 5) if low <= v * m <= high})


def _log_scale(min_value: float, max_value: float, x0: float, width: float) -> _Scale:
    low = 10.0 ** math.floor(math.log10(min_value))
    high = 10.0 ** math.ceil(math.log10(max_value))
    if high <= low:
        high = low * 10
    return _Scale(low, high, x0, width, log=True)


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 1:
        return f"{value:g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _draw_axis(svg: _Svg, scale: _Scale, top: float, bottom: float, label: str | None, behind: int) -> float:
    """Gridlines from top to bottom, tick labels under `bottom`, optional axis label; returns the new y.

    The gridlines are known only once the bars are laid out, but must not cross them or their labels: they
    are spliced into the element list at `behind` (a `_Svg.mark()` taken before the bars were drawn).
    """
    grid = [f'<line x1="{_num(scale.x(t))}" y1="{_num(top)}" x2="{_num(scale.x(t))}" y2="{_num(bottom)}" '
            f'stroke="{GRID}" stroke-width="1.0"/>' for t in scale.ticks()]
    svg.body[behind:behind] = grid
    for tick in scale.ticks():
        svg.text(scale.x(tick), bottom + 14, _tick_label(tick), size=SMALL_SIZE, anchor="middle", fill=MUTED)
    svg.line(scale.x0, bottom, scale.x0 + scale.width, bottom, MUTED)
    y = bottom + 14
    if label:
        y += 18
        svg.text(scale.x0 + scale.width / 2, y, label, size=LABEL_SIZE, anchor="middle")
    return y


def _legend(svg: _Svg, x: float, y: float, entries: Sequence[tuple[str, str]], max_x: float) -> float:
    """Colour swatches with names, wrapping at max_x; returns the y below the legend."""
    cursor = x
    for name, colour in entries:
        width = 14 + 6 + _text_width(name, SMALL_SIZE) + 16
        if cursor + width > max_x and cursor > x:
            cursor, y = x, y + 18
        svg.rect(cursor, y - 10, 14, 12, colour)
        svg.text(cursor + 20, y, name, size=SMALL_SIZE)
        cursor += width
    return y + 14


def _wrap(text: str, width_px: float, size: int) -> list[str]:
    limit = max(int(width_px / (size * CHAR_EM)), 20)
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if len(candidate) > limit and current:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


# --------------------------------------------------------------------------------------------------- grouping


@dataclass
class _Group:
    """The cells of one model × dtype × threads, in variant order, and their pair if one was compared."""

    model: str
    dtype: str
    threads: int
    cells: list[dict[str, Any]] = field(default_factory=list)
    pair: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        threads = "1 thread" if self.threads == 1 else f"{self.threads} threads"
        return f"{self.model} · {self.dtype} · {threads}"


def _variant_order(summary: dict[str, Any]) -> list[str]:
    comparison = summary.get("comparison") or {}
    order = [v for v in (comparison.get("baseline"), comparison.get("candidate")) if v]
    for cell in summary.get("cells", {}).values():
        if cell["variant"] not in order:
            order.append(cell["variant"])
    return order


def _variant_colours(summary: dict[str, Any]) -> dict[str, str]:
    comparison = summary.get("comparison") or {}
    colours: dict[str, str] = {}
    if comparison.get("baseline"):
        colours[comparison["baseline"]] = BASELINE_COLOUR
    if comparison.get("candidate"):
        colours[comparison["candidate"]] = CANDIDATE_COLOUR
    extra = iter(EXTRA_VARIANT_COLOURS * 4)
    for variant in _variant_order(summary):
        if variant not in colours:
            colours[variant] = next(extra, MUTED)
    return colours


def _groups(summary: dict[str, Any]) -> list[_Group]:
    order = _variant_order(summary)
    groups: dict[tuple[str, str, int], _Group] = {}
    for cell in summary.get("cells", {}).values():
        key = (cell["model"], cell["dtype"], int(cell["threads"]))
        groups.setdefault(key, _Group(*key)).cells.append(cell)
    for pair in summary.get("pairs", []):
        key = (pair["model"], pair["dtype"], int(pair["threads"]))
        if key in groups:
            groups[key].pair = pair
    for group in groups.values():
        group.cells.sort(key=lambda c: order.index(c["variant"]))
    # Insertion order follows the summary's cells (the run plan), which people recognise from the report.
    return list(groups.values())


def _iterations_text(cells: Iterable[dict[str, Any]]) -> str:
    counts = sorted({int(c["latency"]["n"]) for c in cells})
    if not counts:
        return "0"
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


# --------------------------------------------------------------------------------------------------- latency


_BAR_H = 18
_BAR_GAP = 4


def _latency_scale(cells: list[dict[str, Any]], x0: float) -> _Scale:
    lows = [min(c["latency"]["p10"], c["latency"]["median"]) for c in cells]
    highs = [max(c["latency"]["p90"], c["latency"]["median"]) for c in cells]
    positive = [v for v in lows if v > 0]
    if positive and max(highs) / min(positive) > LOG_SCALE_RATIO:
        return _log_scale(min(positive), max(highs), x0, PLOT_WIDTH)
    return _linear_scale(max(highs), x0, PLOT_WIDTH)


def latency_chart(summary: dict[str, Any]) -> Chart | None:
    """Median latency per model × dtype × threads, variants side by side, p10–p90 whiskers, speedup with CI.

    None when the summary has no analyzed cell.
    """
    groups = _groups(summary)
    if not groups:
        return None
    cells = [c for g in groups for c in g.cells]
    colours = _variant_colours(summary)
    n_text = _iterations_text(cells)
    label_width = max(_text_width(c["variant"], LABEL_SIZE) for c in cells) + 16
    x0 = 20 + label_width
    scale = _latency_scale(cells, x0)
    width = x0 + PLOT_WIDTH + 170
    comparison = (summary.get("comparison") or {}).get("label", "")
    title = f"Median latency per model and dtype — {comparison}" if comparison else "Median latency per cell"
    statistic = f"median of {n_text} measured iterations; whiskers p10–p90"
    alt_parts: list[str] = []

    svg = _Svg("latency", width, title, "")
    svg.text(20, 26, title, size=TITLE_SIZE, bold=True)
    svg.text(20, 46, f"{statistic}; warmup excluded; source: {summary.get('run', '')}", size=SMALL_SIZE, fill=MUTED)
    y = _legend(svg, 20, 68, [(v, colours[v]) for v in _variant_order(summary)], width - 20) + 8
    plot_top, behind = y, svg.mark()
    for group in groups:
        svg.text(20, y + 12, group.label, size=LABEL_SIZE, bold=True)
        y += 20
        for cell in group.cells:
            y = _latency_bar(svg, scale, cell, y, colours[cell["variant"]])
        parts = [f"{c['variant']} {fmt_ms(c['latency']['median'])} ms" for c in group.cells]
        if group.pair is not None:
            text = speedup_text(group.pair)
            svg.text(x0, y + 12, text, size=LABEL_SIZE, bold=True, css_class="speedup")
            parts.append(text)
            y += 18
        alt_parts.append(f"{group.label}: " + ", ".join(parts))
        y += 12
    axis_label = "median latency per iteration (ms)" + (", log scale" if scale.log else "")
    y = _draw_axis(svg, scale, plot_top, y, axis_label, behind)
    source = (summary.get("statistics") or {}).get("latency", "")
    svg.desc = f"Horizontal bars: {statistic}. " + "; ".join(alt_parts) + "." + (
        f" Latency: {source}." if source else "")
    alt = f"Median latency ({statistic}{', log scale' if scale.log else ''}): " + "; ".join(alt_parts)
    return Chart("latency.svg", svg.render(y + 16), alt, title)


def _latency_bar(svg: _Svg, scale: _Scale, cell: dict[str, Any], y: float, colour: str) -> float:
    lat = cell["latency"]
    median, p10, p90 = lat["median"], lat["p10"], lat["p90"]
    svg.text(scale.x0 - 8, y + 13, cell["variant"], anchor="end")
    tooltip = (f"{cell['cell_id']}: median {fmt_ms(median)} ms, p10 {fmt_ms(p10)} ms, p90 {fmt_ms(p90)} ms, "
               f"{lat['n']} measured iterations")
    svg.rect(scale.x0, y, scale.x(median) - scale.x0, _BAR_H, colour, tooltip)
    # Whisker: p10–p90 with end caps, drawn dark so it reads over the bar and beside it.
    mid = y + _BAR_H / 2
    x_lo, x_hi = scale.x(p10), scale.x(p90)
    svg.line(x_lo, mid, x_hi, mid, TEXT, 1.5)
    svg.line(x_lo, mid - 5, x_lo, mid + 5, TEXT, 1.5)
    svg.line(x_hi, mid - 5, x_hi, mid + 5, TEXT, 1.5)
    svg.text(max(scale.x(median), x_hi) + 6, y + 13, f"{fmt_ms(median)} ms", css_class="value")
    return y + _BAR_H + _BAR_GAP


# --------------------------------------------------------------------------------------------------- categories


_SHARE_WIDTH = 240


def category_chart(summary: dict[str, Any]) -> Chart | None:
    """Stacked bars per cell of CONV/GEMM/DATA_MOVEMENT/ELEMENTWISE/OTHER/OVERHEAD in ms, and the same as shares.

    The ms panel shares one axis per model × dtype group so the two variants compare by length; the share panel
    shows each variant's own mix, which stays readable when one variant is many times faster. None when no cell
    has a category breakdown (timing-only runs).
    """
    groups = [g for g in _groups(summary) if any(c.get("categories_ms") for c in g.cells)]
    if not groups:
        return None
    cells = [c for g in groups for c in g.cells if c.get("categories_ms")]
    label_width = max(_text_width(c["variant"], LABEL_SIZE) for c in cells) + 16
    x0 = 20 + label_width
    ms_width = PLOT_WIDTH - 80
    share_x0 = x0 + ms_width + 110
    width = share_x0 + _SHARE_WIDTH + 24
    title = "Where the time goes: median time per category"
    statistic = (f"per-category median of {_iterations_text(cells)} measured iterations; OVERHEAD = median "
                 "end-to-end − Σ categories")
    svg = _Svg("categories", width, title, "")
    svg.text(20, 26, title, size=TITLE_SIZE, bold=True)
    svg.text(20, 46, statistic, size=SMALL_SIZE, fill=MUTED)
    y = _legend(svg, 20, 68, [(b, CATEGORY_COLOURS[b]) for b in BUCKETS], width - 20) + 10
    alt_parts: list[str] = []
    for group in groups:
        y, text = _category_group(svg, group, x0, ms_width, share_x0, y)
        alt_parts.append(text)
    source = (summary.get("statistics") or {}).get("categories", "")
    svg.desc = f"Stacked horizontal bars, {statistic}. " + "; ".join(alt_parts) + "." + (
        f" Categories: {source}." if source else "")
    alt = "Time per category (ms, median per category): " + "; ".join(alt_parts)
    return Chart("categories.svg", svg.render(y + 8), alt, title)


def _bucket_values(cell: dict[str, Any]) -> list[tuple[str, float]]:
    categories = cell["categories_ms"]
    return [(b, float(categories.get(b, 0.0))) for b in BUCKETS]


def _category_group(svg: _Svg, group: _Group, x0: float, ms_width: float, share_x0: float,
                    y: float) -> tuple[float, str]:
    cells = [c for c in group.cells if c.get("categories_ms")]
    svg.text(20, y + 12, group.label, size=LABEL_SIZE, bold=True)
    svg.text(x0, y + 28, "time (ms)", size=SMALL_SIZE, fill=MUTED)
    svg.text(share_x0, y + 28, "share of each variant's time (%)", size=SMALL_SIZE, fill=MUTED)
    y += 36
    # Negative OVERHEAD (operator times slightly above the total; allowed within 1%) is not drawable: clamp to 0.
    totals = [sum(max(v, 0.0) for _, v in _bucket_values(c)) for c in cells]
    scale = _linear_scale(max(totals), x0, ms_width)
    share = _Scale(0.0, 100.0, share_x0, _SHARE_WIDTH, log=False)
    top, behind = y, svg.mark()
    texts = []
    for cell, total in zip(cells, totals, strict=True):
        svg.text(x0 - 8, y + 13, cell["variant"], anchor="end")
        _stacked_bar(svg, cell, scale, y, total, shares=False)
        _stacked_bar(svg, cell, share, y, total, shares=True)
        median = cell["latency"]["median"]
        label = f"{fmt_ms(median)} ms"
        if scale.x(total) - x0 < 3:
            # Many times faster than its partner: say where its mix can be read instead of leaving a blank row.
            label += " (bar too short to see at this scale; its mix is on the right)"
        svg.text(scale.x(total) + 6, y + 13, label, css_class="total")
        parts = ", ".join(f"{b} {fmt_ms(v)}" for b, v in _bucket_values(cell) if v > 0)
        texts.append(f"{cell['variant']} total {fmt_ms(median)} ms ({parts})")
        y += _BAR_H + _BAR_GAP + 4
    _draw_axis(svg, scale, top - 4, y, None, behind)
    _draw_axis(svg, share, top - 4, y, None, behind)
    note = ""
    if group.pair is not None:
        note = f"{speedup_text(group.pair)}"
        if group.pair.get("bottleneck_note"):
            note += f"; {group.pair['bottleneck_note']}"
        for line in _wrap(note, share_x0 + _SHARE_WIDTH - 20, SMALL_SIZE):
            svg.text(20, y + 34, line, size=SMALL_SIZE, fill=MUTED)
            y += 15
    return y + 40, f"{group.label}: " + "; ".join(texts) + (f" — {note}" if note else "")


def _stacked_bar(svg: _Svg, cell: dict[str, Any], scale: _Scale, y: float, total: float, shares: bool) -> None:
    cursor = 0.0
    for bucket, raw in _bucket_values(cell):
        value = max(raw, 0.0)
        amount = value / total * 100 if shares and total > 0 else value
        if amount <= 0:
            continue
        x_start, x_end = scale.x(cursor), scale.x(cursor + amount)
        percent = value / total * 100 if total > 0 else 0.0
        tooltip = f"{cell['variant']} {bucket}: {fmt_ms(raw)} ms ({percent:.1f}%)"
        svg.rect(x_start, y, x_end - x_start, _BAR_H, CATEGORY_COLOURS[bucket], tooltip,
                 ' stroke="#FFFFFF" stroke-width="0.5"')
        if shares and x_end - x_start >= 34:
            # Label wide segments only; white on the darker colours, black on the light ones for contrast.
            ink = "#FFFFFF" if bucket in ("CONV", "DATA_MOVEMENT") else TEXT
            svg.text((x_start + x_end) / 2, y + 13, f"{percent:.0f}%", size=SMALL_SIZE, anchor="middle", fill=ink)
        cursor += amount


# --------------------------------------------------------------------------------------------------- operators


def top_operators_chart(summary: dict[str, Any], cell_id: str, n: int = 10) -> Chart | None:
    """The n operators with the largest median time in one cell, coloured by category.

    Operators are keyed by (instruction id, name) as in the analysis; the label shows both. Raises KeyError for a
    cell the summary does not have; None when the cell has no per-operator data (timing-only).
    """
    cell = summary["cells"][cell_id]
    operators = sorted(cell.get("operators") or [], key=lambda o: (-o["median_ms"], o["instruction_id"], o["name"]))
    if not operators or n < 1:
        return None
    top = operators[:n]
    # XNNPACK ops all carry their DELEGATE_CALL's instruction id and restart " #n" per blob: show both parts.
    labels = [f"{_truncate(o['name'])} (instr {o['instruction_id']})" for o in top]
    x0 = 20 + max(_text_width(label, LABEL_SIZE) for label in labels) + 12
    scale = _linear_scale(max(o["median_ms"] for o in top), x0, PLOT_WIDTH - 60)
    width = x0 + PLOT_WIDTH - 60 + 150
    title = f"Top {len(top)} operators by median time — {cell_id}"
    latency = cell["latency"]
    statistic = (f"median per measured iteration over {latency['n']} iterations; share of the "
                 f"{fmt_ms(latency['median'])} ms median end-to-end latency")
    svg = _Svg(f"ops-{_slug(cell_id)}", width, title, "")
    svg.text(20, 26, title, size=TITLE_SIZE, bold=True)
    svg.text(20, 46, f"{statistic}; {len(top)} of {len(operators)} operators shown", size=SMALL_SIZE, fill=MUTED)
    present = [b for b in BUCKETS if any(o["category"] == b for o in top)]
    y = _legend(svg, 20, 68, [(b, CATEGORY_COLOURS.get(b, MUTED)) for b in present], width - 20) + 8
    top_y, behind = y, svg.mark()
    alt_parts = []
    for op, label in zip(top, labels, strict=True):
        svg.text(x0 - 8, y + 13, label, anchor="end")
        where = "delegated" if op["delegated"] else "not delegated"
        tooltip = (f"{op['name']} (instruction {op['instruction_id']}, {op['category']}, {where}): "
                   f"{fmt_ms(op['median_ms'])} ms median, {op['share']:.1%} of end-to-end")
        svg.rect(x0, y, scale.x(op["median_ms"]) - x0, _BAR_H, CATEGORY_COLOURS.get(op["category"], MUTED), tooltip)
        value = f"{fmt_ms(op['median_ms'])} ms · {op['share']:.1%}"
        svg.text(scale.x(op["median_ms"]) + 6, y + 13, value, size=SMALL_SIZE, css_class="value")
        alt_parts.append(f"{op['name']} ({op['category']}) {fmt_ms(op['median_ms'])} ms")
        y += _BAR_H + _BAR_GAP
    y = _draw_axis(svg, scale, top_y - 4, y + 2, "median time per measured iteration (ms)", behind)
    svg.desc = f"Horizontal bars, {statistic}: " + "; ".join(alt_parts) + "."
    alt = f"Top operators of {cell_id} by median time: " + "; ".join(alt_parts)
    return Chart(f"{TOP_OPERATORS_PREFIX}{_slug(cell_id)}.svg", svg.render(y + 16), alt, title)


# --------------------------------------------------------------------------------------------------- reference


_REFERENCE_BG = "#FFF7E0"


def reference_chart(summary: dict[str, Any]) -> Chart | None:
    """The published SME2 SqueezeSAM figures, framed and labelled as not measured here. None without them."""
    ref = summary.get("reference")
    if not ref or not ref.get("latency"):
        return None
    label = ref.get("label", "published reference — not measured here")
    unit = ref.get("unit", "ms")
    width = 20 + 80 + PLOT_WIDTH + 150
    title = f"Published reference — not measured here: {ref.get('model', '')} with SME2 off vs on"
    svg = _Svg("reference", width, title, "")
    svg.text(24, 30, "PUBLISHED REFERENCE — NOT MEASURED HERE", size=TITLE_SIZE, bold=True, fill="#8A4B00")
    y = 50.0
    for line in _wrap(label, width - 48, SMALL_SIZE):
        svg.text(24, y, line, size=SMALL_SIZE, fill=MUTED)
        y += 15
    y = _legend(svg, 24, y + 10, [("SME2 off", BASELINE_COLOUR), ("SME2 on", CANDIDATE_COLOUR)], width - 24) + 4
    y, latency_alt = _reference_latency(svg, ref, y, unit)
    split_alt = ""
    split = ref.get("categories_fp16_sme2_on")
    if split:
        y, split_alt = _reference_split(svg, ref, split, y + 16, unit)
    for line in _wrap(f"Source: {ref.get('source', 'unknown')}. Device: {ref.get('device', 'unknown')}.",
                      width - 48, SMALL_SIZE):
        svg.text(24, y + 8, line, size=SMALL_SIZE, fill=MUTED)
        y += 15
    height = y + 20
    # The frame goes first so everything sits on it: a tinted, dashed box marks these numbers as borrowed.
    svg.body.insert(0, f'<rect x="4" y="4" width="{_num(width - 8)}" height="{_num(height - 8)}" '
                       f'fill="{_REFERENCE_BG}" stroke="#8A4B00" stroke-width="1.5" stroke-dasharray="6 4"/>')
    desc = f"{label}. {latency_alt}." + (f" {split_alt}." if split_alt else "")
    svg.desc = desc
    alt = f"{label}: {latency_alt}" + (f"; {split_alt}" if split_alt else "")
    return Chart("reference.svg", svg.render(height), alt, title)


def _reference_latency(svg: _Svg, ref: dict[str, Any], y: float, unit: str) -> tuple[float, str]:
    rows = ref["latency"]
    x0 = 24 + 80.0
    scale = _linear_scale(max(max(r["sme2_off"], r["sme2_on"]) for r in rows), x0, PLOT_WIDTH)
    threads = ref.get("threads", 1)
    cores = "1 CPU thread" if threads == 1 else f"{threads} CPU threads"
    svg.text(24, y + 12, f"Latency ({unit}), {cores}", size=LABEL_SIZE, bold=True)
    y += 22
    top, behind = y, svg.mark()
    parts = []
    for row in rows:
        svg.text(24, y + 13, str(row["dtype"]), bold=True)
        for key, name, colour in (("sme2_off", "SME2 off", BASELINE_COLOUR), ("sme2_on", "SME2 on", CANDIDATE_COLOUR)):
            value = float(row[key])
            svg.rect(x0, y, scale.x(value) - x0, _BAR_H, colour, f"{row['dtype']} {name}: {value:g} {unit}")
            svg.text(scale.x(value) + 6, y + 13, f"{name} {value:g} {unit}", size=SMALL_SIZE)
            y += _BAR_H + _BAR_GAP
        speed = row.get("speedup") or (row["sme2_off"] / row["sme2_on"])
        svg.text(x0, y + 12, f"{speed:g}× faster with SME2 (published)", size=SMALL_SIZE, bold=True,
                 css_class="speedup")
        parts.append(f"{row['dtype']} {row['sme2_off']:g} → {row['sme2_on']:g} {unit} ({speed:g}×)")
        y += 26
    y = _draw_axis(svg, scale, top - 4, y - 8, f"latency ({unit})", behind)
    return y + 8, "SME2 off → on: " + ", ".join(parts)


def _reference_split(svg: _Svg, ref: dict[str, Any], split: dict[str, Any], y: float,
                     unit: str) -> tuple[float, str]:
    buckets = [(b, float(split[b])) for b in BUCKETS if isinstance(split.get(b), int | float)]
    total = float(split.get("total") or sum(v for _, v in buckets))
    x0 = 24 + 80.0
    scale = _linear_scale(total, x0, PLOT_WIDTH)
    svg.text(24, y + 12, f"fp16 with SME2 on: time per category ({unit}, approximate)", size=LABEL_SIZE, bold=True)
    y += 22
    svg.text(24, y + 13, "fp16 on", bold=True)
    cursor = 0.0
    for bucket, value in buckets:
        x_start, x_end = scale.x(cursor), scale.x(cursor + value)
        svg.rect(x_start, y, x_end - x_start, _BAR_H, CATEGORY_COLOURS[bucket],
                 f"{bucket}: {value:g} {unit} ({value / total:.0%})", ' stroke="#FFFFFF" stroke-width="0.5"')
        cursor += value
    svg.text(scale.x(cursor) + 6, y + 13, f"{total:g} {unit}", size=SMALL_SIZE)
    y += _BAR_H + 6
    y = _legend(svg, x0, y + 14, [(f"{b} {v:g}", CATEGORY_COLOURS[b]) for b, v in buckets], x0 + PLOT_WIDTH + 100)
    parts = ", ".join(f"{b} {v:g}" for b, v in buckets)
    text = f"fp16 SME2-on split ({unit}): {parts}"
    partial = ref.get("categories_fp16_sme2_off_partial") or {}
    if partial:
        known = ", ".join(f"{k} {v:g} {unit}" for k, v in partial.items())
        svg.text(24, y + 6, f"fp16 with SME2 off (only these are published): {known}", size=SMALL_SIZE, fill=MUTED)
        text += f"; fp16 SME2-off (partial): {known}"
        y += 20
    return y + 4, text


# --------------------------------------------------------------------------------------------------- writing


def all_charts(summary: dict[str, Any], top_n: int = 10) -> list[Chart]:
    """Every chart the summary supports, in report order: latency, categories, top operators per cell, reference."""
    charts: list[Chart | None] = [latency_chart(summary), category_chart(summary)]
    charts += [top_operators_chart(summary, cell_id, top_n) for cell_id in summary.get("cells", {})]
    charts.append(reference_chart(summary))
    return [c for c in charts if c is not None]


def write_charts(summary: dict[str, Any], out_dir: Path) -> list[Chart]:
    """Write every chart into `out_dir` (the run's `analysis/charts/`) and return them.

    SVGs this module wrote earlier that the new summary no longer produces (e.g. a cell that failed on
    re-analysis) are removed, so the folder never shows a stale chart next to fresh ones.
    """
    charts = all_charts(summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {c.file_name for c in charts}
    for old in sorted(out_dir.glob("*.svg")):
        ours = old.name in CHART_FILES or old.name.startswith(TOP_OPERATORS_PREFIX)
        if ours and old.name not in names:
            old.unlink()
    for chart in charts:
        write_text_atomic(out_dir / chart.file_name, chart.svg)
    return charts
