"""The export cache: where an exported program lives, and how to find it again without importing torch.

A cache entry is a folder `<cache_root>/<key[:20]>/` holding `model.pte`, `model.etrecord`, the inputs, the
reference outputs and `export.json` (the record). It is keyed on what the program *is*, never on the name
the config gives the model, so a renamed model finds its program again.

Two kinds of key:
- **Recipe key** (built-in models, computed here, torch-free): a built-in model is a pure function of its
  definition (family and parameters), the seed, the source of `sme2tui/models/builtin.py` and torch; the
  program is a function of that model, the dtype, the delegate, the calibration sample count, the export
  recipe (the source of the export worker and its record format) and the torch / ExecuTorch / torchao
  versions (with git commits). All of those are hashed here, so an unchanged built-in is found without a
  worker, and any change to any of them gives a new key: it cannot serve a stale program.
- **Content key** (factories, computed by the worker after building the model): a factory is arbitrary
  code — it may read weights from disk, download them, or depend on modules anywhere — so no key computed
  without running it can promise freshness. The worker imports torch, calls the factory and hashes the
  weights, the example inputs, the factory's identity and the user source files it loaded.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from sme2tui.config import ModelSpec
from sme2tui.export.results import RECIPE_VERSION, ExportRecord
from sme2tui.fileio import sha256_file
from sme2tui.models.registry import builtin_model
from sme2tui.versions import package_version

_PACKAGE = Path(__file__).resolve().parents[1]
# The files whose code decides what a built-in's program is (the model code and the export recipe).
RECIPE_FILES = ("models/builtin.py", "export/worker.py", "export/results.py")


@lru_cache(maxsize=1)
def toolchain() -> dict[str, Any]:
    """Versions (and git commits) of what builds and checks the program, read without importing them."""
    found: dict[str, Any] = {"python": "{}.{}".format(*sys.version_info[:2])}
    for name in ("torch", "executorch", "torchao"):
        version = package_version(name)
        found[name] = [version.version, version.git_commit]
    found["sources"] = {name: sha256_file(_PACKAGE / name) for name in RECIPE_FILES}
    return found


def builtin_cache_key(model: ModelSpec, dtype: str, delegate: str, seed: int) -> str:
    """The recipe key of a built-in model's program (see the module docstring for why it is complete)."""
    assert model.builtin is not None
    meta = builtin_model(model.builtin)
    identity = {"kind": "builtin", "family": meta.family, "params": meta.params, "seed": seed, "dtype": dtype,
                "delegate": delegate, "calibration_samples": model.calibration_samples,
                "recipe": RECIPE_VERSION, "toolchain": toolchain()}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def entry_folder(cache_root: Path, key: str) -> Path:
    return cache_root / key[:20]


def cached_entry(cache_root: Path, key: str, *, want_numerics: bool) -> tuple[Path, ExportRecord] | None:
    """The complete, intact cache entry for `key`, or None.

    Intact: the record parses, names this key, and the program's sha256 matches it. An entry exported with
    numerics validation off does not serve a run that wants the check (it is redone, with the check).
    """
    folder = entry_folder(cache_root, key)
    try:
        record = ExportRecord.model_validate_json((folder / "export.json").read_text(encoding="utf-8"))
        if record.key != key or sha256_file(folder / record.pte) != record.pte_sha256:
            return None
    except (OSError, ValueError):
        return None
    if want_numerics and record.numerics.status == "skip":
        return None
    return folder, record
