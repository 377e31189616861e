"""Kit config → sme2tui config, field by field, with a table that says what went where and what was dropped.

How paths are found: the kit resolves `model`, `output_root` and runner paths against the folder it is run
from (its repository root; runners also under `executorch/` and `$EXECUTORCH_DIR`). The importer tries the
same places — the kit root above the config (the folder holding `model_profiling/`), `--kit-root`, the
current folder — and writes absolute paths, so the new config works from anywhere.

What changes meaning on the way (said in the table, never silently):
* `warmup`: the kit runs it in a *separate* process and then measures in a fresh one, whose first
  iteration is cold and counted. sme2tui runs warmup in the measuring process itself and excludes it.
* `runs`: the kit measures in one process; sme2tui splits the iterations into `rounds` (default 3),
  alternating the variants, each round with its own in-process warmup.
* `threads` per experiment → one `threads` list: sme2tui measures every variant at every count.
* runner binaries are adopted as they are: their build is unknown to sme2tui, so the pair check can
  not prove the two builds differ only in SME2 (the kit's on/off presets also differ in `-march`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sme2tui.errors import ConfigError
from sme2tui.kit.config import DEFAULT_RUNS, DEFAULT_THREADS, DEFAULT_WARMUP, KitConfig, KitExperiment
from sme2tui.kit.names import Inferred, base_name, counterpart, platform, sme2_side

TARGETS = ("host", "android")


@dataclass(frozen=True)
class MappingRow:
    kit: str  # the kit's field
    value: str  # what the kit config says (or the kit's default)
    sme2tui: str  # where it goes in the sme2tui config, "—" when dropped
    result: str  # what was written, or "dropped"
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kit": self.kit, "value": self.value, "sme2tui": self.sme2tui, "result": self.result,
                "note": self.note}


@dataclass
class ImportResult:
    config: dict[str, Any]
    rows: list[MappingRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what to fix before the config can run
    kit_root: Path | None = None

    @property
    def dropped(self) -> list[MappingRow]:
        return [r for r in self.rows if r.result == "dropped"]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "mapping": [r.to_dict() for r in self.rows],
                "dropped": [r.to_dict() for r in self.dropped], "notes": self.notes, "problems": self.problems,
                "kit_root": str(self.kit_root) if self.kit_root else None}


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 70 else text[:67] + "…"


def slug(text: str) -> str:
    """A valid sme2tui name from a kit name: lowercase, single separators (`android_sme2_on` stays)."""
    out = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    out = re.sub(r"([._-])[._-]+", r"\1", out).strip("._-")
    return out[:64].strip("._-") or "kit"


def find_kit_root(config_path: Path) -> Path | None:
    """The kit checkout a config belongs to: the nearest folder above it holding `model_profiling/`."""
    for parent in config_path.resolve().parents:
        if (parent / "model_profiling").is_dir():
            return parent
    return None


def _bases(kit_root: Path | None, cwd: Path, config_dir: Path) -> list[Path]:
    out: list[Path] = []
    for base in (kit_root, cwd, config_dir):
        if base is not None and base.resolve() not in out:
            out.append(base.resolve())
    return out


def resolve_kit_path(value: str, bases: list[Path]) -> tuple[Path, bool]:
    """(absolute path, exists): the first base where `value` exists, else the first base."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path, path.exists()
    for base in bases:
        if (base / path).exists():
            return (base / path).resolve(), True
    return (bases[0] / path).resolve(), False


def resolve_runner(value: str, bases: list[Path]) -> tuple[Path, bool]:
    """The kit's `resolve_runner_path`: absolute as is; else `$EXECUTORCH_DIR`, `<root>/executorch/…`, `<root>/…`."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path, path.is_file()
    candidates: list[Path] = []
    env = os.environ.get("EXECUTORCH_DIR")
    if env:
        parts = path.parts
        if parts and parts[0] == "executorch":
            candidates.append(Path(env).expanduser().joinpath(*parts[1:]))
        candidates.append(Path(env).expanduser() / path)
    for base in bases:
        candidates += [base / "executorch" / path, base / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve(), True
    return (bases[0] / path).resolve(), False


def default_output_root(model: Path, android: bool) -> Path:
    """The kit's `resolve_output_dir` when `output_root` is absent (results/ or android/ beside the artifacts)."""
    name = "android" if android else "results"
    if model.parent.name == "artifacts":
        return model.parent.parent / name
    for parent in model.parent.parents:
        if parent.name.startswith("out_"):
            return parent / name
    return model.parent / name


def _mask_to_cpus(mask: str) -> list[int] | None:
    try:
        value = int(mask, 16)
    except ValueError:
        return None
    return [bit for bit in range(value.bit_length()) if value >> bit & 1] or None


def _verbose_runner(extra: list[str]) -> str | None:
    """The kit's mac xnntrace runs take the log-enabled runner from `--verbose-runner X` in extra_args."""
    for i, arg in enumerate(extra):
        if arg == "--verbose-runner" and i + 1 < len(extra):
            return extra[i + 1]
        if arg.startswith("--verbose-runner="):
            return arg.split("=", 1)[1]
    return None


class _Importer:
    def __init__(self, kit: KitConfig, *, kit_root: Path | None, cwd: Path, target: str | None) -> None:
        self.kit = kit
        self.kit_root = kit_root or find_kit_root(kit.path)
        self.cwd = cwd.resolve()
        self.bases = _bases(self.kit_root, cwd, kit.path.resolve().parent)
        self.target_override = target
        self.rows: list[MappingRow] = []
        self.notes: list[str] = []
        self.problems: list[str] = []

    def row(self, kit: str, value: Any, sme2tui: str, result: Any, note: str = "") -> None:
        self.rows.append(MappingRow(kit, _show(value), sme2tui, _show(self.shown(result)), note))

    def shown(self, value: Any) -> Any:
        """Paths under the current folder as `./…` in the table (the config itself has them absolute)."""
        if isinstance(value, str) and value.startswith("/"):
            try:
                return "./" + Path(value).relative_to(self.cwd).as_posix()
            except ValueError:
                return value
        return value

    def drop(self, kit: str, value: Any, why: str) -> None:
        self.rows.append(MappingRow(kit, _show(value), "—", "dropped", why))

    # --- the parts --------------------------------------------------------------------------------------

    def choose_target(self) -> tuple[str, list[KitExperiment]]:
        found = {e.name: platform(e.name, e.runner_path) for e in self.kit.experiments}
        named = {e.name: f.value for e, f in zip(self.kit.experiments, found.values(), strict=True) if f.value}
        if self.target_override:
            target = self.target_override
            why = "--target"
        else:
            kinds = {"android" if v == "android" else "host" for v in named.values()}
            if len(kinds) > 1:
                listing = ", ".join(f"{n} ({v})" for n, v in named.items())
                raise ConfigError(
                    f"the kit config mixes Android and host experiments ({listing}); the kit runs them with two "
                    "scripts (android_pipeline.py, mac_pipeline.py), sme2tui runs one target per config",
                    where=str(self.kit.path), fix="import it twice: --target android and --target host (each keeps "
                    "its own experiments and lists the others as dropped)")
            target = kinds.pop() if kinds else "host"
            why = "experiment names / runner paths" if named else "nothing names a platform: this host assumed " \
                "(pass --target android for a phone)"
        kept = []
        for e in self.kit.experiments:
            kind = found[e.name].value
            side = "android" if kind == "android" else "host" if kind else None
            if side is not None and side != target:
                self.drop(f"{e.where}", e.name, f"a {kind} experiment; this import is for target {target} "
                          f"(import again with --target {side})")
                continue
            kept.append(e)
        self.row("(experiment names, runner paths)", sorted({v for v in named.values()}) or "none", "target.kind",
                 target, f"from {why}")
        return target, kept

    def model(self) -> tuple[dict[str, Any], Path]:
        pte, found = resolve_kit_path(self.kit.model, self.bases)
        spec: dict[str, Any] = {"pte": str(pte), "name": slug(pte.stem)}
        where = "models[0].pte"
        self.row("model", self.kit.model, where, str(pte), "ready program: run as exported (no export step)" +
                 ("" if found else "; NOT FOUND"))
        if not found:
            looked = ", ".join(str(b) for b in self.bases)
            self.problems.append(
                f"{where}: {pte} does not exist (looked under {looked}): export it with the kit "
                "(python model_profiling/export/export_model.py …) or point models[0].pte at your .pte; then "
                "`sme2tui config validate` checks it")
        for candidate in (pte.with_name(pte.name + ".etrecord"), pte.with_suffix(".etrecord")):
            if candidate.is_file():
                spec["etrecord"] = str(candidate)
                self.row("(beside the model)", candidate.name, "models[0].etrecord", str(candidate),
                         "the kit's exporter writes it next to the .pte")
                break
        return spec, pte

    def variant(self, e: KitExperiment, target: str, taken: set[str], others: list[str]) -> dict[str, Any]:
        name = slug(e.name)
        while name in taken:
            name = f"{name}-{e.index}"
        taken.add(name)
        at = f"variants[{len(taken) - 1}]"
        self.row(f"{e.where}.name", e.name, f"{at}.name", name, "" if name == e.name else "made a valid name")
        side = sme2_side(e.name, e.runner_path, others)
        variant: dict[str, Any] = {"name": name}
        trace = e.mode == "xnntrace"
        variant["label"] = (f"{e.name}: kernel log (kit xnntrace), evidence only" if trace else e.name)[:80]
        self.row(f"{e.where}.mode", e.mode + (" (kit default)" if "mode" in e.defaulted else ""),
                 f"{at}.label", variant["label"],
                 "a kernel-log run: its runner's stderr/logcat names the micro-kernels (SME2 evidence); trace "
                 "logging slows it, so it is never one side of the speed comparison" if trace else
                 "a timed run (ETDump per iteration)")
        self._side(variant, side, e, at)
        runner = _verbose_runner(e.extra_args) if trace else None
        runner = runner or e.runner_path
        key = f"{e.where}.{e.runner_key or 'runner_path'}" if runner == e.runner_path else \
            f"{e.where}.extra_args (--verbose-runner)"
        if runner:
            path, found = resolve_runner(runner, self.bases)
            variant["runner"] = str(path)
            self.row(key, runner, f"{at}.runner", str(path),
                     "adopted runner: built outside sme2tui, so its build (flags, ExecuTorch commit, SME2 "
                     "switches) is recorded as unknown" + ("" if found else "; NOT FOUND"))
            if not found:
                self.problems.append(
                    f"{at}.runner: {path} does not exist: build it with the kit (model_profiling/scripts/"
                    f"build_runners.sh), point it at your binary, or use sme2tui's own verified pair "
                    f"(`sme2tui build {'android' if target == 'android' else 'macos'}`, runner "
                    f"`sme2-{side.value or 'on'}`)")
        elif target == "android":
            built = f"sme2-{side.value}" if side.value else "sme2-on"
            variant["runner"] = built
            self.row(f"{e.where}.runner_path", "(none: the kit used the executor_runner already on the device)",
                     f"{at}.runner", built, "sme2tui pushes the runner it built (`sme2tui build android`); it does "
                     "not run binaries it did not push")
        else:
            variant["runner"] = "auto"
            self.row(f"{e.where}.runner_path", "(none; the kit's mac pipeline refuses this)", f"{at}.runner",
                     "auto", "sme2tui's native host runner")
        for key_name, value in e.doc_names.items():
            used = {"num_runs": e.runs, "num_threads": e.threads}[key_name]
            self.drop(f"{e.where}.{key_name}", value,
                      f"the kit's docs name it, but its loader never reads it: the kit ran "
                      f"{'runs' if key_name == 'num_runs' else 'threads'} = {_show(used)}"
                      f"{' (its default)' if ('runs' if key_name == 'num_runs' else 'threads') in e.defaulted else ''}"
                      f"; sme2tui carries over what the kit actually used")
        if e.extra_args:
            self.drop(f"{e.where}.extra_args", e.extra_args,
                      "sme2tui builds the runner command line itself (model, threads, iterations, ETDump, inputs); "
                      "extra flags would change what is measured without being recorded")
        for key_name in e.unknown_keys:
            self.drop(f"{e.where}.{key_name}", "…", "not a kit key: the kit silently ignored it")
        return variant

    def _side(self, variant: dict[str, Any], side: Inferred, e: KitExperiment, at: str) -> None:
        if side.value:
            variant["sme2"] = side.value
            self.row(f"{e.where} (name, runner)", e.name, f"{at}.sme2", side.value,
                     f"claimed by the {side.reason}; checked against kernel logs, never assumed")
        else:
            self.row(f"{e.where} (name, runner)", e.name, f"{at}.sme2", "(not set)", side.reason)

    def numbers(self, timed: list[KitExperiment], config: dict[str, Any]) -> None:
        source = timed or self.kit.experiments
        for key, sme2tui_key in (("runs", "iterations"), ("warmup", "warmup")):
            values = {e.name: getattr(e, key) for e in source}
            chosen = max(values.values())
            defaulted = [e.name for e in source if key in e.defaulted]
            note = {"runs": "kit: all in one process; sme2tui: split over `rounds` processes (default 3), "
                            "variants alternating (A B, B A, …)",
                    "warmup": "kit: in a separate process, then a fresh process is measured (its first, cold "
                              "iteration counted); sme2tui: in the measuring process, before each round, excluded"
                    }[key]
            if len(set(values.values())) > 1:
                note += f"; experiments differ ({_show(values)}): the largest is used for all"
            if defaulted:
                default = DEFAULT_RUNS if key == "runs" else DEFAULT_WARMUP
                note += f"; {', '.join(defaulted)}: not set, the kit's default {default}"
            config[sme2tui_key] = chosen
            shown = values if len(set(values.values())) > 1 else chosen
            self.row(f"experiments[].{key}", shown, sme2tui_key, chosen, note)
        threads = sorted({t for e in source for t in e.threads})
        differ = len({tuple(e.threads) for e in source}) > 1
        defaulted = [e.name for e in source if "threads" in e.defaulted]
        note = "every variant is measured at every count" + (
            " (the experiments listed different counts)" if differ else "")
        if defaulted:
            note += f"; {', '.join(defaulted)}: not set, the kit's default {list(DEFAULT_THREADS)}"
        config["threads"] = threads
        self.row("experiments[].threads", {e.name: e.threads for e in source} if differ else threads, "threads",
                 threads, note)
        if config["warmup"] == 0:
            self.notes.append("warmup is 0: every round's first iteration is cold and counted; sme2tui flags it "
                              "(first-iteration outlier) — consider warmup ≥ 1")

    def affinity(self, experiments: list[KitExperiment], target: str, config: dict[str, Any]) -> None:
        masks = {e.name: e.cpu_affinity for e in experiments if e.cpu_affinity}
        if not masks:
            return
        first = next(iter(masks.values()))
        differ = len(set(masks.values())) > 1
        where = "experiments[].cpu_affinity" if differ else \
            f"{next(e.where for e in experiments if e.cpu_affinity)}.cpu_affinity"
        if target == "android":
            try:
                int(first, 16)
            except ValueError:
                self.drop(where, first, "not a hexadecimal taskset mask")
                return
            config["target"]["cpu_mask"] = first
            self.row(where, masks if differ else first, "target.cpu_mask", first,
                     "taskset mask on the phone" + ("; experiments differ: the first is used for all" if differ
                                                    else ""))
        elif platform_kind(experiments) == "macos":
            self.drop(where, first, "the kit ignores cpu_affinity on macOS (only its Android runner uses taskset), "
                      "and macOS cannot pin processes to cores")
        else:
            cpus = _mask_to_cpus(first)
            if cpus is None:
                self.drop(where, first, "not a hexadecimal CPU mask")
                return
            config["target"]["cpu_affinity"] = cpus
            self.row(where, first, "target.cpu_affinity", cpus, "mask bits → CPU ids (Linux sched_setaffinity)")

    def compare(self, variants: dict[str, str], timed: list[KitExperiment], config: dict[str, Any]) -> None:
        """`variants` maps kit experiment names to sme2tui variant names."""
        timed_names = {e.name for e in timed}
        chosen: tuple[str, str] | None = None
        for pair in self.kit.pairs:
            where = f"analysis.compare_pairs[{pair.index}]"
            b, c = pair.baseline, pair.candidate
            if b.experiment not in variants or c.experiment not in variants:
                missing = [s.experiment for s in (b, c) if s.experiment not in variants]
                self.drop(where, f"{b.experiment} vs {c.experiment}", f"names {missing}, which are not imported "
                          "experiments (the kit skipped such pairs silently)")
            elif b.experiment not in timed_names or c.experiment not in timed_names:
                self.drop(where, f"{b.experiment} vs {c.experiment}", "a kernel-log (xnntrace) experiment cannot "
                          "be one side of a speed comparison")
            elif b.threads != c.threads:
                self.drop(where, f"{b.experiment}@t{b.threads} vs {c.experiment}@t{c.threads}",
                          "compares different thread counts; an sme2tui pair compares two variants at the same "
                          "count (every count is in the per-cell table)")
            elif chosen is not None and chosen != (b.experiment, c.experiment):
                self.drop(where, f"{b.experiment} vs {c.experiment}", "sme2tui compares one pair per config; the "
                          "first kit pair is used (import again after reordering to pick another)")
            else:
                if chosen is None:
                    chosen = (b.experiment, c.experiment)
                self.row(where, f"{b.experiment} vs {c.experiment} @t{b.threads}" +
                         (f" ({pair.label})" if pair.label else ""), "compare",
                         f"{variants[b.experiment]} → {variants[c.experiment]}", "baseline → candidate, at every "
                         "thread count, with a 95% bootstrap interval (the kit printed a bare ratio)")
        if chosen is None:
            chosen = self._pair_by_names(timed)
            if chosen is not None:
                self.row("analysis.compare_pairs", "[]" if not self.kit.pairs else "(none usable)", "compare",
                         f"{variants[chosen[0]]} → {variants[chosen[1]]}",
                         "from the experiment names (SME2 off = baseline, SME2 on = candidate)")
        if chosen is not None:
            config["compare"] = {"baseline": variants[chosen[0]], "candidate": variants[chosen[1]]}
        elif len(variants) >= 2 and not timed:
            self.notes.append("only kernel-log (xnntrace) experiments: read their SME2 evidence, not their times "
                              "(trace logging slows them); sme2tui still compares the first two variants, so "
                              "ignore that ratio or add the timed experiments")
        elif len(variants) >= 2:
            self.notes.append("no comparison found (no usable compare_pairs, no sme2_off/sme2_on names): sme2tui "
                              "compares the first two variants; set `compare` to choose")

    @staticmethod
    def _pair_by_names(timed: list[KitExperiment]) -> tuple[str, str] | None:
        names = [e.name for e in timed]
        for name in names:
            other = counterpart(name)
            if other in names and sme2_side(name, None, []).value == "off":
                return name, other
        offs = [e.name for e in timed if sme2_side(e.name, e.runner_path, []).value == "off"]
        ons = [e.name for e in timed if sme2_side(e.name, e.runner_path, []).value == "on"]
        if len(offs) == 1 and len(ons) == 1:
            return offs[0], ons[0]
        return None

    def run(self) -> ImportResult:
        kit = self.kit
        if not kit.experiments:
            raise ConfigError("the kit config has no experiments: nothing to measure", where=str(kit.path),
                              fix="add experiments (see the kit's configs/templates/)")
        target, experiments = self.choose_target()
        if not experiments:
            raise ConfigError(f"no experiment of the kit config runs on target {target}", where=str(kit.path),
                              fix="pick the other --target")
        model, pte = self.model()
        config: dict[str, Any] = {
            "name": slug(f"kit-{kit.path.stem}"),
            "description": f"Imported from Arm's SME2 ExecuTorch profiling kit config {kit.path.name} by "
                           "`sme2tui config import`",
            "models": [model],
        }
        timed = [e for e in experiments if e.mode == "timing"]
        others = [e.runner_path for e in experiments if e.runner_path]
        taken: set[str] = set()
        # Timed runs first: without a pair, sme2tui compares the first two variants.
        ordered = timed + [e for e in experiments if e.mode != "timing"]
        variants = {e.name: "" for e in ordered}
        variant_specs = []
        for e in ordered:
            spec = self.variant(e, target, taken, others)
            variants[e.name] = spec["name"]
            variant_specs.append(spec)
        config["variants"] = variant_specs
        self.compare(variants, timed, config)
        if config.get("compare"):
            pair = config["compare"]
            by_name = {v["name"]: v for v in variant_specs}
            order = [by_name[pair["baseline"]], by_name[pair["candidate"]]]
            config["variants"] = order + [v for v in variant_specs if v not in order]
        self.numbers(timed, config)
        config["target"] = {"kind": target}
        self.affinity(experiments, target, config)
        root = resolve_kit_path(kit.output_root, self.bases)[0] if kit.output_root else \
            default_output_root(pte, target == "android")
        config["output_root"] = str(root)
        self.row("output_root", kit.output_root or "(not set)", "output_root", str(root),
                 "kept; sme2tui writes one new folder per run inside it (<UTC stamp>-<name>/), never into the "
                 "kit's flat files" + ("" if kit.output_root else "; derived like the kit does from the model path"))
        for key in kit.unknown_keys:
            self.drop(key, "…", "not a kit key: the kit silently ignored it")
        for key in kit.duplicate_keys:
            self.notes.append(f"`{key}` is written twice in the kit config; the kit (and this import) used the "
                              "last one")
        for e in experiments:
            if e.mode == "xnntrace" and not any(x.name == base_name(e.name) for x in timed) and timed:
                self.notes.append(f"kernel-log experiment {e.name} has no timed experiment of the same name "
                                  f"({base_name(e.name)}): its evidence is reported for its own variant")
        self.notes.append("rounds: sme2tui's default 3 (the kit measured in one process); interleaving variants "
                          "between rounds keeps machine drift from favouring one side")
        self.notes.append("adopted runners: their builds are unknown to sme2tui, so a comparison of them is never "
                          "called a verified SME2 on/off pair; `sme2tui build` makes pairs it can prove")
        return ImportResult(config=config, rows=self.rows, notes=self.notes, problems=self.problems,
                            kit_root=self.kit_root)


def platform_kind(experiments: list[KitExperiment]) -> str | None:
    kinds = {platform(e.name, e.runner_path).value for e in experiments} - {None}
    return kinds.pop() if len(kinds) == 1 else None


def import_kit_config(kit: KitConfig, *, kit_root: Path | None = None, cwd: Path | None = None,
                      target: str | None = None) -> ImportResult:
    if target is not None and target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}", where="--target", fix="host or android")
    return _Importer(kit, kit_root=kit_root, cwd=cwd or Path.cwd(), target=target).run()


def render_mapping(result: ImportResult) -> str:
    """The mapping table for a terminal: kit field → sme2tui field, with what was dropped and why."""
    header = ("kit field", "kit value", "sme2tui field", "written", "note")
    rows = [(r.kit, r.value, r.sme2tui, r.result, r.note) for r in result.rows]
    widths = [min(max(len(h), *(len(r[i]) for r in rows)), cap) for i, (h, cap) in
              enumerate(zip(header, (38, 28, 20, 34, 10_000), strict=True))]

    def line(cells: tuple[str, ...]) -> str:
        parts = [cell if i == len(cells) - 1 else (cell if len(cell) <= w else cell[:w - 1] + "…").ljust(w)
                 for i, (cell, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    out = [line(header), line((*("-" * w for w in widths[:4]), "----"))]
    out += [line(r) for r in rows]
    if result.notes:
        out += ["", "notes:"] + [f"  - {n}" for n in result.notes]
    dropped = result.dropped
    out += ["", f"dropped: {len(dropped)} kit field(s)" + (" (see the table: 'dropped')" if dropped else "")]
    if result.problems:
        out += ["", "to fix before running:"] + [f"  - {p}" for p in result.problems]
    return "\n".join(out)


def import_to_file(kit_path: Path, output: Path | None, *, kit_root: Path | None = None,
                   target: str | None = None) -> tuple[ImportResult, Path, dict[str, Any]]:
    """Import a kit config and write the sme2tui config: (result, where it went, validation).

    The default output (`sme2tui-<name>.json` here) is never overwritten and the kit config never is; a missing
    .pte does not stop the import: validation then says what to fix."""
    from sme2tui.config import load_config
    from sme2tui.errors import Sme2Error
    from sme2tui.fileio import write_text_atomic
    from sme2tui.kit.config import load_kit_config

    result = import_kit_config(load_kit_config(kit_path), kit_root=kit_root, target=target)
    out = output or Path(f"sme2tui-{result.config['name']}.json")
    if out.resolve() == kit_path.resolve():
        raise ConfigError("the output would overwrite the kit config itself", where=str(out),
                          fix="pass another --output path")
    if out.exists() and output is None:
        raise ConfigError(f"{out} exists", where=str(out), fix="pass --output PATH (an explicit path may be "
                          "overwritten) or remove it")
    try:
        write_text_atomic(out, json.dumps(result.config, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}", where=str(out),
                          fix="pick a writable --output path") from None
    validation: dict[str, Any] = {"valid": True, "error": None}
    try:
        load_config(out)
    except Sme2Error as exc:
        validation = {"valid": False, "error": exc.to_dict()}
    return result, out, validation


def render_outcome(out: Path, validation: dict[str, Any]) -> str:
    if validation["valid"]:
        return f"\nwrote {out}\n  valid: sme2tui --auto --config {out}"
    err = validation["error"]
    return (f"\nwrote {out}\n  not runnable yet: {err['what']}\n  fix:   {err['fix']}\n"
            f"  then:  sme2tui config validate {out}")
