"""Shared pieces of the realadb tests (tests/test_realadb*.py): `sme2tui --auto` against a real adb server
whose phones are adbd doubles. Kept out of conftest.py: other suites share tests/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.adb_double.real_server import ADB, INSTALL_HINT
from tests.conftest import run_cli, tiny_config

if TYPE_CHECKING:
    import subprocess

    from tests.adb_double.real_server import RealAdbLab

# Every realadb test: marked, and skipped (with how to install it) where `adb` is missing — except in CI
# (CI set, as .ci/run does), where a missing adb fails the tests instead: they must run there.
REALADB = [pytest.mark.realadb, pytest.mark.skipif(ADB is None and not os.environ.get("CI"), reason=INSTALL_HINT)]


def build_host_runner(root: Path) -> Path:
    """The host `sme2_runner`, standing in for the arm64 one (the doubles execute it; allow_foreign_runner)."""
    result = run_cli("build", "host", "--runners-dir", root)
    assert result.returncode == 0, result.stderr
    return root / "host-native" / "sme2_runner"


def phone_config(runner: Path, lab: RealAdbLab, serial: str | None, **target: Any) -> dict[str, Any]:
    return tiny_config(
        name="realadb", iterations=4, warmup=1, rounds=2,
        variants=[{"name": "portable", "delegate": "portable", "runner": str(runner)},
                  {"name": "xnnpack", "delegate": "xnnpack", "runner": str(runner)}],
        target={"kind": "android", "adb_server": lab.endpoint, "serial": serial, "allow_foreign_runner": True,
                "fixed_performance_mode": True, **target},
    )


def auto(config: dict[str, Any], tmp_path: Path, session_root: Path,
         *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    path = tmp_path / "phone.json"
    path.write_text(json.dumps(config))
    result = run_cli("--auto", "--json", "--config", path, "--output-root", session_root / "runs", *extra,
                     cwd=tmp_path)
    return result, json.loads(result.stdout) if result.stdout.strip() else {}


def manifest_of(out: dict[str, Any]) -> dict[str, Any]:
    return json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
