"""What a device is (model, SoC, Android, kernel, per-core CPU features and clocks, thermal state) and
whether it can show SME2 at all. Pure parsing: the text comes from `DeviceSession.facts()`.

SME2 is decided per core from the `Features` line of /proc/cpuinfo (the kernel prints `sme2` for
HWCAP2_SME2). `sme` alone is not enough: XNNPACK's SME2 kernels need SME2, so an SME-only part measures
the same with "SME2 on" as off, and must be called out rather than reported as an SME2 result.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sme2tui.android.errors import AndroidDeviceError, Fault

# Most bytes kept of each section, cut on the device (`head -c`) so a hostile or broken device cannot make us
# read without end. A real phone's getprop is ~100 KiB, its /proc/cpuinfo ~10 KiB; one byte more than the cap
# is read so that "too long" can be told from "exactly at the cap".
SECTION_LIMITS = {"getprop": 1 << 20, "cpuinfo": 256 << 10, "uname": 4 << 10, "cpufreq": 64 << 10,
                  "thermal": 256 << 10}
MAX_CPUS = 4096  # the kernel's largest NR_CPUS; a phone has 8-12
MAX_KHZ_DIGITS = 8  # 99 GHz in kHz; phones run at 1-5 GHz


def _capped(section: str, command: str) -> str:
    return f"echo @@{section}; {{ {command}; }} 2>/dev/null | head -c {SECTION_LIMITS[section] + 1}; echo"


# One device command that prints every section we parse; a fixed string (no user input in it).
FACTS_SCRIPT = "; ".join([
    _capped("getprop", "getprop"),
    _capped("cpuinfo", "cat /proc/cpuinfo"),
    _capped("uname", "uname -r"),
    _capped("cpufreq", "for c in /sys/devices/system/cpu/cpu[0-9]*; do "
                       'echo "${c##*/} $(head -c 64 $c/cpufreq/cpuinfo_max_freq 2>/dev/null)'
                       ' $(head -c 64 $c/cpufreq/scaling_governor 2>/dev/null)"; done'),
    _capped("thermal", "dumpsys thermalservice"),
])

# MIDR part numbers of Arm Ltd (implementer 0x41) cores seen in phones
# (from Linux arch/arm64/include/asm/cputype.h).
ARM_PARTS = {
    "0xd05": "Cortex-A55",
    "0xd0b": "Cortex-A76",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd4d": "Cortex-A715",
    "0xd4e": "Cortex-X3",
    "0xd80": "Cortex-A520",
    "0xd81": "Cortex-A720",
    "0xd82": "Cortex-X4",
    "0xd85": "Cortex-X925",
    "0xd87": "Cortex-A725",
    "0xd8b": "C1-Pro",
    "0xd8c": "C1-Ultra",
    "0xd90": "C1-Premium",
}

SME_VERDICTS = ("sme2", "sme-only", "none", "unknown")


@dataclass(frozen=True)
class CoreInfo:
    index: int
    features: tuple[str, ...] = ()
    implementer: str | None = None
    part: str | None = None
    max_freq_khz: int | None = None
    governor: str | None = None

    @property
    def part_name(self) -> str | None:
        if self.implementer == "0x41" and self.part is not None:
            return ARM_PARTS.get(self.part)
        return None

    @property
    def has_sme(self) -> bool:
        return "sme" in self.features

    @property
    def has_sme2(self) -> bool:
        return "sme2" in self.features


@dataclass(frozen=True)
class DeviceFacts:
    serial: str
    state: str
    model: str | None = None
    manufacturer: str | None = None
    soc: str | None = None
    android_version: str | None = None
    sdk: int | None = None
    abi: str | None = None
    kernel: str | None = None
    emulator: bool = False
    cores: tuple[CoreInfo, ...] = ()
    big_cores: tuple[int, ...] = ()
    prime_cores: tuple[int, ...] = ()
    thermal_status: int | None = None
    sme: str = "unknown"
    sme_summary: str = "not checked"
    sme2_cores: tuple[int, ...] = ()
    error: str | None = None  # why facts are missing (device not ready, collection failed)
    properties: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("properties")
        data["cores"] = [
            {
                **asdict(c),
                "features": list(c.features),
                "part_name": c.part_name,
                "sme": c.has_sme,
                "sme2": c.has_sme2,
            }
            for c in self.cores
        ]
        for key in ("big_cores", "prime_cores", "sme2_cores"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceFacts:
        """The inverse of to_dict (e.g. reading a manifest back); derived per-core keys are ignored."""
        cores = tuple(
            CoreInfo(
                index=int(c["index"]),
                features=tuple(c.get("features", ())),
                implementer=c.get("implementer"),
                part=c.get("part"),
                max_freq_khz=c.get("max_freq_khz"),
                governor=c.get("governor"),
            )
            for c in data.get("cores", [])
        )
        simple = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "cores"}
        for key in ("big_cores", "prime_cores", "sme2_cores"):
            if key in simple:
                simple[key] = tuple(simple[key])
        return cls(**simple, cores=cores)


# ---- parsers -------------------------------------------------------------------------------------
_PROP_LINE = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)$")


def parse_getprop(text: str) -> dict[str, str]:
    """`getprop` output: `[key]: [value]` lines; a value may continue over several lines until `]`."""
    props: dict[str, str] = {}
    key: str | None = None
    parts: list[str] = []
    for line in text.splitlines():
        if key is None:
            m = _PROP_LINE.match(line)
            if not m:
                continue
            key, rest = m.group("key"), m.group("value")
        else:
            rest = line
        if rest.endswith("]"):
            parts.append(rest[:-1])
            props[key] = "\n".join(parts)
            key, parts = None, []
        else:
            parts.append(rest)
    return props


def _implausible(what: str, where: str | None = None) -> AndroidDeviceError:
    return AndroidDeviceError(
        Fault.IMPLAUSIBLE, what, where=where,
        fix="no real phone reports this: check the device (`adb shell cat` the file named) or use another one",
    )  # fmt: skip


def small_int(text: str, max_digits: int = 9) -> int | None:
    """An unsigned decimal of at most `max_digits` ASCII digits, else None (also for "²", "1e9", 5000 digits)."""
    return int(text) if re.fullmatch(f"[0-9]{{1,{max_digits}}}", text) else None


def _cpu_index(text: str, source: str) -> int:
    index = small_int(text, 6)
    if index is None or index >= MAX_CPUS:
        raise _implausible(f"{source} names CPU {text[:40]!r}, outside 0-{MAX_CPUS - 1}", source)
    return index


def parse_cpuinfo(text: str) -> list[CoreInfo]:
    """Per-core blocks of /proc/cpuinfo (arm64: `Features`, x86: `flags`), in processor order."""
    cores: dict[int, CoreInfo] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if "processor" not in fields or not fields["processor"].isascii() or not fields["processor"].isdigit():
            continue  # e.g. the trailing `Hardware :` block of older arm kernels
        index = _cpu_index(fields["processor"], "/proc/cpuinfo")
        features = fields.get("features") or fields.get("flags") or ""
        cores[index] = CoreInfo(
            index=index,
            features=tuple(features.split()),
            implementer=fields.get("cpu implementer", "").lower()[:16] or None,
            part=fields.get("cpu part", "").lower()[:16] or None,
        )
    return [cores[i] for i in sorted(cores)]


def parse_cpufreq(text: str) -> dict[int, tuple[int | None, str | None]]:
    """Lines `cpuN MAXFREQ_KHZ GOVERNOR` (either value may be missing) → {N: (khz, governor)}.

    A clock that is not a number is treated as missing; one with more digits than any CPU could have
    (a 5000-digit "frequency") is an error, not a number to compute masks with."""
    result: dict[int, tuple[int | None, str | None]] = {}
    for line in text.splitlines():
        words = line.split()
        if not words or not re.fullmatch(r"cpu[0-9]+", words[0]):
            continue
        index = _cpu_index(words[0][3:], "/sys/devices/system/cpu")
        khz = None
        if len(words) > 1 and words[1].isascii() and words[1].isdigit():
            khz = small_int(words[1], MAX_KHZ_DIGITS)
            if khz is None:
                digits = f"{len(words[1])}{'+' if len(words[1]) >= 64 else ''}"  # the device side reads 64 bytes
                raise _implausible(f"cpu{index} reports a maximum clock with {digits} digits (kHz; a phone's has 7)",
                                   f"/sys/devices/system/cpu/cpu{index}/cpufreq/cpuinfo_max_freq")
        governor = next((w for w in words[1:] if not (w.isascii() and w.isdigit())), None)
        result[index] = (khz, clean_text(governor, 32) if governor else None)
    return result


def parse_thermal_status(text: str) -> int | None:
    """`dumpsys thermalservice` → the `Thermal Status: N` value (0 none … 6 shutdown); None if absent or absurd."""
    m = re.search(r"^\s*Thermal Status:\s*([0-9]{1,2})\s*$", text, re.M)
    return int(m.group(1)) if m else None


def clean_text(text: str | None, limit: int = 200) -> str | None:
    """A device-supplied string made safe to print: no control characters (no ANSI escapes reach a
    terminal or an SVG), at most `limit` characters."""
    if text is None:
        return None
    cleaned = re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", text).strip()
    return (cleaned[: limit - 1] + "…") if len(cleaned) > limit else cleaned


def check_sizes(sections: dict[str, str]) -> None:
    """An error when a section reached its cap: that device answered more than a phone ever does."""
    for name, limit in SECTION_LIMITS.items():
        size = len(sections.get(name, "").encode(errors="replace"))
        if size > limit:
            raise AndroidDeviceError(
                Fault.OVERSIZED, f"the device's {name} output is over {limit >> 10} KiB (a phone's is a few KiB)",
                where=name,
                fix="check the device (`adb shell` the command) or use another one; sme2tui stops reading there",
            )  # fmt: skip


def split_sections(text: str) -> dict[str, str]:
    """Output of FACTS_SCRIPT → {section name: text}."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].isalpha():
            current = sections.setdefault(line[2:], [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


# ---- derived facts -------------------------------------------------------------------------------
def core_tiers(max_freqs: dict[int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(big, prime) from per-core max clocks: big = every core above the slowest cluster (all cores when
    there is one cluster), prime = the fastest cluster."""
    if not max_freqs:
        return (), ()
    lowest, highest = min(max_freqs.values()), max(max_freqs.values())
    big = tuple(sorted(c for c, f in max_freqs.items() if f > lowest)) or tuple(sorted(max_freqs))
    prime = tuple(sorted(c for c, f in max_freqs.items() if f == highest))
    return big, prime


def cpu_mask(cores: tuple[int, ...] | list[int]) -> str:
    """taskset's hex mask for a set of CPU indices, e.g. (4, 5, 6, 7) → "f0"."""
    if not cores:
        raise ValueError("no cores to build a CPU mask from")
    return format(sum(1 << c for c in set(cores)), "x")


def _ranges(indices: tuple[int, ...] | list[int]) -> str:
    out: list[str] = []
    for i in sorted(indices):
        if out and out[-1].split("-")[-1] == str(i - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


def is_emulator(props: dict[str, str]) -> bool:
    return (
        props.get("ro.kernel.qemu") == "1"
        or props.get("ro.boot.qemu") == "1"
        or props.get("ro.hardware") in ("ranchu", "goldfish")
    )


def sme_verdict(cores: tuple[CoreInfo, ...] | list[CoreInfo], *, emulator: bool) -> tuple[str, str]:
    """("sme2" | "sme-only" | "none" | "unknown", a sentence a person can act on)."""
    if not cores or not any(c.features for c in cores):
        return "unknown", "could not read CPU features from /proc/cpuinfo; SME2 support is unknown"
    sme2 = [c.index for c in cores if c.has_sme2]
    sme = [c.index for c in cores if c.has_sme]
    where = "an emulator" if emulator else "this device"
    if sme2:
        if len(sme2) == len(cores):
            return "sme2", f"all {len(cores)} cores report sme2: SME2 kernels can run"
        others = [c.index for c in cores if not c.has_sme2]
        return "sme2", (
            f"cores {_ranges(sme2)} report sme2, cores {_ranges(others)} do not: pin runs to {_ranges(sme2)}"
        )
    if sme:
        return "sme-only", (
            f"SME without SME2 on {where} (cores {_ranges(sme)}): XNNPACK's SME2 kernels cannot run, so "
            "'sme2-on' would measure the same code as 'sme2-off'; do not report it as an SME2 result"
        )
    if emulator:
        return "none", "an emulator without SME or SME2; its timings do not represent a phone"
    return "none", "no SME or SME2 on this device; an on/off comparison can show no SME2 effect"


def build_facts(serial: str, state: str, dump: str) -> DeviceFacts:
    """DeviceFacts from the output of FACTS_SCRIPT. AndroidDeviceError (OVERSIZED, IMPLAUSIBLE) when the
    device's answers cannot come from a working Android device."""
    sections = split_sections(dump)
    check_sizes(sections)
    props = parse_getprop(sections.get("getprop", ""))
    if not props:
        raise AndroidDeviceError(
            Fault.IMPLAUSIBLE, "`getprop` printed no Android properties", where=serial,
            fix="check `adb shell getprop` on this device; every Android device lists hundreds of properties",
        )  # fmt: skip
    freqs = parse_cpufreq(sections.get("cpufreq", ""))
    cores = tuple(
        CoreInfo(
            index=c.index,
            features=c.features,
            implementer=c.implementer,
            part=c.part,
            max_freq_khz=freqs.get(c.index, (None, None))[0],
            governor=freqs.get(c.index, (None, None))[1],
        )
        for c in parse_cpuinfo(sections.get("cpuinfo", ""))
    )
    max_freqs = {i: khz for i, (khz, _) in freqs.items() if khz}
    big, prime = core_tiers(max_freqs)
    emulator = is_emulator(props)
    verdict, sentence = sme_verdict(cores, emulator=emulator)
    kernel = sections.get("uname", "").strip()

    def prop(*keys: str) -> str | None:
        return clean_text(next((props[k] for k in keys if props.get(k)), None))

    soc = " ".join(p for p in (props.get("ro.soc.manufacturer"), props.get("ro.soc.model")) if p)
    return DeviceFacts(
        serial=serial,
        state=state,
        model=prop("ro.product.marketname", "ro.product.model"),
        manufacturer=prop("ro.product.manufacturer"),
        soc=clean_text(soc) or prop("ro.board.platform", "ro.hardware"),
        android_version=prop("ro.build.version.release"),
        sdk=small_int(props.get("ro.build.version.sdk", ""), 4),
        abi=prop("ro.product.cpu.abi"),
        kernel=clean_text(kernel) or None,
        emulator=emulator,
        cores=cores,
        big_cores=big,
        prime_cores=prime,
        thermal_status=parse_thermal_status(sections.get("thermal", "")),
        sme=verdict,
        sme_summary=sentence,
        sme2_cores=tuple(c.index for c in cores if c.has_sme2),
        properties=props,
    )
