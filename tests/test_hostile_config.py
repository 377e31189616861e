"""Hostile configs and command lines: every bad input is a clean exit 2 (what, where, fix), never exit 1,
never a traceback, never a hang.

Property-based: hypothesis mutates valid configs (wrong types, huge integers, deep nesting, duplicate keys,
control characters and escapes, unicode, long strings, unknown keys, removed keys) and runs
`sme2tui config validate` through `main()` in-process; a few real subprocess runs check the same from
the outside. Runs in about 15 s.
"""

from __future__ import annotations

import copy
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sme2tui.cli import main
from sme2tui.config import MAX_SEED, load_config, parse_config
from sme2tui.errors import ConfigError
from sme2tui.exit_codes import ExitCode
from sme2tui.run.stage import check_cpu_affinity
from tests.conftest import REPO, run_cli, tiny_config

SEEDS = [json.loads(p.read_text()) for p in sorted((REPO / "configs").glob("*/*.json"))]


def validate(tmp: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp / "config.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = main(["config", "validate", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_clean(code: int, output: str) -> None:
    assert code in (0, int(ExitCode.CONFIG)), output
    assert "Traceback" not in output and "internal error" not in output, output
    assert "\x1b" not in output, "an escape sequence from the config reached the terminal"


# --- property-based mutation ------------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=8),
    st.sampled_from(["\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "a\u202eb", "a__b", "~", "~nosuchuser/x", "..",
                     "/dev/zero", "a" * 300, "\ud800", "fp32", "xnnpack", "as-exported", "sme2-on", "0", ""]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), HOSTILE_TEXT,
)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=5),
    st.dictionaries(HOSTILE_TEXT, SCALARS, max_size=3),
    st.integers(min_value=1, max_value=60).map(_deep),
    st.just(list(range(1, 300))),
    st.just([1] * 5000),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(config: Any, path: tuple[Any, ...], how: str, value: Any, key: str) -> Any:
    config = copy.deepcopy(config)
    if not path:
        return value if how == "replace" else config
    parent = config
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "add-key" and isinstance(parent[last], dict):
        parent[last][key] = value
    elif how == "duplicate" and isinstance(parent[last], list):
        parent[last].append(copy.deepcopy(parent[last][0]) if parent[last] else value)
    return config


@st.composite
def mutated_configs(draw: st.DrawFn) -> str:
    config: Any = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(config)))
        how = draw(st.sampled_from(["replace", "delete", "add-key", "duplicate"]))
        config = _mutate(config, path, how, draw(VALUES), draw(HOSTILE_TEXT))
    text = json.dumps(config, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()) and text.startswith("{") and len(text) > 2:
        key = draw(st.sampled_from(['"name": "x", ', '"name": "x", "name": "y", ', '"seed": ' + "9" * 5000 + ", ",
                                    '"iterations": NaN, ', '"models": ' + "[" * 3000 + "]" * 3000 + ", "]))
        text = "{" + key + text[1:]
    return text


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(text=mutated_configs())
def test_mutated_configs_never_crash(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code, output = validate(tmp_path, text, capsys)
    assert_clean(code, output)
    assert time.monotonic() - started < 5


# --- each hostile input of issue #10, with the message it gets ------------------------------------------

def _base() -> dict[str, Any]:
    return tiny_config()


def _with(**changes: Any) -> str:
    return json.dumps({**_base(), **changes})


CASES: dict[str, tuple[str, str]] = {
    "thousand-digit integer": ('{"seed": ' + "9" * 5000 + ", " + _with()[1:], "a number with 5000 digits"),
    "deep nesting": ('{"x": ' + "[" * 100_000 + "]" * 100_000 + ", " + _with()[1:], "nests too deeply"),
    "nesting under the limit of json but too deep": (_with(x=_deep(40)), "nests deeper than 24 levels"),
    "duplicate key": ('{"dtypes": ["fp16"], ' + _with()[1:], "the key `dtypes` appears more than once"),
    "duplicate nested key": (_with(variants=[{"label": "b"}]).replace('"label": "b"', '"name": "a", "name": "b"'),
                             "appears more than once in `variants[0]`"),
    "NaN": ('{"iterations": NaN, ' + _with()[1:], "is not a number JSON allows"),
    "ANSI in label": (_with(variants=[{"name": "a", "label": "\x1b[2J\x1b[31mred"}]), "U+001B (ESCAPE)"),
    "OSC in description": (_with(description="x\x1b]0;owned\x07"), "`description` contains U+001B"),
    "bidi override in a label": (_with(variants=[{"name": "a", "label": "ab\u202ecd"}]), "U+202E"),
    "control char in a key": (_with(**{"bad\x07key": 1}), "contains U+0007"),
    "lone surrogate": ('{"description": "\\ud800", ' + _with()[1:], "U+D800"),
    "NUL in a path": (_with(output_root="runs\u0000x"), "U+0000"),
    "repeated dtype": (_with(dtypes=["fp32", "fp32"]), "dtypes[1] repeats dtypes[0] (`fp32`)"),
    "repeated threads": (_with(threads=[1, 2, 1]), "threads[2] repeats threads[0] (1)"),
    "repeated model (same built-in, other name)": (
        _with(models=[{"builtin": "mobilenet_quick"}, {"builtin": "mobilenet_quick", "name": "other"}]),
        "models[1] (`other`) is the same model as models[0]"),
    "repeated model name": (_with(models=[{"builtin": "mobilenet_quick", "name": "m"},
                                          {"builtin": "vit_quick", "name": "m"}]),
                            "models[1] and models[0] are both called `m`"),
    "derived ids collide": (_with(models=[{"factory": "zoo.a:build"}, {"factory": "farm.a:build"}]),
                            "both called `a` (derived from their source)"),
    "repeated variant name": (_with(variants=[{"name": "a"}, {"name": "a", "delegate": "portable"}]),
                              "variants[1] repeats variants[0] (the name `a`)"),
    "variants with the same settings": (_with(variants=[{"name": "a"}, {"name": "b", "delegate": "xnnpack"}]),
                                        "variants[1] repeats variants[0] (the same settings: all but name and label)"),
    "200,000 threads": (_with(threads=list(range(1, 201)) * 1000), "at most 64 items"),
    "too many cells": (_with(models=[{"builtin": m} for m in ("mobilenet_quick", "mobilenet", "vit_quick")],
                             dtypes=["fp32", "fp16", "int8", "int8-dynamic"],
                             variants=[{"name": f"v{i}", "runner": f"r{i}"} for i in range(16)],
                             threads=list(range(1, 9)), compare=None), "at most 1024 per run"),
    "double underscore in a name": (_with(models=[{"builtin": "mobilenet_quick", "name": "a__b"}]),
                                    "no '__', which separates the parts of cell ids"),
    "trailing underscore in a variant": (_with(variants=[{"name": "a_"}]), "should match pattern"),
    "huge seed": (_with(seed=2**70), "less than or equal to 4294967295"),
    "negative seed": (_with(seed=-1), "greater than or equal to 0"),
    "unknown user in a path": (_with(output_root="~nosuchuser-sme2tui/runs"), "there is no such user"),
    "300-character folder name": (_with(output_root="runs/" + "a" * 300), "a folder or file name of 300 bytes"),
    "path longer than PATH_MAX": (_with(runners_dir="/".join(["abcdefgh"] * 500)), "String should have at most"),
    "cpu id beyond any machine": (_with(target={"kind": "host", "cpu_affinity": [10**6]}), "less than or equal"),
    "repeated cpu": (_with(target={"kind": "host", "cpu_affinity": [0, 0]}), "repeats"),
    "as-exported for an exported model": (_with(variants=[{"name": "a", "delegate": "as-exported"}]),
                                          "says `as-exported`, but models[0]"),
    "repeated device": (_with(target={"kind": "android", "serials": ["A1", "A1"]}), "serials[1] repeats serials[0]"),
    # JSON types as the schema says them: no quiet coercion (true → 1 iteration, "yes" → profiling on).
    "boolean warmup": (_with(warmup=True), "`warmup`: Input should be a valid integer (got true)"),
    "string iterations": (_with(iterations="20"), "`iterations`: Input should be a valid integer"),
    "float iterations": (_with(iterations=20.0), "`iterations`: Input should be a valid integer"),
    "string profile": (_with(profile="yes"), "`profile`: Input should be a valid boolean"),
    "boolean timeout": (_with(target={"kind": "host", "timeout_s": True}), "`target.timeout_s`: Input should be"),
    "host runner on android": (_with(target={"kind": "android"}, compare=None,
                                     variants=[{"name": "a", "delegate": "portable"}, {"name": "b"}]),
                               "uses runner `auto`, which only exists on the host"),
    "config is a list": ("[1, 2]", "the config must be a JSON object"),
    "empty file": ("  \n", "the file is empty"),
    "not UTF-8": ("\udcff{", "not UTF-8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_gets_a_clean_message(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = CASES[case]
    code, output = validate(tmp_path, text, capsys)
    assert code == ExitCode.CONFIG, output
    assert_clean(code, output)
    assert expected in output


def test_problem_list_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = validate(tmp_path, _with(**{f"unknown{i}": i for i in range(500)}), capsys)
    assert code == ExitCode.CONFIG and "the config has 500 problems" in output and "… and 488 more" in output
    assert len(output) < 5000


def test_factory_package_that_raises_on_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "brokenpkg_sme2tui_test"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('boom at import')\n")
    code, output = validate(tmp_path, _with(models=[{"factory": "brokenpkg_sme2tui_test.model:build"}]), capsys)
    assert code == ExitCode.CONFIG and "RuntimeError: boom at import" in output, output
    assert "models[0].factory" in output


def test_largest_seed_is_accepted() -> None:
    assert parse_config(tiny_config(seed=MAX_SEED)).seed == MAX_SEED


def test_home_folder_paths_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "c.json"
    path.write_text(_with(output_root="~", runners_dir="~/runners"))
    config = load_config(path)
    assert config.output_root == str(tmp_path / "home")
    assert config.runners_dir == str(tmp_path / "home" / "runners")


def test_output_root_tilde_never_creates_a_folder_named_tilde(tmp_path: Path) -> None:
    """`--output-root=~/x` reaches us unexpanded (no shell expansion after `=`): it means the home folder."""
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "c.json"
    config.write_text(_with(output_root="~/runs", target={"kind": "host", "cpu_affinity": [8191]}))
    result = run_cli("--auto", "--config", config, "--output-root=~/elsewhere", cwd=tmp_path, env={"HOME": str(home)})
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert not (tmp_path / "~").exists()


def test_cpu_affinity_is_checked_against_the_cpus_this_process_may_use() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    check_cpu_affinity(allowed[:1])
    with pytest.raises(ConfigError) as info:
        check_cpu_affinity([allowed[-1] + 1])
    assert f"CPU(s) this process may not use: {allowed[-1] + 1}" in info.value.what
    assert "use CPUs from" in (info.value.fix or "")


def test_missing_cpu_fails_before_a_run_folder_exists(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(_with(target={"kind": "host", "cpu_affinity": [8191]}))
    result = run_cli("--auto", "--config", config, "--output-root", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert "CPU(s) this process may not use: 8191" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# --- real subprocess runs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["thousand-digit integer", "deep nesting", "duplicate key", "200,000 threads",
                                  "ANSI in label"])
def test_hostile_config_from_the_outside(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    path = tmp_path / "config.json"
    path.write_text(text)
    result = run_cli("config", "validate", path, timeout=60)
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr and "\x1b" not in result.stderr


def test_config_from_dev_zero_is_refused_by_size() -> None:
    result = run_cli("config", "validate", "/dev/zero", timeout=60)
    assert result.returncode == ExitCode.CONFIG and "larger than 4 MB" in result.stderr


# --- command line ---------------------------------------------------------------------------------------------

def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_misspelled_subcommand_gets_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _cli(["modles"], capsys)
    assert code == ExitCode.CONFIG and "did you mean `models`?" in output


@pytest.mark.parametrize(("argv", "flag", "expected"), [
    # argparse alone would call the flag's value an invalid command ("invalid choice: '3'")
    (["--auto", "--iterations", "3"], "--iterations", "`iterations` is a config key, not a command-line flag"),
    (["--auto", "--warmup=3"], "--warmup", "`warmup` is a config key, not a command-line flag"),
    (["--auot"], "--auot", "did you mean `--auto`?"),
    (["--outptu-root", "x", "run"], "--outptu-root", "did you mean `--output-root`?"),
    (["doctor", "--jsn"], "--jsn", "did you mean `--json`?"),
    (["analyze", "--warmups", "3", "x"], "--warmups", "did you mean `--warmup`? see `sme2tui analyze --help`"),
])
def test_unknown_flags_are_named_with_a_fix(argv: list[str], flag: str, expected: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _cli(argv, capsys)
    assert code == ExitCode.CONFIG and f"unknown option `{flag}`" in output, output
    assert expected in output and "invalid choice" not in output, output


def test_config_pointing_at_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--auto", "--config", str(tmp_path)], ["config", "validate", str(tmp_path)]):
        code, output = _cli(argv, capsys)
        assert code == ExitCode.CONFIG and "is a folder, not a config file" in output, output


CATEGORY_FILES: dict[str, tuple[str, str]] = {
    "a list": ("[1, 2]", "must be a JSON object with a `rules` list (got an array)"),
    "rules as an object": ('{"rules": {}}', "(got `rules` as an object)"),
    "non-string pattern": ('{"rules": [{"category": "CONV", "match": 5}]}', "`match` (and `note`) must be strings"),
    "bad regex": ('{"rules": [{"category": "CONV", "match": "(("}]}', "bad regular expression"),
    "unknown category": ('{"rules": [{"category": "FFT", "match": "x"}]}', "each rule needs `category`"),
    "duplicate key": ('{"rules": [], "rules": []}', "appears more than once"),
}


@pytest.mark.parametrize("case", list(CATEGORY_FILES))
def test_categories_file_shape(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = CATEGORY_FILES[case]
    rules = tmp_path / f"rules-{len(case)}.json"
    rules.write_text(text)
    etdump = REPO / "tests" / "data" / "etdump" / "xnnpack_fp32.etdp"
    code, output = _cli(["analyze", "--categories", str(rules), str(etdump)], capsys)
    assert code == ExitCode.CONFIG and expected in output and "Traceback" not in output, output


def test_bad_categories_fail_before_the_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text("[]")
    config = tmp_path / "c.json"
    config.write_text(_with())
    result = run_cli("--auto", "--config", config, "--categories", rules, "--output-root", tmp_path / "out",
                     cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG and "`rules` list" in result.stderr
    assert not (tmp_path / "out").exists()


# --- what reaches the SVG charts --------------------------------------------------------------------------------

def test_charts_stay_valid_xml_with_hostile_operator_names(tmp_path: Path) -> None:
    from sme2tui.report.charts import write_charts

    summary = json.loads((REPO / "tests" / "data" / "report" / "summary.json").read_text())
    for cell in summary["cells"].values():
        for op in cell.get("operators", [])[:3]:
            op["name"] = "conv\x1b[31m\x00\x07<&>\ud800\ufffe" + op["name"]
    charts = write_charts(summary, tmp_path)
    assert charts
    for chart in charts:
        ET.fromstring(chart.svg)  # raises on invalid XML
        assert "\x1b" not in chart.svg


@pytest.mark.parametrize("argv", [["--auto", "--config", "a.json", "--config", "b.json"],
                                  ["analyze", "x", "--output-root", "a", "--output-root=b"],
                                  ["config", "import", "k.json", "-o", "a.json", "-o", "b.json"]])
def test_a_single_value_option_given_twice_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(argv)
    output = capsys.readouterr().err
    assert code == ExitCode.CONFIG and "is given twice" in output, output
