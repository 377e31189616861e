"""Statistics that hold up on noisy machines: robust summaries, bootstrap intervals, plain-word verdicts."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Literal

CV_WARN = 0.05
CV_NOISY = 0.10
BOOTSTRAP_RESAMPLES = 2000
# Above this many iterations (both sides) the bootstrap runs in numpy: the pure-Python loop costs about 140 µs
# per iteration (100k iterations: minutes per pair). Below it, the Python loop keeps published intervals as
# they were computed. Both are seeded, so an analysis always gives the same interval.
LARGE_SAMPLE = 4000
BOOTSTRAP_CHUNK_VALUES = 4_000_000  # resampled values held at once (32 MB of float64)


@dataclass(frozen=True)
class Summary:
    """Summary of per-iteration values in milliseconds. `n` iterations, warmup already excluded."""

    n: int
    median: float
    mean: float
    std: float
    cv: float  # std / mean
    p10: float
    p90: float
    min: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values: list[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarize")
    ordered = sorted(values)
    mean = statistics.fmean(ordered)
    std = statistics.stdev(ordered) if len(ordered) > 1 else 0.0
    return Summary(
        n=len(ordered),
        median=statistics.median(ordered),
        mean=mean,
        std=std,
        cv=std / mean if mean > 0 else 0.0,
        p10=percentile(ordered, 10),
        p90=percentile(ordered, 90),
        min=ordered[0],
        max=ordered[-1],
    )


Verdict = Literal["faster", "slower", "inconclusive"]


@dataclass(frozen=True)
class Speedup:
    """baseline median / candidate median, with a percentile-bootstrap 95% interval."""

    value: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    baseline_n: int
    candidate_n: int
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        return f"{self.value:.2f}× (95% CI {self.ci_low:.2f}–{self.ci_high:.2f})"


def speedup(baseline: list[float], candidate: list[float], *, seed: int = 0,
            resamples: int = BOOTSTRAP_RESAMPLES) -> Speedup:
    """Seeded so the same data always gives the same interval (reports and snapshots are reproducible)."""
    point = statistics.median(baseline) / statistics.median(candidate)
    nb, nc = len(baseline), len(candidate)
    if nb + nc > LARGE_SAMPLE:
        ratios = _bootstrap_ratios_numpy(baseline, candidate, seed, resamples)
    else:
        rng = random.Random(seed)
        ratios = []
        for _ in range(resamples):
            b = statistics.median(rng.choices(baseline, k=nb))
            c = statistics.median(rng.choices(candidate, k=nc))
            ratios.append(b / c if c > 0 else math.inf)
    ratios.sort()
    low, high = percentile(ratios, 2.5), percentile(ratios, 97.5)
    verdict: Verdict = "faster" if low > 1.0 else "slower" if high < 1.0 else "inconclusive"
    return Speedup(point, low, high, verdict, nb, nc, resamples)


def _bootstrap_ratios_numpy(baseline: list[float], candidate: list[float], seed: int,
                            resamples: int) -> list[float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    b_values, c_values = np.asarray(baseline, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    per_chunk = max(1, BOOTSTRAP_CHUNK_VALUES // max(b_values.size, c_values.size))
    ratios: list[float] = []
    for first in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - first)
        b = np.median(b_values[rng.integers(0, b_values.size, size=(count, b_values.size))], axis=1)
        c = np.median(c_values[rng.integers(0, c_values.size, size=(count, c_values.size))], axis=1)
        with np.errstate(divide="ignore"):
            ratios += np.where(c > 0, b / np.where(c > 0, c, 1.0), np.inf).tolist()
    return ratios


def noise_warnings(label: str, summary: Summary) -> list[str]:
    out = []
    if summary.cv > CV_NOISY:
        out.append(f"{label}: very noisy (CV {summary.cv:.1%} > 10%); close other programs, pin cores, add "
                   "iterations")
    elif summary.cv > CV_WARN:
        out.append(f"{label}: noisy (CV {summary.cv:.1%} > 5%)")
    return out


def first_iteration_outlier(values: list[float]) -> bool:
    """The first measured iteration far above the rest: usually too little warmup."""
    if len(values) < 5:
        return False
    rest = sorted(values[1:])
    median = statistics.median(rest)
    spread = percentile(rest, 90) - percentile(rest, 10)
    return values[0] > median + max(3 * spread, 0.25 * median)
