"""Each warning is listed once: the manifest records every warn checkpoint as `name: detail`, and the analysis
adds its own warnings in that same spelling (they were listed twice, bare and named, in summaries and reports)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sme2tui.analysis.stage import unique_warnings
from sme2tui.config import parse_config
from sme2tui.run.folder import RunFolder
from tests.conftest import REPO, run_cli


def test_a_warning_named_and_bare_is_listed_once_in_the_named_form() -> None:
    texts = ["cell a: noisy (CV 9%)", "measurement quality: cell a: noisy (CV 9%)", "other", "other",
             "pair builds: unverified"]
    assert unique_warnings(texts) == ["measurement quality: cell a: noisy (CV 9%)", "other",
                                      "pair builds: unverified"]


def test_a_repeated_warn_checkpoint_is_recorded_once(tmp_path: Path) -> None:
    config = parse_config(json.loads((REPO / "sme2tui" / "data" / "quickstart.json").read_text()))
    folder = RunFolder.create(config, output_root=tmp_path, config_source=None)
    record = {"step": "analyze", "name": "measurement quality", "status": "warn", "detail": "c: noisy"}
    folder.add_checkpoint(record)
    folder.add_checkpoint(dict(record))  # a resumed run checks again
    assert folder.manifest["warnings"] == ["measurement quality: c: noisy"]
    assert len(folder.manifest["checkpoints"]) == 2  # the checkpoints themselves are a log: both kept


def test_a_cell_warning_names_its_cell_once(tmp_path: Path) -> None:
    """The checkpoint row names the cell (its subject) and says what is wrong; the run's warnings list, which
    has no rows, says whose: `name: cell: detail` — never the cell twice, never no cell."""
    config = parse_config(json.loads((REPO / "sme2tui" / "data" / "quickstart.json").read_text()))
    folder = RunFolder.create(config, output_root=tmp_path, config_source=None)
    folder.add_checkpoint({"step": "analyze", "name": "measurement quality", "status": "warn",
                           "detail": "noisy (CV 9%)", "subject": "m__fp32__xnnpack__t1"})
    folder.add_checkpoint({"step": "analyze", "name": "operator time resolution", "status": "warn",
                           "detail": "m__fp32__portable__t1: 3 operators under 1 µs",
                           "subject": "m__fp32__portable__t1"})
    assert folder.manifest["warnings"] == [
        "measurement quality: m__fp32__xnnpack__t1: noisy (CV 9%)",
        "operator time resolution: m__fp32__portable__t1: 3 operators under 1 µs"]


def test_reanalysis_of_the_reference_run_lists_each_warning_once(tmp_path: Path) -> None:
    # The committed reference run's manifest (written before the fix) holds every noise warning twice.
    run = tmp_path / "reference"
    shutil.copytree(REPO / "runs" / "reference", run)
    done = run_cli("analyze", "--json", run)
    assert done.returncode in (0, 8), done.stderr
    warnings = json.loads((run / "analysis" / "summary.json").read_text())["warnings"]
    assert warnings, "the reference run is noisy: its analysis warns"
    for text in warnings:
        assert not any(other != text and other.endswith(": " + text) for other in warnings), warnings
    assert len(set(warnings)) == len(warnings)
