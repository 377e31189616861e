"""Facts about the host machine: OS, CPU, and whether it has SME / SME2 (the honest answer, per OS).

Linux reads `/proc/cpuinfo` (the per-core `Features` words; `sme` alone is not SME2), macOS asks
`sysctl hw.optional.arm.FEAT_SME2`. x86 hosts have no SME at all: they can run the workflow but cannot
prove anything about SME2.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SmeVerdict = Literal["sme2", "sme-only", "none", "unknown"]


@dataclass(frozen=True)
class HostFacts:
    os: str
    os_release: str
    machine: str  # x86_64, aarch64, arm64
    cpu_model: str
    cpu_count: int
    python: str
    sme: SmeVerdict
    sme_detail: str
    cpu_features: list[str] = field(default_factory=list)

    @property
    def has_sme2(self) -> bool:
        return self.sme == "sme2"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_cpuinfo_features(cpuinfo: str) -> list[set[str]]:
    """Feature sets per core, in core order (ARM: `Features`, x86: `flags`)."""
    cores: list[set[str]] = []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("features", "flags"):
            cores.append(set(value.split()))
    return cores


def sme_verdict_from_features(cores: list[set[str]], machine: str) -> tuple[SmeVerdict, str]:
    if machine.lower() in ("x86_64", "amd64", "i686", "x86"):
        return "none", "x86 CPU: no SME/SME2 exists on this architecture; runs here cannot prove SME2 speedups"
    if not cores:
        return "unknown", "no CPU feature list found in /proc/cpuinfo"
    with_sme2 = [i for i, c in enumerate(cores) if "sme2" in c]
    with_sme = [i for i, c in enumerate(cores) if "sme" in c]
    if with_sme2:
        scope = "all cores" if len(with_sme2) == len(cores) else f"cores {with_sme2}"
        return "sme2", f"SME2 reported on {scope}"
    if with_sme:
        return "sme-only", f"SME (v1) but no SME2 on cores {with_sme}: SME2 kernels cannot run here"
    return "none", "no sme/sme2 in the CPU feature flags"


def _linux_cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "CPU part"):
            return value.strip()
    return platform.processor() or "unknown"


def _macos_sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def collect_host_facts(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> HostFacts:
    system = platform.system()
    machine = platform.machine()
    base: dict[str, Any] = {
        "os": system,
        "os_release": platform.release(),
        "machine": machine,
        "cpu_count": os.cpu_count() or 1,
        "python": platform.python_version(),
    }
    if system == "Darwin":
        sme2 = _macos_sysctl("hw.optional.arm.FEAT_SME2")
        sme = _macos_sysctl("hw.optional.arm.FEAT_SME")
        model = _macos_sysctl("machdep.cpu.brand_string") or "Apple silicon"
        if sme2 == "1":
            verdict: SmeVerdict = "sme2"
            detail = "hw.optional.arm.FEAT_SME2 = 1"
        elif sme == "1":
            verdict, detail = "sme-only", "FEAT_SME = 1 but FEAT_SME2 = 0"
        elif machine == "x86_64":
            verdict, detail = sme_verdict_from_features([], machine)
        elif sme2 is None:
            verdict, detail = "unknown", "sysctl hw.optional.arm.FEAT_SME2 not available (older macOS?)"
        else:
            verdict, detail = "none", "hw.optional.arm.FEAT_SME2 = 0"
        return HostFacts(**base, cpu_model=model, sme=verdict, sme_detail=detail)
    try:
        cpuinfo = cpuinfo_path.read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    cores = parse_cpuinfo_features(cpuinfo)
    verdict, detail = sme_verdict_from_features(cores, machine)
    prefixes = ("sme", "sve", "avx512", "amx", "i8mm", "bf16")
    interesting = sorted({f for c in cores for f in c if f.startswith(prefixes) and f != "smep"})
    return HostFacts(**base, cpu_model=_linux_cpu_model(cpuinfo), sme=verdict, sme_detail=detail,
                     cpu_features=interesting)


# Multi-threaded runs are measured at up to this many threads: a phone's big cluster and the point where
# most models stop scaling. More would only time the scheduler.
MAX_DEFAULT_THREADS = 4


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's limit), else the CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_thread_counts(cpus: int | None = None) -> list[int]:
    """Thread settings to propose for runs on this machine: one thread (per-core speed), plus as many as
    the machine can give one run up to MAX_DEFAULT_THREADS; [1] on a single CPU."""
    cpus = usable_cpus() if cpus is None else cpus
    most = min(MAX_DEFAULT_THREADS, cpus)
    return [1, most] if most > 1 else [1]
