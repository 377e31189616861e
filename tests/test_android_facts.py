"""Pure parsing of device facts, on the fixture files that the ADB double serves."""

from __future__ import annotations

import json

import pytest

from sme2tui.android.facts import (
    CoreInfo,
    DeviceFacts,
    build_facts,
    core_tiers,
    cpu_mask,
    parse_cpufreq,
    parse_cpuinfo,
    parse_getprop,
    parse_thermal_status,
    sme_verdict,
    split_sections,
)
from tests.adb_double import EMULATOR, FIXTURES_DIR, SME1_ONLY, SME2_PHONE


def _read(fixture: str, rel: str) -> str:
    return (FIXTURES_DIR / fixture / rel).read_text()


def _cpufreq_lines(fixture: str) -> str:
    """What the facts script prints for /sys/.../cpuN: `cpuN MAXFREQ GOVERNOR`."""
    base = FIXTURES_DIR / fixture / "sys/devices/system/cpu"
    lines = []
    for cpu in sorted(base.glob("cpu[0-9]*"), key=lambda p: int(p.name[3:])):
        freq = cpu / "cpufreq/cpuinfo_max_freq"
        gov = cpu / "cpufreq/scaling_governor"
        lines.append(
            f"{cpu.name} {freq.read_text().strip() if freq.exists() else ''} "
            f"{gov.read_text().strip() if gov.exists() else ''}"
        )
    return "\n".join(lines)


def _dump(fixture: str) -> str:
    return "\n".join(
        [
            "@@getprop",
            _read(fixture, "getprop.txt"),
            "@@cpuinfo",
            _read(fixture, "proc/cpuinfo"),
            "@@uname",
            _read(fixture, "uname.txt").split()[2],
            "@@cpufreq",
            _cpufreq_lines(fixture),
            "@@thermal",
            _read(fixture, "dumpsys_thermalservice.txt"),
        ]
    )


def test_cpuinfo_per_core_features_and_parts_on_the_sme2_phone() -> None:
    cores = parse_cpuinfo(_read(SME2_PHONE, "proc/cpuinfo"))
    assert [c.index for c in cores] == list(range(8))
    assert all(c.has_sme2 and c.has_sme for c in cores)
    assert [c.part_name for c in cores] == ["C1-Pro"] * 4 + ["C1-Premium"] * 3 + ["C1-Ultra"]
    assert cores[7].implementer == "0x41"


def test_sme_without_sme2_is_not_mistaken_for_sme2() -> None:
    cores = parse_cpuinfo(_read(SME1_ONLY, "proc/cpuinfo"))
    # Feature words like "smei16i64" contain "sme" as a prefix: membership must be by whole word.
    assert all(c.has_sme and not c.has_sme2 for c in cores)
    verdict, sentence = sme_verdict(cores, emulator=False)
    assert verdict == "sme-only"
    assert "SME without SME2" in sentence


def test_x86_emulator_cpuinfo_uses_flags_and_has_no_sme() -> None:
    cores = parse_cpuinfo(_read(EMULATOR, "proc/cpuinfo"))
    assert len(cores) == 4
    assert "avx2" in cores[0].features
    assert sme_verdict(cores, emulator=True)[0] == "none"
    assert "emulator" in sme_verdict(cores, emulator=True)[1]


def test_sme2_on_only_some_cores_names_them() -> None:
    with_sme2 = CoreInfo(0, ("fp", "sme", "sme2"))
    without = CoreInfo(1, ("fp",))
    verdict, sentence = sme_verdict([without, with_sme2], emulator=False)
    assert verdict == "sme2"
    assert "cores 0 report sme2, cores 1 do not" in sentence


def test_no_features_means_unknown_not_none() -> None:
    assert sme_verdict([], emulator=False)[0] == "unknown"
    assert sme_verdict([CoreInfo(0)], emulator=False)[0] == "unknown"


def test_getprop_including_multiline_values_and_empty_values() -> None:
    text = "[ro.product.model]: [V2509A]\n[ro.kernel.qemu]: []\n[persist.x.motd]: [line one\nline two]\nnoise\n"
    props = parse_getprop(text)
    assert props == {
        "ro.product.model": "V2509A",
        "ro.kernel.qemu": "",
        "persist.x.motd": "line one\nline two",
    }
    assert parse_getprop(_read(SME2_PHONE, "getprop.txt"))["ro.soc.model"] == "MT6993"


def test_thermal_status() -> None:
    assert parse_thermal_status(_read(SME2_PHONE, "dumpsys_thermalservice.txt")) == 0
    assert parse_thermal_status(_read(SME1_ONLY, "dumpsys_thermalservice.txt")) == 1
    assert parse_thermal_status("Thermal HAL not ready") is None


def test_cpufreq_lines_tolerate_missing_values() -> None:
    parsed = parse_cpufreq("cpu0 2704000 schedutil\ncpu1  \ncpu2 performance\nbogus 1\n")
    assert parsed == {0: (2704000, "schedutil"), 1: (None, None), 2: (None, "performance")}


def test_big_and_prime_cores_from_max_freqs() -> None:
    freqs = {0: 2704000, 1: 2704000, 2: 2704000, 3: 2704000, 4: 3500000, 5: 3500000, 6: 3500000, 7: 4210000}
    assert core_tiers(freqs) == ((4, 5, 6, 7), (7,))
    assert core_tiers({0: 1800000, 1: 1800000}) == ((0, 1), (0, 1))  # one cluster: every core is "big"
    assert core_tiers({}) == ((), ())
    assert cpu_mask([4, 5, 6, 7]) == "f0"
    assert cpu_mask([7]) == "80"
    assert cpu_mask([0, 9]) == "201"
    with pytest.raises(ValueError):
        cpu_mask([])


def test_split_sections_ignores_text_before_first_marker() -> None:
    assert split_sections("junk\n@@a\n1\n2\n@@b\n") == {"a": "1\n2", "b": ""}


@pytest.mark.parametrize(
    ("fixture", "sme", "emulator", "big", "soc"),
    [
        (SME2_PHONE, "sme2", False, (4, 5, 6, 7), "Mediatek MT6993"),
        (SME1_ONLY, "sme-only", False, (6, 7), "Example Silicon EX-SME1"),
        (EMULATOR, "none", True, (), "ranchu"),
    ],
)
def test_build_facts_from_a_whole_dump(fixture: str, sme: str, emulator: bool, big: tuple[int, ...], soc: str) -> None:
    facts = build_facts("SERIAL", "device", _dump(fixture))
    assert facts.sme == sme
    assert facts.emulator is emulator
    assert facts.big_cores == big
    assert facts.soc == soc
    data = facts.to_dict()
    assert data["serial"] == "SERIAL" and data["sme"] == sme
    assert "properties" not in data
    assert len(data["cores"]) == len(facts.cores)


@pytest.mark.parametrize("fixture", [SME2_PHONE, SME1_ONLY, EMULATOR])
def test_facts_survive_a_json_round_trip(fixture: str) -> None:
    facts = build_facts("S", "device", _dump(fixture))
    again = DeviceFacts.from_dict(json.loads(json.dumps(facts.to_dict())))
    assert again == facts
    assert again.cores[0].has_sme2 == facts.cores[0].has_sme2


def test_sme2_phone_facts_in_detail() -> None:
    facts = build_facts("X300", "device", _dump(SME2_PHONE))
    assert (facts.model, facts.manufacturer, facts.android_version, facts.sdk) == (
        "vivo X300",
        "vivo",
        "16",
        36,
    )
    assert facts.abi == "arm64-v8a"
    assert facts.kernel is not None and facts.kernel.startswith("6.12.23-android16")
    assert facts.prime_cores == (7,)
    assert facts.cores[7].max_freq_khz == 4210000 and facts.cores[7].governor == "schedutil"
    assert facts.thermal_status == 0
    assert facts.sme2_cores == tuple(range(8))
    assert facts.to_dict()["cores"][7]["part_name"] == "C1-Ultra"
