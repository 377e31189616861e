"""How long the export worker takes to exit after its last event (issue #14: it used to take ~1 s).

    python benchmarks/export_worker_exit.py [--runs 3] [--repo PATH ...]

Each checkout's worker (`python -m sme2tui.export.worker JOB`) gets the same job, the docs' example factory,
--runs times with an empty cache (it exports) and --runs times with the program cached, alternating between
checkouts. The
time measured is from the last event line on the worker's stdout to the end of the process: what the
pipeline waits for after the worker has said everything. (The worker itself still imports torch to get
there — factories are keyed on their content; warm `--auto` reruns of built-ins no longer start it at all, see
benchmarks/warm_rerun.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "my_model.py"


def job_for(folder: Path) -> dict[str, object]:
    """The job the pipeline sends for the docs' example factory, XNNPACK-delegated (factories always start the
    worker; XNNPACK is what makes the interpreter's teardown slow)."""
    shutil.copy(EXAMPLE, folder / "my_model.py")
    item = {"subject": "tiny/fp32/xnnpack", "model_id": "tiny",
            "model": {"factory": "my_model:build", "calibration_samples": 8}, "dtype": "fp32",
            "delegate": "xnnpack", "seed": 0, "validate": True, "config_dir": str(folder)}
    return {"cache_root": str(folder / "cache"), "items": [item]}


def exit_delay(repo: Path, job_path: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    # cwd: the job's folder, never a checkout (`-m` puts the cwd first on sys.path: it would pick that sme2tui)
    proc = subprocess.Popen([sys.executable, "-m", "sme2tui.export.worker", str(job_path)], env=env,
                            cwd=job_path.parent, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    last = time.perf_counter()
    for _line in proc.stdout:
        last = time.perf_counter()
    proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"{repo}: the worker exited {proc.returncode}")
    return time.perf_counter() - last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo", type=Path, action="append", help="checkout to measure (repeatable)")
    args = parser.parse_args()
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parents[1]])]
    scratch = Path(tempfile.mkdtemp(prefix="sme2tui-exit-"))
    try:
        jobs = []
        for index, repo in enumerate(repos):
            folder = scratch / f"repo{index}"
            folder.mkdir()
            job_path = folder / "job.json"
            job_path.write_text(json.dumps(job_for(folder)))
            jobs.append((repo, folder, job_path, {"after an export": [], "after a cache hit": []}))
        for _ in range(args.runs):
            for repo, folder, job_path, delays in jobs:
                shutil.rmtree(folder / "cache", ignore_errors=True)
                delays["after an export"].append(exit_delay(repo, job_path))
                delays["after a cache hit"].append(exit_delay(repo, job_path))
        print(f"{'checkout':<34} {'case':<18} {'median s':>9} {'min s':>7} {'max s':>7}   (last event → exit)")
        for repo, _folder, _job, delays in jobs:
            for case, values in delays.items():
                print(f"{str(repo)[-34:]:<34} {case:<18} {statistics.median(values):>9.3f} {min(values):>7.3f} "
                      f"{max(values):>7.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
