"""`sme2tui setup emulator` (an event stream, idempotent, cancellable), what doctor reports about emulation, and
`load_emulator()`, which the arm64 build and the emulated target use to get verified parts or a fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme2tui.emulator.cache import cache_root, read_state, write_state
from sme2tui.emulator.cross import CrossCompiler, find_cross_compiler
from sme2tui.emulator.debian import ELSEWHERE, can_fetch, fetch_qemu
from sme2tui.emulator.qemu import (
    ProbeResult,
    Qemu,
    build_probe,
    describe_qemu,
    probe_source_sha256,
    run_probe,
    system_qemus,
    version_problem,
)
from sme2tui.emulator.wheel import check_unpacked, fetch_wheel, wanted_version, wheel_dir
from sme2tui.errors import EnvironmentProblem
from sme2tui.events import Checkpoint, Event, LogLine, StepFinished, StepStarted
from sme2tui.fileio import sha256_file

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

# The CPU models recorded at setup: the pair, and Apple M4's 512-bit streaming vector length.
STANDARD_CPUS = ("max", "max,sme=off", "max,sme-default-vector-length=64")
SETUP_FIX = "run `sme2tui setup emulator`"


@dataclass(frozen=True)
class Emulator:
    """Verified parts, ready to use."""

    qemu: Qemu
    probe: Path
    wheel: dict[str, Any]
    wheel_root: Path
    sysroot: str
    state: dict[str, Any]

    def probe_cpu(self, cpu: str) -> ProbeResult:
        return run_probe(self.qemu.path, self.probe, cpu)


def _choose_qemu(probe: Path, cached: dict[str, Any] | None) -> Iterator[Event | tuple[Qemu, ProbeResult]]:
    """Yield events, and (qemu, probe) for every candidate that emulates SME2 or SME (best first is up to the
    caller). Candidates: the QEMU fetched earlier into the cache, then the system's."""
    candidates: list[tuple[str, str]] = []
    if cached and Path(cached.get("path", "")).is_file():
        candidates.append((cached["path"], cached.get("source", "debian-sid")))
    candidates += [(path, "system") for path in system_qemus()]
    for path, source in dict(candidates).items():
        qemu = describe_qemu(path, source)
        problem = version_problem(qemu.version)
        if problem:
            yield Checkpoint("build", "qemu", "warn", f"{path} refused: {problem}", "", subject=path)
            continue
        result = run_probe(qemu.path, probe, "max")
        yield LogLine("build", f"{path} (QEMU {qemu.version_text}): {result.describe()}", source="qemu")
        yield qemu, result


def setup_emulator(cancel: threading.Event | None = None, root: Path | None = None) -> Iterator[Event]:
    """Gather and verify the cross compiler, the aarch64 wheel and an SME2-capable QEMU; write the state file."""
    yield StepStarted("build", "Set up SME2 emulation (QEMU user mode + the aarch64 ExecuTorch runtime)")
    root = (root or cache_root()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    previous = read_state(root) or {}
    cross = find_cross_compiler()
    yield Checkpoint("build", "aarch64 cross compiler", "pass", f"{cross.version} ({cross.cxx}), sysroot "
                     f"{cross.sysroot}")

    version = wanted_version()
    wheel = previous.get("wheel") or {}
    try:
        if wheel.get("version", "").split("+")[0] != version:
            raise EnvironmentProblem("different version")
        check_unpacked(wheel)
        yield Checkpoint("build", "aarch64 executorch wheel", "pass",
                         f"executorch {wheel['version']} for aarch64 already unpacked ({wheel['file']}, sha256 "
                         f"{wheel['sha256'][:16]}…)")
    except EnvironmentProblem:
        wheel = yield from fetch_wheel(root, version, cancel)
        yield Checkpoint("build", "aarch64 executorch wheel", "pass",
                         f"executorch {wheel['version']} for aarch64 unpacked into {wheel_dir(root, version)} "
                         f"({wheel['file']}, sha256 {wheel['sha256'][:16]}…)")

    probe = build_probe(cross.cc, root / "probe")
    chosen: tuple[Qemu, ProbeResult] | None = None
    sme_only: tuple[Qemu, ProbeResult] | None = None
    for item in _choose_qemu(probe, previous.get("qemu")):
        if isinstance(item, tuple):
            if item[1].sme2 and chosen is None:
                chosen = item
            elif item[1].sme and sme_only is None:
                sme_only = item
        else:
            yield item
    fetched: dict[str, Any] = {}
    if chosen is None:
        reason = can_fetch()
        if reason is None:
            fetched = yield from fetch_qemu(root, cancel)
            qemu = describe_qemu(fetched["path"], "debian-sid")
            result = run_probe(qemu.path, probe, "max")
            if not result.sme2:
                raise EnvironmentProblem(f"the QEMU fetched from Debian ({qemu.version_line}) does not emulate "
                                         f"SME2: {result.describe()}", where=qemu.path, fix=ELSEWHERE)
            chosen = (qemu, result)
        elif sme_only is not None:
            chosen = sme_only
            yield Checkpoint("build", "qemu", "warn", f"{sme_only[0].path} (QEMU {sme_only[0].version_text}) "
                             "emulates SME but not SME2: only SME-only variants can run; sme2-on cannot",
                             f"for SME2: {ELSEWHERE}")
        else:
            raise EnvironmentProblem(f"no QEMU with SME2 here, and it cannot be fetched ({reason})",
                                     where="PATH and " + str(root), fix=ELSEWHERE)
    qemu, result = chosen
    if not fetched and qemu.source != "system":
        fetched = previous.get("qemu", {}).get("fetched", {})
    probes = {cpu: run_probe(qemu.path, probe, cpu).to_dict() for cpu in STANDARD_CPUS}
    yield Checkpoint("build", "qemu", "pass" if result.sme2 else "warn",
                     f"{qemu.version_line} ({qemu.source}, {qemu.path}); probe {result.describe()}; "
                     f"-cpu max,sme=off: {'SME off' if not probes['max,sme=off']['sme'] else 'SME STILL ON'}",
                     "" if result.sme2 else f"for SME2: {ELSEWHERE}")
    state = {"qemu": {**qemu.to_dict(), "fetched": fetched}, "probe": {"path": str(probe),
             "source_sha256": probe_source_sha256()}, "probes": probes, "wheel": wheel,
             "cross": cross.to_dict()}
    path = write_state(state, root)
    yield StepFinished("build", ok=True, summary=f"SME2 emulation ready: QEMU {qemu.version_text}, executorch "
                       f"{wheel['version']} aarch64", data={"state": str(path), **state})


def load_emulator(root: Path | None = None) -> Emulator:
    """The verified parts from the state file; EnvironmentProblem (fix: setup) when missing or changed since."""
    state = read_state(root)
    where = str(root or cache_root())
    if state is None:
        raise EnvironmentProblem("SME2 emulation is not set up on this machine", where=where, fix=SETUP_FIX)
    qemu_info = state["qemu"]
    path = Path(qemu_info["path"])
    if not path.is_file() or sha256_file(path) != qemu_info["sha256"]:
        raise EnvironmentProblem("the QEMU recorded at setup is gone or changed", where=str(path), fix=SETUP_FIX)
    probe = Path(state["probe"]["path"])
    if not probe.is_file():
        raise EnvironmentProblem("the CPU probe built at setup is gone", where=str(probe), fix=SETUP_FIX)
    wheel_root = check_unpacked(state["wheel"])
    qemu = Qemu(path=str(path), version=tuple(int(x) for x in qemu_info["version"].split(".")),
                version_line=qemu_info["version_line"], sha256=qemu_info["sha256"], source=qemu_info["source"])
    return Emulator(qemu=qemu, probe=probe, wheel=state["wheel"], wheel_root=wheel_root,
                    sysroot=state["cross"]["sysroot"], state=state)


def emulation_checks() -> list[tuple[str, str, str, str]]:
    """(name, status, detail, fix) for doctor's "SME2 emulation" section; fast (one probe run, no downloads)."""
    checks: list[tuple[str, str, str, str]] = []
    cross: CrossCompiler | None = None
    try:
        cross = find_cross_compiler()
        checks.append(("aarch64 cross compiler", "pass", f"{cross.version} ({cross.cxx})", ""))
    except EnvironmentProblem as exc:
        checks.append(("aarch64 cross compiler", "warn", exc.what, exc.fix or ""))
    try:
        emulator = load_emulator()
    except EnvironmentProblem as exc:
        systems = [describe_qemu(p, "system") for p in system_qemus()]
        seen = "; ".join(f"{q.path} is QEMU {q.version_text or '?'}"
                         + (f" ({version_problem(q.version)})" if version_problem(q.version) else "")
                         for q in systems) or "no qemu-aarch64 on PATH"
        fetch = "" if can_fetch() is None else f"; cannot fetch from Debian here: {ELSEWHERE}"
        checks.append(("qemu (SME2 emulation)", "warn", f"{exc.what} ({seen})", f"{SETUP_FIX}{fetch}"))
        checks.append(("aarch64 executorch wheel", "warn", "not downloaded", SETUP_FIX))
        return checks
    result = emulator.probe_cpu("max")
    status = "pass" if result.sme2 else "warn"
    checks.append(("qemu (SME2 emulation)", status, f"QEMU {emulator.qemu.version_text} ({emulator.qemu.source}, "
                   f"{emulator.qemu.path}); probe {result.describe()}",
                   "" if result.sme2 else f"for SME2 emulation: {ELSEWHERE}"))
    wheel = emulator.wheel
    want = wanted_version()
    same = wheel["version"].split("+")[0] == want
    checks.append(("aarch64 executorch wheel", "pass" if same else "warn",
                   f"executorch {wheel['version']} aarch64 at {emulator.wheel_root} (sha256 {wheel['sha256'][:16]}…)",
                   "" if same else f"the exporter is executorch {want}: {SETUP_FIX} to match"))
    return checks
