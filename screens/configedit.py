"""Pure functions that edit the config dict the wizard holds (no Textual, no pydantic): the Model
screen and `sme2tui init` share them, and tests call them directly."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from sme2tui.models import BUILTIN_MODELS

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "configs" / "templates"
QUICKSTART = REPO / "sme2tui" / "data" / "quickstart.json"
SCHEMA = REPO / "configs" / "schema.json"  # in a source checkout; `sme2tui config schema` prints it anywhere
DTYPES = ["fp32", "fp16", "int8", "int8-dynamic"]
MAX_NAME = 48  # a run's name ends its folder name: keep folders readable


def model_key(spec: dict[str, Any]) -> str:
    """A stable key for a model entry: its builtin id, factory or pte (what the user would recognise)."""
    for field in ("builtin", "factory", "pte"):
        if spec.get(field):
            return f"{field}:{spec[field]}"
    return json.dumps(spec, sort_keys=True)


def model_id(spec: dict[str, Any]) -> str:
    """The id the core gives this model (cells and results use it), or its key while it is not valid."""
    from pydantic import ValidationError

    from sme2tui.config import ModelSpec

    try:
        return ModelSpec.model_validate(spec).id
    except ValidationError:
        return model_key(spec)


def model_label(spec: dict[str, Any], program: str = "") -> str:
    """What the model list shows: the id cells and results will use (ids are unique, so two rows never
    read the same), and where your own models come from; a ready program with its own dtype and delegation
    (`program`, read from the file), since the dtype picker does not apply to it."""
    if spec.get("builtin"):
        return str(spec["builtin"])  # ids already say the size ("…_quick" or the full model)
    if spec.get("factory"):
        return f"{model_id(spec)} (yours)"
    return f"{model_id(spec)} (.pte{' ' + program if program else ''})"


def model_choices(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every built-in model, then the config's own (factory / pte) models."""
    choices: list[dict[str, Any]] = [{"builtin": model_id} for model_id in BUILTIN_MODELS]
    known = {model_key(c) for c in choices}
    for spec in config.get("models", []):
        if model_key(spec) not in known:
            choices.append(dict(spec))
            known.add(model_key(spec))
    return choices


# The emulated target's pair, as configs/examples/emulated_sme2.json has it (a test keeps the two equal): one
# aarch64 runner under QEMU, the CPUs differing only in SME. Emulated rounds are slow, so its run is short;
# two rounds, because the second counts how often the SME2 kernels found in the first executed.
EMULATED_VARIANTS: list[dict[str, Any]] = [
    {"name": "sme2-off", "label": "SME2 off (emulated, -cpu max,sme=off)", "sme2": "off", "runner": "arm64"},
    {"name": "sme2-on", "label": "SME2 on (emulated, -cpu max)", "sme2": "on", "runner": "arm64"},
]
EMULATED_COMPARE = {"baseline": "sme2-off", "candidate": "sme2-on"}
EMULATED_RUN = {"warmup": 1, "iterations": 4, "rounds": 2}
# A ready .pte's own variant: its delegation is baked in, so a delegate pair cannot apply to it.
AS_EXPORTED: dict[str, Any] = {"name": "as-exported", "label": "program as exported", "delegate": "as-exported"}
# What a target brings with it, switched together (and remembered per target while the wizard runs).
TARGET_SETTINGS = ("target", "variants", "compare", "warmup", "iterations", "rounds")
TARGETS = ("host", "emulated")  # the wizard switches between these; android comes from a config


def target_kind(config: dict[str, Any]) -> str:
    target = config.get("target")
    return str(target.get("kind", "host")) if isinstance(target, dict) else "host"


def known_variants(config: dict[str, Any], *, ready: bool = False) -> list[dict[str, Any]]:
    """The variants the config's target can run: the config's own first, then, for the emulated target, the
    SME2 pair under QEMU; for the others the ones the quickstart and templates define (by name), and with
    `ready` (a ready .pte among the models) the program's own variant."""
    found: dict[str, dict[str, Any]] = {}
    sources: list[dict[str, Any]] = [config]
    if target_kind(config) == "emulated":
        sources.append({"variants": EMULATED_VARIANTS})
    else:
        for path in [QUICKSTART, *sorted(TEMPLATES.glob("*.json"))]:
            try:
                sources.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        if ready:
            sources.append({"variants": [AS_EXPORTED]})
    for source in sources:
        for variant in source.get("variants", []):
            found.setdefault(str(variant.get("name")), dict(variant))
    return list(found.values())


def host_pair_variants(config: dict[str, Any], host_os: str) -> list[str]:
    """The chosen variants the host target cannot run on this OS: a named pair runner (`sme2-on`, …) is built
    for the host only on macOS (`sme2tui build macos`); elsewhere the run would stop at its runner check."""
    from sme2tui.config import runner_is_path

    if target_kind(config) != "host" or host_os == "Darwin":
        return []
    return [str(v.get("name")) for v in config.get("variants", [])
            if (runner := str(v.get("runner", "auto"))) not in ("auto", "native", "python")
            and not runner_is_path(runner)]


def next_target(config: dict[str, Any], saved: dict[str, dict[str, Any]]) -> str:
    """The target `t` switches to: host ⇄ emulated, and android when the config came with it."""
    cycle = [*TARGETS, *(["android"] if "android" in saved or target_kind(config) == "android" else [])]
    current = target_kind(config)
    return cycle[(cycle.index(current) + 1) % len(cycle)] if current in cycle else cycle[0]


def switch_target(config: dict[str, Any], kind: str, saved: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The config on target `kind`: with the settings it last had there (`saved`, updated with the current
    target's), else the target's defaults — emulated: the SME2 on/off pair under QEMU and a short run; host: the
    quickstart's variants and numbers. Models and dtypes stay."""
    saved[target_kind(config)] = {k: config[k] for k in TARGET_SETTINGS if k in config}
    data = {k: v for k, v in config.items() if k not in TARGET_SETTINGS}
    if kind in saved:
        data.update(saved[kind])
    elif kind == "emulated":
        data.update(target={"kind": "emulated"}, variants=[dict(v) for v in EMULATED_VARIANTS],
                    compare=dict(EMULATED_COMPARE), **EMULATED_RUN)
    else:
        quickstart = json.loads(QUICKSTART.read_text())
        data.update({k: quickstart[k] for k in TARGET_SETTINGS if k in quickstart})
    return data


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


def _name_part(text: str) -> str:
    """A piece of a run name that the config's name rule accepts (single separators, no edges)."""
    return re.sub(r"[._-]{2,}", "-", re.sub(r"[^a-z0-9._-]+", "-", text.lower())).strip("._-")


def named_after_selection(config: dict[str, Any]) -> dict[str, Any]:
    """The config named after what it measures: `vit_quick-fp16`, `mobilenet_quick-vit_quick-and-1-more`,
    with a description that says what was chosen (run folders and reports carry both)."""
    ids = [model_id(m) for m in config.get("models", [])]
    dtypes = list(config.get("dtypes", []))
    variants = [str(v.get("name")) for v in config.get("variants", [])]
    emulated = target_kind(config) == "emulated"
    parts = ids[:2] + ([f"and-{len(ids) - 2}-more"] if len(ids) > 2 else []) + (dtypes if len(dtypes) <= 2 else [])
    # The target ends the name: `…-emulated` runs are evidence, not speed, and must not read like host runs.
    suffix = "-emulated" if emulated else ""
    name = (_name_part("-".join(parts))[:MAX_NAME - len(suffix)].strip("._-") or "run") + suffix
    chosen = ", ".join(ids) or "no model"
    description = (f"Chosen in the sme2tui wizard: {chosen}{' × ' + ', '.join(dtypes) if dtypes else ''} × "
                   f"{' vs '.join(variants)}" + (" on the emulated Arm CPU (QEMU): evidence, not speed." if emulated
                                                 else "."))
    return {**config, "name": name, "description": description}


def schema_reference(saved_to: Path) -> str | None:
    """`$schema` for a config saved at `saved_to`: the schema file relative to that file's folder (editors
    resolve it from there), or None when this installation has no schema file to point at."""
    if not SCHEMA.is_file():
        return None
    return Path(os.path.relpath(SCHEMA, saved_to.absolute().parent)).as_posix()


def config_for_file(config: dict[str, Any], saved_to: Path, config_dir: Path | None) -> dict[str, Any]:
    """The config as it must read from its new place: `$schema` and the paths of ready programs relative to
    the saved file (a relative path in a config means relative to the config's own folder)."""
    base = (config_dir or Path.cwd()).absolute()
    folder = saved_to.absolute().parent
    models = []
    for spec in config.get("models", []):
        spec = dict(spec)
        for key in ("pte", "etrecord"):
            if spec.get(key):
                target = Path(os.path.normpath(base / Path(str(spec[key])).expanduser()))
                spec[key] = Path(os.path.relpath(target, folder)).as_posix()
        models.append(spec)
    data = {k: v for k, v in config.items() if k != "$schema"}
    reference = schema_reference(saved_to)
    head = {"$schema": reference} if reference else {}
    return {**head, **data, "models": models}
