"""Configure + build one CMake project into one build folder, streaming events, and describe the result.

Shared by the host runner and the SME2 pairs: same incremental reuse of the build folder, same build.log,
same progress parsing, same manifest shape.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import Event, LogLine, Progress
from sme2tui.runners.binfmt import BinaryArch, read_arch
from sme2tui.runners.cmake_cache import read_cache, select
from sme2tui.runners.manifest import SCHEMA, host_facts, sha256_of
from sme2tui.runners.proc import CommandFailed, stream_command

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from sme2tui.runners.toolchain import Tool

_NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")
_MAKE_PROGRESS = re.compile(r"^\[\s*(\d+)%\]")
BUILD_LOG = "build.log"


def _reset_stale_cache(build_dir: Path, source_dir: Path, generator: str) -> None:
    """Drop the cache when it belongs to another source tree or generator.

    CMake refuses to reuse such a cache ("does not match the generator used previously"); everything else
    in the folder (object files) stays, so the build is still incremental where it can be.
    """
    cache_file = build_dir / "CMakeCache.txt"
    if not cache_file.is_file():
        return
    cache = read_cache(cache_file)
    home = cache.get("CMAKE_HOME_DIRECTORY", ("", ""))[1]
    old_generator = cache.get("CMAKE_GENERATOR", ("", ""))[1]
    if home and (home != str(source_dir) or old_generator != generator):
        cache_file.unlink()
        shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)


def first_error(lines: Sequence[str]) -> str:
    """The first error in a build's output tail, with CMake's indented message line joined on."""
    for i, line in enumerate(lines):
        if "CMake Error" in line or "error:" in line.lower() or "FAILED:" in line:
            following = next((t.strip() for t in lines[i + 1 : i + 4] if t.strip()), "")
            return f"{line.strip()} {following}".strip() if "CMake Error" in line else line.strip()
    return lines[-1].strip() if lines else "(no output)"


def _progress(text: str, label: str) -> Progress | None:
    if match := _NINJA_PROGRESS.match(text):
        return Progress(step="build", done=int(match[1]), total=int(match[2]), label=label, subject=label)
    if match := _MAKE_PROGRESS.match(text):
        return Progress(step="build", done=int(match[1]), total=100, label=label, subject=label)
    return None


def _streamed(
    argv: Sequence[str],
    *,
    label: str,
    log: Any,
    cwd: Path,
    env: Mapping[str, str] | None,
    cancel: threading.Event | None,
    what: str,
) -> Iterator[Event]:
    try:
        for line in stream_command(argv, cwd=cwd, env=env, cancel=cancel, source=f"cmake:{label}"):
            log.write(line.text + "\n")
            yield line
            if (progress := _progress(line.text, label)) is not None:
                yield progress
    except CommandFailed as failed:
        log.flush()
        hint = first_error(failed.tail)
        raise EnvironmentProblem(
            f"{what} failed for {label} (exit {failed.returncode}): {hint}",
            where=str(cwd / BUILD_LOG),
            fix="read the build log for the first error; if the build folder is in a bad state, delete it "
            "and build again",
        ) from failed


def configure(
    *,
    cmake: Tool,
    source_dir: Path,
    build_dir: Path,
    configure_args: Sequence[str],
    generator: str,
    label: str,
    cancel: threading.Event | None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Event]:
    """`cmake -S -B -G <configure_args>`; re-running it on an existing folder is cheap and incremental."""
    build_dir.mkdir(parents=True, exist_ok=True)
    _reset_stale_cache(build_dir, source_dir, generator)
    argv = [cmake.path, "-S", str(source_dir), "-B", str(build_dir), "-G", generator, *configure_args]
    yield from _logged(argv, build_dir=build_dir, label=label, env=env, cancel=cancel, what="CMake configure")


def build_target(
    *,
    cmake: Tool,
    build_dir: Path,
    target: str,
    label: str,
    cancel: threading.Event | None,
    env: Mapping[str, str] | None = None,
    jobs: int | None = None,
) -> Iterator[Event]:
    """`cmake --build <build_dir> --target <target>` in an already configured folder."""
    argv = [cmake.path, "--build", str(build_dir), "--target", target]
    if jobs:
        argv += ["--parallel", str(jobs)]
    yield from _logged(argv, build_dir=build_dir, label=label, env=env, cancel=cancel, what="the build")


def _logged(
    argv: Sequence[str],
    *,
    build_dir: Path,
    label: str,
    env: Mapping[str, str] | None,
    cancel: threading.Event | None,
    what: str,
) -> Iterator[Event]:
    # Appended, not overwritten: an incremental rebuild keeps the history of the folder it reuses.
    with (build_dir / BUILD_LOG).open("a") as log:
        log.write(f"\n==== {datetime.now(UTC).isoformat()} {label}\n$ {' '.join(argv)}\n")
        yield LogLine(step="build", text="$ " + " ".join(argv), source=f"cmake:{label}")
        yield from _streamed(argv, label=label, log=log, cwd=build_dir, env=env, cancel=cancel, what=what)


def configure_and_build(
    *,
    cmake: Tool,
    source_dir: Path,
    build_dir: Path,
    configure_args: Sequence[str],
    generator: str,
    target: str,
    label: str,
    cancel: threading.Event | None,
    env: Mapping[str, str] | None = None,
    jobs: int | None = None,
) -> Iterator[Event]:
    """Configure then build `target`; both reuse the folder."""
    yield from configure(
        cmake=cmake,
        source_dir=source_dir,
        build_dir=build_dir,
        configure_args=configure_args,
        generator=generator,
        label=label,
        cancel=cancel,
        env=env,
    )
    yield from build_target(
        cmake=cmake, build_dir=build_dir, target=target, label=label, cancel=cancel, env=env, jobs=jobs
    )


def compiler_info(build_dir: Path) -> dict[str, str]:
    """The C++ compiler CMake actually used, from CMakeFiles/<version>/CMakeCXXCompiler.cmake.

    The cache alone is not enough: a toolchain file (the NDK's) sets the compiler as a plain variable,
    so it never reaches CMakeCache.txt.
    """
    info = {"path": "", "id": "", "version": "", "version_line": ""}
    for path in sorted(build_dir.glob("CMakeFiles/*/CMakeCXXCompiler.cmake")):
        text = path.read_text(errors="replace")
        for key, name in (("path", "CMAKE_CXX_COMPILER"), ("id", "CMAKE_CXX_COMPILER_ID"),
                          ("version", "CMAKE_CXX_COMPILER_VERSION")):  # fmt: skip
            match = re.search(rf'^set\({name} "([^"]*)"\)', text, re.MULTILINE)
            if match:
                info[key] = match[1]
    if info["path"]:
        try:
            out = subprocess.run([info["path"], "--version"], capture_output=True, text=True, timeout=30, check=False)
            info["version_line"] = next(iter(out.stdout.strip().splitlines()), "")
        except OSError:
            pass
    return info


def build_manifest(
    *,
    variant: str,
    binary: Path,
    arch: BinaryArch,
    cmake: Tool,
    generator: str,
    configure_args: Sequence[str],
    build_dir: Path,
    cache_prefixes: Sequence[str],
    executorch: Mapping[str, Any],
    build_seconds: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    cache = read_cache(build_dir / "CMakeCache.txt")
    manifest: dict[str, Any] = {
        "schema": SCHEMA,
        "variant": variant,
        "binary": binary.name,
        "sha256": sha256_of(binary),
        "size_bytes": binary.stat().st_size,
        "architecture": arch.to_dict(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(build_seconds, 3),
        "build_dir": str(build_dir),
        "cmake": {
            "path": cmake.path,
            "version": cmake.version,
            "generator": generator,
            "args": list(configure_args),
        },
        "cmake_cache": select(cache, cache_prefixes),
        "compiler": compiler_info(build_dir),
        "executorch": dict(executorch),
        "host": host_facts(),
    }
    manifest.update(extra or {})
    return manifest


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start


def binary_arch(binary: Path, label: str) -> BinaryArch:
    if not binary.is_file():
        raise EnvironmentProblem(
            f"the build for {label} finished but produced no {binary.name}",
            where=str(binary.parent),
            fix="read build.log in the build folder; the target name or the project layout may have changed",
        )
    return read_arch(binary)
