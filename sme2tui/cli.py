"""The `sme2tui` command: the wizard (no arguments), `--auto` (headless), and one subcommand per step.

Startup stays light: nothing here imports torch, executorch or Textual at module level; each command
imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from sme2tui import __version__
from sme2tui.errors import AnalysisError, ConfigError, Sme2Error, terminal_safe
from sme2tui.exit_codes import EXIT_CODE_MEANINGS, ExitCode

BUILTIN_DEFAULT = Path(__file__).resolve().parent / "data" / "quickstart.json"


def _exit_codes_epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {int(c):>3}  {m}" for c, m in EXIT_CODE_MEANINGS.items())


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors use our exit code and format (what, where, fix)."""

    _argv: tuple[str, ...] = ()

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._argv = tuple(str(a) for a in (sys.argv[1:] if args is None else args))
        return super().parse_args(args, namespace)

    def _options_in_reach(self) -> tuple[set[str], str]:
        """The flags of this parser and of the (sub)commands named on the command line, and the deepest prog."""
        known, parser = set(self._option_string_actions), cast(argparse.ArgumentParser, self)
        for token in self._argv:
            commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            if commands is not None and token in commands.choices:
                parser = commands.choices[token]
                known |= set(parser._option_string_actions)
        return known, parser.prog

    def _unknown_option(self, tokens: list[str]) -> tuple[str, str] | None:
        """The first unknown `--flag` among tokens, with a did-you-mean (or: that key belongs in the config)."""
        known, prog = self._options_in_reach()
        for token in tokens:
            flag = token.split("=", 1)[0]
            if not flag.startswith("--") or flag in known:
                continue
            key = flag[2:].replace("-", "_")
            from sme2tui.config import RunConfig

            if key in RunConfig.model_fields:
                return (f"unknown option `{flag}`: `{key}` is a config key, not a command-line flag",
                        f"set `{key}` in a config file and pass it with --config FILE (`sme2tui init` writes one)")
            guess = difflib.get_close_matches(flag, sorted(o for o in known if o.startswith("--")), n=1, cutoff=0.6)
            return f"unknown option `{flag}`", (f"did you mean `{guess[0]}`? " if guess else "") + \
                f"see `{prog} --help`"
        return None

    def error(self, message: str) -> Any:
        fix = f"see `{self.prog} --help`"
        choice = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)", message)
        if choice:  # an unknown `--flag VALUE` before the command makes argparse take VALUE for the command
            before = list(self._argv[:self._argv.index(choice.group(1))]) if choice.group(1) in self._argv else []
            unknown = self._unknown_option(before)
        elif message.startswith("unrecognized arguments: "):
            unknown = self._unknown_option(message.removeprefix("unrecognized arguments: ").split())
        else:
            unknown = None
        if unknown:
            raise ConfigError(unknown[0], where=f"command line: {self.prog}", fix=unknown[1])
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            guess = difflib.get_close_matches(choice.group(1), options, n=1, cutoff=0.5)
            if guess:
                fix = f"did you mean `{guess[0]}`? ({fix})"
        raise ConfigError(message, where=f"command line: {self.prog}", fix=fix)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sme2tui",
        description="Measure how much faster an ExecuTorch model runs with Arm SME2 on than off, and where the "
        "remaining time goes. No arguments: the wizard. --auto: the whole pipeline, headless.",
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sme2tui {__version__}")
    parser.add_argument("--auto", action="store_true", help="run every step without questions (CI, agents)")
    parser.add_argument("--config", type=Path, help="run config JSON (default: the built-in quickstart)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run folder")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    parser.add_argument("--output-root", type=Path, help="where run folders go (overrides the config)")
    parser.add_argument("--runners-dir", type=Path, dest="top_runners_dir",
                        help="where runners are built and found (overrides the config's runners_dir; default "
                        "~/.cache/sme2tui/runners)")
    parser.add_argument("--categories", type=Path, help="operator-category rules (default: configs/categories.json)")
    parser.add_argument("--verbose", "-v", action="store_true", help="also print debug log lines")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("doctor", help="check the environment (tools, packages, NDK, adb, SME2)")
    p.add_argument("--json", action="store_true", dest="sub_json", help="print the checks as JSON")

    p = sub.add_parser("config", help="config schema and validation")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser, required=True)
    csub.add_parser("schema", help="print the JSON Schema of run configs")
    v = csub.add_parser("validate", help="validate a config file")
    v.add_argument("file", type=Path)
    v.add_argument("--json", action="store_true", dest="sub_json", help="print the result as JSON")
    v = csub.add_parser("import", help="translate a config of Arm's SME2 ExecuTorch profiling kit into a sme2tui "
                        "config, with a field-by-field mapping table")
    v.add_argument("file", type=Path, metavar="KIT_CONFIG")
    v.add_argument("--output", "-o", type=Path, help="where to write it (default: sme2tui-<name>.json here; an "
                   "explicit path may be overwritten, the default never is)")
    v.add_argument("--kit-root", type=Path, help="the kit checkout its relative paths start from (default: the "
                   "folder above the config holding model_profiling/, else the current folder)")
    v.add_argument("--target", choices=["host", "android"], help="import only this platform's experiments "
                   "(default: read from the experiment names and runner paths)")
    v.add_argument("--json", action="store_true", dest="sub_json", help="print the result as JSON")

    p = sub.add_parser("devices", help="list Android devices with their SME/SME2 verdict, cores and thermal state")
    p.add_argument("--adb-server", help="ADB server HOST:PORT (default: $ADB_SERVER_SOCKET or 127.0.0.1:5037)")
    p.add_argument("--json", action="store_true", dest="sub_json")

    p = sub.add_parser("init", help="answer a few questions, get a valid config file (plain terminal)")
    p.add_argument("--output", "-o", type=Path, help="where to write it (default: asks, suggests sme2tui.json)")

    p = sub.add_parser("models", help="list the built-in models")
    p.add_argument("--json", action="store_true", dest="sub_json")

    for name, text in (("export", "export the config's models (cached by content hash)"),
                       ("run", "export if needed, run every cell, analyze and report (the same as --auto)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", type=Path, dest="sub_config", help="run config JSON (default: quickstart)")
        p.add_argument("--output-root", type=Path, dest="sub_output_root")
        p.add_argument("--json", action="store_true", dest="sub_json")
        if name == "run":
            p.add_argument("--resume", type=Path, dest="sub_resume", metavar="RUN_DIR")
            p.add_argument("--runners-dir", type=Path, dest="sub_runners_dir")

    p = sub.add_parser("analyze", help="analyze run folders again, run folders of Arm's SME2 profiling kit (into a "
                       "new run folder), or bare .etdump files from any runner")
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                   help="run folder(s), kit run folder(s) (its output_root) and/or .etdump file(s)")
    p.add_argument("--categories", type=Path, dest="sub_categories", help="operator-category rules JSON")
    p.add_argument("--warmup", type=int, default=None, help="iterations to drop: from bare .etdump files (default "
                   "0) and from a kit folder's ETDumps (default 1: the cold first one the kit counted)")
    p.add_argument("--kit-config", type=Path, help="the kit config that made a kit run folder (its compare_pairs "
                   "pair the experiments; default: the folder's own records, then sme2_off/sme2_on names)")
    p.add_argument("--output-root", type=Path, dest="sub_output_root",
                   help="where the analysis of a kit folder goes, as a new run folder (default: runs/)")
    p.add_argument("--json", action="store_true", dest="sub_json")

    p = sub.add_parser("compare", help="compare the same cells of two analyzed runs (B vs A); kit run folders are "
                       "analyzed first")
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--kit-config", type=Path, help="kit config for kit run folders (see `analyze`)")
    p.add_argument("--output-root", type=Path, dest="sub_output_root",
                   help="where kit folders are analyzed to (default: runs/)")
    p.add_argument("--json", action="store_true", dest="sub_json")

    p = sub.add_parser("build", help="build runners: the native host runner, the emulated arm64 runner, or SME2 "
                       "on/off pairs")
    p.add_argument("target", choices=["host", "arm64", "android", "macos"])
    p.add_argument("--variants", default="sme2-on,sme2-off",
                   help="pair variants (android/macos): sme2-on, sme2-off, sme2-on-kernellog, sme2-off-kernellog")
    p.add_argument("--runners-dir", type=Path, help="where runners are built (default: the config key "
                   "runners_dir's default, ~/.cache/sme2tui/runners)")
    p.add_argument("--source", type=Path, help="ExecuTorch source tree (android/macos; see `sme2tui setup`)")
    p.add_argument("--ndk", type=Path, help="Android NDK (default: $ANDROID_NDK / $ANDROID_NDK_HOME)")
    p.add_argument("--android-platform", default="android-26")

    p = sub.add_parser("setup", help="set up an ExecuTorch source tree for pair builds, or SME2 emulation (QEMU + "
                       "the aarch64 ExecuTorch runtime)")
    p.add_argument("what", choices=["executorch", "emulator"])
    p.add_argument("--ref", help="git ref (default: the installed executorch package's exact commit)")
    p.add_argument("--path", type=Path, help="clone here, or adopt the tree already here")

    p = sub.add_parser("report", help="write analysis/report.md for an analyzed run folder")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", action="store_true", dest="sub_json", help="print where the report is as JSON")
    return parser


# --- output -------------------------------------------------------------------------------------------


class EventPrinter:
    """Human progress on stderr: one line per meaningful event, no spinners (logs stay greppable)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self.symbols = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-"}

    def __call__(self, event: Any) -> None:
        from sme2tui import events as ev

        line: str | None = None
        if isinstance(event, ev.StepStarted):
            line = f"\n== {event.title}"
        elif isinstance(event, ev.LogLine):
            if event.level != "debug" or self.verbose:
                line = f"   {event.text}"
        elif isinstance(event, ev.Checkpoint):
            subject = f" [{event.subject}]" if event.subject else ""
            line = f" {self.symbols[event.status]} {event.name}{subject}: {event.detail}"
            if event.fix and event.status in ("warn", "fail"):
                line += f"\n     fix: {event.fix}"
        elif isinstance(event, ev.CellStatus):
            if event.state in ("done", "failed", "skipped"):
                line = f"   cell {event.cell_id}: {event.state}" + (f" ({event.detail})" if event.detail else "")
            elif event.state == "running" and event.detail == "measuring" and \
                    event.iterations_done == event.iterations_total:
                line = None
        elif isinstance(event, ev.ArtifactWritten) and event.kind in ("report",):
            line = f"   wrote {event.path}"
        elif isinstance(event, ev.StepFinished) and event.summary:
            line = f"   {'done' if event.ok else 'finished with problems'}: {event.summary}"
        if line is not None:
            print(terminal_safe(line), file=sys.stderr, flush=True)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# --- commands -----------------------------------------------------------------------------------------


def _load(path: Path | None) -> tuple[Any, str, Path | None]:
    from sme2tui.config import load_config

    if path is None:
        return load_config(BUILTIN_DEFAULT), "built-in quickstart", None
    config = load_config(path)
    return config, str(path), path.resolve().parent


def _output_root(flag: Path | None) -> Path | None:
    """--output-root as given; `~` expanded here too (`--output-root=~/runs` reaches us unexpanded)."""
    if flag is None:
        return None
    from sme2tui.config import expand_path

    return expand_path(str(flag), "--output-root")


def cmd_auto(args: argparse.Namespace) -> int:
    import threading

    from sme2tui.pipeline import Pipeline
    from sme2tui.report.console import human_summary
    from sme2tui.run.folder import RunFolder

    resume = None
    if args.resume:
        if args.config:
            raise ConfigError("--resume uses the run folder's own config; do not pass --config with it",
                              where="command line", fix="drop --config")
        resume, config = RunFolder.open(args.resume)
        if (resume.manifest.get("source") or {}).get("kind") == "arm-kit-run-folder":
            raise ConfigError("this run folder is sme2tui's analysis of a run of Arm's kit: there is nothing to "
                              "resume", where=str(args.resume), fix="analyze the kit folder again (sme2tui analyze "
                              "KIT_RUN_DIR), or import its config (sme2tui config import) and run that")
        source, config_dir = str(args.resume / "config.json"), None
    else:
        config, source, config_dir = _load(args.config)
    if args.categories:
        from sme2tui.analysis.categorize import Categorizer

        Categorizer.load(args.categories)  # a bad rules file fails now, not after every cell was measured
    output_root = _output_root(args.output_root) or (args.resume.parent if args.resume else
                                                     Path(config.output_root))
    if args.top_runners_dir:
        from sme2tui.config import expand_path

        config = config.model_copy(update={"runners_dir": str(expand_path(str(args.top_runners_dir),
                                                                           "--runners-dir"))})
    printer = EventPrinter(args.verbose)
    pipeline = Pipeline(config, config_source=source, config_dir=config_dir, output_root=output_root,
                        resume=resume, categories=args.categories, cancel=threading.Event())
    error: Sme2Error | None = None
    events = pipeline.events()
    try:
        for event in events:
            printer(event)
    except Sme2Error as exc:
        error = exc
    except KeyboardInterrupt:
        events.close()  # lands in the pipeline as GeneratorExit: the run folder is marked interrupted
        error = pipeline.interrupted_error()
    result = pipeline.result
    run_dir = str(result.run_dir) if result.run_dir else None
    if result.summary is not None and result.run_dir is not None:
        print(human_summary(result.summary, run_dir or "", str(result.run_dir / "analysis" / "report.md")),
              file=sys.stderr)
    code = error.exit_code if error else result.exit_code
    if error:
        print(error.render(), file=sys.stderr)
    elif code != ExitCode.OK:
        print(f"finished with exit code {int(code)}: {EXIT_CODE_MEANINGS[code]}", file=sys.stderr)
        for cp in result.failed_checkpoints[:5]:
            print(f"  ✗ {cp.name} [{cp.subject}]: {cp.detail}\n    fix: {cp.fix}", file=sys.stderr)
        failed_cells = [(cell_id, cell.get("error") or {}) for cell_id, cell in
                        (pipeline.folder.manifest["cells"].items() if pipeline.folder else [])
                        if cell.get("status") == "failed"]
        for cell_id, cell_error in failed_cells[:5]:
            print(f"  ✗ cell {cell_id}: {cell_error.get('what', 'failed')}\n    fix: "
                  f"{cell_error.get('fix') or 'see the cell folder; re-run with --resume'}", file=sys.stderr)
    if args.json:
        _print_json(machine_summary(result, code, error))
    return int(code)


def machine_summary(result: Any, code: ExitCode, error: Sme2Error | None) -> dict[str, Any]:
    summary = result.summary or {}
    cells = {k: {"median_ms": v["latency"]["median"], "iterations": v["latency"]["n"], "cv": v["latency"]["cv"],
                 "source": v["source"], "categories_ms": v["categories_ms"], **peer_digest(v.get("peers"))}
             for k, v in summary.get("cells", {}).items()}
    return {
        "ok": code == ExitCode.OK,
        "exit_code": int(code),
        "exit_meaning": EXIT_CODE_MEANINGS[code],
        "status": result.status,
        "run_dir": str(result.run_dir.resolve()) if result.run_dir else None,
        "report": str((result.run_dir / "analysis" / "report.md").resolve()) if result.run_dir and summary else None,
        "comparison": summary.get("comparison"),
        "pairs": [{"model": p["model"], "dtype": p["dtype"], "threads": p["threads"], "baseline": p["baseline"],
                   "candidate": p["candidate"], "speedup": p["speedup"], "baseline_median_ms": p["baseline_median_ms"],
                   "candidate_median_ms": p["candidate_median_ms"], "bottleneck": p.get("bottleneck_note")}
                  for p in summary.get("pairs", [])],
        "cells": cells,
        **({"emulated": _emulated_json(summary["emulated"])} if summary.get("emulated") else {}),
        "failed_checkpoints": [{"name": c.name, "subject": c.subject, "detail": c.detail, "fix": c.fix}
                               for c in result.failed_checkpoints],
        "warnings": summary.get("warnings", []),
        "error": error.to_dict() if error else None,
    }


def _emulated_json(emulated: dict[str, Any]) -> dict[str, Any]:
    """The emulated run's answer: evidence per pair and cell instead of a speedup (emulated time is not hardware
    time, so `pairs` stays empty)."""
    def side(e: dict[str, Any]) -> dict[str, Any]:
        return {k: e.get(k) for k in ("cpu", "cpu_features", "svl_bits", "sme2_kernels", "sme_kernels",
                                      "sme_instructions_translated", "sme2_kernel_instructions_executed")}
    return {"note": emulated["note"], "qemu": (emulated.get("qemu") or {}).get("version"),
            "pairs": [{"model": p["model"], "dtype": p["dtype"], "threads": p["threads"], "baseline": p["baseline"],
                       "candidate": p["candidate"], "speedup": None,
                       "evidence": {"baseline": side(p["evidence"]["baseline"]),
                                    "candidate": side(p["evidence"]["candidate"])},
                       "numerics": {k: p["numerics"].get(k) for k in ("status", "detail")}}
                      for p in emulated["pairs"]],
            "cells": {cell_id: side(e) for cell_id, e in emulated["cells"].items() if "cpu" in e}}


def peer_digest(peers: dict[str, Any] | None) -> dict[str, Any]:
    """What peers' benchmark tools report, per cell, flat for agents (the full record is in summary.json)."""
    if not peers:
        return {}
    lat, mem, prog = peers["latency"], peers["memory"], peers["program"]
    return {"p95_ms": lat["p95_ms"], "p99_ms": lat["p99_ms"],
            "p95_estimable": lat.get("p95_estimable", True), "p99_estimable": lat.get("p99_estimable", True),
            "tail_note": lat["note"],
            "first_inference_ms": peers["first_inference"]["ms"],
            "load_ms": {"total": peers["load"].get("total_ms"), "program": peers["load"]["program_load_ms"],
                        "method": peers["load"]["method_load_ms"], "init": peers["load"]["method_init_ms"]},
            "peak_rss_bytes": mem["peak_rss_bytes"], "peak_rss_source": mem.get("source") or mem.get("note", ""),
            "program_bytes": prog["size_bytes"], "planned_memory_bytes": prog["planned_memory_bytes"],
            **({"peers_note": peers["note"]} if peers.get("note") else {})}


def cmd_doctor(args: argparse.Namespace) -> int:
    from sme2tui.doctor import run_doctor

    printer = EventPrinter()
    finished: Any = None
    from sme2tui.runners.location import runners_root

    output_root = _output_root(args.output_root) or Path("runs")
    for event in run_doctor(output_root, runners_dir=runners_root(args.top_runners_dir)):
        printer(event)  # progress always goes to stderr; stdout carries only the JSON
        finished = event
    if args.sub_json:
        _print_json({"ok": finished.ok, **finished.data})
    return 0 if finished.ok else int(ExitCode.ENVIRONMENT)


def cmd_config(args: argparse.Namespace) -> int:
    from sme2tui.config import json_schema, load_config

    if args.config_command == "schema":
        _print_json(json_schema())
        return 0
    if args.config_command == "import":
        return cmd_config_import(args)
    from sme2tui.run.stage import check_factories

    config = load_config(args.file)
    check_factories(config, args.file.resolve().parent)
    ready = [m for m in config.models if m.pte]
    dtypes = f"{len(config.dtypes)} dtype(s)" if len(ready) < len(config.models) else "the programs' own dtype"
    said = sys.stderr if args.sub_json else sys.stdout  # with --json, stdout carries only the JSON
    print(f"{args.file}: valid ({len(config.models)} model(s) × {dtypes} × "
          f"{len(config.variants)} variant(s) × {len(config.threads)} thread setting(s) = {config.cell_count()} "
          f"cell(s), target {config.target.kind})", file=said)
    for model in ready:
        facts = model.program_facts()
        print(f"  {model.id}: ready program, {facts.dtype} ({facts.dtype_evidence}), delegation {facts.delegation}",
              file=said)
    if args.sub_json:
        _print_json({"ok": True, "file": str(args.file), "cells": config.cell_count(), "target": config.target.kind,
                     "models": [m.id for m in config.models], "dtypes": list(config.dtypes),
                     "variants": [v.name for v in config.variants], "threads": list(config.threads)})
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    from sme2tui.kit.importer import import_to_file, render_mapping, render_outcome

    result, out, validation = import_to_file(args.file, args.output, kit_root=args.kit_root, target=args.target)
    print(render_mapping(result), file=sys.stderr)
    print(render_outcome(out, validation), file=sys.stderr)
    if args.sub_json:
        _print_json({"ok": True, "output": str(out.resolve()), "validation": validation, **result.to_dict()})
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from sme2tui.android.client import AndroidClient
    from sme2tui.android.report import list_devices_report, render_devices_text

    facts = list_devices_report(AndroidClient(args.adb_server))
    if args.sub_json:
        _print_json([f.to_dict() for f in facts])
    else:
        print(render_devices_text(facts))
    return 0 if facts else int(ExitCode.DEVICE)


def cmd_models(args: argparse.Namespace) -> int:
    from sme2tui.models import BUILTIN_MODELS

    if args.sub_json:
        _print_json([{"id": m.id, "family": m.family, "size": m.size, "summary": m.summary}
                     for m in BUILTIN_MODELS.values()])
        return 0
    for m in BUILTIN_MODELS.values():
        print(f"{m.id:<18} {m.size:<6} {m.summary}")
    print("\nyour own: {\"factory\": \"package.module:function\"} returning (model, example_inputs), "
          "or {\"pte\": \"model.pte\", \"etrecord\": \"model.etrecord\"}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sme2tui.export.stage import run_exports
    from sme2tui.pipeline import require_runtime

    config, _source, config_dir = _load(args.sub_config)
    require_runtime()
    root = _output_root(args.sub_output_root) or Path(config.output_root)
    printer = EventPrinter()
    results: dict[Any, Any] = {}
    ok = True
    failed_checks = []
    from sme2tui import events as ev

    for event in run_exports(config, cache_root=root / ".cache" / "exports", config_dir=config_dir, results=results):
        printer(event)
        if isinstance(event, ev.StepFinished):
            ok = event.ok
        if isinstance(event, ev.Checkpoint) and event.status == "fail":
            failed_checks.append(event)
    if args.sub_json:
        _print_json({"ok": ok, "programs": [{"model": k.model, "dtype": k.dtype, "delegate": k.delegate,
                                             "pte": str(v.pte), "etrecord": str(v.etrecord) if v.etrecord else None,
                                             "sha256": v.pte_sha256, "numerics": v.numerics.model_dump()}
                                            for k, v in results.items()]})
    else:
        for k, v in results.items():
            print(f"{k.subject}: {v.pte}")
    if not ok:
        return int(ExitCode.EXPORT)
    return int(ExitCode.CHECKPOINT) if failed_checks else 0


def cmd_run(args: argparse.Namespace) -> int:
    """The pipeline as a subcommand (same as `--auto`), for scripts that name every step."""
    args.auto = True
    args.config, args.resume, args.output_root = args.sub_config, args.sub_resume, args.sub_output_root
    args.top_runners_dir = args.sub_runners_dir or args.top_runners_dir
    args.json = args.sub_json
    return cmd_auto(args)


def cmd_analyze(args: argparse.Namespace) -> int:
    # A bare ETDump needs only the reader and the cell analysis; run folders import the rest when met.
    from sme2tui.analysis.categorize import Categorizer
    from sme2tui.analysis.files import analyze_etdump_file, file_summary, render_file_analysis

    if args.warmup is not None and args.warmup < 0:
        raise ConfigError("--warmup must be 0 or more", where="command line", fix="e.g. --warmup 3")
    printer = EventPrinter()
    code = 0
    outputs: list[dict[str, Any]] = []
    for path in args.paths:
        if path.is_dir():
            from sme2tui.kit.folder import looks_like_kit_folder

            if looks_like_kit_folder(path):
                from sme2tui.analysis.kit_run import kit_digest

                result_kit, ok = _analyze_kit(path, args, printer)
                outputs.append({"kind": "arm-kit-run-folder", **kit_digest(result_kit)})
                code = code or (0 if ok else int(ExitCode.ANALYSIS))
                continue
        elif os.path.lexists(path):
            # Anything that exists and is not a folder is taken as an ETDump, so FIFOs, devices and symlinks
            # to them get the reader's refusal (exit 6) instead of being opened as a run folder.
            try:
                result = analyze_etdump_file(path, warmup=args.warmup or 0,
                                             categorizer=Categorizer.load(args.sub_categories))
            except Sme2Error as exc:
                print(exc.render(), file=sys.stderr)
                code = int(exc.exit_code)
                continue
            print(render_file_analysis(result), file=sys.stderr)
            outputs.append({"etdump": str(path), **file_summary(result)})
            continue
        if not path.exists():
            raise ConfigError(f"no such file or folder: {path}", where="command line",
                              fix="pass a run folder (runs/<stamp>-<name>), a kit run folder or an .etdump file")
        if os.path.lexists(path / "manifest.json") and not (path / "manifest.json").is_file():
            raise AnalysisError(f"{path / 'manifest.json'} is not a regular file: the run folder is damaged",
                                where=str(path / "manifest.json"),
                                fix="restore manifest.json from a copy of the run folder, or run the config again")
        if not (path / "manifest.json").is_file():
            from sme2tui.kit.folder import kit_folders_below

            below = kit_folders_below(path)
            raise ConfigError(f"{path} is neither an sme2tui run folder (no manifest.json) nor a run folder of Arm's "
                              "kit (no <model>_<experiment>_t<N>.etdump, no pipeline summary)", where=str(path),
                              fix=f"kit run folders below it: {', '.join(map(str, below))}" if below else
                              "pass runs/<stamp>-<name>, the kit's output_root, or an .etdump file")
        from sme2tui.analysis.stage import analyze_run
        from sme2tui.events import StepFinished
        from sme2tui.report.markdown import render_report
        from sme2tui.run.folder import RunFolder

        folder, config = RunFolder.open(path)
        if not any(isinstance(c, dict) and c.get("status") == "done" for c in folder.manifest["cells"].values()):
            # Not an empty analysis with exit 0: nothing was measured yet (interrupted before the first cell
            # finished, or a manifest that lost its cells).
            raise AnalysisError(f"no cell of {folder.root.name} is measured: there is nothing to analyze",
                                where=str(folder.root / "manifest.json"),
                                fix=f"measure them: sme2tui --auto --resume {folder.root}")
        previous = folder.root / "analysis" / "summary.json"
        kit_section = _kit_section_of(previous)
        summary = None
        with folder.lock("analyze"):  # not while a run measures into it; writes analysis/ only
            _lock_note(folder)
            for event in analyze_run(folder, config, categories=args.sub_categories):
                printer(event)
                if isinstance(event, StepFinished):
                    summary = event.data.get("summary")
                    if not event.ok:
                        code = int(ExitCode.ANALYSIS)
            if summary is not None and kit_section is not None:
                from sme2tui.analysis.kit_run import carry_kit_section
                from sme2tui.fileio import write_json_atomic

                try:
                    write_json_atomic(previous, carry_kit_section(kit_section, summary))
                except OSError as exc:
                    from sme2tui.storage import storage_error

                    raise storage_error(exc, action="write the analysis", path=previous) from None
            if summary is not None:
                _write_report(folder.root / "analysis" / "report.md", render_report(summary, folder.manifest))
                outputs.append({"run_dir": str(folder.root),
                                "summary": str(folder.root / "analysis" / "summary.json"),
                                "report": str(folder.root / "analysis" / "report.md")})
    if args.sub_json:
        _print_json({"ok": code == 0, "analyzed": outputs})
    return code


def _kit_section_of(summary_path: Path) -> dict[str, Any] | None:
    """The kit section of a run folder made from a kit run folder (kept when it is analyzed again)."""
    from sme2tui.analysis.summary_shape import MAX_SUMMARY_BYTES
    from sme2tui.run.folder import RunFolderDamaged, read_json_file

    try:  # bounded: a summary that is /dev/zero or a FIFO is simply not a kit summary
        data = read_json_file(summary_path, limit=MAX_SUMMARY_BYTES, what="summary.json", damaged_fix="")
    except RunFolderDamaged:
        return None
    kit = data.get("kit") if isinstance(data, dict) else None
    return kit if isinstance(kit, dict) else None


def _analyze_kit(path: Path, args: argparse.Namespace, printer: EventPrinter) -> tuple[Any, bool]:
    """Analyze a kit run folder into a new run folder; (KitAnalysis, ok)."""
    from sme2tui.analysis.kit_run import analyze_kit_folder
    from sme2tui.events import StepFinished

    events = analyze_kit_folder(path, output_root=args.sub_output_root or Path("runs"),
                                kit_config=args.kit_config, categories=getattr(args, "sub_categories", None),
                                warmup=getattr(args, "warmup", None))
    ok = True
    while True:
        try:
            event = next(events)
        except StopIteration as done:
            print(f"   kit folder {path} analyzed into {done.value.run_dir}\n   report: "
                  f"{done.value.run_dir / 'analysis' / 'report.md'}", file=sys.stderr)
            return done.value, ok
        if isinstance(event, StepFinished) and not event.ok:
            ok = False
        printer(event)


def cmd_compare(args: argparse.Namespace) -> int:
    from sme2tui.analysis.runs_compare import compare_runs, render_comparison
    from sme2tui.analysis.summary_shape import read_summary
    from sme2tui.kit.folder import looks_like_kit_folder

    summaries = []
    for run_dir, role in ((args.run_a, "RUN_A"), (args.run_b, "RUN_B")):
        if run_dir.is_dir() and looks_like_kit_folder(run_dir):
            kit, _ok = _analyze_kit(run_dir, args, EventPrinter())
            summaries.append(kit.summary)
            continue
        summaries.append(read_summary(run_dir, role=role))
    for run_dir, summary in zip((args.run_a, args.run_b), summaries, strict=True):
        if summary.get("target") == "emulated":
            # Emulated time is QEMU's, not the hardware's: a ratio of two emulated runs is not a speedup.
            raise ConfigError(f"{run_dir} ran on the emulated target: its times are QEMU's, so no speed comparison "
                              "is made from them", where=str(run_dir),
                              fix=f"read its SME2 evidence instead: sme2tui report {run_dir}")
    result = compare_runs(summaries[0], summaries[1])
    print(terminal_safe(render_comparison(result)), file=sys.stderr)
    if args.sub_json:
        _print_json(result)
    return 0


def _drain(events: Any) -> int:
    """Print a step's events; a failed checkpoint or unsuccessful finish makes the exit code."""
    from sme2tui.events import Checkpoint, StepFinished

    printer = EventPrinter()
    failed = False
    for event in events:
        printer(event)
        if (isinstance(event, Checkpoint) and event.status == "fail") or (
                isinstance(event, StepFinished) and not event.ok):
            failed = True
    return int(ExitCode.ENVIRONMENT) if failed else 0


def cmd_build(args: argparse.Namespace) -> int:
    from sme2tui.runners.location import runners_root

    runners_dir = runners_root(args.runners_dir)
    if args.target == "host":
        from sme2tui.runners.host import build_host_runner, host_build_dir

        return _drain(build_host_runner(host_build_dir(runners_dir)))
    if args.target == "arm64":
        from sme2tui.runners.arm64 import arm64_build_dir, build_arm64_runner

        return _drain(build_arm64_runner(arm64_build_dir(runners_dir)))
    from sme2tui.runners.pairs import build, check_build_host
    from sme2tui.runners.source_tree import default_ref, default_source_dir

    # What cannot work on this machine at all (macOS pairs off a Mac, Android without an NDK) is said before
    # asking for an ExecuTorch source tree, which takes minutes to clone.
    check_build_host(args.target, args.ndk)
    source = args.source or default_source_dir(default_ref())
    if not source.is_dir():
        raise ConfigError(f"no ExecuTorch source tree at {source}", where="--source",
                          fix="run `sme2tui setup executorch` first (or pass --source DIR)")
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    return _drain(build(args.target, variants, source_dir=source, build_root=runners_dir, ndk=args.ndk,
                        android_platform=args.android_platform))


def cmd_setup(args: argparse.Namespace) -> int:
    if args.what == "emulator":
        from sme2tui.emulator.setup import setup_emulator

        return _drain(setup_emulator())
    from sme2tui.runners.source_tree import setup_executorch

    return _drain(setup_executorch(args.path, ref=args.ref))


def cmd_report(args: argparse.Namespace) -> int:
    from sme2tui.analysis.summary_shape import read_summary
    from sme2tui.report.markdown import render_report
    from sme2tui.run.folder import RunFolder, RunFolderDamaged

    folder, _config = RunFolder.open(args.run_dir)
    with folder.lock("report"):
        _lock_note(folder)
        summary = read_summary(folder.root)
        try:
            text = render_report(summary, folder.manifest)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # The checked shape covers what compare needs; the report reads deeper (operators, evidence).
            raise RunFolderDamaged(f"analysis/summary.json does not have the shape this sme2tui writes "
                                   f"({type(exc).__name__}: {str(exc)[:80]})", where=str(folder.root / "analysis"),
                                   fix=f"analyze the run again (it rewrites analysis/): sme2tui analyze {folder.root}"
                                   ) from None
        out = folder.root / "analysis" / "report.md"
        _write_report(out, text)
    if args.sub_json:
        _print_json({"ok": True, "run_dir": str(folder.root), "report": str(out)})
    else:
        print(out)
    return 0


def _lock_note(folder: Any) -> None:
    if folder.folder_lock is not None and folder.folder_lock.note:
        print(f"note: {folder.folder_lock.note}", file=sys.stderr)


def _write_report(path: Path, text: str) -> None:
    from sme2tui.fileio import write_text_atomic
    from sme2tui.storage import storage_error

    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise storage_error(exc, action="write the report", path=path) from None


def cmd_init(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        raise ConfigError("`sme2tui init` asks questions and needs a terminal", where="standard input",
                          fix="run it in a terminal, or copy configs/templates/host.json and edit it")
    from screens.init_wizard import run_init

    return int(run_init(args.output))


def cmd_tui(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("the wizard needs a terminal", where="sme2tui (no command)",
                          fix="run it in a terminal, or use the headless pipeline: sme2tui --auto [--config F] "
                          "[--json]")
    try:
        from screens.app import run_app
    except ImportError as exc:
        raise ConfigError(f"the wizard is not available ({exc})", where="sme2tui",
                          fix="use `sme2tui --auto`, or reinstall sme2tui with its dependencies") from None
    return int(run_app(config_path=args.config, output_root=args.output_root))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "doctor": cmd_doctor, "devices": cmd_devices, "init": cmd_init, "config": cmd_config, "models": cmd_models,
    "export": cmd_export,
    "run": cmd_run,
    "analyze": cmd_analyze, "compare": cmd_compare, "report": cmd_report, "build": cmd_build,
    "setup": cmd_setup,
}


def _wants_json(argv: Sequence[str] | None) -> bool:
    return "--json" in (argv if argv is not None else sys.argv[1:])


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


SINGLE_OPTIONS = ("--config", "--resume", "--output-root", "--runners-dir", "--categories", "--output", "-o",
                  "--adb-server", "--kit-config", "--warmup", "--target", "--kit-root")


def _refuse_repeated_options(words: list[str]) -> None:
    """An option that takes one value, given twice: argparse keeps the last silently, which runs something
    other than what one of the two asked for."""
    cut = words.index("--") if "--" in words else len(words)
    seen: dict[str, int] = {}
    for word in words[:cut]:
        name = word.split("=", 1)[0]
        if name in SINGLE_OPTIONS:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] == 2:
                raise ConfigError(f"{name} is given twice", where="command line",
                                  fix=f"keep one {name} (the command would use only the last)")


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    words = list(argv if argv is not None else sys.argv[1:])
    # --debug is accepted anywhere (before or after the subcommand), not only where argparse defines it.
    debug = "--debug" in words[:words.index("--")] if "--" in words else "--debug" in words
    debug = debug or bool(os.environ.get("SME2TUI_DEBUG"))
    if "--debug" in words:
        cut = words.index("--") if "--" in words else len(words)
        words = [w for w in words[:cut] if w != "--debug"] + words[cut:]
    try:
        _refuse_repeated_options(words)
        args = build_parser().parse_args(words)
        if getattr(args, "json", False) and hasattr(args, "sub_json"):
            # `sme2tui --json analyze RUN` means what `sme2tui analyze --json RUN` does: one flag, either place.
            args.sub_json = True
        if args.command:
            return COMMANDS[args.command](args)
        if args.auto or args.resume:
            return cmd_auto(args)
        return cmd_tui(args)
    except Sme2Error as exc:
        print(exc.render(), file=sys.stderr)
        if _wants_json(argv):  # an agent reading stdout gets the error too, not an empty stream
            _print_json({"ok": False, "exit_code": int(exc.exit_code), "error": exc.to_dict()})
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        from sme2tui.storage import is_user_oserror, storage_error

        if not is_user_oserror(exc):
            return _internal_error(debug)
        error = storage_error(exc, action="write or read a file")
        print(error.render(), file=sys.stderr)
        if _wants_json(argv):
            _print_json({"ok": False, "exit_code": int(error.exit_code), "error": error.to_dict()})
        return int(error.exit_code)
    except Exception:
        return _internal_error(debug)


def _internal_error(debug: bool) -> int:
    """A bug: say so, keep the traceback (exit 1 means this and nothing else). Called inside `except`."""
    if debug:
        traceback.print_exc()
        return int(ExitCode.INTERNAL)
    from sme2tui.runners.location import user_cache_dir

    path = user_cache_dir() / "last-error.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
        saved = f"the traceback is saved in {path}"
    except OSError:
        saved = "re-run with --debug to see the traceback"
    exc_type, exc_value = sys.exc_info()[:2]
    print(f"internal error: {exc_type.__name__ if exc_type else 'error'}: {exc_value}\n"
          f"  this is a bug in sme2tui; {saved}; please report it", file=sys.stderr)
    return int(ExitCode.INTERNAL)
