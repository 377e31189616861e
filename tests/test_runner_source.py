"""`setup executorch`: clone at a pinned ref with submodules, or adopt an existing tree read-only.

The "remote" is a local git repository built from the stand-in ExecuTorch project, with the XNNPACK
folder as a real git submodule, so clone, checkout and submodule update run for real without network.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import Checkpoint, StepFinished
from sme2tui.runners.etpackage import find_executorch
from sme2tui.runners.source_tree import describe_tree, missing_submodules, setup_executorch

FAKE_ET = Path(__file__).parent / "data" / "fake_executorch"
SUBMODULE = "backends/xnnpack/third-party/XNNPACK"
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    env_args = [
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "protocol.file.allow=always",
    ]
    result = subprocess.run(["git", *env_args, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


@dataclass
class Remote:
    path: Path
    first: str  # commit of the first release
    second: str  # a later commit on the default branch
    branch: str


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Remote:
    root = tmp_path_factory.mktemp("remote")
    xnn = root / "XNNPACK"
    shutil.copytree(FAKE_ET / SUBMODULE, xnn)
    git(xnn, "init", "-q")
    git(xnn, "add", ".")
    git(xnn, "commit", "-q", "-m", "xnnpack")

    et = root / "executorch"
    shutil.copytree(FAKE_ET, et, ignore=shutil.ignore_patterns("XNNPACK"))
    git(et, "init", "-q")
    git(et, "submodule", "add", "-q", str(xnn), SUBMODULE)
    git(et, "add", ".")
    git(et, "commit", "-q", "-m", "release 1.5.1")
    first = git(et, "rev-parse", "HEAD")
    git(et, "tag", "v1.5.1")
    (et / "version.txt").write_text("1.6.0a0\n")
    git(et, "commit", "-q", "-am", "bump")
    return Remote(et, first, git(et, "rev-parse", "HEAD"), git(et, "branch", "--show-current"))


def _setup(path: Path | None, **kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    events = list(setup_executorch(path, **kwargs))
    finished = events[-1]
    assert isinstance(finished, StepFinished) and finished.ok
    return events, finished.data


def test_clone_at_a_commit_with_submodules(remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "et"
    _, data = _setup(dest, ref=remote.first, remote=str(remote.path))
    assert data["commit"] == remote.first and data["dirty"] is False and data["adopted"] is False
    assert data["ref"] == remote.first and data["remote"] == str(remote.path)
    assert data["version"] == "1.5.1"
    assert git(dest, "rev-parse", "HEAD") == remote.first
    assert (dest / SUBMODULE / "CMakeLists.txt").is_file()
    assert missing_submodules(dest) == []
    assert not dest.with_name("et.partial").exists()


@pytest.mark.parametrize("kind", ["tag", "branch"])
def test_clone_at_a_tag_or_branch(remote: Remote, tmp_path: Path, kind: str) -> None:
    ref, expected = ("v1.5.1", remote.first) if kind == "tag" else (remote.branch, remote.second)
    _, data = _setup(tmp_path / "et", ref=ref, remote=str(remote.path))
    assert data["commit"] == expected


def test_default_ref_is_the_installed_wheels_commit(remote: Remote, tmp_path: Path) -> None:
    # The stand-in remote does not have the wheel's commit: the clone must fail on exactly that ref and
    # leave nothing behind that a later run could mistake for a tree.
    wheel_commit = find_executorch(require_cmake=False).git_commit
    dest = tmp_path / "et"
    with pytest.raises(EnvironmentProblem) as info:
        list(setup_executorch(dest, remote=str(remote.path)))
    assert wheel_commit in info.value.what
    assert not dest.exists() and not dest.with_name("et.partial").exists()


def test_adopting_a_tree_records_it_and_never_modifies_it(remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    _setup(dest, ref=remote.second, remote=str(remote.path))
    (dest / "runner.cpp").write_text((dest / "runner.cpp").read_text() + "// local change\n")
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts}
    head = git(dest, "rev-parse", "HEAD")

    events, data = _setup(dest, ref=remote.first)  # asks for another commit: only a warning
    assert data["adopted"] is True and data["dirty"] is True and data["commit"] == head
    statuses = {e.name: e.status for e in events if isinstance(e, Checkpoint)}
    assert statuses == {"executorch-source": "warn", "executorch-ref": "warn"}
    assert git(dest, "rev-parse", "HEAD") == head
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts} == before


def test_adopting_a_clean_tree_passes(remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "clean"
    _setup(dest, ref=remote.first, remote=str(remote.path))
    events, data = _setup(dest)
    assert data["dirty"] is False and data["commit"] == remote.first
    assert [e.status for e in events if isinstance(e, Checkpoint)] == ["pass"]
    assert describe_tree(dest).commit == remote.first


def test_adopting_a_tree_without_submodules_fails_with_the_command(remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "nosub"
    subprocess.run(["git", "clone", "-q", str(remote.path), str(dest)], check=True, capture_output=True)
    assert missing_submodules(dest)
    with pytest.raises(EnvironmentProblem) as info:
        list(setup_executorch(dest))
    assert SUBMODULE in info.value.what
    assert "submodule update --init --recursive" in (info.value.fix or "")
    assert not (dest / SUBMODULE / "CMakeLists.txt").exists()  # still untouched


def test_a_folder_that_is_not_executorch_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(EnvironmentProblem, match="not an ExecuTorch source tree"):
        list(setup_executorch(tmp_path))


def test_default_location_is_per_ref_and_reused(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _, first = _setup(None, ref=remote.first, remote=str(remote.path))
    assert first["path"] == str(tmp_path / "cache" / "sme2tui" / f"executorch-{remote.first[:12]}")
    assert first["adopted"] is False
    _, again = _setup(None, ref=remote.first, remote=str(remote.path))
    assert again["adopted"] is True and again["path"] == first["path"]
    _, tag = _setup(None, ref="v1.5.1", remote=str(remote.path))
    assert tag["path"].endswith("executorch-v1.5.1") and tag["commit"] == remote.first


def test_runners_built_from_a_cloned_tree_record_its_commit(remote: Remote, tmp_path: Path) -> None:
    import json

    from sme2tui.runners.pairs import build, pair_build_dir

    dest = tmp_path / "et"
    _setup(dest, ref=remote.first, remote=str(remote.path))
    list(build("host", ("sme2-on", "sme2-off"), source_dir=dest, build_root=tmp_path / "runners"))
    manifest = json.loads(
        (pair_build_dir(tmp_path / "runners", "host", "sme2-off") / "runner_manifest.json").read_text()
    )
    assert manifest["executorch"]["git_commit"] == remote.first
    # Build folders live outside the tree, so building leaves the tree clean.
    assert manifest["executorch"]["dirty"] is False and describe_tree(dest).dirty is False
