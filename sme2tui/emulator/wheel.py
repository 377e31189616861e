"""The aarch64 build of the installed executorch wheel: downloaded with pip (never installed), hashed, unpacked.

It is the same version as the exporter's wheel, so programs exported here run on the official aarch64 runtime —
whose XNNPACK has KleidiAI SME and SME2 micro-kernels compiled in.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import Event, LogLine
from sme2tui.fileio import sha256_file
from sme2tui.runners.etpackage import find_executorch, read_version_file
from sme2tui.runners.proc import CommandFailed, stream_command

if TYPE_CHECKING:
    import threading
    from collections.abc import Generator

PLATFORM = "manylinux_2_28_aarch64"
XNNPACK_LIBRARY = "libexecutorch_backend_xnnpack.so"


def wanted_version() -> str:
    """The installed executorch's version without its local tag ("1.5.1+cpu" → "1.5.1")."""
    return find_executorch(require_cmake=False).version.split("+")[0]


def wheel_dir(root: Path, version: str) -> Path:
    return root / f"executorch-{version}-aarch64"


def fetch_wheel(root: Path, version: str, cancel: threading.Event | None = None
                ) -> Generator[Event, None, dict[str, Any]]:
    """pip-download the aarch64 wheel of `version`, unpack it into the cache, return what was unpacked."""
    downloads = root / "downloads"
    shutil.rmtree(downloads, ignore_errors=True)
    downloads.mkdir(parents=True)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = [sys.executable, "-m", "pip", "download", f"executorch=={version}", "--no-deps", "--only-binary=:all:",
            "--platform", PLATFORM, "--python-version", python, "-d", str(downloads), "--disable-pip-version-check"]
    yield LogLine("build", f"downloading executorch {version} for {PLATFORM} (pip download; not installed)",
                  source="pip")
    try:
        yield from stream_command(argv, cancel=cancel, source="pip")
    except CommandFailed as failed:
        raise EnvironmentProblem(f"pip could not download the aarch64 executorch {version} wheel: "
                                 f"{(failed.tail or ['no output'])[-1]}", where="pip download",
                                 fix="check that PyPI is reachable; ExecuTorch publishes manylinux_2_28_aarch64 "
                                 f"wheels for Python 3.10–3.12 (this is Python {python})") from failed
    wheels = sorted(downloads.glob("executorch-*.whl"))
    if not wheels:
        raise EnvironmentProblem("pip download finished without a wheel", where=str(downloads),
                                 fix="retry `sme2tui setup emulator`")
    digest = sha256_file(wheels[0])
    target = wheel_dir(root, version)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(partial)
    package = partial / "executorch"
    if not (package / "share" / "cmake" / "executorch-config.cmake").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        raise EnvironmentProblem(f"{wheels[0].name} has no CMake package (executorch/share/cmake)",
                                 where=wheels[0].name, fix="use an executorch version with a CMake package (1.5.1)")
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    shutil.rmtree(downloads, ignore_errors=True)
    found_version, commit = read_version_file(target / "executorch" / "version.py")
    return {"root": str(target / "executorch"), "file": wheels[0].name, "sha256": digest, "version": found_version,
            "git_commit": commit, "platform": PLATFORM}


def check_unpacked(info: dict[str, Any]) -> Path:
    """The unpacked wheel's package folder, if it is still there and complete."""
    root = Path(info.get("root", ""))
    if not (root / "share" / "cmake" / "executorch-config.cmake").is_file() or not (
            root / "lib" / XNNPACK_LIBRARY).is_file():
        raise EnvironmentProblem("the unpacked aarch64 executorch wheel is missing or incomplete", where=str(root),
                                 fix="run `sme2tui setup emulator` again")
    return root
