"""A warm `sme2tui --auto` rerun of the quickstart: wall time, and which processes imported torch.

    python benchmarks/warm_rerun.py [--runs 7] [--repo PATH ...]

For each checkout given with --repo (default: this one), in a scratch folder: one cold run (exports the
programs and builds the native host runner there), then --runs warm reruns of the built-in quickstart
(`sme2tui --auto --output-root RUNS`), each in a fresh interpreter as a user would start it. Checkouts
alternate run by run, so machine load hits them alike. Every Python process the rerun starts (the CLI,
export/run workers) carries a `sitecustomize` spy on PYTHONPATH that records any import of torch; the
table says which processes did. Target (issue #14): median ≤ 2 s on a 2-core box, and no process imports
torch. The reruns still measure every cell (that is most of the time): only export work is cached.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPY = '''import os, sys
class _TorchSpy:
    """Records (pid, argv) of any process that imports torch; the import itself goes on normally."""
    def find_spec(self, name, path=None, target=None):
        # Only a real import (not importlib.util.find_spec, which reads versions without importing).
        caller = sys._getframe(2).f_code.co_name if name == "torch" else ""
        if caller == "_find_and_load_unlocked":
            with open(os.environ["SME2TUI_TORCH_MARKER"], "a") as handle:
                handle.write(f"{os.getpid()} {' '.join(sys.argv)[:200]}\\n")
        return None
sys.meta_path.insert(0, _TorchSpy())
'''


def install_spy(folder: Path) -> Path:
    """Write the spy as `sitecustomize.py` into `folder` (put it on PYTHONPATH); returns the marker path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SPY)
    return folder / "torch-imports.txt"


def rerun(repo: Path, work: Path, spy_dir: Path, marker: Path) -> tuple[float, int, list[str]]:
    marker.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{spy_dir}", "SME2TUI_TORCH_MARKER": str(marker)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sme2tui", "--auto", "--output-root", str(work / "runs")],
                          cwd=work, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    importers = marker.read_text().splitlines() if marker.is_file() else []
    return seconds, done.returncode, importers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repo", type=Path, action="append", help="checkout to measure (repeatable)")
    args = parser.parse_args()
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parents[1]])]
    scratch = Path(tempfile.mkdtemp(prefix="sme2tui-warm-"))
    try:
        setups = []
        for index, repo in enumerate(repos):
            work, spy_dir = scratch / f"repo{index}", scratch / f"spy{index}"
            work.mkdir()
            marker = install_spy(spy_dir)
            seconds, code, importers = rerun(repo, work, spy_dir, marker)
            print(f"{repo}: cold run {seconds:.2f} s (exit {code}; torch imported by {len(importers)} process(es))")
            if code != 0:
                print("  the cold run failed; warm numbers would mean nothing", file=sys.stderr)
                return 1
            setups.append((repo, work, spy_dir, marker, [], []))
        for _ in range(args.runs):
            for repo, work, spy_dir, marker, times, torch_runs in setups:
                seconds, code, importers = rerun(repo, work, spy_dir, marker)
                if code != 0:
                    print(f"{repo}: warm rerun exited {code}", file=sys.stderr)
                    return 1
                times.append(seconds)
                torch_runs.append(importers)
        print(f"\n{'checkout':<40} {'median s':>9} {'min s':>7} {'max s':>7}  torch imported in")
        for repo, _work, _spy, _marker, times, torch_runs in setups:
            with_torch = sum(1 for r in torch_runs if r)
            what = f"{with_torch}/{len(times)} reruns" + (f" (e.g. {torch_runs[0][0].split(' ', 1)[1][:60]})"
                                                          if with_torch and torch_runs[0] else "")
            print(f"{str(repo)[-40:]:<40} {statistics.median(times):>9.2f} {min(times):>7.2f} {max(times):>7.2f}  "
                  f"{what}")
        print(f"\n{args.runs} warm reruns each, alternating; target: median ≤ 2 s and torch in 0 reruns")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
