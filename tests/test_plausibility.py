"""Numbers that cannot be measurements are refused where they enter: runner timing files, progress lines, the
kit's own figures and names, crafted ETDumps, and the analysis of a cell (red-team findings, each reproduced
here in its smallest form)."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import pytest

from sme2tui.analysis.categorize import Categorizer
from sme2tui.analysis.files import analyze_etdump_file
from sme2tui.analysis.plausibility import check_against_wall, check_latencies, check_operators_fit
from sme2tui.analysis.stats import LARGE_SAMPLE, speedup
from sme2tui.errors import AnalysisError, ConfigError
from sme2tui.etdump import EtdumpError, read_etdump
from sme2tui.kit.config import parse_kit_config
from sme2tui.kit.folder import _kit_ms, _log_numbers
from sme2tui.run.android import read_timing as read_android_timing
from sme2tui.run.commands import last_progress
from sme2tui.run.native import RunnerLied, read_runner_timing
from tests.etdump_craft import build


def _timing(tmp_path: Path, warmup: list[int], measured: list[int] | str) -> Path:
    path = tmp_path / "timing.json"
    text = measured if isinstance(measured, str) else json.dumps({"warmup_ns": warmup, "measured_ns": measured})
    path.write_text(text)
    return path


def test_runner_times_must_fit_in_the_round_timed_from_outside(tmp_path: Path) -> None:
    honest = _timing(tmp_path, [1_000_000], [2_000_000] * 10)  # 21 ms of iterations
    assert read_runner_timing(honest, warmup=1, iterations=10, round_seconds=0.03)
    with pytest.raises(RunnerLied, match="add up to"):
        read_runner_timing(_timing(tmp_path, [1000], [10**15] * 10), warmup=1, iterations=10, round_seconds=0.03)


def test_a_runner_time_of_hundreds_of_digits_is_a_lie_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(RunnerLied, match="not a duration"):
        read_runner_timing(_timing(tmp_path, [1000], '{"warmup_ns": [1000], "measured_ns": [1' + "0" * 400 + "]}"),
                           warmup=1, iterations=1)


def test_android_runner_times_must_fit_in_the_round(tmp_path: Path) -> None:
    path = _timing(tmp_path, [1000], [10**12] * 3)
    assert read_android_timing(path, expected=3)  # without the host's clock: only the shape is checked
    with pytest.raises(ValueError, match="add up to"):
        read_android_timing(path, expected=3, round_seconds=2.0)


def test_progress_counts_are_counts() -> None:
    assert last_progress(b"sme2_runner: progress measured=3/10\n") == 3
    huge = b"9" * 5000
    assert last_progress(b"sme2_runner: progress measured=" + huge + b"/" + huge + b"\n") is None
    assert last_progress(b"sme2_runner: progress measured=" + huge + b"/10\n") is None


def test_the_kits_own_figures_are_dropped_when_they_are_not_times(tmp_path: Path) -> None:
    assert _kit_ms(0.333) == 0.333
    assert [_kit_ms(v) for v in (math.nan, math.inf, -1.0, True, "1", 10**400)] == [None] * 6
    log = tmp_path / "latency.log"
    log.write_text(f"Execution Iterations: {'9' * 5000}\nWarmup Iterations: 2\n")
    assert _log_numbers(log) == (None, 2)


def test_a_kit_experiment_name_with_a_terminal_escape_is_refused() -> None:
    data = {"model": "m.pte", "experiments": [{"name": "x\n\x1b[31mred", "runner_path": "r", "runs": 3}]}
    with pytest.raises(ConfigError, match="control character"):
        parse_kit_config(data, Path("kit.json"))


def test_an_etdump_whose_events_share_one_table_is_refused_at_once(tmp_path: Path) -> None:
    crafted = tmp_path / "shared.etdp"
    crafted.write_bytes(build("shared", 2_000_000))  # 8 MB claiming 2M iterations
    started = time.monotonic()
    with pytest.raises(EtdumpError, match="share their tables"):
        read_etdump(crafted)
    assert time.monotonic() - started < 5  # refused before decoding (it took seconds and 300 MB to decode)
    honest = tmp_path / "distinct.etdp"
    honest.write_bytes(build("distinct", 2000))  # the smallest honest layout is still read
    assert read_etdump(honest).iteration_count == 1


def test_a_bare_etdump_with_impossible_times_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="over an hour"):
        check_latencies([1.0, 5e12], "x.etdp", "x.etdp")
    with pytest.raises(AnalysisError, match="did not advance"):
        check_latencies([0.0, 0.0, 0.0], "x.etdp", "x.etdp")
    with pytest.raises(AnalysisError, match="operators take"):
        check_operators_fit(1000.0, 0.001, "x.etdp", "x.etdp")
    check_operators_fit(0.21, 0.2, "x.etdp", "x.etdp")  # XNNPACK's whole-microsecond rounding is not refused
    honest = tmp_path / "distinct.etdp"
    honest.write_bytes(build("distinct", 20))
    assert analyze_etdump_file(honest, warmup=0, categorizer=Categorizer.load(None)).latency.n == 1


def test_an_etdump_against_the_runners_clock() -> None:
    check_against_wall(0.27, 0.32, "c", "w")  # XNNPACK cell of the reference run
    check_against_wall(0.01, 0.35, "c", "w")  # a tiny model under the Python runtime's per-call overhead
    with pytest.raises(AnalysisError, match="not this cell's"):
        check_against_wall(47.2, 0.23, "c", "w")  # the portable cell's trace in the xnnpack cell
    with pytest.raises(AnalysisError, match="not this cell's"):
        check_against_wall(0.23, 47.2, "c", "w")  # and the other way round


def test_large_samples_bootstrap_fast_and_reproducibly() -> None:
    rng = random.Random(3)
    n = LARGE_SAMPLE  # both sides together exceed it: the numpy path
    baseline = [20 + rng.random() for _ in range(n)]
    candidate = [0.2 + 0.01 * rng.random() for _ in range(n)]
    first, again = speedup(baseline, candidate), speedup(baseline, candidate)
    assert first == again
    assert first.ci_low <= first.value <= first.ci_high and first.verdict == "faster"
    small = speedup(baseline[:500], candidate[:500])  # the Python path: about the same interval
    assert abs(small.value - first.value) / first.value < 0.05
