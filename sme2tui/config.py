"""The run configuration: what to measure. Pydantic v2 with `extra="forbid"` everywhere.

Loading never raises pydantic's own errors at users: `load_config` turns every problem into a
`ConfigError` that names the file, the field path, what is wrong, and a fix (with a did-you-mean for
misspelled keys).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from sme2tui.config_json import loads as loads_json
from sme2tui.config_json import read_config_text, shown
from sme2tui.errors import ConfigError
from sme2tui.models.registry import BUILTIN_MODELS

Dtype = Literal["fp32", "fp16", "int8", "int8-dynamic"]
Delegate = Literal["xnnpack", "portable", "as-exported"]
# Names become parts of cell ids (`model__dtype__variant__tN`) and folder names: lowercase letters and
# digits, with single `.`, `_` or `-` between them. `__` can never occur, so ids split back unambiguously.
SLUG = r"^[a-z0-9]+([._-][a-z0-9]+)*$"
NAME_RULE = "lowercase letters and digits, with single '.', '_' or '-' between them (no '__', which separates " \
    "the parts of cell ids), at most 64 characters"
MAX_NAME = 64
MAX_MODELS = 64
MAX_VARIANTS = 16
MAX_THREAD_SETTINGS = 64
MAX_CELLS = 1024
MAX_SEED = 2**32 - 1  # torch.Generator and random.Random accept it, with room for the +1000 offsets
MAX_PATH_BYTES = 4095  # PATH_MAX - 1 on Linux; one component may have at most 255 bytes (NAME_MAX)
DEFAULT_VARIANT_NAME = "as-exported"
SCHEMA_URL = "https://sme2tui.dev/schema/config-v1.json"  # id only; the file ships as configs/schema.json

Name = Annotated[str, Field(pattern=SLUG, max_length=MAX_NAME, description=f"Names use {NAME_RULE}.")]
PathText = Annotated[str, Field(min_length=1, max_length=MAX_PATH_BYTES)]


def _problem(what: str, fix: str) -> PydanticCustomError:
    """A validation problem that carries its own fix (shown after the arrow)."""
    return PydanticCustomError("sme2tui", "{what}", {"what": what, "fix": fix})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramFacts(_Strict):
    """What a ready .pte is, read from the program itself when the config is loaded (never from the user)."""

    # Patterns: both become parts of cell ids and file names (what pte_info produces always matches them).
    dtype: Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=32)]
    delegation: Annotated[str, Field(pattern=r"^[a-z0-9]+(\+[a-z0-9]+)*$", max_length=200)]
    dtype_evidence: str = Field("", max_length=2000)


class ModelSpec(_Strict):
    """One model: a built-in (`builtin`), your own factory (`factory`), or a ready `.pte` (`pte`)."""

    name: Name | None = Field(
        None, description=f"Short id used in cell names and reports (default: derived from the source). {NAME_RULE}."
    )
    builtin: str | None = Field(None, description="Built-in model id, see `sme2tui models`.", max_length=MAX_NAME)
    factory: str | None = Field(
        None, max_length=512,
        description="`package.module:function`, called with no arguments, returning (model, example_inputs).",
    )
    pte: PathText | None = Field(
        None, description="Path to a ready .pte (exported elsewhere). Its dtype and delegation are read from the "
        "program: `dtypes` does not apply to it, and variants may not differ only in `delegate`.")
    etrecord: PathText | None = Field(None, description="Optional ETRecord for a ready .pte.")
    calibration_samples: Annotated[int, Field(ge=1, le=256, strict=True)] = 8
    program: SkipJsonSchema[ProgramFacts | None] = Field(
        None, description="Filled in by sme2tui from the .pte itself; leave it out.")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ModelSpec:
        sources = [s for s in (self.builtin, self.factory, self.pte) if s]
        if len(sources) != 1:
            raise ValueError("give exactly one of `builtin`, `factory` or `pte`")
        if self.builtin and self.builtin not in BUILTIN_MODELS:
            guess = difflib.get_close_matches(self.builtin, list(BUILTIN_MODELS), n=1)
            hint = f"did you mean `{guess[0]}`? " if guess else ""
            raise ValueError(f"unknown built-in model `{shown(self.builtin)}`; {hint}built-in models: "
                             f"{', '.join(BUILTIN_MODELS)}")
        if self.etrecord and not self.pte:
            raise ValueError("`etrecord` only goes with `pte`")
        if self.program and not self.pte:
            raise ValueError("`program` is only for ready .pte models (and sme2tui fills it in)")
        if self.factory and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.factory, flags=re.ASCII):
            raise ValueError("`factory` must look like `package.module:function`")
        return self

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        if self.builtin:
            return self.builtin
        if self.factory:
            return factory_id(self.factory)
        return slug(Path(self.pte or "model").stem)

    @property
    def source(self) -> str:
        """What the model is, for messages: `built-in mobilenet`, `factory m:f`, `ready program x.pte`."""
        if self.builtin:
            return f"built-in `{self.builtin}`"
        if self.factory:
            return f"factory `{self.factory}`"
        return f"ready program `{shown(Path(self.pte or '').name)}`"

    def program_facts(self) -> ProgramFacts:
        """A ready program's dtype and delegation: recorded when the config was loaded, else read now."""
        if self.program is not None:
            return self.program
        from sme2tui.models.pte_info import read_program_info

        info = read_program_info(self.pte or "")
        return ProgramFacts(dtype=info.dtype, delegation=info.delegation, dtype_evidence=info.dtype_evidence)

    def identity(self, *, static_int8: bool) -> Hashable:
        """Equal for two entries that would produce the same programs (the name plays no part)."""
        if self.pte:
            return ("pte", os.path.normpath(self.pte))
        source = ("builtin", self.builtin) if self.builtin else ("factory", self.factory)
        return (*source, self.calibration_samples) if static_int8 else source


class VariantSpec(_Strict):
    """How a cell is executed: the export's delegation and the runner that runs it.

    `sme2` is what the variant *claims*; it is checked against evidence and the CPU, never trusted blindly.
    """

    name: Name
    label: str = Field("", max_length=80)
    delegate: Delegate | None = Field(
        None,
        description="How sme2tui exports the models for this variant: `xnnpack` or `portable` (kernels). A ready "
        ".pte runs as it was exported (`as-exported`): its delegation is baked in. Default: `xnnpack` for "
        "models sme2tui exports, `as-exported` for ready programs.",
    )
    runner: str = Field(
        "auto", min_length=1, max_length=MAX_PATH_BYTES,  # a name, or the path of a runner binary
        description="`auto` (native host runner if built, else the Python runtime), `python`, `native`, "
        "the name of a built runner such as `sme2-on`/`sme2-off` (`arm64` = `auto` on the emulated target), or the "
        "path of a runner binary built elsewhere (e.g. a kit-built `executor_runner`; relative to the config file). "
        "An adopted binary's build is unknown to sme2tui: a pair of them is never reported as a verified SME2 "
        "on/off pair.",
    )
    sme2: Literal["on", "off"] | None = None
    cpu: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9,=._-]*$")] | None = Field(
        None, description="Emulated target only: the QEMU `-cpu` model. Default from `sme2`: on → `max`, off → "
        "`max,sme=off` (SME and SME2 removed together). E.g. `max` on QEMU 10.0.x for an SME-only variant.",
    )

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def export_delegate(self) -> str:
        """The delegate sme2tui exports models with for this variant (ready programs ignore it)."""
        return self.delegate if self.delegate in ("xnnpack", "portable") else "xnnpack"

    def setup(self) -> dict[str, Any]:
        """Everything but the name, label and delegate: what makes two variants run a ready program differently."""
        return self.model_dump(exclude={"name", "label", "delegate"})


class CompareSpec(_Strict):
    baseline: str = Field(description="Variant name measured as the 'before' side (e.g. sme2-off).")
    candidate: str = Field(description="Variant name measured as the 'after' side (e.g. sme2-on).")


CpuList = Annotated[list[Annotated[int, Field(ge=0, le=8191, strict=True)]], Field(min_length=1, max_length=1024)]


class HostTarget(_Strict):
    kind: Literal["host"] = "host"
    cpu_affinity: CpuList | None = Field(
        None, description="Pin runs to these CPU ids (Linux; checked against the CPUs this process may use before a "
        "run). Default: no pinning.")
    timeout_s: Annotated[float, Field(gt=0, le=86_400, strict=True)] = Field(
        600.0, description="Stop a runner process (one round of a native runner, or a whole group on the Python "
        "runtime) that takes longer than this many seconds; the cell fails with a timeout and the run goes on.")

    @field_validator("cpu_affinity")
    @classmethod
    def _unique_cpus(cls, cpus: list[int] | None) -> list[int] | None:
        if cpus:
            _require_unique(cpus, "cpu_affinity", lambda c: f"CPU {c}")
        return cpus


Endpoints = Annotated[list[Annotated[str, Field(min_length=1, max_length=512)]], Field(max_length=64)]


class AndroidTarget(_Strict):
    kind: Literal["android"] = "android"
    serial: str | None = Field(None, max_length=256,
                               description="Device serial; default: $ANDROID_SERIAL or the only one.")
    serials: Endpoints = Field(
        default_factory=list,
        description="Several devices, run in parallel (one cell at a time each): `SERIAL` on `adb_server`, "
        "or `SERIAL@HOST:PORT` on another ADB server (a remote device lab).",
    )
    connect: Endpoints = Field(
        default_factory=list, description="`adb connect` these HOST:PORT endpoints first (network devices)."
    )
    adb_server: str | None = Field(
        None, max_length=512,
        description="ADB server HOST:PORT; default: $ADB_SERVER_SOCKET / $ANDROID_ADB_SERVER_PORT or 127.0.0.1:5037."
    )
    allow_foreign_runner: Annotated[bool, Field(strict=True)] = Field(
        False, description="Run a runner whose architecture does not match the device ABI. Only for protocol "
        "test doubles that execute host binaries; never useful on a real phone."
    )
    device_dir: str = Field("/data/local/tmp/sme2tui", min_length=1, max_length=1024)
    cpu_mask: str | None = Field(None, max_length=64,
                                 description="taskset mask; default: the biggest cores from cpufreq.")
    cooldown_s: Annotated[float, Field(ge=0, le=600, strict=True)] = 0.0
    fixed_performance_mode: Annotated[bool, Field(strict=True)] = False
    cleanup: Annotated[bool, Field(strict=True)] = False
    timeout_s: Annotated[float, Field(gt=0, le=7200, strict=True)] = 600.0

    @field_validator("serials", "connect")
    @classmethod
    def _unique_endpoints(cls, values: list[str], info: ValidationInfo) -> list[str]:
        _require_unique(values, str(info.field_name), lambda v: f"`{shown(v)}`",
                        fix="list each device once: the same device twice would run two cells on it at once")
        return values


class EmulatedTarget(_Strict):
    """The official aarch64 ExecuTorch runtime under QEMU user mode: real Arm code, emulated CPU, no device."""

    kind: Literal["emulated"] = "emulated"
    svl_bits: Literal[128, 256, 512, 1024, 2048] | None = Field(
        None, description="SME streaming vector length (`sme-default-vector-length`), e.g. 512 like Apple M4. "
        "Default: QEMU's (256 for `-cpu max`).",
    )
    evidence: Annotated[bool, Field(strict=True)] = Field(
        True, description="Record which kernels ran (QEMU's translated-code log mapped to ELF symbols) and "
        "execution counts of the SME/SME2 kernels, per cell.")
    timeout_s: Annotated[float, Field(gt=0, le=86_400, strict=True)] = 3600.0


class RunConfig(_Strict):
    """Everything one run measures: models x dtypes x variants x threads on one target."""

    schema_: str | None = Field(None, alias="$schema", max_length=MAX_PATH_BYTES)
    name: Name = "run"
    description: str = Field("", max_length=4000)
    models: Annotated[list[ModelSpec], Field(min_length=1, max_length=MAX_MODELS)]
    dtypes: Annotated[list[Dtype], Field(min_length=1, max_length=4)] = Field(
        ["fp32"], description="Dtypes sme2tui exports models in. Does not apply to ready .pte models: their cells "
        "take the program's own dtype (read from the file); a config of ready programs only may leave it out.")
    variants: Annotated[list[VariantSpec], Field(min_length=1, max_length=MAX_VARIANTS)] = Field(
        description="How cells run. May be left out only when every model is a ready .pte (then one variant, "
        f"`{DEFAULT_VARIANT_NAME}`: the program as exported).")
    compare: CompareSpec | None = None
    threads: Annotated[list[Annotated[int, Field(ge=1, le=256, strict=True)]],
                       Field(min_length=1, max_length=MAX_THREAD_SETTINGS)] = [1]
    warmup: Annotated[int, Field(ge=0, le=10_000, strict=True)] = 3
    iterations: Annotated[int, Field(ge=1, le=100_000, strict=True)] = 20
    rounds: Annotated[int, Field(ge=1, le=1000, strict=True)] = Field(
        3,
        description="Process-level runners (native, Android) split the iterations into this many rounds and "
        "alternate the variants between rounds (A B, B A, …). The Python runtime interleaves every iteration "
        "in one process instead.",
    )
    profile: Annotated[bool, Field(strict=True)] = Field(
        True, description="Collect an ETDump (per-operator times). Off = timing only.")
    target: HostTarget | AndroidTarget | EmulatedTarget = Field(default_factory=HostTarget, discriminator="kind")
    output_root: PathText = Field("runs", description="Where run folders go (`~` is your home folder).")
    runners_dir: PathText | None = Field(
        None, description="Where runners are built and found (`sme2tui build --runners-dir`, `--runners-dir`). "
        "Default: the user cache, $XDG_CACHE_HOME/sme2tui/runners or ~/.cache/sme2tui/runners; `~` is your home "
        "folder.")
    validate_numerics: Annotated[bool, Field(strict=True)] = True
    seed: Annotated[int, Field(ge=0, le=MAX_SEED, strict=True)] = 0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _default_variant_for_ready_programs(cls, data: Any) -> Any:
        """A config of ready programs only may leave `variants` out: one variant, the program as exported."""
        if isinstance(data, dict) and "variants" not in data:
            models = data.get("models")
            if isinstance(models, list) and models and all(
                    isinstance(m, dict) and m.get("pte") and not m.get("builtin") and not m.get("factory")
                    for m in models):
                return {**data, "variants": [{"name": DEFAULT_VARIANT_NAME, "label": "program as exported",
                                              "delegate": "as-exported"}]}
        return data

    @field_validator("dtypes")
    @classmethod
    def _unique_dtypes(cls, dtypes: list[str]) -> list[str]:
        _require_unique(dtypes, "dtypes", lambda d: f"`{d}`")
        return dtypes

    @field_validator("threads")
    @classmethod
    def _unique_threads(cls, threads: list[int]) -> list[int]:
        _require_unique(threads, "threads", str)
        return threads

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        _require_unique([v.name for v in variants], "variants", lambda n: f"the name `{n}`",
                        fix="give each variant its own `name`")
        return variants

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        self._check_models()
        self._check_ready_programs()
        names = [v.name for v in self.variants]
        if self.compare:
            for side in ("baseline", "candidate"):
                value = getattr(self.compare, side)
                if value not in names:
                    raise ValueError(f"compare.{side} `{shown(value)}` is not a variant; variants are {names}")
            if self.compare.baseline == self.compare.candidate:
                raise ValueError("compare.baseline and compare.candidate must differ")
        if self.target.kind == "android":
            for index, variant in enumerate(self.variants):
                if variant.runner in ("auto", "native", "python"):
                    raise _problem(f"variants[{index}] (`{variant.name}`) uses runner `{variant.runner}`, which only "
                                   "exists on the host; an Android run needs a phone binary",
                                   "set its `runner` to a built Android runner (sme2-on, sme2-off: `sme2tui build "
                                   "android`) or an executor_runner path")
        if self.target.kind == "emulated":
            for variant in self.variants:
                if variant.sme2 is None and variant.cpu is None:
                    raise ValueError(f"emulated variant `{variant.name}` needs `sme2` (on/off) or a QEMU `cpu`")
                if variant.runner not in ("auto", "arm64"):
                    raise ValueError(f"emulated variant `{variant.name}` runs the arm64 runner: use runner `auto` "
                                     f"or `arm64`, not `{variant.runner}`")
                if variant.delegate not in (None, "xnnpack", "as-exported"):
                    raise ValueError(f"emulated variant `{variant.name}`: SME2 kernels live in the XNNPACK "
                                     "delegate; use delegate `xnnpack`")
        else:
            for variant in self.variants:
                if variant.cpu is not None:
                    raise ValueError(f"variant `{variant.name}`: `cpu` only applies to target.kind `emulated`")
        cells = self.cell_count()
        if cells > MAX_CELLS:
            raise _problem(f"the config asks for {cells} cells (models × dtypes × variants × threads); at most "
                           f"{MAX_CELLS} per run", "split it into several configs, or drop dtypes/threads/variants "
                           "you do not need")
        return self

    def _check_models(self) -> None:
        ids: dict[str, int] = {}
        seen: dict[Hashable, int] = {}
        static_int8 = "int8" in self.dtypes
        for index, model in enumerate(self.models):
            if model.id in ids:
                first = ids[model.id]
                named = model.name and self.models[first].name
                raise _problem(
                    f"models[{index}] and models[{first}] are both called `{model.id}`"
                    + ("" if named else " (derived from their source)"),
                    "give each model its own `name`")
            ids[model.id] = index
            identity = model.identity(static_int8=static_int8)
            if identity in seen:
                first = seen[identity]
                raise _problem(
                    f"models[{index}] (`{model.id}`) is the same model as models[{first}] "
                    f"(`{self.models[first].id}`): {model.source}; its cells would repeat the same measurement",
                    "remove one (to measure longer, raise `iterations` or `rounds`)")
            seen[identity] = index

    def _check_ready_programs(self) -> None:
        ready = [(i, m) for i, m in enumerate(self.models) if m.pte]
        exported = [(i, m) for i, m in enumerate(self.models) if not m.pte]
        default = "xnnpack" if exported else "as-exported"
        _require_unique([json.dumps({**v.setup(), "delegate": v.delegate or default}, sort_keys=True)
                         for v in self.variants], "variants", lambda _: "the same settings: all but name and label",
                        fix="remove one: they would measure the same thing twice (to measure longer, raise "
                        "`iterations` or `rounds`)")
        for index, variant in enumerate(self.variants):
            if variant.delegate == "as-exported" and exported:
                i, model = exported[0]
                raise _problem(
                    f"variants[{index}] (`{variant.name}`) says `as-exported`, but models[{i}] ({model.source}) is "
                    "exported by sme2tui, not a ready program",
                    "choose `xnnpack` or `portable` for it, or leave `delegate` out")
        if not ready:
            return
        by_setup: dict[str, list[str]] = {}
        for variant in self.variants:
            by_setup.setdefault(json.dumps(variant.setup(), sort_keys=True), []).append(variant.name)
        same = next((names for names in by_setup.values() if len(names) > 1), None)
        if same:
            i, model = ready[0]
            listed = " and ".join(f"`{n}`" for n in same)
            raise _problem(
                f"variants {listed} differ only in `delegate`, which cannot apply to models[{i}] "
                f"({model.source}): the delegation is baked into a .pte when it is exported, so they would run the "
                "same program twice",
                "measure the ready program in a config of its own (leave `variants` out: it runs as exported), or "
                "make the variants differ in runner or target; to compare delegations, export both programs (or "
                "use a `builtin`/`factory` model)")

    def cell_count(self) -> int:
        per_model = sum(1 if m.pte else len(self.dtypes) for m in self.models)
        return per_model * len(self.variants) * len(self.threads)

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

    def model(self, model_id: str) -> ModelSpec:
        return next(m for m in self.models if m.id == model_id)

    @property
    def runners_path(self) -> Path:
        """Where this run's runners are built and found (see `sme2tui.runners.location`)."""
        from sme2tui.runners.location import runners_root

        return runners_root(self.runners_dir)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude={"schema_"}), sort_keys=True)

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def runner_is_path(runner: str) -> bool:
    """A variant's `runner` names a binary by path (adopted, built outside sme2tui) rather than a built runner."""
    return "/" in runner or "\\" in runner


def _require_unique(values: list[Any], what: str, describe: Callable[[Any], str], *, fix: str | None = None) -> None:
    first: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value in first:
            raise _problem(f"{what}[{index}] repeats {what}[{first[value]}] ({describe(value)})",
                           fix or f"list each entry of `{what}` once: a repeated entry measures the same cells "
                           "twice and counts their samples twice")
        first[value] = index


def slug(text: str) -> str:
    """A valid name (see SLUG) derived from a function or file name: `My__Model (v2)` -> `my-model-v2`."""
    text = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    text = re.sub(r"[._-]{2,}", "-", text).strip("._-")
    return text[:MAX_NAME].strip("._-") or "model"


# Function names that say "make the model" and nothing about which model: the module names it instead.
GENERIC_FACTORY_FUNCTIONS = frozenset({"build", "build_model", "create", "create_model", "factory", "get",
                                       "get_model", "load", "load_model", "main", "make", "make_model", "model"})


def factory_id(factory: str) -> str:
    """A factory model's default id, after what the user chose: the module (`pkg.my_model:build` →
    `my_model`), with the function when it says which model (`zoo:resnet18` → `zoo-resnet18`)."""
    module, _, function = factory.partition(":")
    base = module.rsplit(".", 1)[-1]
    return slug(base if function.lower() in GENERIC_FACTORY_FUNCTIONS else f"{base}-{function}")


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
    return [f.alias or n for n, f in current.model_fields.items() if n != "program"]  # `program`: ours, hidden


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
            text = shown(str(part), 40)
            out += f".{text}" if out else text
    return out or "(top level)"


MAX_PROBLEMS_SHOWN = 12


def _explain(exc: ValidationError, data: Any, source: str) -> ConfigError:
    """One line per problem, each with its own fix, so a config with three typos is fixed in one pass."""
    lines: list[str] = []
    errors = exc.errors()
    for err in errors[:MAX_PROBLEMS_SHOWN]:
        loc = tuple(err["loc"])
        where = _format_loc(loc)
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            known = _known_fields(RunConfig, loc[:-1], data)
            guess = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            fix = f"did you mean `{guess[0]}`?" if guess else f"remove it; valid keys here: {', '.join(known)}"
            lines.append(f"unknown key `{where}` → {fix}")
        elif err["type"] == "missing":
            hint = " (it may be left out only when every model is a ready .pte)" if loc == ("variants",) else ""
            lines.append(f"`{where}` is required{hint} → add it (see `sme2tui config schema`)")
        elif err["type"] == "sme2tui":
            ctx = err.get("ctx") or {}
            prefix = "" if not loc else f"`{where}`: "
            lines.append(f"{prefix}{ctx.get('what', err['msg'])} → {ctx.get('fix', '')}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            text = json.dumps(got)[:60] if isinstance(got, str | int | float | bool) or got is None else ""
            got_text = f" (got {text})" if text else ""
            lines.append(f"`{where}`: {shown(msg, 400)}{got_text} → {_fix_for(err['type'], loc)}")
    if len(errors) > MAX_PROBLEMS_SHOWN:
        lines.append(f"… and {len(errors) - MAX_PROBLEMS_SHOWN} more")
    count = len(errors)
    what = f"the config has {count} problem{'s' if count != 1 else ''}:\n" + "\n".join(f"  - {x}" for x in lines)
    return ConfigError(what, where=source, fix="correct the fields above; `sme2tui config schema` lists every key")


def _fix_for(kind: str, loc: tuple[Any, ...]) -> str:
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return "use a number in the allowed range"
    if kind == "literal_error":
        return "use one of the values listed"
    if kind in ("too_short", "list_type"):
        return "give a list with at least one entry"
    if kind in ("too_long", "string_too_long"):
        return "shorten it to the allowed length (bigger sweeps: split them into several configs)"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "use a value of the type named"
    if kind == "string_pattern_mismatch":
        return f"names use {NAME_RULE}"
    if kind == "union_tag_invalid":
        return "target.kind is `host`, `android` or `emulated`"
    return "see `sme2tui config schema` for the allowed values"


def parse_config(data: Any, *, source: str = "<config>") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError("the config must be a JSON object", where=source, fix="wrap the settings in { … }")
    from sme2tui.config_json import check_tree

    check_tree(data, source)  # also for data that did not come from a file (the wizard, run folders)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, data, source) from None


def load_config(path: Path | str) -> RunConfig:
    path = Path(path)
    data = loads_json(read_config_text(path), str(path))
    config = parse_config(data, source=str(path))
    return resolve_paths(config, base=path.parent)


def expand_path(value: str, where: str) -> Path:
    """`~` and `~user` expanded (an unknown user is an error, not a folder named `~user`), lengths checked."""
    path = Path(value)
    if value.startswith("~"):
        try:
            expanded = path.expanduser()
        except RuntimeError:  # Python raises for an unknown user (and for `~` without a home folder)
            expanded = path
        if str(expanded).startswith("~"):
            raise ConfigError(f"`{where}` starts with `{shown(value.split('/')[0])}`, but there is no such user "
                              "on this machine", where=where, fix="use an absolute path, or `~/…` for your home folder")
        path = expanded
    check_path_length(path, where)
    return path


def check_path_length(path: Path, where: str) -> None:
    encoded = os.fsencode(str(path))
    longest = max((os.fsencode(part) for part in path.parts), key=len, default=b"")
    if len(encoded) > MAX_PATH_BYTES or len(longest) > 255:
        what = (f"a path of {len(encoded)} bytes (at most {MAX_PATH_BYTES})" if len(encoded) > MAX_PATH_BYTES
                else f"a folder or file name of {len(longest)} bytes (at most 255): `{shown(os.fsdecode(longest))}`")
        raise ConfigError(f"`{where}` is {what}", where=where,
                          fix="use a shorter path: file systems refuse longer names")


def resolve_paths(config: RunConfig, *, base: Path) -> RunConfig:
    """Make `pte`/`etrecord` paths absolute relative to the config file and check they exist; expand `~` in
    every path; read each ready program's dtype and delegation from the program itself."""
    from sme2tui.models.pte_info import read_program_info

    models = []
    for i, model in enumerate(config.models):
        updates: dict[str, Any] = {}
        for key in ("pte", "etrecord"):
            value = getattr(model, key)
            if value:
                p = expand_path(value, f"models[{i}].{key}")
                p = p if p.is_absolute() else (base / p)
                check_path_length(p, f"models[{i}].{key}")
                try:
                    exists = p.exists()
                except OSError as exc:
                    raise ConfigError(f"cannot look at models[{i}].{key}: {exc.strerror}", where=f"models[{i}].{key}",
                                      fix="check the path and the permissions of its folders") from None
                if exists and not p.is_file():
                    raise ConfigError(f"models[{i}].{key} is not a regular file: {shown(value)}",
                                      where=f"models[{i}].{key}", fix=f"point `{key}` at the program file itself")
                if not p.is_file():
                    raise ConfigError(
                        f"models[{i}].{key} points at a missing file: {shown(value)}",
                        where=f"models[{i}].{key}",
                        fix="check the path (relative paths are relative to the config file)",
                    )
                updates[key] = str(p.resolve())
        if model.pte:
            info = read_program_info(updates["pte"])
            updates["program"] = ProgramFacts(dtype=info.dtype, delegation=info.delegation,
                                              dtype_evidence=info.dtype_evidence)
        models.append(model.model_copy(update=updates))
    # An adopted runner binary is found like a `pte`: relative to the config file. Whether it exists is
    # checked before a run (preflight), not here: a config may be written before its runners are built.
    variants = [v.model_copy(update={"runner": str((base / Path(v.runner).expanduser()).absolute())})
                if runner_is_path(v.runner) else v for v in config.variants]
    resolved = config.model_copy(update={
        "models": models, "variants": variants,
        "output_root": str(expand_path(config.output_root, "output_root")),
        "runners_dir": str(expand_path(config.runners_dir, "runners_dir")) if config.runners_dir else None,
    })
    _check_ready_program_facts(resolved)
    return resolved


def _check_ready_program_facts(config: RunConfig) -> None:
    """Rules that need the programs' contents: the same file twice, a delegate the program lacks.

    `dtypes` is not checked against a ready program: it applies to exported models only, and a ready program's
    cells take the dtype read from the program (the export step says so), so swapping the models of a config
    for ready programs of any dtype keeps it valid.
    """
    seen: dict[tuple[int, int], int] = {}
    for i, model in enumerate(config.models):
        if not model.pte or model.program is None:
            continue
        st = Path(model.pte).stat()
        first = seen.setdefault((st.st_dev, st.st_ino), i)
        if first != i:
            raise ConfigError(f"models[{i}] and models[{first}] are the same program file ({shown(model.pte)})",
                              where=f"models[{i}].pte", fix="remove one of them")
        facts = model.program
        for index, variant in enumerate(config.variants):
            if variant.delegate in ("xnnpack", "portable") and variant.delegate != facts.delegation:
                raise ConfigError(
                    f"variant `{variant.name}` asks for delegate `{variant.delegate}`, but models[{i}] "
                    f"({model.source}) was exported with delegation `{facts.delegation}`: the delegation is baked "
                    "into a .pte when it is exported", where=f"variants[{index}].delegate",
                    fix="leave `delegate` out of the variant (a ready program runs as exported), or export the "
                    f"model again with {variant.delegate}")
