"""Config: every shipped file validates; every mistake names the field and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sme2tui.config import RunConfig, json_schema, load_config, parse_config
from sme2tui.errors import ConfigError
from tests.conftest import REPO, tiny_config

SHIPPED = sorted((REPO / "configs").glob("*/*.json"))


def test_shipped_configs_exist() -> None:
    names = {p.relative_to(REPO / "configs").as_posix() for p in SHIPPED}
    assert {"examples/quickstart.json", "templates/host.json", "templates/android.json"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates(path: Path) -> None:
    config = load_config(path)
    assert config.models and config.variants


def test_schema_file_is_current() -> None:
    committed = json.loads((REPO / "configs" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate with: sme2tui config schema > configs/schema.json"


def test_builtin_default_is_the_quickstart_example() -> None:
    packaged = REPO / "sme2tui" / "data" / "quickstart.json"
    assert packaged.read_text() == (REPO / "configs" / "examples" / "quickstart.json").read_text()


def _error(data: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="test.json")
    return info.value


def test_misspelled_key_suggests_the_right_one() -> None:
    err = _error(tiny_config(iteratons=5))
    assert "unknown key `iteratons`" in err.what and "did you mean `iterations`?" in err.what
    assert err.where == "test.json"


def test_misspelled_nested_key_names_the_path() -> None:
    err = _error(tiny_config(target={"kind": "android", "seral": "abc"}))
    assert "`target.seral`" in err.what and "`serial`" in err.what
    err = _error(tiny_config(variants=[{"name": "a", "delgate": "xnnpack"}]))
    assert "`variants[0].delgate`" in err.what and "`delegate`" in err.what


def test_wrong_types_and_negative_counts() -> None:
    err = _error(tiny_config(warmup=-1, iterations="many", threads=[0]))
    assert "`warmup`" in err.what and "greater than or equal to 0" in err.what
    assert "`iterations`" in err.what
    assert "`threads[0]`" in err.what
    assert err.what.startswith("the config has 3 problems")


def test_bad_enum_value_lists_the_choices() -> None:
    err = _error(tiny_config(dtypes=["fp8"]))
    assert "'fp32', 'fp16', 'int8' or 'int8-dynamic'" in err.what


def test_compare_must_name_variants() -> None:
    err = _error(tiny_config(compare={"baseline": "portable", "candidate": "sme2-on"}))
    assert "compare.candidate `sme2-on` is not a variant" in err.what


def test_model_needs_exactly_one_source() -> None:
    err = _error(tiny_config(models=[{"builtin": "mobilenet_quick", "factory": "a.b:c"}]))
    assert "exactly one of `builtin`, `factory` or `pte`" in err.what


def test_duplicate_variant_names_rejected() -> None:
    err = _error(tiny_config(variants=[{"name": "a"}, {"name": "a", "delegate": "portable"}]))
    assert "variants[1] repeats variants[0] (the name `a`)" in err.what


def test_missing_pte_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": [{"pte": "missing.pte"}]}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "models[0].pte points at a missing file: missing.pte" in info.value.what
    assert "relative to the config file" in (info.value.fix or "")


def test_invalid_json_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n  "models": [],\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.where == f"{path}:3:1"


def test_config_hash_is_stable_and_sensitive() -> None:
    a, b = parse_config(tiny_config()), parse_config(tiny_config())
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != parse_config(tiny_config(iterations=7)).config_hash()


def test_round_trip_through_canonical_json() -> None:
    config = parse_config(tiny_config(models=[{"builtin": "mobilenet_quick"}, {"name": "x", "builtin": "vit_quick"}]))
    again = RunConfig.model_validate(json.loads(config.canonical_json()))
    assert again == config


def test_default_pair_is_first_two_variants() -> None:
    config = parse_config({k: v for k, v in tiny_config().items() if k != "compare"})
    assert config.pair is not None
    assert (config.pair.baseline, config.pair.candidate) == ("portable", "xnnpack")


@pytest.mark.parametrize(("factory", "expected"), [
    ("my_model:build", "my_model"),
    ("my_pkg.models.my_model:get_model", "my_model"),
    ("zoo:resnet18", "zoo-resnet18"),
    ("MyModels:Build", "mymodels"),
])
def test_factory_models_are_named_after_what_the_user_chose(factory: str, expected: str) -> None:
    config = parse_config(tiny_config(models=[{"factory": factory}]))
    assert config.models[0].id == expected
    # An explicit name always wins.
    assert parse_config(tiny_config(models=[{"name": "mine", "factory": factory}])).models[0].id == "mine"
