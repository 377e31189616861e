"""The numerics checkpoint catches a real ExecuTorch defect: fp16 portable LayerNorm at dim 256."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sme2tui.exit_codes import ExitCode
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

FACTORY = '''
import torch

class Norm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(256, 256)
        self.norm = torch.nn.LayerNorm(256)

    def forward(self, x):
        return self.norm(self.fc(x))

def build():
    torch.manual_seed(0)
    return Norm().eval(), (torch.randn(1, 8, 256),)
'''


def test_fp16_layer_norm_defect_fails_the_check(tmp_path: Path, session_root: Path) -> None:
    (tmp_path / "ln_model.py").write_text(FACTORY)
    config = tmp_path / "ln.json"
    config.write_text(json.dumps({
        "name": "ln", "models": [{"name": "ln256", "factory": "ln_model:build"}], "dtypes": ["fp32", "fp16"],
        "variants": [{"name": "xnnpack"}],
    }))
    result = run_cli("export", "--json", "--config", config, "--output-root", session_root / "runs", cwd=tmp_path)
    assert result.returncode == ExitCode.CHECKPOINT, result.stderr
    programs = {p["dtype"]: p for p in json.loads(result.stdout)["programs"]}
    assert programs["fp32"]["numerics"]["status"] == "pass"
    fp16 = programs["fp16"]["numerics"]
    assert fp16["status"] == "fail" and fp16["cosine_min"] < 0.9
    assert "native_layer_norm" in fp16["fix"]
    assert "✗ numerics vs eager [ln256/fp16/xnnpack]" in result.stderr


def test_factory_that_cannot_be_imported(tmp_path: Path, session_root: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"models": [{"factory": "no_such_module:build"}], "variants": [{"name": "x"}]}))
    result = run_cli("export", "--config", config, "--output-root", session_root / "runs", cwd=tmp_path)
    assert result.returncode == ExitCode.EXPORT
    assert "cannot import `no_such_module`" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("body", "said"), [
    ("sys.exit(0)", "called sys.exit(0) instead of returning a model"),
    ("sys.exit(3)", "called sys.exit(3) instead of returning a model"),
    ("os._exit(0)", "the export worker ended before finishing it, without an error"),
])
def test_a_factory_that_exits_is_named_with_why(body: str, said: str, tmp_path: Path, session_root: Path) -> None:
    """A factory ending its process never reads as a crash of ExecuTorch, nor as a silent "1 failed"."""
    (tmp_path / "quitter.py").write_text(f"import os, sys\n\ndef build():\n    {body}\n")
    config = tmp_path / "quit.json"
    config.write_text(json.dumps({"models": [{"factory": "quitter:build"}], "variants": [{"name": "x"}]}))
    result = run_cli("export", "--config", config, "--output-root", session_root / "runs", cwd=tmp_path)
    assert result.returncode == ExitCode.EXPORT, result.stderr
    assert said in result.stderr and "✗ export [quitter/fp32/xnnpack]" in result.stderr
    assert "Traceback" not in result.stderr and "upstream" not in result.stderr


def test_nan_from_the_inputs_is_not_blamed_on_the_exported_program(tmp_path: Path, session_root: Path) -> None:
    """NaN example inputs make the eager model's outputs NaN too: the check says so, instead of a cosine of
    -1.000000 with max |error| 0 and a fix that blames the export."""
    (tmp_path / "nanny.py").write_text(
        "import torch\n\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n\n"
        "def build():\n    return M(), (torch.full((2,), float('nan')),)\n")
    config = tmp_path / "nan.json"
    config.write_text(json.dumps({"models": [{"factory": "nanny:build"}], "variants": [{"name": "portable",
                                                                                       "delegate": "portable"}]}))
    result = run_cli("export", "--config", config, "--output-root", session_root / "runs", cwd=tmp_path)
    assert result.returncode == ExitCode.CHECKPOINT, result.stderr  # as any failed numerics check
    assert "the eager model itself outputs NaN or infinity" in result.stderr and "portable kernels here" not in \
        result.stderr
    assert "-1.000000" not in result.stderr and "Traceback" not in result.stderr
