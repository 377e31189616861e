"""Every built-in model family (quick size) × every dtype, exported for real and run on both the native host
runner and the ExecuTorch Python runtime: same program, same operators in the ETDump, comparable times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sme2tui.etdump import read_etdump
from tests.conftest import run_cli, tiny_config

pytestmark = pytest.mark.slow
MODELS = ["mobilenet_quick", "transformer_quick", "vit_quick"]
DTYPES = ["fp32", "fp16", "int8", "int8-dynamic"]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("matrix")
    config = tiny_config(
        name="matrix", models=[{"builtin": m} for m in MODELS], dtypes=DTYPES, warmup=1, iterations=4, rounds=1,
        variants=[{"name": "python", "delegate": "xnnpack", "runner": "python"},
                  {"name": "native", "delegate": "xnnpack", "runner": "native"}],
        compare={"baseline": "python", "candidate": "native"},
    )
    (root / "matrix.json").write_text(json.dumps(config))
    result = run_cli("--auto", "--json", "--config", root / "matrix.json", cwd=root, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    return {"out": out, "run_dir": Path(out["run_dir"])}


def _leaf_names(path: Path) -> list[str]:
    trace = read_etdump(path)
    return [e.name for e in trace.leaf_events(trace.iterations[-1])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", MODELS)
def test_native_runner_and_python_runtime_agree(matrix: dict[str, Any], model: str, dtype: str) -> None:
    run_dir: Path = matrix["run_dir"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    export = manifest["exports"][f"{model}__{dtype}__xnnpack"]
    assert export["numerics"]["status"] == "pass", export["numerics"]
    python_cell = run_dir / "cells" / f"{model}__{dtype}__python__t1"
    native_cell = run_dir / "cells" / f"{model}__{dtype}__native__t1"
    assert _leaf_names(python_cell / "etdump.etdp") == _leaf_names(native_cell / "etdump-r0.etdp")
    (pair,) = [p for p in matrix["out"]["pairs"] if p["model"] == model and p["dtype"] == dtype]
    # Same program on the same CPU: the two runtimes' Method::execute medians are the same order of magnitude.
    assert 0.33 < pair["speedup"]["value"] < 3.0, pair
