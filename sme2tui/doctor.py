"""`sme2tui doctor`: is this machine ready, and what exactly is missing? Each check says pass / warn /
fail / skip, one line of detail, and a fix. Must stay fast (< 2 s with no devices): no torch import.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sme2tui.events import Checkpoint, CheckStatus, Event, StepFinished, StepStarted
from sme2tui.hostinfo import HostFacts, collect_host_facts
from sme2tui.runners.ndk import MIN_NDK_MAJOR
from sme2tui.versions import package_version

PINNED_TORCH = "2.13.0"
PINNED_EXECUTORCH = "1.5.1"


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""
    required_for: str = "all"  # "all", "runner builds", "android"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _tool_path(name: str) -> str | None:
    """Look in PATH, then beside this Python (pip-installed cmake/ninja live in the venv's bin)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def _run_version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _parse_version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    return Check(
        "python",
        "pass" if ok else "fail",
        f"Python {v.major}.{v.minor}.{v.micro} at {sys.executable}",
        "" if ok else "install Python 3.11 or newer",
    )


def check_package(name: str, pinned: str) -> Check:
    info = package_version(name)
    if info.version is None:
        return Check(name, "fail", f"{name} is not installed", f"pip install '{name}=={pinned}' (see README setup)")
    commit = f", git {info.git_commit[:12]}" if info.git_commit else ", git commit unknown"
    detail = f"{name} {info.version}{commit}"
    if not info.version.startswith(pinned):
        return Check(name, "warn", detail + f" (sme2tui is tested with {pinned})", f"pip install '{name}=={pinned}'")
    return Check(name, "pass", detail)


def check_cmake() -> Check:
    """The same lookup the runner builds use (the venv's PyPI cmake first, then PATH)."""
    from sme2tui.errors import EnvironmentProblem
    from sme2tui.runners.toolchain import find_cmake

    try:
        tool = find_cmake()
    except EnvironmentProblem as exc:
        return Check("cmake", "fail", f"{exc.what} ({exc.where})", exc.fix or "", "runner builds")
    return Check("cmake", "pass", f"cmake {tool.version} at {tool.path}", required_for="runner builds")


def check_tool(name: str, fix: str, required_for: str, *, version_flag: str = "--version") -> Check:
    path = _tool_path(name)
    if not path:
        return Check(name, "fail" if required_for == "runner builds" else "warn", f"{name} not found", fix,
                     required_for)
    version = _run_version([path, version_flag]) or "version unknown"
    return Check(name, "pass", f"{version} ({path})", required_for=required_for)


def check_compiler() -> Check:
    for name in ("c++", "g++", "clang++"):
        path = _tool_path(name)
        if path:
            return Check("c++ compiler", "pass", f"{_run_version([path, '--version'])} ({path})",
                         required_for="runner builds")
    return Check("c++ compiler", "fail", "no C++ compiler (c++, g++, clang++) in PATH",
                 "install one, e.g. `apt-get install g++` or Xcode command line tools", "runner builds")


def ndk_revision(ndk: Path) -> str | None:
    props = ndk / "source.properties"
    try:
        for line in props.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "Pkg.Revision":
                return value.strip()
    except OSError:
        return None
    return None


def check_ndk(environ: dict[str, str] | None = None) -> Check:
    env = os.environ if environ is None else environ
    var = next((v for v in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT") if env.get(v)), None)
    if var is None:
        return Check("android ndk", "skip", "ANDROID_NDK / ANDROID_NDK_HOME not set",
                     "only needed to build Android runners: install NDK r27+ and export ANDROID_NDK=/path/to/ndk",
                     "android")
    ndk = Path(env[var])
    toolchain = ndk / "build" / "cmake" / "android.toolchain.cmake"
    if not toolchain.is_file():
        return Check("android ndk", "fail", f"{var}={ndk} has no build/cmake/android.toolchain.cmake",
                     f"point {var} at the NDK root (the folder with source.properties)", "android")
    revision = ndk_revision(ndk) or "unknown"
    major = _parse_version(revision)
    if major and major[0] < MIN_NDK_MAJOR:
        return Check("android ndk", "fail", f"NDK {revision} at {ndk} is older than r{MIN_NDK_MAJOR}, which "
                     "sme2tui's Android builds need (the toolchain ExecuTorch CI uses for the SME2 kernels)",
                     "install NDK r27+ (sdkmanager 'ndk;27.2.12479018') and point ANDROID_NDK at it", "android")
    return Check("android ndk", "pass", f"NDK {revision} at {ndk} ({var})", required_for="android")


def check_adb(environ: dict[str, str] | None = None, endpoint: str | None = None) -> Check:
    """The ADB server at `endpoint` (a config's `adb_server`), else where adb's own variables point
    (ADB_SERVER_SOCKET, ANDROID_ADB_SERVER_ADDRESS/PORT), else 127.0.0.1:5037; and its devices."""
    from sme2tui.android.endpoint import AdbEndpoint
    from sme2tui.android.errors import AndroidDeviceError

    try:
        where = AdbEndpoint.parse(endpoint) if endpoint else AdbEndpoint.from_env(environ)
    except AndroidDeviceError as exc:
        return Check("adb", "warn", exc.what, exc.fix or "", "android")
    # Probe the socket ourselves first (no adbutils import when nothing listens, and it never spawns `adb`).
    try:
        with socket.create_connection((where.host, where.port), timeout=0.3):
            pass
    except OSError:
        return Check("adb", "warn", f"no ADB server at {where}",
                     "only needed for Android targets: start one with `adb start-server` (Android platform-tools)",
                     "android")
    from sme2tui.android.client import AndroidClient, Timeouts

    try:
        devices = AndroidClient(where, timeouts=Timeouts(connect=1.0, query=3.0)).list_devices()
    except AndroidDeviceError as exc:
        return Check("adb", "warn", f"ADB server at {where} did not answer: {exc.what}",
                     "restart it: `adb kill-server && adb start-server`", "android")
    if not devices:
        return Check("adb", "warn", f"ADB server at {where}, no device connected",
                     "connect a phone with USB debugging on, or `adb connect HOST:PORT`", "android")
    states = ", ".join(f"{d.serial} ({d.state})" for d in devices)
    bad = [d for d in devices if d.state != "device"]
    if bad:
        return Check("adb", "warn", f"devices: {states}",
                     "unauthorized: accept the USB-debugging prompt on the phone; offline: replug or "
                     "`adb reconnect`", "android")
    return Check("adb", "pass", f"ADB server at {where}; devices: {states}", required_for="android")


# Where a machine without SME2 can still watch SME2 kernels run: QEMU user mode (Linux only).
EMULATED_FIX = ("to see SME2 kernels run on this machine, use the emulated target (evidence, not speed): "
                "`sme2tui setup emulator`, then `sme2tui --auto --config configs/examples/emulated_sme2.json` "
                "(in the wizard: e on this step, then the target on the Model step)")


def check_host_sme(facts: HostFacts, system: str | None = None) -> Check:
    emulated = f"; {EMULATED_FIX}" if (system or platform.system()) == "Linux" else ""
    if facts.sme == "sme2":
        return Check("host sme2", "pass", f"{facts.cpu_model}: {facts.sme_detail}")
    if facts.sme == "sme-only":
        return Check("host sme2", "warn", f"{facts.cpu_model}: {facts.sme_detail}",
                     "run SME2 comparisons on an SME2 device (Apple M4/M5, Arm C1 phones)" + emulated)
    return Check(
        "host sme2",
        "warn",
        f"{facts.cpu_model} ({facts.machine}): {facts.sme_detail}. This host runs the whole workflow "
        "(export, run, analysis) but its comparison is XNNPACK vs portable, not SME2 on vs off",
        "measure SME2 speed on an SME2 device: an Android phone with Arm C1 cores or a Mac with M4/M5" + emulated,
    )


MIN_FREE_BYTES = 100 * 10**6  # a quickstart run folder is ~3 MB and its exports ~5 MB; big models take more
LOW_FREE_BYTES = 10**9


def _unwritable(path: Path) -> str | None:
    """Why nothing can be written at `path` (read-only, not permitted, a file in the way), or None."""
    from sme2tui.storage import is_read_only, nearest_existing

    probe = nearest_existing(path)
    if probe.exists() and not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if is_read_only(probe):
        return f"the file system at {probe} is read-only"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"no permission to write in {probe}"
    return None


def check_disk(path: Path) -> Check:
    """Where run folders go: writable, and room for runs (the same threshold the run step refuses below)."""
    from sme2tui.storage import free_bytes, nearest_existing

    probe = nearest_existing(path)
    problem = _unwritable(path)
    if problem:
        return Check("disk", "fail", f"run folders cannot be written: {problem}",
                     "choose a writable folder for runs (--output-root DIR or output_root in the config)")
    free = free_bytes(probe)
    if free is None:
        return Check("disk", "warn", f"cannot tell the free space at {probe}", "check the disk (df -h)")
    shown = f"{free / 1e9:.1f} GB" if free >= 10**8 else f"{free // 10**6} MB"
    if free < MIN_FREE_BYTES:
        return Check("disk", "fail", f"{shown} free at {probe}: runs need at least {MIN_FREE_BYTES // 10**6} MB",
                     f"free some space (runs need at least {MIN_FREE_BYTES // 10**6} MB: the quickstart's run "
                     "folder and exports take ~10 MB, bigger models more), or choose another folder with "
                     "--output-root")
    if free < LOW_FREE_BYTES:
        return Check("disk", "warn", f"{shown} free at {probe}: enough for small runs, tight for big models",
                     "free some space before measuring big models or many iterations")
    return Check("disk", "pass", f"{shown} free at {probe}")


def check_runners_dir(path: Path | None = None) -> Check:
    """Where runners are built and found: the same folder `sme2tui build` and the run step use."""
    from sme2tui.runners.host import find_host_runner
    from sme2tui.runners.location import runners_root

    root = path if path is not None else runners_root(None)
    built = find_host_runner(root)
    if built is not None:
        return Check("runners", "pass", f"host runner built at {built}", required_for="runner builds")
    problem = _unwritable(root)
    if problem:
        return Check("runners", "warn", f"runners cannot be built in {root}: {problem}; host runs fall back to the "
                     "ExecuTorch Python runtime", "point runners_dir in the config (or --runners-dir) at a writable "
                     "folder", "runner builds")
    return Check("runners", "pass", f"runners are built in {root} (the host runner on first use)",
                 required_for="runner builds")


def all_checks(output_root: Path = Path("runs"), adb_server: str | None = None,
               runners_dir: Path | None = None) -> list[Callable[[], Check]]:
    facts = collect_host_facts()
    return [
        check_python,
        lambda: check_package("torch", PINNED_TORCH),
        lambda: check_package("executorch", PINNED_EXECUTORCH),
        lambda: check_host_sme(facts),
        check_cmake,
        lambda: check_tool("ninja", "pip install ninja", "runner builds"),
        check_compiler,
        lambda: check_tool("git", "install git", "runner builds"),
        check_ndk,
        lambda: check_adb(endpoint=adb_server),
        lambda: check_disk(output_root),
        lambda: check_runners_dir(runners_dir),
    ]


def emulation_checks() -> list[Check]:
    """The "SME2 emulation" section: QEMU + probe verdict, cross compiler, aarch64 wheel (each with its fix)."""
    from sme2tui.emulator.setup import emulation_checks as found

    return [Check(name, status, detail, fix, "emulated")  # type: ignore[arg-type]
            for name, status, detail, fix in found()]


def _results(output_root: Path, adb_server: str | None = None, runners_dir: Path | None = None) -> Iterator[Check]:
    for check in all_checks(output_root, adb_server, runners_dir):
        yield check()
    yield from emulation_checks()


def run_doctor(output_root: Path = Path("runs"), *, target: str | None = None,
               adb_server: str | None = None, runners_dir: Path | None = None) -> Iterator[Event]:
    """Every check, or with a `target` ("host", "android", "emulated") only those that target's runs depend on
    plus the common ones (no adb/NDK noise for a host run, no emulation noise for a phone). `adb_server`: the
    config's, checked instead of the default one."""
    yield StepStarted("doctor", "Environment check")
    results: list[Check] = []
    for result in _results(output_root, adb_server, runners_dir):
        if target is not None and result.required_for in ("android", "emulated") and result.required_for != target:
            continue
        results.append(result)
        yield Checkpoint("doctor", result.name, result.status, result.detail, result.fix)
    failed = [r for r in results if r.status == "fail" and r.required_for == "all"]
    yield StepFinished(
        "doctor",
        ok=not failed,
        summary=_summary(results),
        data={"checks": [r.to_dict() for r in results], "host": collect_host_facts().to_dict()},
    )


def _summary(results: list[Check]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def doctor_report(output_root: Path = Path("runs")) -> dict[str, Any]:
    finished = [e for e in run_doctor(output_root) if isinstance(e, StepFinished)][-1]
    return {"ok": finished.ok, **finished.data}
