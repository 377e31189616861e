"""SME2 on/off runner pairs, against the stand-in ExecuTorch project (tests/data/fake_executorch) and
the stand-in NDK (tests/data/fake_ndk, Debian's aarch64 cross compiler behind an NDK-shaped layout).

What is real here: CMake, Ninja, the compilers, the cache files, the ELF headers. What is not: the
ExecuTorch build itself (hours, and network for KleidiAI) and an Android toolchain.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sme2tui.errors import CheckpointFailed, ConfigError, EnvironmentProblem, Interrupted
from sme2tui.events import ArtifactWritten, Checkpoint, LogLine, StepFinished
from sme2tui.runners import pairs, toolchain
from sme2tui.runners.binfmt import read_arch
from sme2tui.runners.cache_diff import diff_pair, require_only_sme_differs
from sme2tui.runners.ndk import Ndk, find_ndk
from sme2tui.runners.pairs import build, find_pair_runner, pair_build_dir
from sme2tui.runners.variants import SME_SWITCHES, android_platform, parse_variant, variant_args

DATA = Path(__file__).parent / "data"
FAKE_ET = DATA / "fake_executorch"
FAKE_NDK = DATA / "fake_ndk"
HAVE_CROSS = shutil.which("aarch64-linux-gnu-g++") is not None and shutil.which("aarch64-linux-gnu-gcc") is not None
needs_cross = pytest.mark.skipif(
    not HAVE_CROSS,
    reason="Debian's aarch64 cross compiler is not installed (apt-get install g++-aarch64-linux-gnu)",
)
HOST_IS_X86 = platform.machine() in ("x86_64", "AMD64")
_NDK_ENV = ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT", "ANDROID_HOME", "ANDROID_SDK_ROOT")


def _events(target: Any, variants: tuple[str, ...], build_root: Path, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("source_dir", FAKE_ET)
    return list(build(target, variants, build_root=build_root, **kwargs))


def _received(build_dir: Path) -> dict[str, str]:
    text = (build_dir / "fake_received_cache.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --------------------------------------------------------------------------------- argument sets


def _without_sme(args: list[str]) -> list[str]:
    return [a for a in args if not any(a.startswith(f"-D{s}=") for s in SME_SWITCHES)]


@pytest.mark.parametrize("target", ["host", "android", "macos"])
@pytest.mark.parametrize("log", ["", "-kernellog"])
def test_pair_arguments_differ_only_in_the_sme_switches(target: Any, log: str) -> None:
    ndk = Ndk(FAKE_NDK, "27.2.12479018")
    on = variant_args(parse_variant(f"sme2-on{log}"), target, source_dir=FAKE_ET, ndk=ndk, extra=("-DX=1",))
    off = variant_args(parse_variant(f"sme2-off{log}"), target, source_dir=FAKE_ET, ndk=ndk, extra=("-DX=1",))
    assert _without_sme(on) == _without_sme(off)
    assert on[-2:] == ["-DXNNPACK_ENABLE_ARM_SME2=ON", "-DXNNPACK_ENABLE_ARM_SME=ON"]
    assert off[-2:] == ["-DXNNPACK_ENABLE_ARM_SME2=OFF", "-DXNNPACK_ENABLE_ARM_SME=OFF"]
    for required in ("EXECUTORCH_BUILD_DEVTOOLS=ON", "EXECUTORCH_ENABLE_EVENT_TRACER=ON",
                     "EXECUTORCH_BUILD_XNNPACK=ON", "EXECUTORCH_XNNPACK_ENABLE_KLEIDI=ON"):  # fmt: skip
        assert f"-D{required}" in on
    if target == "android":
        assert f"-DCMAKE_TOOLCHAIN_FILE={FAKE_NDK}/build/cmake/android.toolchain.cmake" in on
        assert {
            "-DANDROID_ABI=arm64-v8a",
            "-DANDROID_PLATFORM=android-26",
            "-DANDROID_STL=c++_shared",
        } <= set(on)
    # Kernel-log variants raise XNNPACK's log level (the stand-in tree has no option for it: flags route).
    assert ("-DCMAKE_CXX_FLAGS=-DXNN_LOG_LEVEL=4" in on) == bool(log)


def test_kernel_log_uses_the_trees_option_when_it_has_one(tmp_path: Path) -> None:
    (tmp_path / "backends" / "xnnpack" / "cmake").mkdir(parents=True)
    (tmp_path / "backends" / "xnnpack" / "cmake" / "Dependencies.cmake").write_text(
        'set(EXECUTORCH_XNNPACK_LOG_LEVEL "0" CACHE STRING "")\n'
    )
    args = variant_args(parse_variant("sme2-on-kernellog"), "host", source_dir=tmp_path)
    assert "-DEXECUTORCH_XNNPACK_LOG_LEVEL=4" in args and not any("CMAKE_CXX_FLAGS" in a for a in args)


def test_android_platform_and_variant_validation() -> None:
    assert android_platform("android-26") == android_platform(26) == "android-26"
    assert android_platform("30") == "android-30"
    with pytest.raises(ConfigError, match="android-23"):
        android_platform("android-23")
    with pytest.raises(ConfigError) as info:
        parse_variant("sme2-maybe")
    assert "sme2-on" in (info.value.fix or "")
    assert parse_variant("sme2-off-kernellog").partner == "sme2-on-kernellog"


# ------------------------------------------------------------------------------------------- NDK


def _ndk_copy(tmp_path: Path, revision: str | None = None) -> Path:
    ndk = tmp_path / "ndk"
    shutil.copytree(FAKE_NDK, ndk)
    if revision is not None:
        (ndk / "source.properties").write_text(f"Pkg.Desc = Android NDK\nPkg.Revision = {revision}\n")
    return ndk


def test_find_ndk_reads_the_revision_and_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _NDK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANDROID_NDK", str(FAKE_NDK))
    ndk = find_ndk()
    assert (ndk.revision, ndk.major) == ("27.2.12479018", 27)
    assert ndk.libcxx_shared().name == "libc++_shared.so"
    assert ndk.libcxx_shared().parent.name == "aarch64-linux-android"


def test_find_ndk_picks_the_newest_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _NDK_ENV:
        monkeypatch.delenv(name, raising=False)
    sdk = tmp_path / "sdk"
    for version in ("27.0.12077973", "28.1.13356709"):
        shutil.copytree(FAKE_NDK, sdk / "ndk" / version)
        (sdk / "ndk" / version / "source.properties").write_text(f"Pkg.Revision = {version}\n")
    monkeypatch.setenv("ANDROID_HOME", str(sdk))
    assert find_ndk().revision == "28.1.13356709"


def test_ndk_problems_have_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _NDK_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EnvironmentProblem, match="no Android NDK found") as info:
        find_ndk()
    assert "ANDROID_NDK" in (info.value.fix or "")

    old = _ndk_copy(tmp_path / "old", "25.2.9519653")
    with pytest.raises(EnvironmentProblem, match="older than r27"):
        find_ndk(old)

    broken = _ndk_copy(tmp_path / "broken")
    (broken / "build" / "cmake" / "android.toolchain.cmake").unlink()
    with pytest.raises(EnvironmentProblem, match=r"android\.toolchain\.cmake"):
        find_ndk(broken)

    not_ndk = tmp_path / "empty"
    not_ndk.mkdir()
    with pytest.raises(EnvironmentProblem, match=r"source\.properties"):
        find_ndk(not_ndk)


# ------------------------------------------------------------------------------------ cache diff


def _cache(folder: Path, entries: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# This is the CMakeCache file.", "//comment"]
    lines += [f"{k}:STRING={v}" for k, v in entries.items()]
    (folder / "CMakeCache.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_cache_diff_ignores_build_dir_paths_and_allows_only_sme(tmp_path: Path) -> None:
    def entries(folder: Path, sme: str, flags: str = "-O3") -> dict[str, str]:
        return {
            "CMAKE_CACHEFILE_DIR": str(folder),
            "FETCHCONTENT_BASE_DIR": f"{folder}/_deps",
            "fake_BINARY_DIR": str(folder),
            "CMAKE_CXX_FLAGS": flags,
            "XNNPACK_ENABLE_ARM_SME2": sme,
            "XNNPACK_ENABLE_ARM_SME": sme,
            "CMAKE_CXX_COMPILER-ADVANCED": "1",
        }

    on, off = tmp_path / "android-sme2-on", tmp_path / "android-sme2-off"
    _cache(on, entries(on, "ON"))
    _cache(off, entries(off, "OFF"))
    assert diff_pair(on, off) == []
    require_only_sme_differs(on, off)

    _cache(on, entries(on, "ON", flags="-O3 -march=armv9-a+sme2"))
    with pytest.raises(CheckpointFailed) as info:
        require_only_sme_differs(on, off)
    assert "CMAKE_CXX_FLAGS" in info.value.what and "-march=armv9-a+sme2" in info.value.what

    # Same flags, but the switch did not take: an on/off pair of identical builds is refused too.
    _cache(on, entries(on, "OFF"))
    with pytest.raises(CheckpointFailed, match="XNNPACK_ENABLE_ARM_SME2"):
        require_only_sme_differs(on, off)

    # An entry present on one side only is a difference.
    _cache(on, {**entries(on, "ON"), "EXTRA_OPTION": "1"})
    assert [d.key for d in diff_pair(on, off)] == ["EXTRA_OPTION"]


# ------------------------------------------------------------------------------- real builds: host


@pytest.fixture(scope="module")
def host_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    root = tmp_path_factory.mktemp("pairs")
    return root, _events("host", ("sme2-on", "sme2-off"), root)


def test_host_pair_builds_checks_and_describes_both_variants(host_pair: tuple[Path, list[Any]]) -> None:
    root, events = host_pair
    assert isinstance(events[-1], StepFinished) and events[-1].ok
    passed = [e for e in events if isinstance(e, Checkpoint) and e.status == "pass"]
    assert any(e.name == "pair-identical" for e in passed)
    assert sum(e.name == "architecture" for e in passed) == 2
    if HOST_IS_X86:
        assert any(isinstance(e, Checkpoint) and e.name == "sme2-host" and e.status == "warn" for e in events)
    # Configure of both variants happens before either is built: the check gates the compile.
    texts = [e.text for e in events if isinstance(e, LogLine) and e.text.startswith("$ ")]
    kinds = ["build" if " --build " in t else "configure" for t in texts]
    assert kinds == ["configure", "configure", "build", "build"]

    for variant, sme in (("sme2-on", "ON"), ("sme2-off", "OFF")):
        folder = pair_build_dir(root, "host", variant)
        binary = folder / "executor_runner"
        manifest = json.loads((folder / "runner_manifest.json").read_text())
        assert manifest["variant"] == variant and manifest["target"] == "host"
        assert manifest["sme2"] is (sme == "ON")
        assert manifest["cmake_cache"]["XNNPACK_ENABLE_ARM_SME2"] == sme
        assert manifest["cmake_cache"]["XNNPACK_ENABLE_ARM_SME"] == sme
        assert f"-DXNNPACK_ENABLE_ARM_SME2={sme}" in manifest["cmake"]["args"]
        assert manifest["pair_check"].startswith("CMake caches of sme2-on and sme2-off")
        assert manifest["executorch"]["version"] == "1.5.1" and manifest["executorch"]["source"] == "tree"
        assert manifest["executorch"]["dirty"] is False and manifest["executorch"]["path"] == str(FAKE_ET)
        assert manifest["compiler"]["id"] and manifest["compiler"]["path"]
        assert manifest["architecture"]["canonical"] == read_arch(binary).canonical
        # The stand-in project really received what the manifest says it was configured with.
        received = _received(folder)
        assert received["XNNPACK_ENABLE_ARM_SME2"] == sme and received["EXECUTORCH_BUILD_DEVTOOLS"] == "ON"
        # And the binary really was compiled that way.
        out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
        assert f"sme2={int(sme == 'ON')} sme={int(sme == 'ON')}" in out
        assert find_pair_runner(root, "host", variant) == binary
    assert find_pair_runner(root, "android", "sme2-on") is None


def test_rebuild_reuses_the_folders(host_pair: tuple[Path, list[Any]]) -> None:
    root, _ = host_pair
    before = (pair_build_dir(root, "host", "sme2-on") / "executor_runner").stat().st_mtime_ns
    events = _events("host", ("sme2-on", "sme2-off"), root)
    log = [e.text for e in events if isinstance(e, LogLine)]
    assert sum("no work to do" in t for t in log) == 2
    assert (pair_build_dir(root, "host", "sme2-on") / "executor_runner").stat().st_mtime_ns == before


def test_a_pair_that_leaks_sme_into_other_flags_is_refused_before_compiling(tmp_path: Path) -> None:
    with pytest.raises(CheckpointFailed) as info:
        _events("host", ("sme2-on", "sme2-off"), tmp_path, extra_cmake_args=["-DFAKE_LEAK_SME_INTO_FLAGS=ON"])
    assert "FAKE_MARCH" in info.value.what
    assert not (pair_build_dir(tmp_path, "host", "sme2-on") / "executor_runner").exists()


def test_a_variant_without_its_partner_is_built_with_a_warning(tmp_path: Path) -> None:
    events = _events("host", ("sme2-on",), tmp_path)
    warnings = [e for e in events if isinstance(e, Checkpoint) and e.name == "pair-identical"]
    assert [w.status for w in warnings] == ["warn"]
    assert find_pair_runner(tmp_path, "host", "sme2-on") is not None


# ------------------------------------------------------------------------- real builds: android


@needs_cross
def test_android_pair_produces_aarch64_runners_with_libcxx(tmp_path: Path) -> None:
    events = _events("android", ("sme2-on", "sme2-off", "sme2-on-kernellog", "sme2-off-kernellog"), tmp_path,
                     ndk=FAKE_NDK, android_platform="android-28")  # fmt: skip
    assert isinstance(events[-1], StepFinished) and events[-1].ok
    assert sum(e.name == "pair-identical" and e.status == "pass" for e in events if isinstance(e, Checkpoint)) == 2
    # Honest about the stand-in: Debian's cross compiler links the glibc loader, not Android's.
    assert any(isinstance(e, Checkpoint) and e.name == "android-loader" and e.status == "warn" for e in events)
    assert sum(isinstance(e, ArtifactWritten) and e.kind == "runtime-library" for e in events) == 4
    for variant in ("sme2-on", "sme2-off", "sme2-on-kernellog"):
        folder = pair_build_dir(tmp_path, "android", variant)
        arch = read_arch(folder / "executor_runner")
        assert (arch.format, arch.machine, arch.bits) == ("ELF", "aarch64", 64)
        assert (folder / "libc++_shared.so").read_bytes() == next(FAKE_NDK.rglob("libc++_shared.so")).read_bytes()
        manifest = json.loads((folder / "runner_manifest.json").read_text())
        assert manifest["ndk"]["revision"] == "27.2.12479018"
        assert manifest["android_platform"] == "android-28"
        assert manifest["cmake_cache"]["ANDROID_STL"] == "c++_shared"
        assert manifest["compiler"]["path"].endswith("aarch64-linux-gnu-g++")
        assert manifest["architecture"]["machine"] == "aarch64"
        assert manifest["libcxx_shared"]["sha256"]
    log_manifest = json.loads(
        (pair_build_dir(tmp_path, "android", "sme2-off-kernellog") / "runner_manifest.json").read_text()
    )
    assert log_manifest["kernel_log"] is True and log_manifest["cmake_cache"]["CMAKE_CXX_FLAGS"] == "-DXNN_LOG_LEVEL=4"


def test_an_android_runner_that_is_not_arm64_is_caught(tmp_path: Path) -> None:
    # An "NDK" whose toolchain file quietly uses the host compiler: the build succeeds, the check must not.
    ndk = _ndk_copy(tmp_path)
    toolchain_file = ndk / "build" / "cmake" / "android.toolchain.cmake"
    text = toolchain_file.read_text()
    text = text.replace("aarch64-linux-gnu-gcc", shutil.which("cc") or "cc")
    text = text.replace("aarch64-linux-gnu-g++", shutil.which("c++") or "c++")
    text = text.replace("set(CMAKE_SYSTEM_PROCESSOR aarch64)", "")
    toolchain_file.write_text(text)
    if not HOST_IS_X86:
        pytest.skip("the host compiler produces arm64 here, so there is nothing wrong to catch")
    with pytest.raises(EnvironmentProblem) as info:
        _events("android", ("sme2-on", "sme2-off"), tmp_path / "build", ndk=ndk)
    assert "x86-64" in info.value.what and "expected ELF arm64" in info.value.what
    assert not (pair_build_dir(tmp_path / "build", "android", "sme2-on") / "runner_manifest.json").exists()


# ------------------------------------------------------------------------------- failures, early


def test_no_ndk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _NDK_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EnvironmentProblem, match="no Android NDK found"):
        _events("android", ("sme2-on", "sme2-off"), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(platform.system() == "Darwin" and platform.machine() == "arm64", reason="this is an M-series Mac")
def test_macos_needs_an_apple_silicon_mac(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as info:
        _events("macos", ("sme2-on", "sme2-off"), tmp_path)
    assert "Apple Silicon" in info.value.what and info.value.fix


def test_missing_submodules(tmp_path: Path) -> None:
    tree = tmp_path / "et"
    shutil.copytree(FAKE_ET, tree)
    (tree / "backends/xnnpack/third-party/XNNPACK/CMakeLists.txt").unlink()
    with pytest.raises(EnvironmentProblem) as info:
        _events("host", ("sme2-on", "sme2-off"), tmp_path / "build", source_dir=tree)
    assert "missing submodules" in info.value.what and "XNNPACK" in info.value.what
    assert "submodule update --init --recursive" in (info.value.fix or "")


def test_cmake_too_old_stops_the_pair_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "cmake").write_text("#!/bin/sh\necho 'cmake version 3.22.1'\n")
    (fake_bin / "cmake").chmod(0o755)
    monkeypatch.setattr(toolchain, "_venv_bin", lambda name: None)
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(EnvironmentProblem, match="too old"):
        _events("host", ("sme2-on", "sme2-off"), tmp_path / "build")


def test_out_of_disk_is_caught_before_configuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pairs, "_BYTES_PER_VARIANT", shutil.disk_usage(tmp_path).free)
    with pytest.raises(EnvironmentProblem, match="not enough disk space"):
        _events("host", ("sme2-on", "sme2-off"), tmp_path / "build")
    assert not (tmp_path / "build").exists()


def test_cancel_stops_a_running_build(tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[Any] = []
    start = time.monotonic()
    # A duration unique to this test process marks its sleep, so a concurrent run cannot confuse the check.
    marker = f"{47 + os.getpid() % 1000 / 1000:.3f}"

    def consume() -> None:
        for event in build("host", ("sme2-on", "sme2-off"), source_dir=FAKE_ET, build_root=tmp_path,
                           extra_cmake_args=[f"-DFAKE_SLOW_BUILD_SECONDS={marker}"], cancel=cancel):  # fmt: skip
            seen.append(event)
            if isinstance(event, LogLine) and " --build " in event.text:
                threading.Timer(0.5, cancel.set).start()

    with pytest.raises(Interrupted):
        consume()
    assert time.monotonic() - start < 30
    assert not (pair_build_dir(tmp_path, "host", "sme2-on") / "executor_runner").exists()
    # Nothing of ours keeps sleeping: no process runs the marked sleep any more.
    time.sleep(0.5)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        assert not (b"sleep" in args and marker.encode() in args), args
