"""The emulated target's runner: `sme2_runner` cross-built for aarch64 Linux against the unpacked aarch64
executorch wheel (its CMake package works across architectures unchanged). Seconds, no ExecuTorch source tree.

The binary never runs natively here: QEMU runs it (sme2tui/run/emulated.py). Its manifest records the toolchain,
the wheel's sha256 and the ELF architecture, so a runner built against another wheel is rebuilt, not trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sme2tui.emulator.cross import TRIPLE, find_cross_compiler
from sme2tui.emulator.setup import load_emulator
from sme2tui.errors import EnvironmentProblem
from sme2tui.events import ArtifactWritten, Checkpoint, Event, StepFinished, StepStarted
from sme2tui.runners.cmake_build import Stopwatch, binary_arch, build_manifest, configure_and_build
from sme2tui.runners.host import CACHE_PREFIXES, RUNNER_SRC
from sme2tui.runners.location import lock_build_folder
from sme2tui.runners.manifest import MANIFEST_NAME, read_manifest, sha256_of_tree, write_json_atomic
from sme2tui.runners.toolchain import find_cmake, find_ninja, require_free_space

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

VARIANT = "arm64-linux"
BINARY_NAME = "sme2_runner"
TOOLCHAIN_FILE = "aarch64-linux-gnu.cmake"
_NEEDED_BYTES = 64 * 2**20


def arm64_build_dir(build_root: Path) -> Path:
    return build_root / VARIANT


def toolchain_text(cc: str, cxx: str, sysroot: str) -> str:
    # PACKAGE BOTH: the executorch CMake package lives in the unpacked wheel, outside the sysroot.
    return "\n".join([
        "# written by sme2tui: cross-compile for aarch64 Linux (glibc) with the GNU cross toolchain",
        "set(CMAKE_SYSTEM_NAME Linux)",
        "set(CMAKE_SYSTEM_PROCESSOR aarch64)",
        f"set(CMAKE_C_COMPILER {cc})",
        f"set(CMAKE_CXX_COMPILER {cxx})",
        f"set(CMAKE_FIND_ROOT_PATH {sysroot})",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)",
        "",
    ])


def find_arm64_runner(build_root: Path) -> Path | None:
    """The arm64 runner if built from these runner sources against the wheel set up now; else None."""
    return _current_runner(arm64_build_dir(build_root))


def _current_runner(build_dir: Path) -> Path | None:
    binary = build_dir / BINARY_NAME
    manifest = read_manifest(binary)
    if manifest is None or manifest.get("variant") != VARIANT:
        return None
    if manifest.get("source_sha256") != sha256_of_tree(RUNNER_SRC):
        return None
    try:
        wheel = load_emulator().wheel
    except EnvironmentProblem:
        return None
    if manifest.get("executorch", {}).get("wheel_sha256") != wheel["sha256"]:
        return None
    return binary


def build_arm64_runner(build_dir: Path, *, cancel: threading.Event | None = None,
                       reuse_current: bool = False) -> Iterator[Event]:
    """Cross-build the arm64 runner in `build_dir`, holding the folder's lock like the host build (a second
    build waits for the first, and with `reuse_current` uses its result instead of building again)."""
    yield StepStarted("build", "Build the arm64 runner for the emulated target (sme2_runner, aarch64 Linux)")
    build_dir = build_dir.expanduser().absolute()
    with lock_build_folder(build_dir, action="build the arm64 runner"):
        current = _current_runner(build_dir) if reuse_current else None
        if current is not None:
            yield StepFinished("build", ok=True, summary=f"arm64 runner already built at {current}",
                               data={"variant": VARIANT, "binary": str(current), "seconds": 0.0})
            return
        yield from _build(build_dir, cancel)


def _build(build_dir: Path, cancel: threading.Event | None) -> Iterator[Event]:
    require_free_space(build_dir, _NEEDED_BYTES, "the arm64 runner build")
    emulator = load_emulator()
    cross = find_cross_compiler()
    cmake = find_cmake()
    yield Checkpoint("build", "cmake", "pass", f"CMake {cmake.version} at {cmake.path}", subject=VARIANT)
    yield Checkpoint("build", "compiler", "pass", f"{cross.version} at {cross.cxx} (sysroot {cross.sysroot})",
                     subject=VARIANT)
    wheel = emulator.wheel
    yield Checkpoint("build", "executorch-cmake", "pass",
                     f"aarch64 executorch {wheel['version']} ({str(wheel.get('git_commit'))[:12]}) CMake package at "
                     f"{emulator.wheel_root / 'share' / 'cmake'}", subject=VARIANT)
    build_dir.mkdir(parents=True, exist_ok=True)
    toolchain = build_dir / TOOLCHAIN_FILE
    toolchain.write_text(toolchain_text(cross.cc, cross.cxx, cross.sysroot))
    ninja = find_ninja()
    generator = "Ninja" if ninja else "Unix Makefiles"
    args = ["-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
            f"-Dexecutorch_DIR={emulator.wheel_root / 'share' / 'cmake'}"]
    if ninja:
        args.append(f"-DCMAKE_MAKE_PROGRAM={ninja.path}")
    clock = Stopwatch()
    yield from configure_and_build(cmake=cmake, source_dir=RUNNER_SRC, build_dir=build_dir, configure_args=args,
                                   generator=generator, target=BINARY_NAME, label=VARIANT, cancel=cancel)
    seconds = clock.seconds
    binary = build_dir / BINARY_NAME
    arch = binary_arch(binary, VARIANT)
    if arch.canonical != "arm64":
        raise EnvironmentProblem(f"the arm64 runner was built for {arch.machine}", where=str(binary),
                                 fix=f"check that {TRIPLE}-g++ is the cross compiler; delete {build_dir} and rebuild")
    yield Checkpoint("build", "architecture", "pass", f"{arch.format} {arch.machine} ({arch.bits}-bit), runs under "
                     f"QEMU {emulator.qemu.version_text}", subject=VARIANT)
    manifest = build_manifest(
        variant=VARIANT, binary=binary, arch=arch, cmake=cmake, generator=generator, configure_args=args,
        build_dir=build_dir, cache_prefixes=CACHE_PREFIXES,
        executorch={"version": wheel["version"], "git_commit": wheel.get("git_commit"), "package_dir":
                    str(emulator.wheel_root), "source": "wheel", "wheel": wheel["file"],
                    "wheel_sha256": wheel["sha256"], "platform": wheel.get("platform")},
        build_seconds=seconds,
        extra={"source_dir": str(RUNNER_SRC), "source_sha256": sha256_of_tree(RUNNER_SRC),
               "toolchain": {"file": toolchain.name, "text": toolchain.read_text(), "cross": cross.to_dict()},
               "runs_under": {"qemu": emulator.qemu.to_dict()}},
    )
    manifest_path = build_dir / MANIFEST_NAME
    write_json_atomic(manifest_path, manifest)
    yield ArtifactWritten("build", str(binary), "runner", manifest["sha256"])
    yield ArtifactWritten("build", str(manifest_path), "runner-manifest")
    yield StepFinished("build", ok=True, summary=f"arm64 runner built in {seconds:.1f} s (aarch64, for QEMU)",
                       data={"variant": VARIANT, "binary": str(binary), "manifest": str(manifest_path),
                             "seconds": seconds})
