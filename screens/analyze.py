"""Step 5: the answer — speedup with its interval, latency spread, where the time goes (categories,
operators), and on request the published SME2 SqueezeSAM figures beside them (labelled as such)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from screens import charts, evidence
from screens.base import StepScreen
from screens.guide import WHY
from screens.widgets.chart import Chart, Draw
from screens.widgets.table import Table
from sme2tui.events import Checkpoint
from sme2tui.report.markdown import noise_note

if TYPE_CHECKING:
    from collections.abc import Sequence

    from textual.app import ComposeResult

    from screens.services import LoadedRun


EMULATED_WHY = ("Emulated: which SME2 kernels ran on each side and whether they computed the same as NEON and the "
                "eager model. Emulated time is not hardware time, so no speedup is shown.")


def auto_command(run: LoadedRun) -> str:
    """The headless equivalent of this run, as a user would type it."""
    if run.manifest.get("status") in ("interrupted", "running"):
        return f"sme2tui --auto --resume {run.path}"
    return f"sme2tui --auto --config {run.path / 'config.json'}"


def reference_line(reference: dict[str, Any]) -> Text:
    """The published figures in one line, so `f` shows them at any terminal size (the tables may be below
    the fold at 80x24). Always labelled as published, never mixed with what was measured here."""
    figures = ", ".join(f"{r['dtype']} {r['sme2_off']}→{r['sme2_on']} {reference.get('unit', 'ms')} "
                        f"({float(r['speedup']):.2f}×)" for r in reference.get("latency", []))
    text = Text("published, not measured here: ", style="bold yellow")
    text.append(f"{reference.get('model', '?')} SME2 off→on, {reference.get('threads', '?')} thread: {figures}")
    return text


def is_emulated(run: LoadedRun | None) -> bool:
    return run is not None and bool((run.summary or {}).get("emulated"))


def headline_text(run: LoadedRun, pair_index: int, show_reference: bool = False) -> Text:
    summary = run.summary or {}
    if summary.get("emulated"):
        # Evidence, never a speedup: emulated time is not hardware time.
        text = evidence.headline(summary, pair_index)
        reference = summary.get("reference")
        if show_reference and reference:
            text.append("\n")
            text.append(reference_line(reference))
        return text
    text = Text()
    comparison = summary.get("comparison") or run.manifest.get("comparison") or {}
    pairs = summary.get("pairs", [])
    if not pairs:
        text.append("no on/off pair in this run", style="bold yellow")
    else:
        pair = pairs[pair_index % len(pairs)]
        s = pair["speedup"]
        text.append(f"{pair['model']} {pair['dtype']} ×{pair['threads']}t: ", style="bold")
        text.append(f"{pair['candidate']} is {s['value']:.2f}× {s.get('verdict', '')} than {pair['baseline']}",
                    style="bold green" if s.get("verdict") == "faster" else "bold yellow")
        text.append(f" (95% CI {s['ci_low']:.3g}–{s['ci_high']:.3g}; medians "
                    f"{pair['baseline_median_ms']:.3f} → {pair['candidate_median_ms']:.3f} ms, "
                    f"{s['baseline_n']}/{s['candidate_n']} iterations)")
        noise = noise_note(pair, summary.get("cells"))
        if noise:
            text.append(f" — {noise}", style="bold yellow")
        if len(pairs) > 1:
            text.append(f"  [pair {pair_index % len(pairs) + 1}/{len(pairs)}, v: next]", style="dim")
        if pair.get("bottleneck_note"):
            text.append(f"\n{pair['bottleneck_note']}")
    if comparison:
        style = "green" if comparison.get("is_sme2") else "yellow"
        text.append(f"\n{comparison.get('label', '')}", style=f"bold {style}")
        if not comparison.get("is_sme2"):
            text.append(" — not an SME2 on/off measurement", style=style)
    reference = summary.get("reference")
    if show_reference and reference:
        text.append("\n")
        text.append(reference_line(reference))
    return text


class AnalyzeScreen(StepScreen):
    STEP = "analyze"
    EMPTY_CHECKS = "no analysis checkpoints"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_reference", "Published", id="analyze.reference"),
        Binding("t", "next_tab", "Chart", id="analyze.tab"),
        Binding("v", "next_pair", "Next pair", id="analyze.pair"),
        *StepScreen.COMMON_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run: LoadedRun | None = None
        self.pair_index = 0
        self.show_reference = False

    def compose_main(self) -> ComposeResult:
        yield Static(Text("no analyzed run yet: finish the Run step, or open one from History (h)",
                          style="dim"), id="headline")
        # Hidden on short terminals (the charts need the rows); the log has it too.
        yield Static("", id="headless")
        with TabbedContent(id="tabs"):
            # Emulated runs only (hidden otherwise): a panel per variant, the numerics, the kernels that ran.
            with TabPane("Evidence", id="tab-evidence"), VerticalScroll(id="evidence"):
                with Horizontal(id="evidence-panels"):
                    yield Static("", id="panel-baseline", classes="panel")
                    yield Static("", id="panel-candidate", classes="panel")
                yield Static("", id="evidence-numerics")
                yield Static("", id="evidence-reference")
                yield Static("", id="evidence-kernels")
            with TabPane("Latency", id="tab-latency"), Horizontal(classes="chartrow"):
                yield Chart(id="plot-latency")
                with Vertical(classes="tables"):
                    yield Table(id="table-latency", cursor_type="row")
                    yield Table(id="table-peers", cursor_type="row")
                    # The published figures sit beside the measured ones, in their own labelled table.
                    yield Table(id="table-reflatency", cursor_type="row", classes="reference")
            with TabPane("Where time goes", id="tab-categories"), Horizontal(classes="chartrow"):
                yield Chart(id="plot-categories")
                yield Table(id="table-categories", cursor_type="row")
            with TabPane("Top operators", id="tab-operators"), Horizontal(classes="chartrow"):
                yield Chart(id="plot-operators")
                yield Table(id="table-operators", cursor_type="row")

    def on_mount(self) -> None:
        super().on_mount()
        # Empty charts and no command until a run is open (a class, so the short-terminal rule still applies).
        for selector in ("#tabs", "#headless"):
            self.query_one(selector).add_class("-empty")
        self.show_run()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_run()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        summary = self.run.summary if self.run is not None else None
        if action == "next_pair":
            return summary is not None and len(self._pairs()) > 1  # hidden otherwise: footer room
        if action in ("toggle_reference", "next_tab"):
            return True if summary is not None else None
        return super().check_action(action, parameters)

    def show_run(self) -> None:
        run_dir = self.state.run_dir
        if run_dir is None:
            return
        if self.run is None or self.run.path != run_dir:
            self.run = self.services.load_run(run_dir)
            self.pair_index = 0
            self.checks.clear()
            for record in self.run.manifest.get("checkpoints", []):
                if record.get("step") == "analyze":
                    # Emulated time is not the answer: its quality is shown but does not hold the step.
                    blocking = not (is_emulated(self.run) and record["name"] in evidence.TIMING_CHECKS)
                    self.add_check(Checkpoint("analyze", record["name"], record["status"], record["detail"],
                                              record.get("fix", ""), record.get("subject", "")), blocking=blocking)
            self.finished = self.run.summary is not None  # the step is done when there is an answer to show
            self.query_one("#tabs").set_class(not self.finished, "-empty")
            self._evidence_tab()
            self.query_one("#headless").remove_class("-empty")
            self.log_pane.add_lines([f"opened {run_dir.name}: status {self.run.manifest.get('status')}"])
            if self.run.report_exists:
                self.log_pane.add_lines([f"report: {run_dir / 'analysis' / 'report.md'}"])
            self.log_pane.add_lines([f"headless: {auto_command(self.run)}"])
            self.refresh_checks()
        self.render_run()

    def _pairs(self) -> list[dict[str, Any]]:
        """What `v` steps through: the measured pairs, or an emulated run's evidence pairs."""
        summary = self.run.summary if self.run is not None else None
        if summary is None:
            return []
        return evidence.evidence_pairs(summary) if summary.get("emulated") else list(summary.get("pairs", []))

    def _evidence_tab(self) -> None:
        """The Evidence tab leads for an emulated run and is hidden for the others."""
        tabs = self.query_one(TabbedContent)
        # The step's why-line speaks of speed; an emulated run's answer is evidence.
        self.query_one("#why", Static).update(EMULATED_WHY if is_emulated(self.run) else WHY[self.STEP])
        # The time an emulated run records is the emulator's: the tab says so wherever the eye lands first.
        tabs.get_tab("tab-latency").label = "Emulated ms" if is_emulated(self.run) else "Latency"
        tabs.set_class(is_emulated(self.run), "-emulated")
        if is_emulated(self.run):
            tabs.show_tab("tab-evidence")
            tabs.active = "tab-evidence"
        else:
            if tabs.active == "tab-evidence":
                tabs.active = "tab-latency"
            tabs.hide_tab("tab-evidence")

    def render_run(self) -> None:
        run = self.run
        if run is None:
            return
        self.query_one("#headline", Static).update(headline_text(run, self.pair_index, self.show_reference))
        self.query_one("#headless", Static).update(Text(f"headless: {auto_command(run)}", style="dim"))
        summary = run.summary
        if summary is None:
            return
        pairs = self._pairs()
        pair = pairs[self.pair_index % len(pairs)] if pairs else None
        emulated = is_emulated(run)
        if emulated and pair is not None:
            self._render_evidence(summary, pair)
            cells = [c for c in (summary["cells"].get(pair.get(k, "")) for k in ("baseline_cell", "candidate_cell"))
                     if c is not None]
        else:
            cells = charts.pair_cells(summary, pair)
        reference = summary.get("reference") if self.show_reference else None
        self._table("#table-latency", charts.LATENCY_HEADERS, charts.latency_rows(cells))
        self.query_one("#table-latency", DataTable).border_title = (
            "emulated ms: not hardware time" if emulated else "latency, ms")
        peer_headers, peers = charts.peer_table(cells)
        self._table("#table-peers", peer_headers, peers if len(peer_headers) > 1 else [])
        self.query_one("#table-peers", DataTable).border_title = "load, first inference, tail, memory"
        self.query_one("#table-peers").display = len(peer_headers) > 1
        if reference is not None:
            self._table("#table-reflatency", ("published", "SME2 off ms", "SME2 on ms", "speedup"),
                        charts.reference_latency_rows(reference))
            self.query_one("#table-reflatency", DataTable).border_title = "published, not measured here"
        headers = ("category", *(c["variant"] + " ms" for c in cells))
        rows = charts.category_rows(cells)
        if reference is not None:
            shares = charts.reference_category_shares(reference)
            headers = (*headers, "published %")
            rows = [(*row, f"{shares[row[0]]:.0f}%") for row in rows]
        # The chart's legend: each category with a swatch of its colour in the chart.
        swatched: list[tuple[str | Text, ...]] = [
            (Text.assemble(("■ ", f"color({charts.CATEGORY_COLORS[row[0]]})"), row[0]), *row[1:]) for row in rows]
        self._table("#table-categories", headers, swatched)
        candidate = cells[-1] if cells else None
        self._table("#table-operators", charts.EMULATED_OPERATOR_HEADERS if emulated else charts.OPERATOR_HEADERS,
                    charts.operator_rows(candidate) if candidate else [])
        self.query_one("#table-operators", DataTable).border_title = (
            f"top operators: {candidate['variant']}" if candidate else "")
        self._plot("#plot-latency", lambda plt, w, h: charts.draw_latency(plt, cells, w, emulated))
        self._plot("#plot-categories", lambda plt, w, h: charts.draw_categories(plt, cells, reference, w, emulated))
        # One bar per row: plotext drops tick labels that would share a row.
        self._plot("#plot-operators",
                   lambda plt, w, h: charts.draw_operators(plt, candidate, max(1, min(8, h - 5)), w, emulated))
        self.query_one("#table-reflatency").display = reference is not None
        self.call_after_refresh(self.fit_tables)

    def _render_evidence(self, summary: dict[str, Any], pair: dict[str, Any]) -> None:
        sides = pair.get("evidence", {})
        for side in ("baseline", "candidate"):
            panel = self.query_one(f"#panel-{side}", Static)
            data = sides.get(side)
            panel.display = data is not None
            if data is not None:
                panel.update(evidence.panel_text(data))
                panel.border_title = evidence.panel_title(str(pair.get(side)), data)
        self.query_one("#evidence-numerics", Static).update(evidence.numerics_text(pair))
        reference = summary.get("reference")
        self.query_one("#evidence-reference", Static).update(reference_line(reference) if reference else "")
        self.query_one("#evidence-kernels", Static).update(evidence.kernels_text(pair))

    # The chart needs this many columns to be read (ticks, markers, values); the tables give way below it.
    CHART_ROOM: ClassVar[int] = 34

    def fit_tables(self) -> None:
        """The latency table always whole; the peer table beside it only while the chart keeps its room."""
        row = self.query_one("#tab-latency .chartrow")
        latency, peers = self.query_one("#table-latency", DataTable), self.query_one("#table-peers", DataTable)
        if not row.size.width:
            return  # not laid out (another tab is showing): fitted when it is shown
        need = max(latency.virtual_size.width, peers.virtual_size.width) + 2
        peers.set_class(row.size.width - need < self.CHART_ROOM, "-fitted")

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_tables)

    def on_tabbed_content_tab_activated(self) -> None:
        self.call_after_refresh(self.fit_tables)

    def action_toggle_guide(self) -> None:
        super().action_toggle_guide()
        self.call_after_refresh(self.fit_tables)

    def _table(self, selector: str, headers: tuple[str, ...], rows: Sequence[tuple[str | Text, ...]]) -> None:
        table = self.query_one(selector, DataTable)
        table.clear(columns=True)
        # Explicit widths: every number must be readable in full, the table scrolls sideways instead.
        for i, header in enumerate(headers):
            width = max([len(header), *(len(_plain(r[i])) for r in rows if i < len(r))])
            table.add_column(header, width=width)
        for row in rows:
            table.add_row(*row)

    def _plot(self, selector: str, draw: Draw) -> None:
        self.query_one(selector, Chart).show(draw)

    def action_toggle_reference(self) -> None:
        self.show_reference = not self.show_reference
        self.render_run()
        self.notify("published SqueezeSAM figures shown beside yours (labelled; not measured here) — f hides them"
                    if self.show_reference else "published figures hidden", timeout=4)

    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        ids = ["tab-evidence"] * is_emulated(self.run) + ["tab-latency", "tab-categories", "tab-operators"]
        tabs.active = ids[(ids.index(tabs.active) + 1) % len(ids)] if tabs.active in ids else ids[0]

    def action_next_pair(self) -> None:
        self.pair_index += 1
        self.render_run()


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell
