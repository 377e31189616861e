"""Find and check the host tools a build needs: CMake (>= 3.28), a generator, a C++ compiler, disk space.

Each check fails with an `EnvironmentProblem` that says what is missing and how to get it, before any
build starts, so a half-configured build folder is never the first sign of a missing tool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sme2tui.errors import EnvironmentProblem

MIN_CMAKE = (3, 28)


@dataclass(frozen=True, slots=True)
class Tool:
    path: str
    version: str


def _version_of(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else ""


def _parse_version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


def _venv_bin(name: str) -> str | None:
    # The PyPI cmake and ninja that sme2tui depends on live beside this interpreter; prefer them over an
    # older system copy (Debian 12 ships CMake 3.25, too old for the ExecuTorch package).
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def find_cmake(minimum: tuple[int, int] = MIN_CMAKE) -> Tool:
    candidates = [c for c in (_venv_bin("cmake"), shutil.which("cmake")) if c]
    if not candidates:
        raise EnvironmentProblem(
            "CMake is not installed",
            where="PATH",
            fix=f"pip install 'cmake>={minimum[0]}.{minimum[1]}' in this environment (it is an sme2tui "
            "dependency), or install CMake from your OS packages",
        )
    seen: list[str] = []
    for exe in candidates:
        line = _version_of(exe)
        version = _parse_version(line)
        if version >= minimum:
            return Tool(exe, ".".join(map(str, version)))
        seen.append(f"{exe} ({line or 'no version'})")
    raise EnvironmentProblem(
        f"CMake is too old: need {minimum[0]}.{minimum[1]} or newer (the ExecuTorch CMake package only "
        "defines its executorch::* targets from 3.28 on)",
        where=", ".join(seen),
        fix=f"pip install -U 'cmake>={minimum[0]}.{minimum[1]}' in this environment",
    )


def find_ninja() -> Tool | None:
    """Ninja if available (faster, prints one line per step); None means fall back to Makefiles."""
    for exe in (_venv_bin("ninja"), shutil.which("ninja")):
        if exe:
            return Tool(exe, _version_of(exe))
    return None


def find_cxx() -> Tool:
    """The host C++ compiler: $CXX if set, else the usual names on PATH."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    for name in names:
        exe = shutil.which(name)
        if exe:
            return Tool(exe, _version_of(exe))
    raise EnvironmentProblem(
        "no C++ compiler found",
        where="$CXX" if os.environ.get("CXX") else "PATH (c++, g++, clang++)",
        fix="install one: `apt-get install g++` (Debian/Ubuntu), `xcode-select --install` (macOS), "
        "or set CXX to the compiler's path",
    )


def require_free_space(path: Path, needed_bytes: int, what: str) -> None:
    """Fail early when the disk holding `path` cannot take `what`; a full disk mid-build wastes minutes."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise EnvironmentProblem(
            f"not enough disk space for {what}: {free // 2**20} MiB free, about {needed_bytes // 2**20} MiB needed",
            where=str(probe),
            fix="free some space or choose a build folder on a bigger disk",
        )
