"""The SME2 on/off runner variants and the exact CMake arguments each one is configured with.

A pair is two builds of upstream `executor_runner` that differ only in XNNPACK_ENABLE_ARM_SME2 and
XNNPACK_ENABLE_ARM_SME: every other argument is produced by the same code path for both.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sme2tui.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from sme2tui.runners.ndk import Ndk

Target = Literal["host", "android", "macos"]
VARIANTS = ("sme2-on", "sme2-off", "sme2-on-kernellog", "sme2-off-kernellog")
DEFAULT_VARIANTS = ("sme2-on", "sme2-off")
SME_SWITCHES = ("XNNPACK_ENABLE_ARM_SME2", "XNNPACK_ENABLE_ARM_SME")
MIN_ANDROID_API = 24
# XNNPACK's informational log level: it names each micro-kernel it selects, which is the evidence that
# an "sme2-on" run really used SME2 kernels (names contain "sme2"). It goes to stderr, or logcat on
# Android.
KERNEL_LOG_LEVEL = 4


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    sme2: bool
    kernel_log: bool

    @property
    def partner(self) -> str:
        """The other half of this variant's on/off pair."""
        return self.name.replace("-on", "-off") if self.sme2 else self.name.replace("-off", "-on")


def parse_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ConfigError(
            f"unknown runner variant {name!r}",
            where="variants",
            fix="use one of: " + ", ".join(VARIANTS),
        )
    return Variant(name=name, sme2=name.startswith("sme2-on"), kernel_log=name.endswith("-kernellog"))


def android_platform(value: str | int) -> str:
    """Normalise "android-26" / "26" / 26 and refuse API levels below 24."""
    match = re.fullmatch(r"(?:android-)?(\d+)", str(value))
    if not match or int(match[1]) < MIN_ANDROID_API:
        raise ConfigError(
            f"Android platform {value!r} is not supported",
            where="android_platform",
            fix=f"use android-{MIN_ANDROID_API} or newer, e.g. android-26",
        )
    return f"android-{int(match[1])}"


def common_args(python: str | None = None) -> list[str]:
    """Arguments shared by every variant and target: a Release profiling build of executor_runner."""
    return [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DEXECUTORCH_BUILD_EXECUTOR_RUNNER=ON",
        "-DEXECUTORCH_BUILD_DEVTOOLS=ON",
        "-DEXECUTORCH_ENABLE_EVENT_TRACER=ON",
        "-DEXECUTORCH_BUILD_XNNPACK=ON",
        "-DEXECUTORCH_XNNPACK_ENABLE_KLEIDI=ON",
        "-DEXECUTORCH_BUILD_KERNELS_OPTIMIZED=ON",
        "-DEXECUTORCH_BUILD_KERNELS_QUANTIZED=ON",
        "-DEXECUTORCH_BUILD_EXTENSION_DATA_LOADER=ON",
        "-DEXECUTORCH_BUILD_EXTENSION_FLAT_TENSOR=ON",
        "-DEXECUTORCH_BUILD_EXTENSION_RUNNER_UTIL=ON",
        "-DEXECUTORCH_BUILD_EXTENSION_EVALUE_UTIL=ON",
        # XNNPACK requires both; they are the defaults, stated so the manifest shows them.
        "-DEXECUTORCH_BUILD_PTHREADPOOL=ON",
        "-DEXECUTORCH_BUILD_CPUINFO=ON",
        # Off by default in Release, and executor_runner reports its timing through the log.
        "-DEXECUTORCH_ENABLE_LOGGING=ON",
        # The build runs Python code generators; use this environment's interpreter for both variants.
        f"-DPYTHON_EXECUTABLE={python or sys.executable}",
    ]


def sme_args(sme2: bool) -> list[str]:
    value = "ON" if sme2 else "OFF"
    return [f"-D{switch}={value}" for switch in SME_SWITCHES]


def kernel_log_args(source_dir: Path) -> list[str]:
    """Raise XNNPACK's log level in a Release build.

    Newer ExecuTorch trees have an EXECUTORCH_XNNPACK_LOG_LEVEL option; older ones only take the
    XNN_LOG_LEVEL define, passed through the C/C++ flags (they come after XNNPACK's own definition on the
    compile line, so they win).
    """
    cmake_dir = source_dir / "backends" / "xnnpack"
    has_option = any(
        "EXECUTORCH_XNNPACK_LOG_LEVEL" in p.read_text(errors="replace")
        for p in [*cmake_dir.glob("CMakeLists.txt"), *cmake_dir.glob("cmake/*.cmake")]
    )
    if has_option:
        return [f"-DEXECUTORCH_XNNPACK_LOG_LEVEL={KERNEL_LOG_LEVEL}"]
    flag = f"-DXNN_LOG_LEVEL={KERNEL_LOG_LEVEL}"
    return [f"-DCMAKE_C_FLAGS={flag}", f"-DCMAKE_CXX_FLAGS={flag}"]


def target_args(target: Target, *, ndk: Ndk | None = None, platform: str = "android-26") -> list[str]:
    if target == "android":
        assert ndk is not None, "android builds need an NDK"
        return [
            f"-DCMAKE_TOOLCHAIN_FILE={ndk.toolchain_file}",
            "-DANDROID_ABI=arm64-v8a",
            f"-DANDROID_PLATFORM={android_platform(platform)}",
            # Shared STL: one libc++ for the runner and every library it loads; libc++_shared.so is
            # copied beside the runner and must be pushed with it.
            "-DANDROID_STL=c++_shared",
        ]
    if target == "macos":
        return ["-DCMAKE_OSX_ARCHITECTURES=arm64"]
    return []


def variant_args(
    variant: Variant,
    target: Target,
    *,
    source_dir: Path,
    ndk: Ndk | None = None,
    platform: str = "android-26",
    extra: tuple[str, ...] = (),
    python: str | None = None,
) -> list[str]:
    """The complete configure arguments for one variant (without -S/-B/-G)."""
    args = [*common_args(python), *target_args(target, ndk=ndk, platform=platform)]
    if variant.kernel_log:
        args += kernel_log_args(source_dir)
    # User extras come before the SME switches so they cannot silently override the one thing a pair
    # is about.
    return [*args, *extra, *sme_args(variant.sme2)]
