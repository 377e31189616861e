"""Startup cost of the commands people type most: `sme2tui --help`, `sme2tui doctor`, `sme2tui models`.

    python benchmarks/startup.py [--repeat 10]

Each command runs in a fresh interpreter (as a user would), `--repeat` times; prints median and min wall
time and the heavy modules (torch, executorch, textual) each one imported. Budget: doctor under 2 s, and
none of them imports torch or executorch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [["--help"], ["doctor", "--json"], ["models"], ["config", "schema"]]
PROBE = (
    "import sys; from sme2tui.cli import main\n"
    "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
    "print('HEAVY=' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'executorch', "
    "'textual'}})), file=sys.stderr)"
)


def measure(argv: list[str], repeat: int) -> tuple[list[float], str]:
    times, heavy = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                             check=False)
        times.append(time.perf_counter() - start)
        heavy = next((line[6:] for line in out.stderr.splitlines() if line.startswith("HEAVY=")), "?")
    return times, heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(f"{'command':<24} {'median s':>9} {'min s':>7}  heavy imports")
    worst = 0.0
    for argv in COMMANDS:
        times, heavy = measure(argv, args.repeat)
        worst = max(worst, statistics.median(times))
        label = "sme2tui " + " ".join(argv)
        print(f"{label:<24} {statistics.median(times):>9.3f} {min(times):>7.3f}  {heavy or 'none'}")
    print(f"slowest median {worst:.3f} s (budget: 2 s for doctor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
