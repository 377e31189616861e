"""A kit pipeline config, read the way the kit reads it (`model_profiling/pipeline/config_loader.py`).

The kit's loader (checked at commit 5d176b1, 2026-01-27, and the later e74b6a4): top level `model`,
`output_root`, `experiments[]`, `analysis.compare_pairs[]`; per experiment `name`, `runner_path` (or
`quiet_runner` when `runner_path` is empty), `mode` (`timing` | `xnntrace`, anything else raises), `runs`
(default 100), `warmup` (default 10), `threads` (default [1]), `extra_args`, `cpu_affinity`; per pair
`baseline`/`candidate` = `{experiment, threads}` and `label`. Every other key is silently ignored, including
the `num_runs`/`num_threads` its documentation tells people to set (so a config with `"num_runs": 50`
really ran 100 iterations).

Here the same values come out, plus what the kit dropped, so the import can say so. What the kit itself
would crash on (no `model`, an experiment without `name`, a bad mode, a non-number `runs`) is a
`ConfigError` (exit 2) naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sme2tui.errors import ConfigError

MAX_CONFIG_BYTES = 4 * 2**20  # kit configs are a few hundred bytes; refuse to parse anything huge
MODES = ("timing", "xnntrace")
DEFAULT_RUNS = 100
DEFAULT_WARMUP = 10
DEFAULT_THREADS = (1,)
TOP_KEYS = ("model", "output_root", "experiments", "analysis")
ANALYSIS_KEYS = ("compare_pairs",)
EXPERIMENT_KEYS = ("name", "runner_path", "quiet_runner", "mode", "runs", "warmup", "threads", "extra_args",
                   "cpu_affinity")
PAIR_KEYS = ("baseline", "candidate", "label")
SIDE_KEYS = ("experiment", "threads")
# Names the kit's documentation uses but its loader never reads.
DOC_NAMES = {"num_runs": "runs", "num_threads": "threads"}


@dataclass
class KitExperiment:
    index: int
    name: str
    runner_path: str | None
    runner_key: str | None  # which key gave the runner: "runner_path" or "quiet_runner"
    mode: str
    runs: int
    warmup: int
    threads: list[int]
    extra_args: list[str]
    cpu_affinity: str | None
    defaulted: list[str] = field(default_factory=list)  # keys absent, so the kit used its default
    doc_names: dict[str, Any] = field(default_factory=dict)  # num_runs / num_threads as written
    unknown_keys: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"experiments[{self.index}] ({self.name})"


@dataclass(frozen=True)
class KitSide:
    experiment: str
    threads: int


@dataclass(frozen=True)
class KitPair:
    index: int
    baseline: KitSide
    candidate: KitSide
    label: str


@dataclass
class KitConfig:
    path: Path
    model: str
    output_root: str | None
    experiments: list[KitExperiment]
    pairs: list[KitPair]
    unknown_keys: list[str] = field(default_factory=list)  # top level and `analysis.*`, with their path
    duplicate_keys: list[str] = field(default_factory=list)  # JSON keys written twice (the last one wins)

    def experiment(self, name: str) -> KitExperiment | None:
        return next((e for e in self.experiments if e.name == name), None)


def _error(what: str, where: str, fix: str) -> ConfigError:
    return ConfigError(what, where=where, fix=fix)


def _pairs_hook(duplicates: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
            out[key] = value  # json.loads keeps the last one too: the kit saw that value
        return out

    return hook


def read_json_object(path: Path, what: str) -> tuple[dict[str, Any], list[str]]:
    """(the JSON object in `path`, keys written twice); every problem is a ConfigError naming the file."""
    if not path.is_file():
        raise _error(f"{what} not found: {path}", str(path), "check the path")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise _error(f"{what} is {path.stat().st_size} bytes; a kit config is a few hundred", str(path),
                     "pass the kit's JSON config (model_profiling/configs/*.json)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _error(f"{what} is not UTF-8 text", str(path), "save it as UTF-8 JSON") from None
    duplicates: list[str] = []
    try:
        data = json.loads(text, object_pairs_hook=_pairs_hook(duplicates))
    except json.JSONDecodeError as exc:
        raise _error(f"{what} is not valid JSON: {exc.msg}", f"{path}:{exc.lineno}:{exc.colno}",
                     "fix the JSON syntax at that line (the kit cannot read it either)") from None
    except RecursionError:
        raise _error(f"{what} nests too deeply", str(path), "pass the kit's JSON config") from None
    if not isinstance(data, dict):
        raise _error(f"{what} must be a JSON object, got {type(data).__name__}", str(path),
                     "a kit config is an object with `model` and `experiments`")
    return data, duplicates


def _int(value: Any, where: str) -> int:
    """The kit calls int() on these; accept what int() accepts sensibly, refuse what would crash it."""
    if isinstance(value, bool):
        raise _error(f"`{where}` is {json.dumps(value)}, not a number", where, "write a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+").isdigit():
        return int(value.strip())
    raise _error(f"`{where}` is {json.dumps(value)[:40]}, not a whole number (the kit's int() would fail or "
                 "truncate it)", where, "write a whole number")


def _text(value: Any, where: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise _error(f"`{where}` is missing or empty (the kit raises KeyError)", where, "add it")
        return None
    if not isinstance(value, str):
        raise _error(f"`{where}` must be a string, got {json.dumps(value)[:40]}", where, "write it as a string")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        # A newline or an escape sequence would be printed into the terminal (and into file names by the kit).
        raise _error(f"`{where}` contains a control character: {json.dumps(value)[:60]}", where,
                     "remove the newline, tab or escape sequence from it")
    return value


def _experiment(index: int, item: Any) -> KitExperiment:
    where = f"experiments[{index}]"
    if not isinstance(item, dict):
        raise _error(f"`{where}` must be an object, got {type(item).__name__}", where,
                     "each experiment is {\"name\": …, \"runner_path\": …, \"runs\": …, \"threads\": […]}")
    name = _text(item.get("name"), f"{where}.name", required=True)
    assert name is not None
    runner_key = "runner_path" if item.get("runner_path") else "quiet_runner" if item.get("quiet_runner") else None
    runner = _text(item.get(runner_key), f"{where}.{runner_key}") if runner_key else None
    mode = item.get("mode", "timing")
    if mode not in MODES:
        raise _error(f"`{where}.mode` is {json.dumps(mode)[:40]}; the kit supports {' and '.join(MODES)} (and "
                     "refuses anything else)", f"{where}.mode", "use `timing` (latency) or `xnntrace` (kernel log)")
    threads_raw = item.get("threads", list(DEFAULT_THREADS))
    if not isinstance(threads_raw, list) or not threads_raw:
        raise _error(f"`{where}.threads` must be a non-empty list of thread counts, got "
                     f"{json.dumps(threads_raw)[:40]}", f"{where}.threads", "e.g. \"threads\": [1, 4]")
    threads = [_int(t, f"{where}.threads[{i}]") for i, t in enumerate(threads_raw)]
    if any(t < 1 for t in threads):
        raise _error(f"`{where}.threads` has a count below 1: {threads}", f"{where}.threads", "use 1 or more")
    extra = item.get("extra_args", [])
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise _error(f"`{where}.extra_args` must be a list of strings", f"{where}.extra_args",
                     "e.g. \"extra_args\": [\"--flag\"]")
    affinity = item.get("cpu_affinity")
    if affinity is not None and (isinstance(affinity, bool) or not isinstance(affinity, str | int)):
        raise _error(f"`{where}.cpu_affinity` must be a taskset mask such as \"0x80\"", f"{where}.cpu_affinity",
                     "write the mask as a hex string")
    runs = _int(item.get("runs", DEFAULT_RUNS), f"{where}.runs")
    warmup = _int(item.get("warmup", DEFAULT_WARMUP), f"{where}.warmup")
    if runs < 1 or warmup < 0:
        raise _error(f"`{where}`: runs must be ≥ 1 and warmup ≥ 0 (got runs {runs}, warmup {warmup})", where,
                     "fix the numbers")
    return KitExperiment(
        index=index, name=name, runner_path=runner, runner_key=runner_key if runner else None, mode=mode,
        runs=runs, warmup=warmup, threads=threads, extra_args=list(extra),
        cpu_affinity=str(affinity) if affinity is not None else None,
        defaulted=[k for k in ("mode", "runs", "warmup", "threads") if k not in item],
        doc_names={k: item[k] for k in DOC_NAMES if k in item},
        unknown_keys=[k for k in item if k not in EXPERIMENT_KEYS and k not in DOC_NAMES],
    )


def _side(value: Any, where: str) -> KitSide:
    if not isinstance(value, dict):
        raise _error(f"`{where}` must be {{\"experiment\": …, \"threads\": …}}", where, "see the kit's README")
    experiment = _text(value.get("experiment"), f"{where}.experiment", required=True)
    assert experiment is not None
    if "threads" not in value:
        raise _error(f"`{where}.threads` is missing (the kit raises KeyError)", f"{where}.threads", "add it")
    return KitSide(experiment, _int(value["threads"], f"{where}.threads"))


def parse_kit_config(data: dict[str, Any], path: Path, duplicates: list[str] | None = None) -> KitConfig:
    if "model" not in data:
        raise _error("the kit config has no `model` (the .pte it profiles); the kit raises KeyError", str(path),
                     "add \"model\": \"path/to/model.pte\"")
    model = _text(data["model"], "model", required=True)
    assert model is not None
    output_root = _text(data.get("output_root"), "output_root")
    experiments_raw = data.get("experiments", [])
    if not isinstance(experiments_raw, list):
        raise _error("`experiments` must be a list", "experiments", "\"experiments\": [{…}, {…}]")
    experiments = [_experiment(i, item) for i, item in enumerate(experiments_raw)]
    names = [e.name for e in experiments]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _error(f"experiment names repeat: {repeated}; the kit would write both into the same files",
                     "experiments", "give every experiment its own name")
    analysis = data.get("analysis", {})
    if not isinstance(analysis, dict):
        raise _error("`analysis` must be an object", "analysis", "\"analysis\": {\"compare_pairs\": []}")
    raw_pairs = analysis.get("compare_pairs", [])
    if not isinstance(raw_pairs, list):
        raise _error("`analysis.compare_pairs` must be a list", "analysis.compare_pairs", "use [] for none")
    pairs = []
    unknown = [k for k in data if k not in TOP_KEYS] + [f"analysis.{k}" for k in analysis if k not in ANALYSIS_KEYS]
    for i, entry in enumerate(raw_pairs):
        where = f"analysis.compare_pairs[{i}]"
        if not isinstance(entry, dict):
            raise _error(f"`{where}` must be an object", where, "{\"baseline\": {…}, \"candidate\": {…}}")
        label = entry.get("label", "")
        pairs.append(KitPair(i, _side(entry.get("baseline", {}), f"{where}.baseline"),
                             _side(entry.get("candidate", {}), f"{where}.candidate"),
                             label if isinstance(label, str) else str(label)))
        unknown += [f"{where}.{k}" for k in entry if k not in PAIR_KEYS]
    return KitConfig(path=path, model=model, output_root=output_root, experiments=experiments, pairs=pairs,
                     unknown_keys=unknown, duplicate_keys=sorted(set(duplicates or [])))


def load_kit_config(path: Path) -> KitConfig:
    data, duplicates = read_json_object(path, "kit config")
    try:
        return parse_kit_config(data, path, duplicates)
    except ConfigError as exc:
        where = exc.where if exc.where and exc.where.startswith(str(path)) else f"{path}: {exc.where}"
        raise ConfigError(exc.what, where=where, fix=exc.fix) from None
