"""The speedup headline says when a side is noisy (not only the warnings list): a tight bootstrap interval can sit
on noisy iterations, and a reader of the one-line answer must see it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sme2tui.report.console import human_summary
from sme2tui.report.markdown import headline, noise_note

REFERENCE = Path(__file__).resolve().parent.parent / "runs" / "reference" / "analysis" / "summary.json"


def _summary_with_cv(portable: float, xnnpack: float) -> dict[str, Any]:
    summary = json.loads(REFERENCE.read_text())
    for cell_id, cv in (("mobilenet_quick__fp32__portable__t1", portable), ("mobilenet_quick__fp32__xnnpack__t1",
                                                                                xnnpack)):
        summary["cells"][cell_id]["latency"]["cv"] = cv
    return summary


def test_noisy_sides_are_named_in_the_headline() -> None:
    summary = _summary_with_cv(0.23, 0.07)
    pair = summary["pairs"][0]
    assert noise_note(pair, summary["cells"]) == "portable very noisy (CV 23%), xnnpack noisy (CV 7%)"
    assert headline(pair, summary["comparison"], summary["cells"]).endswith(
        "— portable very noisy (CV 23%), xnnpack noisy (CV 7%)")
    assert "xnnpack noisy (CV 7%)" in human_summary(summary, "runs/x", "runs/x/analysis/report.md")


def test_a_quiet_pair_has_no_noise_note() -> None:
    summary = _summary_with_cv(0.01, 0.049)
    pair = summary["pairs"][0]
    assert noise_note(pair, summary["cells"]) == ""
    assert "noisy" not in headline(pair, summary["comparison"], summary["cells"])
    assert noise_note(pair, None) == ""  # no cells (e.g. a compare of two runs): nothing is claimed
