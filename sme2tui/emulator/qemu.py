"""QEMU user mode for aarch64: find it, read its version, and trust it only after a probe ran under it.

The probe is a tiny static aarch64 program (cross-compiled from `PROBE_SOURCE`) that prints the auxiliary
vector's HWCAP/HWCAP2 and the SME vector length, i.e. exactly what the Linux kernel — here QEMU — tells
ExecuTorch's cpuinfo about the CPU. XNNPACK picks SME2 kernels from these bits, so they are the ground truth.

Version rules (measured): QEMU 7.2 computes the int8 SMOPA instruction wrongly, 8.x/9.x were never verified,
10.0.x emulates SME without SME2, 10.1+ emulates SME2 (and SME2p1).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sme2tui.errors import EnvironmentProblem
from sme2tui.fileio import sha256_file

HWCAP2_SME = 1 << 23
HWCAP2_SME2 = 1 << 37
HWCAP2_SME2P1 = 1 << 38
MIN_SME2 = (10, 1)
MIN_TRUSTED = (10, 0)
SYSTEM_NAMES = ("qemu-aarch64", "qemu-aarch64-static")
# Guest address space reserved up front: with it QEMU places every mapping at the same guest address in every
# run of the same binary, so translated-code addresses from two runs can be compared. 64 GiB of address space
# (not memory) fits any model a phone runs.
RESERVED_VA = "0x1000000000"

PROBE_SOURCE = r"""// sme2tui CPU probe: what the (emulated) kernel reports to programs about SME/SME2.
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#ifndef PR_SME_GET_VL
#define PR_SME_GET_VL 64
#endif
int main(void) {
  long vl = prctl(PR_SME_GET_VL, 0, 0, 0, 0);
  printf("sme2tui-probe hwcap=0x%lx hwcap2=0x%lx sme_vl=%ld\n", getauxval(AT_HWCAP), getauxval(AT_HWCAP2),
         vl < 0 ? -1L : (vl & 0xffff));
  return 0;
}
"""
_PROBE_LINE = re.compile(r"sme2tui-probe hwcap=0x([0-9a-f]+) hwcap2=0x([0-9a-f]+) sme_vl=(-?\d+)")
_VERSION = re.compile(r"version (\d+)\.(\d+)(?:\.(\d+))?")

Verdict = Literal["sme2", "sme-only", "none"]


@dataclass(frozen=True)
class ProbeResult:
    cpu: str  # the -cpu value it ran under
    hwcap: int
    hwcap2: int
    sme_vl_bytes: int  # -1 without SME

    @property
    def sme(self) -> bool:
        return bool(self.hwcap2 & HWCAP2_SME)

    @property
    def sme2(self) -> bool:
        return bool(self.hwcap2 & HWCAP2_SME2)

    @property
    def sme2p1(self) -> bool:
        return bool(self.hwcap2 & HWCAP2_SME2P1)

    @property
    def verdict(self) -> Verdict:
        return "sme2" if self.sme2 else "sme-only" if self.sme else "none"

    @property
    def svl_bits(self) -> int | None:
        return self.sme_vl_bytes * 8 if self.sme_vl_bytes > 0 else None

    def describe(self) -> str:
        features = [name for name, on in (("SME", self.sme), ("SME2", self.sme2), ("SME2p1", self.sme2p1)) if on]
        svl = f", streaming vector length {self.svl_bits} bits" if self.svl_bits else ""
        return f"-cpu {self.cpu}: {', '.join(features) or 'no SME'}{svl} (HWCAP2 {self.hwcap2:#x})"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(hwcap=f"{self.hwcap:#x}", hwcap2=f"{self.hwcap2:#x}", sme=self.sme, sme2=self.sme2,
                    sme2p1=self.sme2p1, verdict=self.verdict, svl_bits=self.svl_bits)
        return data


@dataclass(frozen=True)
class Qemu:
    path: str
    version: tuple[int, ...]
    version_line: str
    sha256: str
    source: str  # "system" or "debian-sid" (fetched into the cache)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = self.version_text
        return data


def parse_version(text: str) -> tuple[int, ...]:
    """(major, minor, micro) from `qemu-aarch64 --version` output; () if there is none."""
    match = _VERSION.search(text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


def parse_probe(output: str, cpu: str) -> ProbeResult:
    match = _PROBE_LINE.search(output)
    if match is None:
        raise ValueError(f"no probe line in {output[:200]!r}")
    return ProbeResult(cpu=cpu, hwcap=int(match[1], 16), hwcap2=int(match[2], 16), sme_vl_bytes=int(match[3]))


def version_problem(version: tuple[int, ...]) -> str | None:
    """Why a QEMU version cannot be trusted for SME work at all (None when it can be probed)."""
    if not version:
        return "its version could not be read"
    if version[:2] < MIN_TRUSTED:
        return (f"QEMU {'.'.join(map(str, version))} is too old: 7.2 computes the int8 SMOPA instruction wrongly "
                "(int8 results off by up to 89×) and emulates no SME2; 8.x/9.x were never verified. Need 10.1 or newer")
    return None


def describe_qemu(path: str, source: str) -> Qemu:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot start {path}: {exc}", where=path,
                                 fix="reinstall it, or run `sme2tui setup emulator` again") from None
    line = next(iter(out.stdout.strip().splitlines()), "")
    return Qemu(path=path, version=parse_version(line), version_line=line, sha256=sha256_file(Path(path)),
                source=source)


def system_qemus() -> list[str]:
    found = [shutil.which(name) for name in SYSTEM_NAMES]
    return list(dict.fromkeys(p for p in found if p))


def probe_source_sha256() -> str:
    return hashlib.sha256(PROBE_SOURCE.encode()).hexdigest()


def build_probe(cc: str, out_dir: Path) -> Path:
    """Cross-compile the probe (static: runs under QEMU without a sysroot) unless this source is built already."""
    binary = out_dir / f"cpu-probe-{probe_source_sha256()[:12]}"
    if binary.is_file():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "cpu_probe.c"
    source.write_text(PROBE_SOURCE)
    partial = binary.with_suffix(".partial")
    result = subprocess.run([cc, "-O2", "-static", "-o", str(partial), str(source)], capture_output=True,
                            text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise EnvironmentProblem(f"the aarch64 cross compiler cannot build a static probe: "
                                 f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}", where=cc,
                                 fix="install the cross C library too: `apt-get install g++-aarch64-linux-gnu` "
                                 "(it brings libc6-dev-arm64-cross)")
    partial.replace(binary)
    return binary


def run_probe(qemu: str, probe: Path, cpu: str) -> ProbeResult:
    """Run the probe under `qemu -cpu cpu`; EnvironmentProblem when QEMU refuses the CPU model or crashes."""
    try:
        out = subprocess.run([qemu, "-cpu", cpu, str(probe)], capture_output=True, text=True, timeout=60,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"the CPU probe did not run under {qemu}: {exc}", where=qemu,
                                 fix="run `sme2tui setup emulator` again") from None
    try:
        return parse_probe(out.stdout, cpu)
    except ValueError:
        message = (out.stderr.strip().splitlines() or [f"exit {out.returncode}, no output"])[-1]
        raise EnvironmentProblem(f"QEMU could not emulate `-cpu {cpu}`: {message}", where=qemu,
                                 fix="check the variant's `cpu` value and target.svl_bits (QEMU 10.1+ takes "
                                 "`max`, `max,sme=off`, `max,sme-default-vector-length=64`)") from None
