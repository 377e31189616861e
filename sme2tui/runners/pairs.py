"""Build SME2 on/off pairs of upstream `executor_runner` from an ExecuTorch source tree.

One build folder per target and variant (`<build_root>/<target>-<variant>/`, reused incrementally).
All variants are configured first; each on/off pair's CMake caches are then compared and the build is
refused if they differ in anything but the SME switches; only then is anything compiled. Every binary's
architecture is read from its header and checked against the target before its manifest is written.
"""

from __future__ import annotations

import platform
import shutil
from typing import TYPE_CHECKING, Any

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import ArtifactWritten, Checkpoint, Event, StepFinished, StepStarted
from sme2tui.runners.binfmt import host_canonical
from sme2tui.runners.cache_diff import require_only_sme_differs
from sme2tui.runners.cmake_build import Stopwatch, binary_arch, build_manifest, build_target, configure
from sme2tui.runners.manifest import MANIFEST_NAME, read_manifest, sha256_of, write_json_atomic
from sme2tui.runners.ndk import Ndk, find_ndk
from sme2tui.runners.source_tree import describe_tree, require_submodules
from sme2tui.runners.toolchain import find_cmake, find_ninja, require_free_space
from sme2tui.runners.variants import DEFAULT_VARIANTS, Target, Variant, parse_variant, variant_args

if TYPE_CHECKING:
    import threading
    from collections.abc import Generator, Iterator, Sequence
    from pathlib import Path

    from sme2tui.runners.binfmt import BinaryArch
    from sme2tui.runners.toolchain import Tool

RUNNER_TARGET = "executor_runner"
LIBCXX = "libc++_shared.so"
CACHE_PREFIXES = (
    "EXECUTORCH_",
    "XNNPACK_",
    "KLEIDIAI",
    "ANDROID_",
    "CMAKE_BUILD_TYPE",
    "CMAKE_TOOLCHAIN_FILE",
    "CMAKE_C_COMPILER",
    "CMAKE_CXX_COMPILER",
    "CMAKE_C_FLAGS",
    "CMAKE_CXX_FLAGS",
    "CMAKE_EXE_LINKER_FLAGS",
    "CMAKE_OSX_",
    "CMAKE_SYSTEM_",
    "CMAKE_GENERATOR",
    "PYTHON_EXECUTABLE",
)
# A from-source ExecuTorch + XNNPACK build folder is about 1 GB.
_BYTES_PER_VARIANT = 1536 * 2**20


def pair_build_dir(build_root: Path, target: Target, variant: str) -> Path:
    return build_root / f"{target}-{variant}"


def find_pair_runner(build_root: Path, target: Target, variant: str) -> Path | None:
    """The built runner for (target, variant) if its manifest is present and describes this binary."""
    binary = pair_build_dir(build_root, target, variant) / RUNNER_TARGET
    manifest = read_manifest(binary)
    if manifest is None or manifest.get("variant") != variant or manifest.get("target") != target:
        return None
    return binary


def _expected_arch(target: Target) -> tuple[str, str]:
    """(binary format, canonical machine) a runner for `target` must have."""
    if target == "android":
        return "ELF", "arm64"
    if target == "macos":
        return "Mach-O", "arm64"
    return ("Mach-O" if platform.system() == "Darwin" else "ELF"), host_canonical()


def _check_host(target: Target) -> Iterator[Event]:
    if target == "macos" and (platform.system() != "Darwin" or platform.machine() != "arm64"):
        raise EnvironmentProblem(
            f"macOS runners can only be built on an Apple Silicon Mac; this is {platform.system()} "
            f"{platform.machine()}",
            where="target=macos",
            fix="run the build on an M-series Mac (M4 or newer has SME2), or build target=android here; on an "
            "M-series Mac that reports x86_64, this Python runs under Rosetta: use an arm64 Python",
        )
    if target == "host" and host_canonical() != "arm64":
        yield Checkpoint(
            step="build",
            name="sme2-host",
            status="warn",
            detail=f"this host is {platform.machine()}: the SME switches change nothing here, so the "
            "pair will run identical code",
            fix="for an SME2 comparison build target=android (or macos on an M4 Mac); on this host "
            "compare XNNPACK-delegated vs portable instead",
        )


def check_build_host(target: Target, ndk: Path | None = None) -> None:
    """Fail at once when this machine cannot build `target` at all (macOS off an Apple Silicon Mac, Android
    without an NDK), before anything asks for an ExecuTorch source tree."""
    for _ in _check_host(target):
        pass
    if target == "android":
        find_ndk(ndk)


def _check_arch(arch: BinaryArch, target: Target, variant: str, binary: Path) -> Iterator[Event]:
    fmt, machine = _expected_arch(target)
    if not arch.format.startswith(fmt) or arch.canonical != machine:
        raise EnvironmentProblem(
            f"the {target} runner {variant} is a {arch.format} {arch.machine} binary, expected {fmt} {machine}",
            where=str(binary),
            fix="the wrong compiler was used: check the toolchain (ANDROID_NDK / --ndk, CC/CXX), delete "
            "this build folder and build again",
        )
    yield Checkpoint(
        step="build",
        name="architecture",
        status="pass",
        detail=f"{arch.format} {arch.machine} ({arch.bits}-bit)",
        subject=f"{target}-{variant}",
    )
    if target == "android" and arch.interpreter != "/system/bin/linker64":
        yield Checkpoint(
            step="build",
            name="android-loader",
            status="warn",
            detail=f"the runner asks for loader {arch.interpreter or '(none)'}, not /system/bin/linker64; "
            "it will not start on Android",
            fix="build with the NDK's android.toolchain.cmake, not a generic aarch64 Linux compiler",
            subject=f"{target}-{variant}",
        )


def _copy_libcxx(ndk: Ndk, build_dir: Path) -> dict[str, str]:
    source = ndk.libcxx_shared()
    dest = build_dir / LIBCXX
    shutil.copy2(source, dest)
    return {"source": str(source), "path": str(dest), "sha256": sha256_of(dest)}


def build(
    target: Target,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    *,
    source_dir: Path,
    build_root: Path,
    ndk: Path | None = None,
    android_platform: str = "android-26",
    extra_cmake_args: Sequence[str] = (),
    jobs: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Event]:
    """Configure every variant, verify each on/off pair differs only in the SME switches, then build.

    Raises EnvironmentProblem (no NDK, CMake too old, submodules missing, wrong host for macOS, out of
    disk, failed build, wrong binary architecture), CheckpointFailed (a pair differs in more than the SME
    switches) and Interrupted (cancelled; the running cmake is terminated). Finishes with StepFinished
    whose data maps each variant to its runner and manifest.
    """
    yield StepStarted(step="build", title=f"Build SME2 runner variants for {target}: {', '.join(variants)}")
    specs = [parse_variant(v) for v in dict.fromkeys(variants)]
    yield from _check_host(target)
    source_dir = source_dir.expanduser().resolve()
    build_root = build_root.expanduser().resolve()
    cmake = find_cmake()
    yield Checkpoint(step="build", name="cmake", status="pass", detail=f"CMake {cmake.version} at {cmake.path}")
    tree = describe_tree(source_dir, flag="--source")
    require_submodules(source_dir)
    yield Checkpoint(
        step="build",
        name="executorch-source",
        status="warn" if tree.dirty else "pass",
        detail=f"ExecuTorch {tree.version or ''} at {tree.commit[:12] or 'unknown commit'} in {source_dir}"
        + (" (with local changes)" if tree.dirty else ""),
        fix="commit or stash local changes so the runners can be reproduced" if tree.dirty else "",
    )
    ndk_info = find_ndk(ndk) if target == "android" else None
    if ndk_info is not None:
        yield Checkpoint(step="build", name="ndk", status="pass", detail=f"NDK {ndk_info.revision} at {ndk_info.path}")
    require_free_space(build_root, _BYTES_PER_VARIANT * len(specs), f"{len(specs)} runner build folder(s)")
    ninja = find_ninja()
    generator = "Ninja" if ninja else "Unix Makefiles"
    make_program = [f"-DCMAKE_MAKE_PROGRAM={ninja.path}"] if ninja else []

    args: dict[str, list[str]] = {}
    for spec in specs:
        args[spec.name] = [
            *variant_args(
                spec,
                target,
                source_dir=source_dir,
                ndk=ndk_info,
                platform=android_platform,
                extra=tuple(extra_cmake_args),
            ),
            *make_program,
        ]
        yield from configure(
            cmake=cmake,
            source_dir=source_dir,
            build_dir=pair_build_dir(build_root, target, spec.name),
            configure_args=args[spec.name],
            generator=generator,
            label=f"{target}-{spec.name}",
            cancel=cancel,
        )

    pair_checks = yield from _check_pairs(specs, build_root, target)

    runners: dict[str, dict[str, str]] = {}
    for spec in specs:
        runners[spec.name] = yield from _build_one(
            spec,
            target,
            build_root=build_root,
            cmake=cmake,
            generator=generator,
            configure_args=args[spec.name],
            tree=tree.to_dict(),
            ndk=ndk_info,
            android_platform=android_platform,
            pair_check=pair_checks.get(spec.name, ""),
            jobs=jobs,
            cancel=cancel,
        )
    yield StepFinished(
        step="build",
        ok=True,
        summary=f"built {len(runners)} {target} runner(s): {', '.join(runners)}",
        data={"target": target, "runners": runners},
    )


def _check_pairs(specs: list[Variant], build_root: Path, target: Target) -> Generator[Event, None, dict[str, str]]:
    """Compare each on/off pair's caches; returns {variant: description of the check it passed}."""
    names = {s.name for s in specs}
    checks: dict[str, str] = {}
    for spec in specs:
        if not spec.sme2:
            continue
        if spec.partner not in names:
            yield Checkpoint(
                step="build",
                name="pair-identical",
                status="warn",
                detail=f"{spec.name} is built without {spec.partner}, so nothing proves what differs",
                fix=f"build {spec.partner} in the same call",
                subject=spec.name,
            )
            continue
        on_dir = pair_build_dir(build_root, target, spec.name)
        off_dir = pair_build_dir(build_root, target, spec.partner)
        require_only_sme_differs(on_dir, off_dir)
        note = f"CMake caches of {spec.name} and {spec.partner} differ only in the SME switches"
        checks[spec.name] = checks[spec.partner] = note
        yield Checkpoint(step="build", name="pair-identical", status="pass", detail=note, subject=spec.name)
    return checks


def _build_one(
    spec: Variant,
    target: Target,
    *,
    build_root: Path,
    cmake: Tool,
    generator: str,
    configure_args: list[str],
    tree: dict[str, Any],
    ndk: Ndk | None,
    android_platform: str,
    pair_check: str,
    jobs: int | None,
    cancel: threading.Event | None,
) -> Generator[Event, None, dict[str, str]]:
    label = f"{target}-{spec.name}"
    build_dir = pair_build_dir(build_root, target, spec.name)
    clock = Stopwatch()
    yield from build_target(
        cmake=cmake, build_dir=build_dir, target=RUNNER_TARGET, label=label, cancel=cancel, jobs=jobs
    )
    seconds = clock.seconds
    binary = build_dir / RUNNER_TARGET
    arch = binary_arch(binary, label)
    yield from _check_arch(arch, target, spec.name, binary)
    extra: dict[str, Any] = {
        "target": target,
        "sme2": spec.sme2,
        "kernel_log": spec.kernel_log,
        "pair_check": pair_check,
        "ndk": None,
    }
    if ndk is not None:
        extra["ndk"] = {"path": str(ndk.path), "revision": ndk.revision}
        extra["android_platform"] = android_platform
        extra["libcxx_shared"] = _copy_libcxx(ndk, build_dir)
        libcxx = extra["libcxx_shared"]
        yield ArtifactWritten(step="build", path=libcxx["path"], kind="runtime-library", sha256=libcxx["sha256"])
    manifest = build_manifest(
        variant=spec.name,
        binary=binary,
        arch=arch,
        cmake=cmake,
        generator=generator,
        configure_args=configure_args,
        build_dir=build_dir,
        cache_prefixes=CACHE_PREFIXES,
        executorch={
            "source": "tree",
            "path": str(tree["path"]),
            "git_commit": str(tree["commit"]),
            "dirty": bool(tree["dirty"]),
            "version": str(tree["version"]),
        },
        build_seconds=seconds,
        extra=extra,
    )
    manifest_path = build_dir / MANIFEST_NAME
    write_json_atomic(manifest_path, manifest)
    yield ArtifactWritten(step="build", path=str(binary), kind="runner", sha256=manifest["sha256"])
    yield ArtifactWritten(step="build", path=str(manifest_path), kind="runner-manifest")
    return {"binary": str(binary), "manifest": str(manifest_path)}
