"""The aarch64 cross compiler (GNU, glibc sysroot) that builds the probe and the arm64 runner.

Debian and Ubuntu ship it as `g++-aarch64-linux-gnu`, with the target's glibc and libstdc++ under
`/usr/aarch64-linux-gnu` — which QEMU also needs at run time (`-L`) to load the runner's system libraries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sme2tui.errors import EnvironmentProblem

TRIPLE = "aarch64-linux-gnu"
DEFAULT_SYSROOT = Path("/usr") / TRIPLE
INSTALL_HINT = (
    "Debian/Ubuntu: `apt-get install g++-aarch64-linux-gnu` (brings the aarch64 glibc and libstdc++ under "
    "/usr/aarch64-linux-gnu); other Linux: install an aarch64-linux-gnu GCC with a glibc sysroot and set "
    "SME2TUI_AARCH64_SYSROOT to it; macOS: not supported (QEMU has no user mode there)"
)


@dataclass(frozen=True)
class CrossCompiler:
    cxx: str
    cc: str
    version: str
    sysroot: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return next(iter(out.stdout.strip().splitlines()), "")


def find_cross_compiler() -> CrossCompiler:
    """The cross g++/gcc and the sysroot with the aarch64 C library; EnvironmentProblem with the install line."""
    cxx = shutil.which(f"{TRIPLE}-g++")
    cc = shutil.which(f"{TRIPLE}-gcc")
    if cxx is None or cc is None:
        raise EnvironmentProblem(f"no aarch64 cross compiler ({TRIPLE}-g++) on PATH", where="PATH",
                                 fix=INSTALL_HINT)
    sysroot = Path(os.environ.get("SME2TUI_AARCH64_SYSROOT") or DEFAULT_SYSROOT)
    libc = sysroot / "lib" / "libc.so.6"
    if not libc.is_file():
        raise EnvironmentProblem(f"the aarch64 sysroot has no C library ({libc} is missing)", where=str(sysroot),
                                 fix=INSTALL_HINT)
    return CrossCompiler(cxx=cxx, cc=cc, version=_version(cxx), sysroot=str(sysroot))
