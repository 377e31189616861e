"""`sme2tui init`: a few plain-terminal questions (questionary), then a config file that validates.

The answers are plain data (`InitAnswers`); `build_config` turns them into a config dict starting from
the matching template in configs/templates/ (or the built-in quickstart when templates are absent), so
the questions can be tested without a terminal.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screens.configedit import DTYPES, QUICKSTART, TEMPLATES, known_variants
from sme2tui.config import parse_config
from sme2tui.errors import ConfigError
from sme2tui.hostinfo import default_thread_counts
from sme2tui.models import BUILTIN_MODELS

FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass
class InitAnswers:
    target: str = "host"  # "host" or "android"
    builtin_models: list[str] = field(default_factory=lambda: ["mobilenet_quick"])
    factory: str = ""  # "package.module:function", optional
    dtypes: list[str] = field(default_factory=lambda: ["fp32"])
    variants: list[str] = field(default_factory=list)  # variant names; empty = the template's
    warmup: int = 3
    iterations: int = 20
    name: str = "my-run"
    kit_config: str = ""  # start from a config of Arm's SME2 profiling kit instead of the questions
    threads: list[int] | None = None  # None: the template's on a phone, derived from this machine's CPUs on a host


def template_for(target: str) -> dict[str, Any]:
    """The template people would copy by hand, or the quickstart when the templates are not installed."""
    path = TEMPLATES / f"{target}.json"
    if not path.is_file():
        path = QUICKSTART
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if target == "android" and (data.get("target") or {}).get("kind") != "android":
        data["target"] = {"kind": "android"}
    return data


def variant_choices(target: str) -> list[dict[str, Any]]:
    return known_variants(template_for(target))


def build_config(answers: InitAnswers) -> dict[str, Any]:
    """A config dict from the answers; raises ConfigError (what, where, fix) when it does not validate."""
    data = template_for(answers.target)
    data.pop("$schema", None)
    models: list[dict[str, Any]] = [{"builtin": m} for m in answers.builtin_models]
    if answers.factory:
        models.append({"factory": answers.factory})
    by_name = {str(v["name"]): v for v in variant_choices(answers.target)}
    variants = [by_name[n] for n in answers.variants if n in by_name] or data.get("variants", [])
    data.update(name=answers.name, models=models, dtypes=answers.dtypes, variants=variants,
                warmup=answers.warmup, iterations=answers.iterations)
    if answers.threads:
        data["threads"] = answers.threads
    elif answers.target == "host":
        # The host runs the cells: propose what this machine can give (a template's [1, 4] on 2 cores would
        # measure 4 threads time-sliced on 2 CPUs). A phone's cores are not this machine's: keep the template's.
        data["threads"] = default_thread_counts()
    data["description"] = f"Written by `sme2tui init` from the {answers.target} template."
    names = [v["name"] for v in variants]
    compare = data.get("compare") or {}
    if compare.get("baseline") not in names or compare.get("candidate") not in names:
        data.pop("compare", None)  # the first two variants are compared (first = baseline)
    parse_config(data, source="sme2tui init")
    return data


def ask() -> InitAnswers | None:
    """The questions; None if the user aborts (Ctrl-C / Esc)."""
    import questionary

    start = questionary.select("Start from:", choices=[
        questionary.Choice("a few questions (built-in models or your own)", "questions"),
        questionary.Choice("a config of Arm's SME2 ExecuTorch profiling kit (import it)", "kit"),
    ]).ask()
    if start is None:
        return None
    if start == "kit":
        path = questionary.path("Kit config (e.g. model_profiling/configs/my_experiment.json):",
                                validate=lambda v: Path(v).expanduser().is_file() or "no such file").ask()
        return None if path is None else InitAnswers(kit_config=str(Path(path).expanduser()))
    target = questionary.select("Where will the model run?", choices=[
        questionary.Choice("this host (export, run and analyze here)", "host"),
        questionary.Choice("an Android phone over adb (SME2 on/off runner pair)", "android"),
    ]).ask()
    if target is None:
        return None
    models = questionary.checkbox("Built-in models (space to pick):", choices=[
        questionary.Choice(f"{m.id:<18} {m.summary}", m.id, checked=m.id == "mobilenet_quick")
        for m in BUILTIN_MODELS.values()]).ask()
    if models is None:
        return None
    factory = questionary.text(
        "Your own model (package.module:function returning (model, example_inputs)), empty for none:",
        validate=lambda v: not v or bool(FACTORY.fullmatch(v)) or "write it as package.module:function").ask()
    if factory is None:
        return None
    dtypes = questionary.checkbox("Dtypes:", choices=[questionary.Choice(d, d, checked=d == "fp32") for d in DTYPES],
                                  validate=lambda v: bool(v) or "pick at least one").ask()
    if dtypes is None:
        return None
    template_variants = {v["name"] for v in template_for(target).get("variants", [])}
    variants = questionary.checkbox("Variants to compare (the first is the baseline):", choices=[
        questionary.Choice(str(v.get("label") or v["name"]), v["name"], checked=v["name"] in template_variants)
        for v in variant_choices(target)], validate=lambda v: len(v) >= 2 or "pick two to compare").ask()
    if variants is None:
        return None
    numbers = []
    for question, default in (("Warmup iterations (dropped):", "3"), ("Measured iterations:", "20")):
        value = questionary.text(question, default=default,
                                 validate=lambda v: (v.isdigit() and int(v) >= 0) or "a whole number").ask()
        if value is None:
            return None
        numbers.append(int(value))
    name = questionary.text("Run name (lowercase, digits, - . _):", default="my-run",
                            validate=lambda v: bool(re.fullmatch(r"[a-z0-9][a-z0-9._-]*", v)) or
                            "lowercase letters, digits, '.', '_' and '-'").ask()
    if name is None:
        return None
    return InitAnswers(target=target, builtin_models=models, factory=factory.strip(), dtypes=dtypes,
                       variants=variants, warmup=numbers[0], iterations=max(1, numbers[1]), name=name)


def _import_kit(kit_config: Path, output: Path | None) -> int:
    """The same as `sme2tui config import KIT_CONFIG`: the mapping table, then the file and whether it validates."""
    from sme2tui.kit.importer import import_to_file, render_mapping, render_outcome

    try:
        result, out, validation = import_to_file(kit_config, output)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return int(exc.exit_code)
    print(render_mapping(result), file=sys.stderr)
    print(render_outcome(out, validation), file=sys.stderr)
    if validation["valid"]:
        print(f"  wizard:   sme2tui --config {out}", file=sys.stderr)
    return 0


def run_init(output: Path | None, answers: InitAnswers | None = None) -> int:
    """Ask (unless `answers` are given), write the config, say how to use it. Returns an exit code."""
    from sme2tui.exit_codes import ExitCode

    answers = answers or ask()
    if answers is None:
        print("no config written", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    if answers.kit_config:
        return _import_kit(Path(answers.kit_config), output)
    try:
        data = build_config(answers)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return int(exc.exit_code)
    path = output or Path(f"sme2tui-{answers.name}.json")
    if path.exists() and output is None:  # an explicit --output may overwrite; the default never does
        print(f"error: {path} exists\n  fix:   pass --output PATH or remove it", file=sys.stderr)
        return int(ExitCode.CONFIG)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}\n  wizard:   sme2tui --config {path}\n  headless: sme2tui --auto --config {path}",
          file=sys.stderr)
    return int(ExitCode.OK)
