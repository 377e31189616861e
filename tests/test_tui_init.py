"""`sme2tui init`: the answers become a config that the core accepts, from the templates."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from screens.init_wizard import InitAnswers, build_config, run_init
from sme2tui.config import load_config

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_host_answers_make_a_valid_host_config() -> None:
    data = build_config(InitAnswers(builtin_models=["mobilenet_quick", "vit_quick"], dtypes=["fp32", "int8"],
                                    variants=["portable", "xnnpack"], warmup=1, iterations=5, name="mine"))
    assert data["target"]["kind"] == "host"
    assert [m["builtin"] for m in data["models"]] == ["mobilenet_quick", "vit_quick"]
    assert [v["name"] for v in data["variants"]] == ["portable", "xnnpack"]
    assert data["compare"] == {"baseline": "portable", "candidate": "xnnpack"}
    assert (data["warmup"], data["iterations"], data["name"]) == (1, 5, "mine")


def test_android_answers_keep_the_sme2_pair_and_the_device_settings() -> None:
    data = build_config(InitAnswers(target="android", dtypes=["fp16"], factory="my_pkg.models:build"))
    assert data["target"]["kind"] == "android"
    assert [v["name"] for v in data["variants"]] == ["sme2-off", "sme2-on"]
    assert data["models"][-1] == {"factory": "my_pkg.models:build"}


def test_compare_is_dropped_when_its_variants_are_not_chosen() -> None:
    data = build_config(InitAnswers(variants=["xnnpack", "sme2-on"]))
    assert "compare" not in data  # the first two variants are compared, first = baseline


def test_run_init_writes_a_file_load_config_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_init(None, InitAnswers(name="first")) == 0
    config = load_config(tmp_path / "sme2tui-first.json")
    assert config.name == "first"
    # The default path is never overwritten; an explicit one is the user's choice.
    assert run_init(None, InitAnswers(name="first")) == 2
    out = tmp_path / "chosen.json"
    assert run_init(out, InitAnswers(name="second")) == 0
    assert json.loads(out.read_text())["name"] == "second"


def test_bad_answers_are_reported_not_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.json"
    assert run_init(out, InitAnswers(builtin_models=[], factory="")) == 2
    assert not out.exists()
    assert "models" in capsys.readouterr().err


def test_init_can_start_from_a_kit_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import REPO

    monkeypatch.chdir(tmp_path)
    kit = REPO / "tests" / "data" / "kit_run" / "toy_cnn_run.json"
    assert run_init(None, InitAnswers(kit_config=str(kit))) == 0
    config = load_config(tmp_path / "sme2tui-kit-toy_cnn_run.json")
    assert config.iterations == 10 and config.warmup == 1 and list(config.threads) == [1, 2]
    err = capsys.readouterr().err
    assert "kit field" in err and "valid:" in err
    assert run_init(tmp_path / "x.json", InitAnswers(kit_config=str(tmp_path / "missing.json"))) == 2


def test_host_threads_come_from_this_machines_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from sme2tui import hostinfo

    assert hostinfo.default_thread_counts(1) == [1]
    assert hostinfo.default_thread_counts(2) == [1, 2]
    assert hostinfo.default_thread_counts(64) == [1, 4]
    monkeypatch.setattr(hostinfo, "usable_cpus", lambda: 2)
    assert build_config(InitAnswers())["threads"] == [1, 2]
    # A phone's cores are not this machine's: the Android template's setting stays.
    assert build_config(InitAnswers(target="android"))["threads"] == [1]
    assert build_config(InitAnswers(threads=[3]))["threads"] == [3]
