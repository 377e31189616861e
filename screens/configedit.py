"""Pure functions that edit the config dict the wizard holds (no Textual, no pydantic): the Model
screen and `sme2tui init` share them, and tests call them directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sme2tui.models import BUILTIN_MODELS

TEMPLATES = Path(__file__).resolve().parent.parent / "configs" / "templates"
QUICKSTART = Path(__file__).resolve().parent.parent / "sme2tui" / "data" / "quickstart.json"
DTYPES = ["fp32", "fp16", "int8", "int8-dynamic"]


def model_key(spec: dict[str, Any]) -> str:
    """A stable key for a model entry: its builtin id, factory or pte (what the user would recognise)."""
    for field in ("builtin", "factory", "pte"):
        if spec.get(field):
            return f"{field}:{spec[field]}"
    return json.dumps(spec, sort_keys=True)


def model_label(spec: dict[str, Any]) -> str:
    if spec.get("builtin"):
        return str(spec["builtin"])  # ids already say the size ("…_quick" or the full model)
    if spec.get("factory"):
        return f"yours: {spec['factory']}"
    return f"yours: {Path(str(spec.get('pte'))).name}"


def model_choices(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every built-in model, then the config's own (factory / pte) models."""
    choices: list[dict[str, Any]] = [{"builtin": model_id} for model_id in BUILTIN_MODELS]
    known = {model_key(c) for c in choices}
    for spec in config.get("models", []):
        if model_key(spec) not in known:
            choices.append(dict(spec))
            known.add(model_key(spec))
    return choices


def known_variants(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config's variants first, then the ones the quickstart and templates define (by name)."""
    found: dict[str, dict[str, Any]] = {}
    sources: list[dict[str, Any]] = [config]
    for path in [QUICKSTART, *sorted(TEMPLATES.glob("*.json"))]:
        try:
            sources.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    for source in sources:
        for variant in source.get("variants", []):
            found.setdefault(str(variant.get("name")), dict(variant))
    return list(found.values())


def with_selection(config: dict[str, Any], *, models: list[dict[str, Any]] | None = None,
                   dtypes: list[str] | None = None, variants: list[dict[str, Any]] | None = None,
                   warmup: int | None = None, iterations: int | None = None) -> dict[str, Any]:
    """A new config dict with the given parts replaced; `compare` is dropped if it names a missing variant."""
    data = dict(config)
    if models is not None:
        data["models"] = models
    if dtypes is not None:
        data["dtypes"] = dtypes
    if variants is not None:
        data["variants"] = variants
        names = {v.get("name") for v in variants}
        compare = data.get("compare")
        if isinstance(compare, dict) and not {compare.get("baseline"), compare.get("candidate")} <= names:
            data.pop("compare")
    if warmup is not None:
        data["warmup"] = warmup
    if iterations is not None:
        data["iterations"] = iterations
    return data
