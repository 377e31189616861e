"""The native host runner: `sme2_runner` built from sme2tui/runner_src against the installed executorch
wheel's CMake package. Takes seconds, needs no ExecuTorch source tree, and runs on the machine it was
built on (x86-64 or arm64 Linux, arm64 macOS).
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import ArtifactWritten, Checkpoint, Event, StepFinished, StepStarted
from sme2tui.runners.binfmt import host_canonical
from sme2tui.runners.cmake_build import Stopwatch, binary_arch, build_manifest, configure_and_build
from sme2tui.runners.etpackage import find_executorch
from sme2tui.runners.location import lock_build_folder
from sme2tui.runners.manifest import MANIFEST_NAME, read_manifest, sha256_of_tree, write_json_atomic
from sme2tui.runners.toolchain import find_cmake, find_cxx, find_ninja, require_free_space

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

RUNNER_SRC = Path(__file__).resolve().parent.parent / "runner_src"
VARIANT = "host-native"
BINARY_NAME = "sme2_runner"
# Cache entries that decide what the binary is; recorded in the manifest.
CACHE_PREFIXES = (
    "CMAKE_BUILD_TYPE",
    "CMAKE_CXX_COMPILER",
    "CMAKE_CXX_FLAGS",
    "CMAKE_EXE_LINKER_FLAGS",
    "CMAKE_GENERATOR",
    "CMAKE_MAKE_PROGRAM",
    "executorch_DIR",
    "SME2_RUNNER_",
)
_NEEDED_BYTES = 64 * 2**20  # one object file, one binary, CMake's scratch files


def host_build_dir(build_root: Path) -> Path:
    """Where the host runner lives under a runners folder: `<build_root>/host-native/`."""
    return build_root / VARIANT


def _smoke_test(binary: Path) -> None:
    # Starting it proves the dynamic loader finds every ExecuTorch library through the recorded rpath;
    # a broken rpath would otherwise surface only at the first measurement.
    result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise EnvironmentProblem(
            f"the freshly built host runner does not start (exit {result.returncode}): "
            f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}",
            where=str(binary),
            fix="reinstall the executorch wheel (pip install --force-reinstall executorch==1.5.1), delete "
            "the build folder and build again",
        )


def find_host_runner(build_root: Path) -> Path | None:
    """The built host runner under `build_root` (or `build_root/host-native`), if it is still current.

    Current means: its manifest is there, describes this binary (sha256), was built from the runner sources
    this sme2tui ships, and against this environment's executorch package. Otherwise None, and the caller
    rebuilds.
    """
    for folder in (host_build_dir(build_root), build_root):
        binary = folder / BINARY_NAME
        manifest = read_manifest(binary)
        if manifest is None or manifest.get("variant") != VARIANT:
            continue
        if manifest.get("source_sha256") != sha256_of_tree(RUNNER_SRC):
            continue
        # Runners live in one per-user folder that several environments may share: a runner linked against
        # another environment's executorch (another version, or a venv that may be gone) is not this one's.
        built_against = (manifest.get("executorch") or {}).get("package_dir")
        if built_against and built_against != _executorch_root():
            continue
        return binary
    return None


def _executorch_root() -> str | None:
    try:
        return str(find_executorch(require_cmake=False).root)
    except EnvironmentProblem:
        return None


def build_host_runner(build_dir: Path, *, cancel: threading.Event | None = None,
                      reuse_current: bool = False) -> Iterator[Event]:
    """Configure and build the host runner in `build_dir` (reused incrementally), then write its manifest.

    The build folder is locked while it builds (runners live in one per-user folder, and two runs may want
    the runner at once): a second build waits for the first, and with `reuse_current` uses its result.
    Yields build events; raises EnvironmentProblem (with a fix) for a missing/old CMake, no C++ compiler,
    a wheel without the CMake package, a full/read-only disk or a failed build, and Interrupted when `cancel`
    is set.
    """
    yield StepStarted(step="build", title="Build the native host runner (sme2_runner)")
    build_dir = build_dir.expanduser().absolute()
    with lock_build_folder(build_dir, action="build the host runner"):
        current = find_host_runner(build_dir) if reuse_current else None
        if current is not None:
            yield StepFinished(step="build", ok=True, summary=f"host runner already built at {current}",
                               data={"variant": VARIANT, "binary": str(current), "seconds": 0.0})
            return
        yield from _build(build_dir, cancel)


def _build(build_dir: Path, cancel: threading.Event | None) -> Iterator[Event]:
    require_free_space(build_dir, _NEEDED_BYTES, "the host runner build")
    cmake = find_cmake()
    yield Checkpoint(step="build", name="cmake", status="pass", detail=f"CMake {cmake.version} at {cmake.path}")
    cxx = find_cxx()
    yield Checkpoint(step="build", name="compiler", status="pass", detail=f"{cxx.version} at {cxx.path}")
    package = find_executorch()
    yield Checkpoint(
        step="build",
        name="executorch-cmake",
        status="pass",
        detail=f"executorch {package.version} ({package.git_commit[:12] or 'no commit recorded'}) "
        f"CMake package at {package.cmake_dir}",
    )

    ninja = find_ninja()
    generator = "Ninja" if ninja else "Unix Makefiles"
    args = [
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_CXX_COMPILER={cxx.path}",
        f"-Dexecutorch_DIR={package.cmake_dir}",
    ]
    if ninja:
        args.append(f"-DCMAKE_MAKE_PROGRAM={ninja.path}")

    clock = Stopwatch()
    yield from configure_and_build(
        cmake=cmake,
        source_dir=RUNNER_SRC,
        build_dir=build_dir,
        configure_args=args,
        generator=generator,
        target=BINARY_NAME,
        label=VARIANT,
        cancel=cancel,
    )
    seconds = clock.seconds

    binary = build_dir / BINARY_NAME
    arch = binary_arch(binary, VARIANT)
    if arch.canonical != host_canonical():
        raise EnvironmentProblem(
            f"the host runner was built for {arch.machine}, but this machine is {platform.machine()}",
            where=str(binary),
            fix="unset CXX (or point it at the native compiler), delete the build folder and rebuild",
        )
    _smoke_test(binary)
    yield Checkpoint(step="build", name="runs", status="pass", detail=f"{binary.name} --help starts", subject=VARIANT)
    yield Checkpoint(
        step="build",
        name="architecture",
        status="pass",
        detail=f"{arch.format} {arch.machine} ({arch.bits}-bit), matches this host",
        subject=VARIANT,
    )

    manifest = build_manifest(
        variant=VARIANT,
        binary=binary,
        arch=arch,
        cmake=cmake,
        generator=generator,
        configure_args=args,
        build_dir=build_dir,
        cache_prefixes=CACHE_PREFIXES,
        executorch={
            "version": package.version,
            "git_commit": package.git_commit,
            "package_dir": str(package.root),
            "source": "wheel",
        },
        build_seconds=seconds,
        extra={"source_dir": str(RUNNER_SRC), "source_sha256": sha256_of_tree(RUNNER_SRC)},
    )
    manifest_path = build_dir / MANIFEST_NAME
    write_json_atomic(manifest_path, manifest)
    yield ArtifactWritten(step="build", path=str(binary), kind="runner", sha256=manifest["sha256"])
    yield ArtifactWritten(step="build", path=str(manifest_path), kind="runner-manifest")
    yield StepFinished(
        step="build",
        ok=True,
        summary=f"host runner built in {seconds:.1f} s ({arch.machine})",
        data={"variant": VARIANT, "binary": str(binary), "manifest": str(manifest_path), "seconds": seconds},
    )
