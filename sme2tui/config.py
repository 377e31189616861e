"""The run configuration: what to measure. Pydantic v2 with `extra="forbid"` everywhere.

Loading never raises pydantic's own errors at users: `load_config` turns every problem into a
`ConfigError` that names the file, the field path, what is wrong, and a fix (with a did-you-mean for
misspelled keys).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sme2tui.errors import ConfigError
from sme2tui.models.registry import BUILTIN_MODELS

Dtype = Literal["fp32", "fp16", "int8", "int8-dynamic"]
Delegate = Literal["xnnpack", "portable"]
SLUG = r"^[a-z0-9][a-z0-9._-]*$"
SCHEMA_URL = "https://sme2tui.dev/schema/config-v1.json"  # id only; the file ships as configs/schema.json


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """One model: a built-in (`builtin`), your own factory (`factory`), or a ready `.pte` (`pte`)."""

    name: Annotated[str, Field(pattern=SLUG)] | None = Field(
        None, description="Short id used in cell names and reports (default: derived from the source)."
    )
    builtin: str | None = Field(None, description="Built-in model id, see `sme2tui models`.")
    factory: str | None = Field(
        None,
        description="`package.module:function`, called with no arguments, returning (model, example_inputs).",
    )
    pte: str | None = Field(None, description="Path to a ready .pte (exported elsewhere).")
    etrecord: str | None = Field(None, description="Optional ETRecord for a ready .pte.")
    calibration_samples: Annotated[int, Field(ge=1, le=256)] = 8

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ModelSpec:
        sources = [s for s in (self.builtin, self.factory, self.pte) if s]
        if len(sources) != 1:
            raise ValueError("give exactly one of `builtin`, `factory` or `pte`")
        if self.builtin and self.builtin not in BUILTIN_MODELS:
            guess = difflib.get_close_matches(self.builtin, list(BUILTIN_MODELS), n=1)
            hint = f"did you mean `{guess[0]}`? " if guess else ""
            raise ValueError(f"unknown built-in model `{self.builtin}`; {hint}built-in models: "
                             f"{', '.join(BUILTIN_MODELS)}")
        if self.etrecord and not self.pte:
            raise ValueError("`etrecord` only goes with `pte`")
        if self.factory and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.factory):
            raise ValueError("`factory` must look like `package.module:function`")
        return self

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        if self.builtin:
            return self.builtin
        if self.factory:
            return _slug(self.factory.split(":")[-1])
        return _slug(Path(self.pte or "model").stem)


class VariantSpec(_Strict):
    """How a cell is executed: the export's delegation and the runner that runs it.

    `sme2` is what the variant *claims*; it is checked against evidence and the CPU, never trusted blindly.
    """

    name: Annotated[str, Field(pattern=SLUG)]
    label: str = ""
    delegate: Delegate = "xnnpack"
    runner: str = Field(
        "auto",
        description="`auto` (native host runner if built, else the Python runtime), `python`, `native`, "
        "or the name of a built runner such as `sme2-on`/`sme2-off`; `arm64` (= `auto`) on the emulated target.",
    )
    sme2: Literal["on", "off"] | None = None
    cpu: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9,=._-]*$")] | None = Field(
        None, description="Emulated target only: the QEMU `-cpu` model. Default from `sme2`: on → `max`, off → "
        "`max,sme=off` (SME and SME2 removed together). E.g. `max` on QEMU 10.0.x for an SME-only variant.",
    )

    @property
    def display(self) -> str:
        return self.label or self.name


class CompareSpec(_Strict):
    baseline: str = Field(description="Variant name measured as the 'before' side (e.g. sme2-off).")
    candidate: str = Field(description="Variant name measured as the 'after' side (e.g. sme2-on).")


class HostTarget(_Strict):
    kind: Literal["host"] = "host"
    cpu_affinity: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Pin runs to these CPU ids (Linux). Default: no pinning."
    )


class AndroidTarget(_Strict):
    kind: Literal["android"] = "android"
    serial: str | None = Field(None, description="Device serial; default: $ANDROID_SERIAL or the only one.")
    serials: list[str] = Field(
        default_factory=list,
        description="Several devices, run in parallel (one cell at a time each): `SERIAL` on `adb_server`, "
        "or `SERIAL@HOST:PORT` on another ADB server (a remote device lab).",
    )
    connect: list[str] = Field(
        default_factory=list, description="`adb connect` these HOST:PORT endpoints first (network devices)."
    )
    adb_server: str | None = Field(
        None, description="ADB server HOST:PORT; default: $ADB_SERVER_SOCKET / $ANDROID_ADB_SERVER_PORT or "
        "127.0.0.1:5037."
    )
    allow_foreign_runner: bool = Field(
        False, description="Run a runner whose architecture does not match the device ABI. Only for protocol "
        "test doubles that execute host binaries; never useful on a real phone."
    )
    device_dir: str = "/data/local/tmp/sme2tui"
    cpu_mask: str | None = Field(None, description="taskset mask; default: the biggest cores from cpufreq.")
    cooldown_s: Annotated[float, Field(ge=0, le=600)] = 0.0
    fixed_performance_mode: bool = False
    cleanup: bool = False
    timeout_s: Annotated[float, Field(gt=0, le=7200)] = 600.0


class EmulatedTarget(_Strict):
    """The official aarch64 ExecuTorch runtime under QEMU user mode: real Arm code, emulated CPU, no device."""

    kind: Literal["emulated"] = "emulated"
    svl_bits: Literal[128, 256, 512, 1024, 2048] | None = Field(
        None, description="SME streaming vector length (`sme-default-vector-length`), e.g. 512 like Apple M4. "
        "Default: QEMU's (256 for `-cpu max`).",
    )
    evidence: bool = Field(True, description="Record which kernels ran (QEMU's translated-code log mapped to "
                           "ELF symbols) and execution counts of the SME/SME2 kernels, per cell.")
    timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 3600.0


class RunConfig(_Strict):
    """Everything one run measures: models x dtypes x variants x threads on one target."""

    schema_: str | None = Field(None, alias="$schema")
    name: Annotated[str, Field(pattern=SLUG)] = "run"
    description: str = ""
    models: Annotated[list[ModelSpec], Field(min_length=1)]
    dtypes: Annotated[list[Dtype], Field(min_length=1)] = ["fp32"]
    variants: Annotated[list[VariantSpec], Field(min_length=1)]
    compare: CompareSpec | None = None
    threads: Annotated[list[Annotated[int, Field(ge=1, le=256)]], Field(min_length=1)] = [1]
    warmup: Annotated[int, Field(ge=0, le=10_000)] = 3
    iterations: Annotated[int, Field(ge=1, le=100_000)] = 20
    rounds: Annotated[int, Field(ge=1, le=1000)] = Field(
        3,
        description="Process-level runners (native, Android) split the iterations into this many rounds and "
        "alternate the variants between rounds (A B, B A, …). The Python runtime interleaves every iteration "
        "in one process instead.",
    )
    profile: bool = Field(True, description="Collect an ETDump (per-operator times). Off = timing only.")
    target: HostTarget | AndroidTarget | EmulatedTarget = Field(default_factory=HostTarget, discriminator="kind")
    output_root: str = "runs"
    runners_dir: str = Field("build/runners", description="Where `sme2tui build` puts runners.")
    validate_numerics: bool = True
    seed: int = 0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        _require_unique([m.id for m in models], "model")
        return models

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        _require_unique([v.name for v in variants], "variant")
        return variants

    @model_validator(mode="after")
    def _compare_names_exist(self) -> RunConfig:
        names = [v.name for v in self.variants]
        if self.compare:
            for side in ("baseline", "candidate"):
                value = getattr(self.compare, side)
                if value not in names:
                    raise ValueError(f"compare.{side} `{value}` is not a variant; variants are {names}")
            if self.compare.baseline == self.compare.candidate:
                raise ValueError("compare.baseline and compare.candidate must differ")
        if self.target.kind == "emulated":
            for variant in self.variants:
                if variant.sme2 is None and variant.cpu is None:
                    raise ValueError(f"emulated variant `{variant.name}` needs `sme2` (on/off) or a QEMU `cpu`")
                if variant.runner not in ("auto", "arm64"):
                    raise ValueError(f"emulated variant `{variant.name}` runs the arm64 runner: use runner `auto` "
                                     f"or `arm64`, not `{variant.runner}`")
                if variant.delegate != "xnnpack":
                    raise ValueError(f"emulated variant `{variant.name}`: SME2 kernels live in the XNNPACK "
                                     "delegate; use delegate `xnnpack`")
        else:
            for variant in self.variants:
                if variant.cpu is not None:
                    raise ValueError(f"variant `{variant.name}`: `cpu` only applies to target.kind `emulated`")
        return self

    @property
    def pair(self) -> CompareSpec | None:
        """The comparison: explicit `compare`, else the first two variants (first = baseline)."""
        if self.compare:
            return self.compare
        if len(self.variants) >= 2:
            return CompareSpec(baseline=self.variants[0].name, candidate=self.variants[1].name)
        return None

    def variant(self, name: str) -> VariantSpec:
        return next(v for v in self.variants if v.name == name)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude={"schema_"}), sort_keys=True)

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _require_unique(ids: list[str], what: str) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique; repeated: {dupes}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "model"


def json_schema() -> dict[str, Any]:
    schema = RunConfig.model_json_schema(by_alias=True)
    schema["$id"] = SCHEMA_URL
    schema["title"] = "sme2tui run configuration"
    return schema


# --- loading with errors people can act on ---------------------------------------------------------


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...], data: Any) -> list[str]:
    """The field names valid at `loc` (the parent of an unknown key), walking the pydantic models."""
    current: type[BaseModel] | None = model
    node = data
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            # discriminated unions put the tag ("host"/"android") in the loc
            tagged: dict[str, type[BaseModel]] = {"host": HostTarget, "android": AndroidTarget,
                                                  "emulated": EmulatedTarget}
            current = tagged.get(str(part))
            continue
        node = node.get(part) if isinstance(node, dict) else None
        current = _model_of(field.annotation, node)
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _model_of(annotation: Any, node: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            if arg in (HostTarget, AndroidTarget, EmulatedTarget) and isinstance(node, dict):
                kind = node.get("kind", "host")
                targets: dict[str, type[BaseModel]] = {"android": AndroidTarget, "emulated": EmulatedTarget}
                return targets.get(kind, HostTarget)
            return arg
        found = _model_of(arg, node)
        if found is not None:
            return found
    return None


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("host", "android", "emulated"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _explain(exc: ValidationError, data: Any, source: str) -> ConfigError:
    """One line per problem, each with its own fix, so a config with three typos is fixed in one pass."""
    lines: list[str] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = _format_loc(loc)
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            known = _known_fields(RunConfig, loc[:-1], data)
            guess = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            fix = f"did you mean `{guess[0]}`?" if guess else f"remove it; valid keys here: {', '.join(known)}"
            lines.append(f"unknown key `{where}` → {fix}")
        elif err["type"] == "missing":
            lines.append(f"`{where}` is required → add it (see `sme2tui config schema`)")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = json.dumps(got)[:60] if not isinstance(got, dict | list) else ""
            got_text = f" (got {shown})" if shown else ""
            lines.append(f"`{where}`: {msg}{got_text} → {_fix_for(err['type'], loc)}")
    count = len(lines)
    what = f"the config has {count} problem{'s' if count != 1 else ''}:\n" + "\n".join(f"  - {x}" for x in lines)
    return ConfigError(what, where=source, fix="correct the fields above; `sme2tui config schema` lists every key")


def _fix_for(kind: str, loc: tuple[Any, ...]) -> str:
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return "use a number in the allowed range"
    if kind == "literal_error":
        return "use one of the values listed"
    if kind in ("too_short", "list_type"):
        return "give a list with at least one entry"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "use a value of the type named"
    if kind == "string_pattern_mismatch":
        return "names use lowercase letters, digits, '.', '_' and '-'"
    if kind == "union_tag_invalid":
        return "target.kind is `host`, `android` or `emulated`"
    return "see `sme2tui config schema` for the allowed values"


def parse_config(data: Any, *, source: str = "<config>") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError("the config must be a JSON object", where=source, fix="wrap the settings in { … }")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, data, source) from None


def load_config(path: Path | str) -> RunConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file not found: {path}",
            where=str(path),
            fix="check the path, or create one with `sme2tui init` or from configs/templates/",
        )
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ConfigError("the config is not UTF-8 text", where=str(path), fix="save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON: {exc.msg}",
            where=f"{path}:{exc.lineno}:{exc.colno}",
            fix="fix the JSON syntax at that line (trailing commas and comments are not allowed)",
        ) from None
    config = parse_config(data, source=str(path))
    return resolve_paths(config, base=path.parent)


def resolve_paths(config: RunConfig, *, base: Path) -> RunConfig:
    """Make `pte`/`etrecord` paths absolute relative to the config file, and check they exist."""
    models = []
    for i, model in enumerate(config.models):
        updates: dict[str, str] = {}
        for key in ("pte", "etrecord"):
            value = getattr(model, key)
            if value:
                p = Path(value).expanduser()
                p = p if p.is_absolute() else (base / p)
                if not p.is_file():
                    raise ConfigError(
                        f"models[{i}].{key} points at a missing file: {value}",
                        where=f"models[{i}].{key}",
                        fix="check the path (relative paths are relative to the config file)",
                    )
                updates[key] = str(p.resolve())
        models.append(model.model_copy(update=updates))
    return config.model_copy(update={"models": models})
