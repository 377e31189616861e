"""Find and validate an Android NDK: its revision (source.properties), toolchain file and libc++_shared.so."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sme2tui.errors import EnvironmentProblem

# XNNPACK's SME/SME2 kernels need a clang that assembles SME2 (LLVM 18, shipped from NDK r27 on).
MIN_NDK_MAJOR = 27
_ENV_VARS = ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT")
_LIBCXX_GLOB = "toolchains/llvm/prebuilt/*/sysroot/usr/lib/aarch64-linux-android/libc++_shared.so"


@dataclass(frozen=True, slots=True)
class Ndk:
    path: Path
    revision: str  # e.g. "27.2.12479018"

    @property
    def major(self) -> int:
        return int(self.revision.split(".")[0])

    @property
    def toolchain_file(self) -> Path:
        return self.path / "build" / "cmake" / "android.toolchain.cmake"

    def libcxx_shared(self) -> Path:
        """The arm64 libc++_shared.so a runner built with ANDROID_STL=c++_shared needs beside it."""
        found = sorted(self.path.glob(_LIBCXX_GLOB))
        if not found:
            raise EnvironmentProblem(
                "the NDK has no arm64 libc++_shared.so",
                where=str(self.path / "toolchains/llvm/prebuilt/<host>/sysroot/usr/lib/aarch64-linux-android"),
                fix="reinstall the NDK (sdkmanager --install 'ndk;27.2.12479018')",
            )
        return found[0]


def _revision(path: Path) -> str:
    props = path / "source.properties"
    if not props.is_file():
        return ""
    match = re.search(r"^\s*Pkg\.Revision\s*=\s*([0-9][0-9.]*)", props.read_text(), re.MULTILINE)
    return match[1] if match else ""


def _candidates(explicit: Path | None) -> list[tuple[str, Path]]:
    if explicit is not None:
        return [("--ndk", explicit)]
    found = [(f"${name}", Path(os.environ[name])) for name in _ENV_VARS if os.environ.get(name)]
    for sdk_var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        sdk = os.environ.get(sdk_var)
        if sdk and (Path(sdk) / "ndk").is_dir():
            # Side-by-side NDKs: newest first.
            versions = sorted((Path(sdk) / "ndk").iterdir(), key=lambda p: _version_key(p.name), reverse=True)
            found += [(f"${sdk_var}/ndk", v) for v in versions]
    return found


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


def find_ndk(explicit: Path | None = None, *, min_major: int = MIN_NDK_MAJOR) -> Ndk:
    """The NDK to use: `explicit`, else $ANDROID_NDK(_HOME/_ROOT), else the newest in $ANDROID_HOME/ndk."""
    candidates = _candidates(explicit)
    if not candidates:
        raise EnvironmentProblem(
            "no Android NDK found",
            where="$ANDROID_NDK, $ANDROID_NDK_HOME, $ANDROID_NDK_ROOT, $ANDROID_HOME/ndk",
            fix=f"install NDK r{min_major} or newer (Android Studio SDK Manager, or "
            "`sdkmanager --install 'ndk;27.2.12479018'`) and set ANDROID_NDK to its folder",
        )
    problems: list[str] = []
    for origin, path in candidates:
        revision = _revision(path)
        if not revision:
            problems.append(f"{path} ({origin}): no source.properties with Pkg.Revision")
            continue
        ndk = Ndk(path.resolve(), revision)
        if ndk.major < min_major:
            problems.append(f"{path} ({origin}): r{ndk.major} ({revision}) is older than r{min_major}")
            continue
        if not ndk.toolchain_file.is_file():
            problems.append(f"{path} ({origin}): no build/cmake/android.toolchain.cmake")
            continue
        return ndk
    raise EnvironmentProblem(
        "no usable Android NDK: " + "; ".join(problems),
        where=", ".join(str(p) for _, p in candidates),
        fix=f"install NDK r{min_major} or newer and point ANDROID_NDK (or --ndk) at it",
    )
