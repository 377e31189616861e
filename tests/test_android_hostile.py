"""A hostile or broken device: whatever it answers, sme2tui ends in a classified DeviceError (exit 7), never a
crash, never unbounded memory or time. Also serials that need care, and `cleanup` deleting only our files.

These use the host-protocol double (tests/adb_double/server.py): it can make a device misbehave in ways a
real adb server would pass through unchanged, and it runs in-process, so memory is measurable."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import TYPE_CHECKING

import pytest

from sme2tui.android import (
    TOOL_DIR,
    AndroidClient,
    AndroidDeviceError,
    DeviceSession,
    Fault,
    Timeouts,
    list_devices_report,
    render_devices_text,
)
from sme2tui.android.client import parse_device_listing
from sme2tui.android.facts import MAX_KHZ_DIGITS, build_facts, parse_cpufreq, parse_thermal_status
from sme2tui.exit_codes import ExitCode
from tests.adb_double import SME2_PHONE, FakeDevice
from tests.adb_double.fixtures import SME2_SERIAL, Lab, double_lab
from tests.conftest import run_cli, tiny_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

FAST = Timeouts(connect=1.0, query=5.0, transfer=5.0, run=5.0, settle=0.5)
CPUFREQ = "/sys/devices/system/cpu/cpu{}/cpufreq/cpuinfo_max_freq"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with double_lab(tmp_path, (SME2_PHONE, SME2_SERIAL)) as lab:
        yield lab


@pytest.fixture
def phone(lab: Lab) -> FakeDevice:
    return lab.server.devices[0]


@pytest.fixture
def session(lab: Lab) -> DeviceSession:
    return DeviceSession(AndroidClient(f"127.0.0.1:{lab.port}", timeouts=FAST), SME2_SERIAL)


def _getprop(phone: FakeDevice, text: bytes) -> None:
    (phone.root / ".double" / "getprop.txt").write_bytes(text)


# What a hostile device does → the Fault sme2tui must answer with.
HOSTILE: dict[str, tuple[Callable[[FakeDevice], None], Fault]] = {
    "5000-digit cpuinfo_max_freq": (lambda p: p.write(CPUFREQ.format(4), b"9" * 5000 + b"\n"), Fault.IMPLAUSIBLE),
    "cpu index beyond any kernel": (lambda p: p.write("/proc/cpuinfo", b"processor\t: 99999999999\nFeatures\t: "
                                                      b"sme2\n\n"), Fault.IMPLAUSIBLE),
    "20 MB /proc/cpuinfo": (lambda p: p.write("/proc/cpuinfo", (b"processor\t: 0\nFeatures\t: fp asimd sme2\n\n"
                                                                 * 500_000)), Fault.OVERSIZED),
    "binary garbage from getprop": (lambda p: _getprop(p, bytes(range(256)) * 64), Fault.IMPLAUSIBLE),
    "endless getprop": (lambda p: (p.root / ".double/bin/getprop").write_text("#!/bin/sh\nexec yes '[a]: [b]'\n"),
                        Fault.OVERSIZED),
    "adbd floods every answer": (lambda p: p.fail_shell("getprop", "flood"), Fault.OVERSIZED),
    "a packet that claims 4 GB": (lambda p: p.fail_shell("getprop", "flood", after_output=0xFFFFFFF0), Fault.TIMEOUT),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_device_facts_are_a_classified_error_in_bounded_memory_and_time(
    case: str, session: DeviceSession, phone: FakeDevice
) -> None:
    inject, fault = HOSTILE[case]
    inject(phone)
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(AndroidDeviceError) as info:
            session.facts()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind is fault, info.value.to_dict()
    assert info.value.exit_code == ExitCode.DEVICE and info.value.fix
    assert peak < 40 << 20, f"{peak >> 20} MiB held while reading a hostile device"
    assert time.monotonic() - start < FAST.query + 3


def test_a_program_that_prints_without_end_keeps_head_and_tail(session: DeviceSession, phone: FakeDevice) -> None:
    """A runner's log is bounded too, but not an error: its start and end are kept, the middle counted."""
    phone.write("/data/local/tmp/talk.sh", b"echo FIRST; head -c 40000000 /dev/zero | tr '\\0' x; echo; echo LAST\n")
    tracemalloc.start()
    try:
        result = session.run(["sh", "/data/local/tmp/talk.sh"], timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and result.dropped > 20_000_000
    assert result.stdout.startswith("FIRST\n") and result.stdout.rstrip().endswith("LAST")
    assert "bytes left out by sme2tui" in result.stdout
    assert peak < 120 << 20, f"{peak >> 20} MiB"


def test_a_pull_past_its_limit_stops(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    phone.write(f"{TOOL_DIR}/big.bin", b"x" * 3_000_000)
    with pytest.raises(AndroidDeviceError) as info:
        session.pull(f"{TOOL_DIR}/big.bin", tmp_path / "big.bin", max_bytes=1_000_000)
    assert info.value.kind is Fault.OVERSIZED
    assert not (tmp_path / "big.bin").exists() and not list(tmp_path.glob(".big.bin*"))


def test_parsers_refuse_absurd_numbers_without_crashing() -> None:
    assert parse_cpufreq("cpu0 2000000 schedutil\ncpu1 \ncpu2 ²³ performance") == {
        0: (2000000, "schedutil"), 1: (None, None), 2: (None, "²³")}
    with pytest.raises(AndroidDeviceError):
        parse_cpufreq("cpu0 " + "1" * (MAX_KHZ_DIGITS + 1))
    assert parse_thermal_status("Thermal Status: " + "9" * 5000) is None
    facts = build_facts("s", "device", "@@getprop\n[ro.build.version.sdk]: [" + "3" * 5000 + "]\n"
                        "[ro.product.model]: [\x1b[31mEvil\x1b[0m" + "M" * 1000 + "]\n")
    assert facts.sdk is None
    assert facts.model is not None and "\x1b" not in facts.model and len(facts.model) <= 200


def test_hostile_phone_in_the_cli(lab: Lab, phone: FakeDevice, tmp_path: Path) -> None:
    """`devices` reports the device's problem; `--auto` stops with exit 7 before any export or run folder."""
    phone.write(CPUFREQ.format(4), b"9" * 5000 + b"\n")
    result = run_cli("devices", "--json", "--adb-server", f"127.0.0.1:{lab.port}", cwd=tmp_path, timeout=60)
    assert "Traceback" not in result.stderr and result.returncode != ExitCode.INTERNAL, result.stderr
    (entry,) = json.loads(result.stdout)
    assert "maximum clock with 64+ digits" in entry["error"]
    config = tiny_config(variants=[{"name": "a", "delegate": "portable", "runner": "/bin/true"},
                                   {"name": "b", "delegate": "xnnpack", "runner": "/bin/true"}],
                         compare={"baseline": "a", "candidate": "b"},
                         target={"kind": "android", "adb_server": f"127.0.0.1:{lab.port}", "serial": SME2_SERIAL,
                                 "allow_foreign_runner": True})
    (tmp_path / "c.json").write_text(json.dumps(config))
    result = run_cli("--auto", "--json", "--config", tmp_path / "c.json", "--output-root", tmp_path / "runs",
                     cwd=tmp_path, timeout=120)
    assert result.returncode == ExitCode.DEVICE, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "implausible" and "cpuinfo_max_freq" in error["where"] and error["fix"]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("value", ["99999999999", "abc", "5037" * 2000], ids=["huge", "word", "8000-digits"])
def test_doctor_survives_a_bad_adb_port_variable(value: str, tmp_path: Path) -> None:
    result = run_cli("doctor", "--json", cwd=tmp_path, env={"ANDROID_ADB_SERVER_PORT": value}, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    (adb,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "adb"]
    assert adb["status"] == "warn" and adb["fix"]


# ---- serials -------------------------------------------------------------------------------------
WEIRD_SERIALS = ["lab phone 7", "it's \"quoted\"", "a", "a b", "x;rm -rf /", "tab-less\u00e9"]


def test_serials_with_spaces_and_quotes_are_listed_exactly(lab: Lab, tmp_path: Path) -> None:
    for serial in WEIRD_SERIALS:
        lab.add(SME2_PHONE, serial)
    lab.add(SME2_PHONE, "locked phone", state="unauthorized")
    client = AndroidClient(f"127.0.0.1:{lab.port}", timeouts=FAST)
    listed = {e.serial: e for e in client.list_devices()}
    assert set(listed) == {SME2_SERIAL, *WEIRD_SERIALS, "locked phone"}
    assert listed["lab phone 7"].state == "device" and listed["lab phone 7"].tags["model"] == "V2509A"
    assert listed["a"].tags["transport_id"] != listed["a b"].tags["transport_id"]
    assert listed["locked phone"].state == "unauthorized"
    for serial in WEIRD_SERIALS:  # and each one is usable by its exact serial
        assert client.select(serial) == serial
        assert DeviceSession(client, serial).facts().sme == "sme2"


def test_a_serial_with_terminal_escapes_is_shown_harmlessly(lab: Lab) -> None:
    lab.add(SME2_PHONE, "evil\x1b[2J\x1b[31m")
    client = AndroidClient(f"127.0.0.1:{lab.port}", timeouts=FAST)
    text = render_devices_text(list_devices_report(client))
    assert "\x1b" not in text and "evil?[2J?[31m" in text


def test_listing_parser_handles_multiword_states_and_missing_long_lines() -> None:
    short = "a b\tdevice\na\tno permissions (user in plugdev group)\nc\toffline\n"
    long = ("a b                    device usb:1-1 product:p model:M device:d transport_id:3\n"
            "a                      no permissions (user in plugdev group) usb:2-1 transport_id:4\n")
    entries = {e.serial: e for e in parse_device_listing(short, long)}
    assert entries["a b"].tags["transport_id"] == "3" and entries["a b"].state == "device"
    assert entries["a"].state == "no permissions (user in plugdev group)" and entries["a"].tags["transport_id"] == "4"
    assert entries["c"].tags == {}


# ---- cleanup -------------------------------------------------------------------------------------
def test_cleanup_deletes_only_what_the_session_put_there(session: DeviceSession, phone: FakeDevice,
                                                         tmp_path: Path) -> None:
    phone.write(f"{TOOL_DIR}/notes/keep.txt", b"the user's own file")
    local = tmp_path / "runner"
    local.write_bytes(b"\x7fELF" + bytes(5000))
    session.ensure_dir(f"{TOOL_DIR}/runners/on")
    session.push_if_changed(local, f"{TOOL_DIR}/runners/on/runner", mode=0o755)
    session.ensure_dir(f"{TOOL_DIR}/cells/c1", owned=True)
    session.run(["sh", "-c", "echo out > etdump.etdp"], cwd=f"{TOOL_DIR}/cells/c1")
    session.cleanup()
    assert phone.read(f"{TOOL_DIR}/notes/keep.txt") == b"the user's own file"
    assert not phone.exists(f"{TOOL_DIR}/runners") and not phone.exists(f"{TOOL_DIR}/cells")
    assert not phone.exists(f"{TOOL_DIR}/.pids")
    phone.host_path(f"{TOOL_DIR}/notes/keep.txt").unlink()
    phone.host_path(f"{TOOL_DIR}/notes").rmdir()
    session.ensure_dir(f"{TOOL_DIR}/cells/c2", owned=True)
    session.cleanup()
    assert not phone.exists(TOOL_DIR), "an emptied tool folder goes too"


def test_cleanup_refuses_a_tool_folder_that_is_a_symlink(session: DeviceSession, phone: FakeDevice) -> None:
    elsewhere = phone.host_path("/sdcard/precious")
    elsewhere.mkdir(parents=True)
    (elsewhere / "cells").mkdir()
    (elsewhere / "cells" / "photo.jpg").write_bytes(b"1")
    phone.host_path(TOOL_DIR).symlink_to(elsewhere)
    session._trees.add(f"{TOOL_DIR}/cells")
    with pytest.raises(AndroidDeviceError) as info:
        session.cleanup()
    assert info.value.kind is Fault.COMMAND_FAILED and "not a plain folder" in (info.value.detail or "")
    assert (elsewhere / "cells" / "photo.jpg").exists()
