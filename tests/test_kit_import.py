"""`sme2tui config import`: kit configs (as the kit's templates write them, and hostile ones) become sme2tui configs
that validate, with runs/warmup/threads carried over and a table of what went where and what was dropped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sme2tui.config import load_config, parse_config
from sme2tui.errors import ConfigError
from sme2tui.exit_codes import ExitCode
from sme2tui.kit.config import load_kit_config, parse_kit_config
from sme2tui.kit.importer import import_kit_config, render_mapping
from sme2tui.kit.names import counterpart, platform, sme2_side
from tests.conftest import REPO, run_cli

KIT = REPO / "tests" / "data" / "kit_run"
PTE = KIT / "artifacts" / "toy_cnn_xnnpack_fp32.pte"


def android_template(model: str = "out_toy/artifacts/toy_xnnpack_fp16.pte") -> dict[str, Any]:
    """The shape of the kit's configs/templates/android_template.json (two timing experiments, no pairs)."""
    return {
        "model": model,
        "output_root": "out_toy/runs/android",
        "experiments": [
            {"name": "android_sme2_on", "runner_path": "executorch/cmake-out/android-arm64-v9a/executor_runner",
             "mode": "timing", "runs": 10, "warmup": 1, "threads": [1]},
            {"name": "android_sme2_off",
             "runner_path": "executorch/cmake-out/android-arm64-v9a-sme2-off/executor_runner",
             "mode": "timing", "runs": 10, "warmup": 1, "threads": [1]},
        ],
        "analysis": {"compare_pairs": []},
    }


def _import(tmp_path: Path, data: dict[str, Any] | str, **kwargs: Any) -> Any:
    path = tmp_path / "kit.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return import_kit_config(load_kit_config(path), cwd=tmp_path, **kwargs)


def _rows(result: Any, kit_field: str) -> list[Any]:
    return [r for r in result.rows if r.kit.startswith(kit_field)]


def test_the_fixture_config_imports_into_a_valid_config_with_the_numbers_carried_over(tmp_path: Path) -> None:
    result = import_kit_config(load_kit_config(KIT / "toy_cnn_run.json"), cwd=tmp_path)
    config = result.config
    assert config["models"] == [{"pte": str(PTE.resolve()), "name": "toy_cnn_xnnpack_fp32"}]
    names = [v["name"] for v in config["variants"]]
    # baseline and candidate first (sme2tui compares the first two without `compare`), kernel-log runs after
    assert names == ["mac_sme2_off", "mac_sme2_on", "mac_sme2_on_trace", "mac_sme2_off_trace"]
    assert config["compare"] == {"baseline": "mac_sme2_off", "candidate": "mac_sme2_on"}
    assert [v.get("sme2") for v in config["variants"]] == ["off", "on", "on", "off"]
    assert "kernel log" in config["variants"][2]["label"]
    assert config["iterations"] == 10 and config["warmup"] == 1 and config["threads"] == [1, 2]
    assert config["target"] == {"kind": "host"}
    assert config["output_root"] == str((KIT / "runs" / "mac").resolve())
    assert all(Path(v["runner"]).is_absolute() for v in config["variants"])
    # the runners do not exist here: said, and the config still validates (runners are checked before a run)
    assert sum("runner" in p for p in result.problems) == 4 and not any("models[0]" in p for p in result.problems)
    out = tmp_path / "out.json"
    out.write_text(json.dumps(config))
    loaded = load_config(out)
    assert loaded.pair is not None and loaded.pair.baseline == "mac_sme2_off"
    text = render_mapping(result)
    assert "compare_pairs[0]" in text and "warmup" in text and "separate process" in text


def test_an_android_template_pairs_by_name_and_a_missing_pte_is_reported_not_fatal(tmp_path: Path) -> None:
    result = _import(tmp_path, android_template())
    config = result.config
    assert config["target"] == {"kind": "android"}
    assert config["compare"] == {"baseline": "android_sme2_off", "candidate": "android_sme2_on"}
    assert (config["iterations"], config["warmup"], config["threads"]) == (10, 1, [1])
    assert any("models[0].pte" in p and "does not exist" in p for p in result.problems)
    row = _rows(result, "analysis.compare_pairs")[0]
    assert "names" in row.note
    out = tmp_path / "out.json"
    out.write_text(json.dumps(config))
    parse_config(config)  # structurally valid now
    with pytest.raises(ConfigError, match="missing file"):
        load_config(out)  # … and validation says what to fix
    Path(config["models"][0]["pte"]).parent.mkdir(parents=True)
    shutil.copy(PTE, config["models"][0]["pte"])
    assert load_config(out).target.kind == "android"


def test_defaults_docs_names_unknown_keys_and_extra_args_are_dropped_and_said(tmp_path: Path) -> None:
    data = {
        "model": str(PTE), "description": "mine", "analysis": {"compare_pairs": [], "plots": True},
        "experiments": [
            {"name": "mac_sme2_off", "quiet_runner": "/opt/kit/mac-arm64-sme2-off/executor_runner",
             "num_runs": 50, "num_threads": [4], "extra_args": ["--verbose"], "comment": "x"},
            {"name": "mac_sme2_on", "runner_path": "", "quiet_runner": "/opt/kit/mac-arm64/executor_runner",
             "runs": 50, "threads": [4], "cpu_affinity": "0x80"},
        ],
    }
    result = _import(tmp_path, data)
    config = result.config
    # the kit never read num_runs/num_threads: it ran its defaults (100, [1]) for that experiment
    assert config["iterations"] == 100 and config["threads"] == [1, 4] and config["warmup"] == 10
    dropped = {r.kit: r.note for r in result.dropped}
    assert "loader never reads it" in dropped["experiments[0] (mac_sme2_off).num_runs"]
    assert "runs = 100 (its default)" in dropped["experiments[0] (mac_sme2_off).num_runs"]
    assert "threads = [1] (its default)" in dropped["experiments[0] (mac_sme2_off).num_threads"]
    assert "silently ignored" in dropped["description"] and "silently ignored" in dropped["analysis.plots"]
    assert "silently ignored" in dropped["experiments[0] (mac_sme2_off).comment"]
    assert "command line itself" in dropped["experiments[0] (mac_sme2_off).extra_args"]
    assert "ignores cpu_affinity on macOS" in dropped["experiments[1] (mac_sme2_on).cpu_affinity"]
    assert config["variants"][0]["runner"] == "/opt/kit/mac-arm64-sme2-off/executor_runner"  # quiet_runner
    parse_config(config)


def test_trace_runner_comes_from_verbose_runner_and_android_affinity_becomes_the_mask(tmp_path: Path) -> None:
    data = android_template()
    data["experiments"][0]["cpu_affinity"] = "0x80"
    data["experiments"].append({"name": "android_sme2_on_trace", "runner_path": "x/quiet/executor_runner",
                                "mode": "xnntrace", "extra_args": ["--verbose-runner", "/opt/xnnlog/executor_runner"]})
    result = _import(tmp_path, data)
    trace = result.config["variants"][-1]
    assert trace["runner"] == "/opt/xnnlog/executor_runner" and trace["sme2"] == "on"
    assert result.config["target"]["cpu_mask"] == "0x80"
    # a kernel-log run never becomes one side of the comparison
    assert result.config["compare"]["candidate"] == "android_sme2_on"


def test_kit_pairs_that_sme2tui_cannot_express_are_listed(tmp_path: Path) -> None:
    data = android_template()
    data["experiments"][0]["threads"] = [1, 4]
    data["analysis"]["compare_pairs"] = [
        {"baseline": {"experiment": "android_sme2_on", "threads": 1},
         "candidate": {"experiment": "android_sme2_on", "threads": 4}, "label": "scaling"},
        {"baseline": {"experiment": "android_sme2_off", "threads": 1},
         "candidate": {"experiment": "android_sme2_on", "threads": 1}},
        {"baseline": {"experiment": "ghost", "threads": 1}, "candidate": {"experiment": "android_sme2_on",
                                                                          "threads": 1}},
    ]
    result = _import(tmp_path, data)
    assert result.config["compare"] == {"baseline": "android_sme2_off", "candidate": "android_sme2_on"}
    notes = {r.kit: r.note for r in result.dropped}
    assert "different thread counts" in notes["analysis.compare_pairs[0]"]
    assert "not imported experiments" in notes["analysis.compare_pairs[2]"]


def test_mixed_platforms_need_a_target_and_then_keep_their_own_experiments(tmp_path: Path) -> None:
    data = android_template()
    data["experiments"].append({"name": "mac_sme2_on", "runner_path": "executorch/cmake-out/mac-arm64/executor_runner"})
    with pytest.raises(ConfigError, match="mixes Android and host") as err:
        _import(tmp_path, data)
    assert "--target" in (err.value.fix or "")
    result = _import(tmp_path, data, target="host")
    assert [v["name"] for v in result.config["variants"]] == ["mac_sme2_on"]
    assert any("--target android" in r.note for r in result.dropped)


@pytest.mark.parametrize("text, message", [
    ("{\"model\": \"m.pte\",", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ("{\"experiments\": []}", "no `model`"),
    ("{\"model\": \"m.pte\", \"experiments\": [{\"runner_path\": \"r\"}]}", "experiments[0].name"),
    ("{\"model\": \"m.pte\", \"experiments\": [{\"name\": \"a\", \"mode\": \"xtrace\"}]}", "supports timing and "
                                                                                           "xnntrace"),
    ("{\"model\": \"m.pte\", \"experiments\": [{\"name\": \"a\", \"runs\": \"ten\"}]}", "not a whole number"),
    ("{\"model\": \"m.pte\", \"experiments\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", "names repeat"),
    ("{\"model\": \"m.pte\", \"experiments\": [{\"name\": \"a\", \"threads\": 4}]}", "non-empty list"),
    ("{\"model\": \"m.pte\", \"experiments\": []}", "no experiments"),
    ("{\"model\": \"m.pte\", \"experiments\": [{\"name\": \"a\"}], \"analysis\": {\"compare_pairs\": "
     "[{\"baseline\": {\"experiment\": \"a\"}}]}}", "threads` is missing"),
])
def test_hostile_kit_configs_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _import(tmp_path, text)
    assert message in err.value.what + (err.value.where or "")
    assert err.value.fix


def test_the_command_writes_prints_the_table_and_validates(tmp_path: Path) -> None:
    kit = tmp_path / "kit.json"
    kit.write_text(json.dumps(android_template(str(PTE))))
    out = tmp_path / "imported.json"
    result = run_cli("config", "import", kit, "--output", out, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["validation"]["valid"] is True and Path(data["output"]) == out.resolve()
    assert json.loads(out.read_text()) == data["config"]
    assert "kit field" in result.stderr and "sme2tui field" in result.stderr and "valid:" in result.stderr
    assert any(r["sme2tui"] == "iterations" for r in data["mapping"])
    validate = run_cli("config", "validate", out, cwd=tmp_path)
    assert validate.returncode == 0, validate.stderr


def test_the_command_on_bad_input_exits_2_and_never_overwrites_the_kit_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{\"model\": \"x.pte\", \"experiments\": [}")
    result = run_cli("config", "import", bad, cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG and "not valid JSON" in result.stderr
    assert f"{bad}:1:" in result.stderr and "Traceback" not in result.stderr
    kit = tmp_path / "kit.json"
    kit.write_text(json.dumps(android_template()))
    same = run_cli("config", "import", kit, "--output", kit, cwd=tmp_path)
    assert same.returncode == ExitCode.CONFIG and "overwrite the kit config" in same.stderr
    assert json.loads(kit.read_text()) == android_template()
    first = run_cli("config", "import", kit, cwd=tmp_path)  # missing .pte: written anyway, and said
    assert first.returncode == 0 and "not runnable yet" in first.stderr and "missing file" in first.stderr
    again = run_cli("config", "import", kit, cwd=tmp_path)
    assert again.returncode == ExitCode.CONFIG and "exists" in again.stderr


@pytest.mark.parametrize("name, path, side", [
    ("android_sme2_on", None, "on"), ("mac_sme2_off", None, "off"), ("mac_nosme2", None, "off"),
    ("run_a", "executorch/cmake-out/mac-arm64-sme2-off/executor_runner", "off"),
    ("mac_sme2_on", "executorch/cmake-out/mac-arm64-sme2-off/executor_runner", None),  # they disagree
    ("baseline", None, None),
])
def test_sme2_side_from_names_and_presets(name: str, path: str | None, side: str | None) -> None:
    assert sme2_side(name, path, []).value == side


def test_platform_and_counterparts() -> None:
    assert platform("run", "executorch/cmake-out/android-arm64-v9a/executor_runner").value == "android"
    assert platform("mac_sme2_on", None).value == "macos"
    assert platform("exp", "/data/local/tmp/executor_runner").value == "android"
    assert counterpart("android_sme2_off") == "android_sme2_on" and counterpart("x_SME2-ON_t") == "x_SME2-OFF_t"
    assert counterpart("plain") is None
    # a preset is "on" when its -sme2-off sibling exists among the experiments
    on = sme2_side("exp_a", "cmake-out/mac-arm64/executor_runner", ["cmake-out/mac-arm64-sme2-off/executor_runner"])
    assert on.value == "on" and "pair" in on.reason


def test_duplicate_keys_are_noted_like_the_kit_reads_them(tmp_path: Path) -> None:
    text = json.dumps(android_template())[:-1] + ", \"output_root\": \"other\"}"
    result = _import(tmp_path, text)
    assert result.config["output_root"].endswith("other")
    assert any("written twice" in n for n in result.notes)
    assert parse_kit_config(json.loads(text), tmp_path / "k.json").output_root == "other"
