"""Startup stays light (no torch/executorch for --help and doctor) and the core never imports Textual."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import sys
from sme2tui.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch', 'textual'))
print('HEAVY:' + ','.join(heavy))
"""


def _heavy_modules(argv: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    line = [x for x in out.stdout.splitlines() if x.startswith("HEAVY:")]
    assert line, out.stderr
    return line[-1].removeprefix("HEAVY:")


def test_help_imports_nothing_heavy() -> None:
    assert _heavy_modules(["--help"]) == ""


def test_doctor_imports_nothing_heavy() -> None:
    assert _heavy_modules(["doctor", "--json"]) == ""


def test_core_never_imports_textual() -> None:
    offenders = []
    for path in (REPO / "sme2tui").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "textual" or n.startswith("textual.") or n.startswith("textual_") for n in names):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
