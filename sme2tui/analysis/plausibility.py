"""Refusals for cells whose numbers cannot be measurements of that cell.

A number that may be wrong is refused, not shown: each check here turns a trace that is corrupt, belongs to
another cell, or was written by a lying runner into an AnalysisError naming the cell and the file, instead of
a confident speedup. The bounds are loose on purpose (real runs are far inside them); what they catch are
ETDumps copied, linked or swapped between cells, iteration counts that are not the run's, timers that did not
advance, and operator times that do not fit inside the iteration that contains them.
"""

from __future__ import annotations

import statistics

from sme2tui.errors import AnalysisError

RERUN = "re-run the cell: `sme2tui --auto --resume RUN_DIR` (delete its cells/<id>/ folder first)"
# No single inference that sme2tui measures takes an hour; a larger figure is a corrupt or wrapped timestamp.
MAX_ITERATION_MS = 3_600_000.0
# The runner times each iteration around Method::execute and the ETDump inside it, so the ETDump can only be
# shorter; clock granularity and scheduling allow a little over. Far shorter means another program's trace.
# That bound is loose (50× and 5 ms): the Python runtime's wall clock also holds its per-call overhead and the
# copy of the outputs, which can outweigh a tiny model's execute; a swapped trace is off by far more.
ETDUMP_OVER_WALL = 1.25
ETDUMP_OVER_WALL_SLACK_MS = 0.05
WALL_OVER_ETDUMP = 50.0
WALL_OVER_ETDUMP_SLACK_MS = 5.0
# Σ operator medians may exceed the end-to-end median a little (XNNPACK counts whole microseconds); beyond
# this the operators cannot have run inside the iterations they are said to belong to.
OPERATORS_OVER_TOTAL = 1.5
OPERATORS_OVER_TOTAL_SLACK_MS = 0.05


def check_iteration_count(count: int, warmup: int, expected: int | None, label: str, where: str) -> None:
    if expected is not None and count != warmup + expected:
        raise AnalysisError(
            f"{label}: the ETDump holds {count} iterations, but the run asked for {warmup} warmup + {expected}: it "
            "is not this cell's trace (copied or linked from another run) or the runner did not do what it was "
            "told", where=where, fix=RERUN)
    if count <= warmup:
        raise AnalysisError(f"{label}: only {count} iterations recorded, all warmup", where=where,
                            fix="run more iterations (config `iterations`)")


def check_latencies(values_ms: list[float], label: str, where: str) -> None:
    """Per-iteration end-to-end times that no real run produces."""
    median = statistics.median(values_ms)
    if median <= 0:
        raise AnalysisError(f"{label}: the median iteration took {median:g} ms: the timer did not advance, so "
                            "there is nothing to measure or compare", where=where, fix=RERUN)
    longest = max(values_ms)
    if longest > MAX_ITERATION_MS:
        raise AnalysisError(f"{label}: an iteration of {longest:.6g} ms (over an hour) cannot be a measurement: "
                            "its timestamps are corrupt", where=where, fix=RERUN)


def check_against_wall(etdump_median_ms: float, wall_median_ms: float, label: str, where: str) -> None:
    """The ETDump's own time per iteration against the runner's clock around each iteration of the same cell."""
    too_long = etdump_median_ms > wall_median_ms * ETDUMP_OVER_WALL + ETDUMP_OVER_WALL_SLACK_MS
    too_short = etdump_median_ms * WALL_OVER_ETDUMP + WALL_OVER_ETDUMP_SLACK_MS < wall_median_ms
    if too_long or too_short:
        raise AnalysisError(
            f"{label}: its ETDump says {etdump_median_ms:.4g} ms per iteration, but the runner timed "
            f"{wall_median_ms:.4g} ms around each one: the ETDump is not this cell's (copied, linked or swapped "
            "in from another cell or run), or one of the two clocks lied", where=where, fix=RERUN)


def check_operators_fit(operators_ms: float, total_ms: float, label: str, where: str) -> None:
    if operators_ms > total_ms * OPERATORS_OVER_TOTAL + OPERATORS_OVER_TOTAL_SLACK_MS:
        raise AnalysisError(
            f"{label}: its operators take {operators_ms:.4g} ms per iteration inside an iteration of "
            f"{total_ms:.4g} ms: events outside the iteration that contains them, so the trace is corrupt or "
            "mixes runs", where=where, fix=RERUN)
