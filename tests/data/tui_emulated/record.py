"""Make this fixture from a real emulated run folder (the Analyze evidence panel and the Run step's replay use it).

    sme2tui setup emulator
    sme2tui --auto --config configs/examples/emulated_sme2.json --output-root /tmp/emu
    python tests/data/tui_emulated/record.py /tmp/emu/<run folder>

Keeps what the wizard reads (manifest, config, analysis/summary.json, logs/events.jsonl), with the paths of the
machine it ran on made relative (`runs/…`, `~/.cache/…`, `.`), each cell's operator list cut to its slowest
twelve and the summary's copy in the events left out: the fixture stays small, and no absolute path or hostname
reaches a snapshot.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
KEEP = ("manifest.json", "config.json", "analysis/summary.json", "logs/events.jsonl")
OPERATORS = 12


def scrub(text: str, run_dir: Path) -> str:
    replacements = {str(run_dir.parent): "runs", str(Path.home() / ".cache"): "~/.cache", str(REPO): ".",
                    os.environ.get("VIRTUAL_ENV", sys.prefix): ".venv", os.uname().nodename: "host"}
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return text


def trim(summary: dict[str, Any]) -> dict[str, Any]:
    for cell in summary.get("cells", {}).values():
        ops = sorted(cell.get("operators", []), key=lambda o: -float(o.get("median_ms", 0.0)))
        cell["operators"] = ops[:OPERATORS]
    return summary


def slim_events(text: str) -> str:
    """The analysis summary again inside the analyze step's StepFinished: the file has it already."""
    lines = []
    for line in text.splitlines():
        event = json.loads(line)
        if event.get("type") == "StepFinished" and event.get("step") == "analyze":
            event["data"] = {}
        lines.append(json.dumps(event, sort_keys=True))
    return "\n".join(lines) + "\n"


def main(run_dir: Path) -> None:
    run_dir = run_dir.resolve()
    for old in HERE.glob("2*"):
        for path in sorted(old.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        old.rmdir()
    out = HERE / run_dir.name
    for name in KEEP:
        text = scrub((run_dir / name).read_text(), run_dir)
        if name == "analysis/summary.json":
            text = json.dumps(trim(json.loads(text)), indent=1) + "\n"
        elif name == "logs/events.jsonl":
            text = slim_events(text)
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
