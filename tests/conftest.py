"""Shared fixtures. Real exports are cached per test session under one output root, so each model/dtype is
exported once however many tests use it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# A harness that starts the suite in the background (`cmd &` in a script) hands it SIGINT ignored, and an ignored
# signal stays ignored across exec: every sme2tui the Ctrl-C tests start would shrug the signal off (they failed
# that way). A handler, unlike SIG_IGN, is reset to the default on exec, so the children get Ctrl-C back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sme2tui-runs")


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """The smallest real run: quick MobileNet, fp32, portable vs XNNPACK, few iterations."""
    config: dict[str, Any] = {
        "name": "tiny",
        "models": [{"builtin": "mobilenet_quick"}],
        "dtypes": ["fp32"],
        "variants": [
            {"name": "portable", "delegate": "portable"},
            {"name": "xnnpack", "delegate": "xnnpack"},
        ],
        "compare": {"baseline": "portable", "candidate": "xnnpack"},
        "threads": [1],
        "warmup": 2,
        "iterations": 6,
    }
    config.update(overrides)
    return config


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(data: dict[str, Any] | str, name: str = "config.json") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))
        return path

    return write


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`sme2tui ARGS` in a fresh interpreter, as a user would run it."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "sme2tui", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)
