"""Building blocks of the runner builds: command streaming and cancellation, tool discovery errors,
reading the executorch package without importing it, and binary architecture detection."""

from __future__ import annotations

import os
import shutil
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

from sme2tui.errors import EnvironmentProblem, Interrupted
from sme2tui.events import LogLine
from sme2tui.runners import etpackage, toolchain
from sme2tui.runners.binfmt import NotABinary, read_arch
from sme2tui.runners.cmake_build import first_error
from sme2tui.runners.proc import CommandFailed, stream_command

# ------------------------------------------------------------------------------------ stream_command


def test_stream_command_yields_every_line_as_a_build_log_line() -> None:
    lines = list(
        stream_command([sys.executable, "-c", "print('a'); import sys; print('b', file=sys.stderr)"])
    )
    # stdout and stderr share one pipe; their relative order is up to the child's buffering.
    assert sorted(line.text for line in lines) == ["a", "b"]
    assert all(isinstance(line, LogLine) and line.step == "build" for line in lines)


def test_stream_command_failure_keeps_the_tail() -> None:
    with pytest.raises(CommandFailed) as info:
        list(stream_command([sys.executable, "-c", "print('first'); print('last'); raise SystemExit(3)"]))
    assert info.value.returncode == 3
    assert info.value.tail[-1] == "last"


def test_full_disk_in_the_output_becomes_an_environment_problem() -> None:
    script = "import sys; print('ld: final link failed: No space left on device'); sys.exit(1)"
    with pytest.raises(EnvironmentProblem) as info:
        list(stream_command([sys.executable, "-c", script]))
    assert "disk filled up" in info.value.what
    assert info.value.fix


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it no longer runs.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_cancel_terminates_the_command_and_its_children(tmp_path: Path) -> None:
    # The child writes its own pid and its grandchild's, then both sleep: cancellation must stop both.
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    cancel = threading.Event()
    start = time.monotonic()
    with pytest.raises(Interrupted):
        for line in stream_command([sys.executable, "-c", script], cancel=cancel):
            if line.text == "started":
                cancel.set()
    assert time.monotonic() - start < 15
    parent, grandchild = map(int, pids.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(parent) or _alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(parent) and not _alive(grandchild)


def test_cancel_before_start_runs_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    marker = tmp_path / "ran"
    with pytest.raises(Interrupted):
        list(stream_command([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], cancel=cancel))
    assert not marker.exists()


def test_first_error_joins_cmake_message() -> None:
    tail = [
        "-- ok",
        "CMake Error at CMakeLists.txt:3 (message):",
        "  fake NDK: ANDROID_ABI must be",
        "",
        "-- x",
    ]
    assert first_error(tail) == "CMake Error at CMakeLists.txt:3 (message): fake NDK: ANDROID_ABI must be"
    assert first_error(["a", "main.cpp:1:1: error: boom"]) == "main.cpp:1:1: error: boom"
    assert first_error(["only line"]) == "only line"


# ------------------------------------------------------------------------------------- toolchain


def _fake_tool(folder: Path, name: str, version_line: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(0o755)


def test_cmake_too_old_names_the_version_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path, "cmake", "cmake version 3.25.1")
    monkeypatch.setattr(toolchain, "_venv_bin", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as info:
        toolchain.find_cmake()
    assert "too old" in info.value.what and "3.25.1" in (info.value.where or "")
    assert "pip install" in (info.value.fix or "")


def test_cmake_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "_venv_bin", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="not installed"):
        toolchain.find_cmake()


def test_new_enough_cmake_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path, "cmake", "cmake version 3.31.2")
    monkeypatch.setattr(toolchain, "_venv_bin", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert toolchain.find_cmake().version == "3.31.2"


def test_the_environments_cmake_is_preferred() -> None:
    # This venv carries the PyPI cmake (4.x); the system one here is 3.25.
    tool = toolchain.find_cmake()
    assert Path(tool.path).parent == Path(sys.executable).parent


def test_no_cxx_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as info:
        toolchain.find_cxx()
    assert "no C++ compiler" in info.value.what and "g++" in (info.value.fix or "")


def test_cxx_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path, "my-clang++", "clang version 18.1.0")
    monkeypatch.setenv("CXX", str(tmp_path / "my-clang++"))
    assert toolchain.find_cxx().version == "clang version 18.1.0"


def test_not_enough_disk(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(EnvironmentProblem) as info:
        toolchain.require_free_space(tmp_path / "not" / "yet", free * 2, "a test build")
    assert "not enough disk space for a test build" in info.value.what
    toolchain.require_free_space(tmp_path / "not" / "yet", 1, "a test build")


# ------------------------------------------------------------------------------------ etpackage


def test_executorch_version_read_without_import() -> None:
    package = etpackage.find_executorch()
    version, commit = etpackage.read_version_file(package.root / "version.py")
    assert package.version == version and package.git_commit == commit
    assert len(commit) == 40 and version.startswith("1.5.1")
    assert (package.cmake_dir / "executorch-config.cmake").is_file()


def test_executorch_import_is_not_needed(tmp_path: Path) -> None:
    # In a fresh interpreter: finding the package must not import executorch or torch.
    import subprocess

    code = (
        "import sys\n"
        "from sme2tui.runners.etpackage import find_executorch\n"
        "find_executorch()\n"
        "import sme2tui.runners.host, sme2tui.runners.pairs, sme2tui.runners.source_tree\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'executorch')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_wheel_without_cmake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "version.py").write_text(
        "from typing import Optional\n__version__ = '1.5.1+cpu'\ngit_version: Optional[str] = 'abc'\n"
    )
    monkeypatch.setattr(etpackage, "_package_root", lambda: tmp_path)
    with pytest.raises(EnvironmentProblem) as info:
        etpackage.find_executorch()
    assert "no CMake package" in info.value.what and "share/cmake" in (info.value.where or "")
    assert etpackage.find_executorch(require_cmake=False).git_commit == "abc"


# --------------------------------------------------------------------------------------- binfmt


def test_arch_of_this_interpreter_matches_the_host() -> None:
    import platform

    arch = read_arch(Path(sys.executable).resolve())
    expected = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    assert arch.canonical == expected
    if arch.format == "ELF":
        assert arch.bits == 64 and arch.endian == "little" and arch.interpreter.startswith("/lib")


def _macho(cputype: int) -> bytes:
    return b"\xcf\xfa\xed\xfe" + struct.pack("<iiIIII", cputype, 0, 2, 0, 0, 0)


def test_macho_headers(tmp_path: Path) -> None:
    arm = tmp_path / "arm"
    arm.write_bytes(_macho(0x0100000C))
    intel = tmp_path / "intel"
    intel.write_bytes(_macho(0x01000007))
    assert read_arch(arm).canonical == "arm64" and read_arch(arm).format == "Mach-O"
    assert read_arch(intel).canonical == "x86_64"
    fat = tmp_path / "fat"
    fat.write_bytes(b"\xca\xfe\xba\xbe" + struct.pack(">I", 2) + struct.pack(">IIIII", 0x01000007, 3, 0, 0, 0)
                    + struct.pack(">IIIII", 0x0100000C, 0, 0, 0, 0))  # fmt: skip
    assert read_arch(fat).slices == ("x86-64", "arm64")


def test_elf_machine_from_a_handmade_header(tmp_path: Path) -> None:
    header = (
        b"\x7fELF"
        + bytes([2, 1, 1, 0])
        + bytes(8)
        + struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, 0, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    )
    path = tmp_path / "a64"
    path.write_bytes(header)
    arch = read_arch(path)
    assert (arch.machine, arch.canonical, arch.interpreter) == ("aarch64", "arm64", "")


def test_not_a_binary(tmp_path: Path) -> None:
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(NotABinary):
        read_arch(text)
