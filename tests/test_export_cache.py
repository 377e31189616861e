"""The export cache keys on what a program is, not on the name the config gives it, and a warm rerun imports
no torch anywhere (issue #10 item 1, issue #14 item 3). Real exports, real runs; about 40 s.

Every Python process the runs start carries a `sitecustomize` spy (benchmarks/warm_rerun.py) that records
real imports of torch; the cold run is the positive control that the spy sees them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from sme2tui.exit_codes import ExitCode
from tests.conftest import REPO, run_cli, tiny_config

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("warm_rerun", REPO / "benchmarks" / "warm_rerun.py")
assert _spec is not None and _spec.loader is not None
warm_rerun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(warm_rerun)


class Workspace:
    """An isolated output root (so the cold run really exports) with the torch spy installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spy_dir = root / "spy"
        self.marker = warm_rerun.install_spy(self.spy_dir)

    def run(self, config: dict[str, Any], *args: str, name: str = "c.json") -> tuple[Any, list[str]]:
        path = self.root / name
        path.write_text(json.dumps(config))
        self.marker.unlink(missing_ok=True)
        result = run_cli(*args, "--config", path, "--output-root", self.root / "runs", cwd=self.root,
                         env={"PYTHONPATH": str(self.spy_dir), "SME2TUI_TORCH_MARKER": str(self.marker)})
        importers = self.marker.read_text().splitlines() if self.marker.is_file() else []
        return result, importers


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    space = Workspace(tmp_path_factory.mktemp("cache"))
    result, importers = space.run(tiny_config(), "--auto")
    assert result.returncode == 0, result.stderr
    assert any("export/worker.py" in line for line in importers), "the spy must see the export worker's torch"
    return space


def test_warm_rerun_imports_no_torch(workspace: Workspace) -> None:
    result, importers = workspace.run(tiny_config(), "--auto")
    assert result.returncode == 0, result.stderr
    assert importers == []
    assert result.stderr.count("unchanged since last export") == 2


def test_renamed_builtin_reuses_its_program(workspace: Workspace) -> None:
    renamed = tiny_config(models=[{"builtin": "mobilenet_quick", "name": "my-net"}])
    result, importers = workspace.run(renamed, "--auto", "--json")
    assert result.returncode == 0, result.stderr
    assert importers == [] and result.stderr.count("unchanged since last export") == 2
    out = json.loads(result.stdout)
    assert sorted(out["cells"]) == ["my-net__fp32__portable__t1", "my-net__fp32__xnnpack__t1"]
    manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    assert sorted(manifest["exports"]) == ["my-net__fp32__portable", "my-net__fp32__xnnpack"]


def test_another_seed_is_another_program(workspace: Workspace) -> None:
    result, _ = workspace.run(tiny_config(seed=7, dtypes=["fp32"], variants=[{"name": "x"}], compare=None),
                              "export", "--json")
    assert result.returncode == 0, result.stderr
    assert "unchanged since last export" not in result.stderr
    assert "done: 1 program ready" in result.stderr  # one program, said in the singular


FACTORIES = '''
import torch


class Relu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * 2


class Sigmoid(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * 2


def relu_model():
    return Relu().eval(), (torch.randn(1, 64, generator=torch.Generator().manual_seed(0)),)


def sigmoid_model():
    return Sigmoid().eval(), (torch.randn(1, 64, generator=torch.Generator().manual_seed(0)),)
'''


def test_factories_keyed_on_identity_not_name(workspace: Workspace) -> None:
    """Two weight-free factories in one file are two programs; a factory under a new name is the same one.
    (The content key includes the example input values, which calibrate static int8: the factories seed them.)"""
    (workspace.root / "my_factories.py").write_text(FACTORIES)
    config = {"models": [{"factory": "my_factories:relu_model", "name": "a"},
                         {"factory": "my_factories:sigmoid_model", "name": "b"}],
              "variants": [{"name": "x", "delegate": "portable"}], "validate_numerics": False}
    first, _ = workspace.run(config, "export", "--json")
    assert first.returncode == 0, first.stderr
    programs = {p["model"]: p["sha256"] for p in json.loads(first.stdout)["programs"]}
    assert programs["a"] != programs["b"]

    config["models"] = [{"factory": "my_factories:relu_model"}, {"factory": "my_factories:sigmoid_model",
                                                                  "name": "renamed"}]
    again, _ = workspace.run(config, "export", "--json")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("unchanged since last export") == 2
    reused = {p["model"]: p["sha256"] for p in json.loads(again.stdout)["programs"]}
    # Unnamed, a factory is called after its module and (not a generic "build") its function.
    assert reused == {"my_factories-relu_model": programs["a"], "renamed": programs["b"]}


def test_validated_run_does_not_take_an_unvalidated_program(workspace: Workspace) -> None:
    """A program cached with `validate_numerics: false` has no numerics check: it cannot serve a run that
    asks for one (it is exported again, with the check)."""
    config = tiny_config(dtypes=["fp16"], variants=[{"name": "x", "delegate": "portable"}], compare=None,
                         validate_numerics=False)
    first, _ = workspace.run(config, "export", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["programs"][0]["numerics"]["status"] == "skip"
    config["validate_numerics"] = True
    second, _ = workspace.run(config, "export", "--json")
    assert second.returncode in (0, ExitCode.CHECKPOINT), second.stderr
    assert json.loads(second.stdout)["programs"][0]["numerics"]["status"] in ("pass", "fail")
