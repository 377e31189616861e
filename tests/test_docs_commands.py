"""Every command the documentation shows must be one the CLI accepts, naming files that exist.

Readers copy commands; a renamed flag or a moved file in the docs is a broken product. So every line in a
```bash / ```console / ```sh block of README.md, docs/, skills/ and AGENTS.md that runs `sme2tui …` or
`bash scripts/…` is parsed by the real argument parser (built once, in-process), and every repository path
it names must exist. Relative Markdown links and images must resolve too.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from sme2tui.cli import build_parser
from sme2tui.errors import Sme2Error

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "console", "sh"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SAMPLE = re.compile(r"<!-- (sample|captured): [a-z0-9-]+ -->\n(.*?)<!-- /\1 -->", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# Paths under these top-level folders are the repository's own and must exist; anything else on a command
# line (my-phone.json, RUN_DIR, "$RUN") is a file the reader makes or a placeholder.
REPO_DIRS = ("configs", "docs", "runs", "scripts", "skills", "sme2tui", "screens")
# scripts/NN_*.sh are one `sme2tui` call each: the arguments they pass on, as the parser sees them.
SCRIPT_COMMANDS: dict[str, list[str]] = {
    "01_doctor.sh": ["doctor"],
    "02_build_runners.sh": ["build"],
    "03_export.sh": ["export", "--config"],
    "04_run.sh": ["--auto", "--config"],
    "05_analyze.sh": ["analyze"],
    "quickstart.sh": ["--auto"],
}


@dataclass(frozen=True)
class Command:
    file: str
    line: str
    tokens: list[str]
    generated: bool  # inside a sample/captured block: gen_docs really ran it, so its files may be absent on purpose


def doc_files() -> list[Path]:
    files = {ROOT / "README.md", ROOT / "AGENTS.md"}
    files.update((ROOT / "docs").rglob("*.md"))
    files.update((ROOT / "skills").glob("*.md"))
    return sorted(p for p in files if p.is_file())


def _words(line: str) -> list[str]:
    """The words of the first simple command on the line (up to ; | > && or a comment)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token and set(token) <= set(";|&><()"):
            break
        words.append(token)
    return words


def commands_in(text: str, file: str) -> list[Command]:
    generated_spans = [m.span() for m in SAMPLE.finditer(text)]
    found: list[Command] = []
    for block in FENCE.finditer(text):
        if block.group(1) not in SHELL_LANGS:
            continue
        generated = any(a <= block.start() < b for a, b in generated_spans)
        for raw in block.group(2).splitlines():
            line = raw.strip()
            line = line[2:] if line.startswith("$ ") else line
            if re.match(r"sme2tui(\s|$)", line) or line.startswith("bash scripts/"):
                found.append(Command(file, line, _words(line), generated))
    return found


def all_commands() -> list[Command]:
    return [c for p in doc_files() for c in commands_in(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]


def _repo_path(value: str) -> bool:
    return "$" not in value and "*" not in value and value.split("/", 1)[0] in REPO_DIRS


def problems_of(command: Command, parser: argparse.ArgumentParser, root: Path = ROOT) -> list[str]:
    """Why this command would not work as shown ([] when it would)."""
    where = f"{command.file}: `{command.line}`"
    words = command.tokens
    if words[0] == "bash":
        script = words[1]
        if not (root / script).is_file():
            return [f"{where}: {script} does not exist"]
        name = Path(script).name
        if name not in SCRIPT_COMMANDS:
            return []  # setup.sh / test.sh take no sme2tui arguments
        argv = SCRIPT_COMMANDS[name] + words[2:]
        if name == "02_build_runners.sh" and len(words) == 2:
            argv.append("host")
        if argv[-1] == "--config":
            argv.pop()
    else:
        argv = words[1:]
    argv = [w for w in argv if w not in ("--help", "-h")]
    try:
        args = parser.parse_args(argv)
    except Sme2Error as exc:
        return [f"{where}: the CLI refuses it: {exc.what}"]
    problems: list[str] = []
    if command.generated:
        return problems
    for value in vars(args).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Path) and _repo_path(str(item)) and not (root / item).exists():
                problems.append(f"{where}: {item} does not exist")
    for word in words[2:] if words[0] == "bash" else []:
        if _repo_path(word) and not (root / word).exists():
            problems.append(f"{where}: {word} does not exist")
    return problems


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def test_the_docs_show_commands(parser: argparse.ArgumentParser) -> None:
    commands = all_commands()
    files = {c.file for c in commands}
    # Guard against the extraction silently finding nothing (then every other test here would pass vacuously).
    assert len(commands) > 80
    assert {"README.md", "AGENTS.md", "docs/steps/analyze.md", "skills/06-analyze.md"} <= files


def test_every_documented_command_parses_and_names_real_files(parser: argparse.ArgumentParser) -> None:
    problems = [p for c in all_commands() for p in problems_of(c, parser)]
    assert not problems, "\n".join(problems)


def test_a_renamed_flag_in_the_parser_fails_the_gate() -> None:
    # A copy of the parser in which `analyze --warmup` became `--warm-up`: the docs that use --warmup must fail.
    renamed = build_parser()
    subparsers = next(a for a in renamed._actions if isinstance(a, argparse._SubParsersAction))
    analyze = subparsers.choices["analyze"]
    action = analyze._option_string_actions.pop("--warmup")
    action.option_strings = ["--warm-up"]
    analyze._option_string_actions["--warm-up"] = action
    problems = [p for c in all_commands() for p in problems_of(c, renamed)]
    assert problems and all("--warmup" in p for p in problems)


def test_a_renamed_flag_or_missing_file_in_a_doc_fails_the_gate(parser: argparse.ArgumentParser) -> None:
    page = (ROOT / "docs/steps/analyze.md").read_text(encoding="utf-8")
    typo = page.replace("sme2tui analyze --warmup 3", "sme2tui analyze --warmups 3", 1)
    moved = page.replace("runs/reference/cells/", "runs/reference/cell/", 1)
    wrong_script = page.replace("bash scripts/05_analyze.sh", "bash scripts/05_analyse.sh", 1)
    for text, expected in ((typo, "unknown option `--warmups`"),
                           (moved, "runs/reference/cell/"),
                           (wrong_script, "scripts/05_analyse.sh does not exist")):
        assert text != page
        problems = [p for c in commands_in(text, "copy.md") for p in problems_of(c, parser)]
        assert any(expected in p for p in problems), problems


def test_unknown_subcommand_fails_the_gate(parser: argparse.ArgumentParser) -> None:
    problems = [p for c in commands_in("```bash\nsme2tui analyse runs/reference\n```\n", "x.md")
                for p in problems_of(c, parser)]
    assert problems and "invalid choice" in problems[0]


def test_relative_links_and_images_resolve() -> None:
    problems = []
    for path in doc_files():
        for match in LINK.finditer(path.read_text(encoding="utf-8")):
            target = match.group(1).split("#", 1)[0]
            if not target or re.match(r"[a-z]+:", target):
                continue
            if not (path.parent / target).exists():
                problems.append(f"{path.relative_to(ROOT)}: {match.group(0)[:80]} → {target} does not exist")
    assert not problems, "\n".join(problems)


def test_images_have_alt_text() -> None:
    images = [(p, m) for p in doc_files() for m in re.finditer(r"!\[([^\]]*)\]\(([^)]+)\)", p.read_text("utf-8"))]
    assert len(images) >= 5
    short = [f"{p.relative_to(ROOT)}: {m.group(2)}" for p, m in images if len(m.group(1).split()) < 8]
    assert not short, "images without a real description: " + ", ".join(short)
