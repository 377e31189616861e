"""Statistics: summaries, bootstrap intervals and verdicts."""

from __future__ import annotations

import random

import pytest

from sme2tui.analysis.stats import first_iteration_outlier, noise_warnings, speedup, summarize


def test_summary_values() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.n, s.median, s.mean, s.min, s.max) == (5, 3.0, 3.0, 1.0, 5.0)
    assert s.p10 == pytest.approx(1.4) and s.p90 == pytest.approx(4.6)
    assert s.cv == pytest.approx(s.std / 3.0)


def test_clear_speedup_is_faster_with_interval_around_it() -> None:
    rng = random.Random(1)
    base = [10 + rng.gauss(0, 0.2) for _ in range(30)]
    cand = [5 + rng.gauss(0, 0.1) for _ in range(30)]
    result = speedup(base, cand)
    assert result.verdict == "faster"
    assert result.ci_low < result.value < result.ci_high
    assert result.ci_low > 1.9 and result.ci_high < 2.1


def test_overlapping_samples_are_inconclusive() -> None:
    rng = random.Random(2)
    base = [10 + rng.gauss(0, 1) for _ in range(15)]
    cand = [10 + rng.gauss(0, 1) for _ in range(15)]
    assert speedup(base, cand).verdict == "inconclusive"


def test_slower_is_reported_as_slower() -> None:
    assert speedup([5.0, 5.1, 4.9, 5.0], [10.0, 10.2, 9.9, 10.1]).verdict == "slower"


def test_bootstrap_is_reproducible() -> None:
    base, cand = [3.0, 3.2, 2.9, 3.1, 3.05], [1.0, 1.1, 0.95, 1.02, 0.99]
    assert speedup(base, cand, seed=3) == speedup(base, cand, seed=3)


def test_noise_warnings_thresholds() -> None:
    assert noise_warnings("c", summarize([1.0, 1.01, 0.99, 1.0])) == []
    assert "noisy (CV" in noise_warnings("c", summarize([1.0, 1.08, 0.92, 1.0]))[0]
    assert "very noisy" in noise_warnings("c", summarize([1.0, 1.5, 0.6, 1.0]))[0]


def test_first_iteration_outlier() -> None:
    assert first_iteration_outlier([5.0, 1.0, 1.01, 0.99, 1.0, 1.02])
    assert not first_iteration_outlier([1.0, 1.0, 1.01, 0.99, 1.0, 1.02])
