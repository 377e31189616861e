"""Bad input from the command line: our exit code, a what/where/fix message, no traceback, nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sme2tui.exit_codes import ExitCode
from tests.conftest import run_cli, tiny_config

CASES: dict[str, tuple[dict[str, object] | str, str]] = {
    "misspelled key": (tiny_config(iteratons=3), "did you mean `iterations`?"),
    "wrong type": (tiny_config(warmup="three"), "`warmup`"),
    "negative count": (tiny_config(iterations=-5), "`iterations`"),
    "unknown model": (tiny_config(models=[{"builtin": "mobilenet_quik"}]), "did you mean `mobilenet_quick`?"),
    "missing pte": ({"models": [{"pte": "nope.pte"}]}, "missing file: nope.pte"),
    "not json": ("{ models: [", "invalid JSON"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_errors_exit_2_without_traceback_or_output(case: str, write_config: Callable[..., Path],
                                                          tmp_path: Path) -> None:
    data, expected = CASES[case]
    config = write_config(data)
    out_root = tmp_path / "out"
    result = run_cli("--auto", "--config", config, "--output-root", out_root, cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert "fix:" in result.stderr and "where:" in result.stderr
    assert not out_root.exists(), "nothing may be written for a config error"


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("--auto", "--config", tmp_path / "nope.json", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert "config file not found" in result.stderr and "sme2tui init" in result.stderr


def test_unknown_flag_is_a_usage_error() -> None:
    result = run_cli("--atuo")
    assert result.returncode == ExitCode.CONFIG
    assert "Traceback" not in result.stderr and "sme2tui --help" in result.stderr


def test_json_mode_reports_errors_on_stderr(write_config: Callable[..., Path], tmp_path: Path) -> None:
    result = run_cli("--auto", "--json", "--config", write_config(tiny_config(threads=[])), cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert "`threads`" in result.stderr


def test_config_validate_command(write_config: Callable[..., Path]) -> None:
    good = run_cli("config", "validate", write_config(tiny_config(), "good.json"))
    assert good.returncode == 0 and "valid" in good.stdout
    bad = run_cli("config", "validate", write_config(tiny_config(dtypes=["fp64"]), "bad.json"))
    assert bad.returncode == ExitCode.CONFIG and "dtypes[0]" in bad.stderr


def test_config_schema_command() -> None:
    result = run_cli("config", "schema")
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False and "models" in schema["properties"]


def test_resume_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("--auto", "--resume", tmp_path)
    assert result.returncode == ExitCode.CONFIG and "not a run folder" in result.stderr


def test_help_lists_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for code in ExitCode:
        assert f"{int(code):>3}  " in result.stdout
