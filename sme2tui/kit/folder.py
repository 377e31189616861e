"""A kit run folder: its ETDumps grouped by experiment and thread count, its kernel logs, its pairs.

What the kit writes into `output_root` (its orchestrator, runners and tools, read at commit 5d176b1 and the
later e74b6a4), flat, one prefix `<pte-stem>_<experiment>_t<threads>` per experiment and thread count:
`.etdump` (every in-process iteration: the kit's warmup ran in another process, so the first one here is
cold), `_latency.log` (runner stdout + a PERFORMANCE SUMMARY), `_exec_all_runs_timeline.csv`,
`_exec_run0_timeline.csv`, `_exec_ops_stats.csv`, `_exec_all_runs_timeline_robust_stats.json`,
`_xnntrace.log` for kernel-log experiments; once per run `<pte-stem>_pipeline_summary.{json,md}`,
`<a>_vs_<b>_robust_comparison.json` per compare pair, `report.md`. Newer versions and the kit's docs also put
files in one folder per experiment and add `manifest.json` / `metrics.json` (`results[]` with `experiment`,
`threads`, `mode`, artifact paths). All of these are accepted; anything else is listed and left alone.

Experiment and thread count come, in order of trust, from the pipeline summary, the kit manifest, the kit
config (`--kit-config`), the folder name, and last from the file names themselves.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sme2tui.errors import AnalysisError, ConfigError
from sme2tui.kit.config import KitConfig, load_kit_config
from sme2tui.kit.names import base_name, counterpart, is_trace_name, side_from_text

MAX_ENTRIES = 20_000  # files looked at: a kit folder has tens; refuse to crawl a home directory
MAX_DEPTH = 2
MAX_JSON_BYTES = 16 * 2**20
_THREADS = re.compile(r"^(?P<rest>.+)_t(?P<threads>\d{1,4})$")
# Kit outputs sme2tui does not need (it recomputes what they hold from the ETDumps): not worth a mention.
KNOWN_OUTPUTS = ("_timeline.csv", "_ops_stats.csv", "_pipeline_summary.json", "_pipeline_summary.md",
                 "_robust_comparison.json", "_robust_stats.json", "report.md", "manifest.json", "metrics.json",
                 "_kernels.csv", "analysis_summary.json", "kernel_view_gemm.md", "_latency.log", ".log",
                 "_category_summary.csv", "_operator_details.csv", "_e2e_latency.csv", "_other_top_ops.csv")
_PLATFORM_START = re.compile(r"(^|_)(android|mac|macos|linux|ios|host|darwin)_")
_SIDE = re.compile(r"(^|_)(sme2[_-]?(on|off)|no[_-]?sme2)(?=_|$)", re.IGNORECASE)


@dataclass
class KitCell:
    experiment: str
    threads: int
    etdump: Path
    how: str  # how experiment and threads were read
    runs: int | None = None  # measured runs the kit asked for
    warmup: int | None = None  # the kit's warmup (run in a separate process)
    latency_log: Path | None = None
    robust_stats: Path | None = None
    kit_median_ms: float | None = None  # what the kit reported (its robust stats, every iteration counted)
    kit_mean_ms: float | None = None
    kit_count: int | None = None


@dataclass
class KitTrace:
    experiment: str
    threads: int
    log: Path


@dataclass
class KitPairing:
    baseline: str
    candidate: str
    source: str


@dataclass
class KitFolder:
    root: Path
    model: str | None  # as the kit recorded it (often relative to the kit checkout)
    model_stem: str | None
    cells: list[KitCell] = field(default_factory=list)
    traces: list[KitTrace] = field(default_factory=list)
    pairing: KitPairing | None = None
    config: KitConfig | None = None
    notes: list[str] = field(default_factory=list)
    used: list[Path] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def experiments(self) -> list[str]:
        out: list[str] = []
        for cell in self.cells:
            if cell.experiment not in out:
                out.append(cell.experiment)
        return out


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _walk(root: Path) -> list[Path]:
    """Files under `root`, at most MAX_DEPTH levels down, never following links out of it."""
    out: list[Path] = []
    frontier = [(root, 0)]
    seen = 0
    while frontier:
        folder, depth = frontier.pop(0)
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                raise AnalysisError(f"{root} holds more than {MAX_ENTRIES} files: not a kit run folder",
                                    where=str(root), fix="pass the kit's output_root (e.g. out_<model>/runs/mac)")
            if entry.is_symlink():
                continue
            if entry.is_dir() and depth + 1 < MAX_DEPTH and not entry.name.startswith("."):
                frontier.append((entry, depth + 1))
            elif entry.is_file():
                out.append(entry)
    return out


def kit_folders_below(path: Path, limit: int = 5) -> list[Path]:
    """Kit run folders a few levels below `path` (someone passed `out_<model>/` instead of its `runs/mac`)."""
    found: list[Path] = []
    for pattern in ("*/*/*.etdump", "*/*/*/*.etdump", "*/*/*_pipeline_summary.json"):
        for hit in sorted(path.glob(pattern))[:100]:
            folder = hit.parent
            if folder not in found and len(found) < limit:
                found.append(folder)
    return found


def is_sme2tui_run(path: Path) -> bool:
    data = _read_json(path / "manifest.json") if (path / "manifest.json").is_file() else None
    return isinstance(data, dict) and (data.get("tool") or {}).get("name") == "sme2tui"


def looks_like_kit_folder(path: Path) -> bool:
    """A folder (not an sme2tui run) holding kit outputs: ETDumps, a pipeline summary, kernel logs, or a kit
    manifest with `results[].experiment`."""
    if not path.is_dir() or is_sme2tui_run(path):
        return False
    try:
        files = _walk(path)
    except AnalysisError:
        return False
    if any(f.suffix == ".etdump" or f.name.endswith(("_pipeline_summary.json", "_xnntrace.log")) for f in files):
        return True
    manifest = _read_json(path / "manifest.json") if (path / "manifest.json").is_file() else None
    return isinstance(manifest, dict) and any(isinstance(r, dict) and "experiment" in r
                                              for r in manifest.get("results") or [])


@dataclass
class _Known:
    experiment: str
    threads: int
    runs: int | None
    warmup: int | None
    how: str


def _from_summary(summary: dict[str, Any], name: str) -> dict[str, _Known]:
    """ETDump / log basename → what the pipeline summary says about it."""
    known: dict[str, _Known] = {}
    for run in summary.get("runs") or []:
        if not isinstance(run, dict) or not isinstance(run.get("experiment"), str):
            continue
        try:
            threads = int(run.get("threads", 1))
        except (TypeError, ValueError):
            continue
        paths = run.get("paths") or {}
        for key in ("etdump", "xnntrace_log"):
            value = paths.get(key) if isinstance(paths, dict) else None
            if isinstance(value, str) and value:
                known[Path(value.replace("\\", "/")).name] = _Known(
                    run["experiment"], threads, _int(run.get("runs")), _int(run.get("warmup")),
                    f"pipeline summary {name}")
    return known


def _from_manifest(manifest: dict[str, Any]) -> dict[str, _Known]:
    """The newer kit's manifest.json / metrics.json: results[] with artifact paths."""
    known: dict[str, _Known] = {}
    for result in manifest.get("results") or []:
        if not isinstance(result, dict) or not isinstance(result.get("experiment"), str):
            continue
        metrics: dict[str, Any] = result["metrics"] if isinstance(result.get("metrics"), dict) else {}
        threads = _int(result.get("threads", metrics.get("threads", 1))) or 1
        artifacts = result.get("artifacts") or result.get("artifact_refs") or {}
        refs: list[Any] = []
        if isinstance(artifacts, dict):
            refs = [artifacts.get("etdump"), artifacts.get("xnntrace_log")]
        refs += [metrics.get("etdump"), metrics.get("etdump_rel")]
        for ref in refs:
            text = ref.get("relative_path") or ref.get("path") if isinstance(ref, dict) else ref
            if isinstance(text, str) and text:
                known[Path(text.replace("\\", "/")).name] = _Known(
                    result["experiment"], threads, _int(result.get("runs", metrics.get("runs"))),
                    _int(result.get("warmup")), "kit manifest.json")
    return known


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _split_name(stem: str, model_stem: str | None, experiments: list[str],
                folder: str | None) -> tuple[str, str] | None:
    """(experiment, how) from `<pte-stem>_<experiment>` (the `_t<N>` already removed)."""
    for exp in sorted(experiments, key=len, reverse=True):
        if stem == exp or stem.endswith(f"_{exp}"):
            return exp, "file name matched a known experiment"
    if model_stem and stem.startswith(f"{model_stem}_"):
        return stem[len(model_stem) + 1:], f"file name minus the model stem `{model_stem}`"
    if folder and (stem == folder or stem.endswith(f"_{folder}")):
        return folder, "the experiment's folder"
    return None


def _common_prefix(rests: list[str]) -> str:
    parts = [r.split("_") for r in rests]
    prefix: list[str] = []
    for words in zip(*parts, strict=False):
        if len(set(words)) != 1:
            break
        prefix.append(words[0])
    # Keep at least one word for the experiment of the shortest name.
    if prefix and len(prefix) >= min(len(p) for p in parts):
        prefix = prefix[:-1]
    return "_".join(prefix)


def _experiment_start(rest: str) -> int | None:
    """Where the experiment begins in `<pte-stem>_<experiment>`: at the platform word before an SME2 side word
    (`…_mac_sme2_on`), at the side word itself (`…_sme2_off`), else at the first platform word; None if nothing
    says."""
    side = _SIDE.search(rest)
    if side is not None:
        before = rest[:side.start(2)]
        platform_word = re.search(r"(^|_)(android|mac|macos|linux|ios|host|darwin)_$", before)
        return platform_word.start(2) if platform_word else side.start(2)
    word = _PLATFORM_START.search(rest)
    return word.start(2) if word else None


def _guess_experiments(rests: list[str]) -> tuple[dict[str, str], str | None, str]:
    """Experiment per rest, the model stem guessed, and how: from the SME2 side and platform words when every name
    has them and they agree on the model, else the common prefix of several names, else the whole name."""
    distinct = sorted(set(rests))
    starts = {r: _experiment_start(r) for r in distinct}
    stems = {r[:i - 1] if i else "" for r, i in starts.items() if i is not None}
    if all(i is not None for i in starts.values()) and len(stems) == 1:
        stem = stems.pop()
        return ({r: r[i:] for r, i in starts.items() if i is not None}, stem or None,
                "the name from its platform / SME2 words on" + (f" (model `{stem}`)" if stem else ""))
    if len(distinct) >= 2:
        prefix = _common_prefix(distinct)
        if prefix:
            return {r: r[len(prefix) + 1:] for r in distinct}, prefix, f"common prefix `{prefix}` taken as the model"
    return {r: r for r in distinct}, None, "the whole name (nothing marks where the model's name ends)"


def _kit_ms(value: object) -> float | None:
    """A figure the kit wrote, shown beside ours as what the kit said: dropped when it is not a time at all
    (NaN, infinite, negative, a bool), so neither summary.json nor the report carries it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _log_numbers(log: Path) -> tuple[int | None, int | None]:
    """(runs, warmup) from the PERFORMANCE SUMMARY the kit appends to a latency log."""
    try:
        with log.open("rb") as handle:  # the summary block is at the end; read only the tail
            handle.seek(max(0, log.stat().st_size - 20_000))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None, None
    # At most 9 digits: an iteration count (a longer one is garbage, and Python refuses over 4300 digits).
    runs = re.search(r"Execution Iterations:\s*(\d{1,9})\b", text)
    warmup = re.search(r"Warmup Iterations:\s*(\d{1,9})\b", text)
    return (int(runs.group(1)) if runs else None), (int(warmup.group(1)) if warmup else None)


def _pairs_from_comparisons(files: list[Path]) -> list[tuple[str, str]]:
    out = []
    for path in files:
        if not path.name.endswith("_robust_comparison.json"):
            continue
        data = _read_json(path)
        if isinstance(data, dict):
            a, b = (data.get("config1") or {}).get("name"), (data.get("config2") or {}).get("name")
            if isinstance(a, str) and isinstance(b, str):
                out.append((a, b))
    return out


def scan_kit_folder(root: Path, kit_config: Path | None = None) -> KitFolder:
    if not root.is_dir():
        raise ConfigError(f"no such folder: {root}", where=str(root), fix="pass the kit's output_root folder")
    files = _walk(root)
    config = load_kit_config(kit_config) if kit_config else None
    summaries = [f for f in files if f.name.endswith("_pipeline_summary.json")]
    summary: dict[str, Any] = {}
    known: dict[str, _Known] = {}
    notes: list[str] = []
    for path in summaries:
        data = _read_json(path)
        if isinstance(data, dict):
            summary = summary or data
            known.update(_from_summary(data, path.name))
        else:
            notes.append(f"{path.name} is not readable JSON: ignored")
    kit_manifest: dict[str, Any] = {}
    for name in ("manifest.json", "metrics.json"):
        data = _read_json(root / name) if (root / name).is_file() else None
        if isinstance(data, dict):
            kit_manifest = kit_manifest or data
            for key, value in _from_manifest(data).items():
                known.setdefault(key, value)
    if config is None and isinstance(kit_manifest.get("config"), str):
        candidate = Path(kit_manifest["config"])
        for base in (root, *root.parents[:4]):
            if (base / candidate).is_file():
                try:
                    config = load_kit_config(base / candidate)
                    notes.append(f"kit config from the kit manifest: {base / candidate}")
                except ConfigError as exc:
                    notes.append(f"the kit manifest names config {candidate}, which is unreadable: {exc.what}")
                break
    model = summary.get("model") if isinstance(summary.get("model"), str) else None
    model = model or (kit_manifest.get("model") if isinstance(kit_manifest.get("model"), str) else None)
    model = model or (config.model if config else None)
    model_stem = Path(model.replace("\\", "/")).stem if model else None
    experiments = sorted({k.experiment for k in known.values()} | {e.name for e in (config.experiments if config
                                                                                     else [])})
    folder = KitFolder(root=root, model=model, model_stem=model_stem, config=config, notes=notes)
    etdumps = [f for f in files if f.suffix == ".etdump"]
    traces = [f for f in files if f.name.endswith("_xnntrace.log")]
    pending: list[tuple[Path, str, int]] = []
    seen: dict[tuple[str, int], Path] = {}

    def add_cell(path: Path, exp: str, threads: int, how: str, info: _Known | None) -> None:
        if (exp, threads) in seen:
            folder.ignored.append(f"{path.relative_to(root)}: a second ETDump for {exp} t{threads} "
                                  f"(kept {seen[(exp, threads)].relative_to(root)})")
            return
        seen[(exp, threads)] = path
        prefix = path.name[:-len(".etdump")]
        cell = KitCell(exp, threads, path, how, runs=info.runs if info else None,
                       warmup=info.warmup if info else None)
        log = path.with_name(f"{prefix}_latency.log")
        cell.latency_log = log if log.is_file() else None
        stats = path.with_name(f"{prefix}_exec_all_runs_timeline_robust_stats.json")
        if stats.is_file():
            cell.robust_stats = stats
            data = _read_json(stats)
            if isinstance(data, dict):
                median, mean, count = data.get("median_ms"), data.get("mean_ms"), data.get("count")
                cell.kit_median_ms, cell.kit_mean_ms = _kit_ms(median), _kit_ms(mean)
                cell.kit_count = count if type(count) is int and 0 < count < 10**9 else None
        if cell.latency_log is not None and (cell.runs is None or cell.warmup is None):
            runs, warmup = _log_numbers(cell.latency_log)
            cell.runs, cell.warmup = cell.runs or runs, cell.warmup if cell.warmup is not None else warmup
        if config is not None and (exp_cfg := config.experiment(exp)) is not None:
            cell.runs = cell.runs or exp_cfg.runs
            cell.warmup = cell.warmup if cell.warmup is not None else exp_cfg.warmup
        folder.cells.append(cell)
        folder.used += [p for p in (path, cell.latency_log, cell.robust_stats) if p is not None and p.is_file()
                        and not p.is_symlink()]

    for path in etdumps:
        stem = path.name[:-len(".etdump")]
        if stem.endswith("_xtrace"):
            folder.ignored.append(f"{path.relative_to(root)}: an xctrace-mode ETDump (a different number of "
                                  "executions, profiler attached): not analyzed")
            continue
        info = known.get(path.name)
        if info is not None:
            add_cell(path, info.experiment, info.threads, info.how, info)
            continue
        match = _THREADS.match(stem)
        if match is None:
            folder.ignored.append(f"{path.relative_to(root)}: not named <model>_<experiment>_t<threads>.etdump")
            continue
        rest, threads = match.group("rest"), int(match.group("threads"))
        parent = path.parent.name if path.parent != root else None
        split = _split_name(rest, model_stem, experiments, parent)
        if split is not None:
            add_cell(path, split[0], threads, split[1], None)
        else:
            pending.append((path, rest, threads))
    # An ETDump the kit's own records list but that is not a regular file here (deleted, a folder, a FIFO):
    # its cell is kept, so the analysis fails it by name instead of comparing what is left as if complete.
    found = {path.name for path in etdumps}
    home = etdumps[0].parent if etdumps else root
    for name, info in sorted(known.items()):
        if name.endswith(".etdump") and not name.endswith("_xtrace.etdump") and name not in found:
            add_cell(home / name, info.experiment, info.threads, f"{info.how} (listed, not found as a file)", info)
    if pending:
        guessed, stem_guess, how = _guess_experiments([r for _, r, _ in pending])
        folder.model_stem = folder.model_stem or stem_guess
        for path, rest, threads in pending:
            add_cell(path, guessed[rest], threads, how, None)
    for log in traces:
        stem = log.name[:-len("_xnntrace.log")]
        info = known.get(log.name)
        match = _THREADS.match(stem)
        if info is not None:
            exp, threads = info.experiment, info.threads
        elif match is not None:
            split = _split_name(match.group("rest"), folder.model_stem, experiments + folder.experiments,
                                log.parent.name if log.parent != root else None)
            exp = split[0] if split else _guess_experiments([match.group("rest")])[0][match.group("rest")]
            threads = int(match.group("threads"))
        else:
            folder.ignored.append(f"{log.relative_to(root)}: not named <model>_<experiment>_t<threads>_xnntrace.log")
            continue
        folder.traces.append(KitTrace(exp, threads, log))
        folder.used.append(log)
    folder.pairing = _pairing(folder, config, _pairs_from_comparisons(files))
    used = set(folder.used)
    for f in files:
        if f not in used and f.suffix != ".etdump" and not f.name.endswith(KNOWN_OUTPUTS):
            folder.ignored.append(f"{f.relative_to(root)}: not a kit output sme2tui reads")
    return folder


def _pairing(folder: KitFolder, config: KitConfig | None, compared: list[tuple[str, str]]) -> KitPairing | None:
    timed = [e for e in folder.experiments if not is_trace_name(e)] or folder.experiments
    if config is not None:
        for pair in config.pairs:
            b, c = pair.baseline, pair.candidate
            if b.experiment in timed and c.experiment in timed and b.threads == c.threads:
                return KitPairing(b.experiment, c.experiment, f"compare_pairs of {config.path.name}")
            folder.notes.append(f"kit pair {b.experiment}@t{b.threads} vs {c.experiment}@t{c.threads} not used: "
                                + ("different thread counts (see the per-cell table)" if b.threads != c.threads
                                   else "no such timed experiment in this folder"))
    for first, second in compared:
        if first in timed and second in timed:
            return KitPairing(first, second, "the kit's robust comparison file (its compare_pairs)")
    for name in timed:
        other = counterpart(name)
        if other in timed and side_from_text(name) == "off":
            return KitPairing(name, other, "experiment names (sme2_off = baseline, sme2_on = candidate)")
    offs = [e for e in timed if side_from_text(e) == "off"]
    ons = [e for e in timed if side_from_text(e) == "on"]
    if len(offs) == 1 and len(ons) == 1:
        return KitPairing(offs[0], ons[0], "experiment names (the only SME2 off and on experiments)")
    return None


def trace_for(folder: KitFolder, experiment: str) -> list[KitTrace]:
    """The kernel logs that go with a timed experiment: its own, or a trace experiment of the same name + _trace."""
    return [t for t in folder.traces if t.experiment == experiment or base_name(t.experiment) == experiment]
