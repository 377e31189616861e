"""Native cells report measured executions while a round runs (sme2_runner --progress), not once per round; a
runner that does not know the flag (built before it, or not ours) runs without it. Stand-in runner scripts
print sme2_runner's progress lines with pauses; the real runner's output is tested in test_runner_host.py.
About 3 s."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sme2tui.config import parse_config
from sme2tui.events import CellStatus, Event
from sme2tui.run.cells import plan_cells
from sme2tui.run.commands import last_progress
from sme2tui.run.folder import RunFolder
from sme2tui.run.native import run_native_group, supports_progress

REPO = Path(__file__).resolve().parent.parent
READY_PTE = REPO / "tests" / "data" / "pte" / "fp32_xnnpack.pte"

# A stand-in sme2_runner: `knows_progress` decides whether its --help names the flag and whether it accepts it
# (an older runner refuses unknown flags with exit 2, like the real one did).
FAKE = """\
#!{python}
import json, sys, time
from pathlib import Path
KNOWS = {knows!r}
if "--help" in sys.argv:
    print("usage: sme2_runner --model_path=PATH [--timing_json=PATH]" + (" [--progress]" if KNOWS else ""))
    sys.exit(0)
flags = [a for a in sys.argv[1:] if a.startswith("--")]
if "--progress" in flags and not KNOWS:
    print("sme2_runner: error: unknown flag --progress", file=sys.stderr)
    sys.exit(2)
args = dict(a[2:].split("=", 1) for a in flags if "=" in a)
n, w = int(args["num_executions"]), int(args["warmup"])
for i in range(n):
    time.sleep(0.12)
    if "--progress" in flags:
        print(f"sme2_runner: progress measured={{i + 1}}/{{n}}", flush=True)
Path(args["timing_json"]).write_text(json.dumps({{"warmup_ns": [1000] * w, "measured_ns": [2000] * n}}))
"""


def fake_runner(tmp: Path, knows_progress: bool) -> Path:
    path = tmp / f"sme2_runner_{'new' if knows_progress else 'old'}"
    path.write_text(FAKE.format(python=sys.executable, knows=knows_progress))
    path.chmod(0o755)
    return path


def run_group(tmp: Path, runner: Path) -> tuple[list[CellStatus], dict[str, Any]]:
    """One cell, 8 iterations in 2 rounds, on `runner`: its status events and its timing record."""
    config = parse_config({"name": "progress", "models": [{"pte": str(READY_PTE)}],
                           "variants": [{"name": "fake", "runner": str(runner)}], "warmup": 1, "iterations": 8,
                           "rounds": 2, "profile": False, "target": {"kind": "host", "timeout_s": 30}})
    folder = RunFolder.create(config, output_root=tmp / "runs", config_source=None)
    (cell,) = plan_cells(config)
    events: list[Event] = []
    group = run_native_group(config, folder, [cell], {cell.id: runner}, {cell.id: READY_PTE}, {cell.id: None},
                             cancel=None)
    while True:
        try:
            events.append(next(group))
        except StopIteration as stop:
            assert stop.value == 0, events
            break
    record = json.loads((folder.cell_dir(cell) / "timing.json").read_text())
    return [e for e in events if isinstance(e, CellStatus)], record


def test_last_progress_reads_well_formed_counts_only() -> None:
    assert last_progress(b"x\nsme2_runner: progress measured=3/9\nsme2_runner: progress measured=4/9\n") == 4
    assert last_progress(b"Model executed successfully\n") is None
    assert last_progress(b"sme2_runner: progress measured=/9\n") is None
    assert last_progress(b"sme2_runner: progress measured=12/9\n") is None  # more than asked: a lie, not progress


def test_counts_move_within_a_round(tmp_path: Path) -> None:
    runner = fake_runner(tmp_path, knows_progress=True)
    assert supports_progress(runner)
    statuses, record = run_group(tmp_path, runner)
    assert all("--progress" in r["command"] for r in record["rounds"])
    counts = [s.iterations_done for s in statuses if s.state == "running"]
    # Rounds end at 4 and 8; counts in between arrived while a round ran, and never went back.
    assert {1, 2, 3} & set(counts) and {5, 6, 7} & set(counts), counts
    assert counts == sorted(counts) and statuses[-1].state == "done" and statuses[-1].iterations_done == 8
    live = [s.detail for s in statuses if s.state == "running" and s.iterations_done in (1, 2, 3)]
    assert all(d.startswith("round 1/2") for d in live), live


def test_a_runner_without_the_flag_runs_as_before(tmp_path: Path) -> None:
    runner = fake_runner(tmp_path, knows_progress=False)
    assert not supports_progress(runner)
    statuses, record = run_group(tmp_path, runner)
    assert not any("--progress" in r["command"] for r in record["rounds"])
    counts = [s.iterations_done for s in statuses]
    assert set(counts) <= {0, 4, 8} and statuses[-1].state == "done", counts


def test_support_is_asked_again_after_a_rebuild_in_place(tmp_path: Path) -> None:
    old = fake_runner(tmp_path, knows_progress=False)
    assert not supports_progress(old)
    assert not supports_progress(tmp_path / "missing" / "sme2_runner")
    # Rebuilt at the same path (new contents: size and mtime change): asked again, not answered from memory.
    old.write_text(FAKE.format(python=sys.executable, knows=True) + "# rebuilt\n")
    assert supports_progress(old)
