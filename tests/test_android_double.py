"""The ADB double speaks the host protocol well enough for adbutils' own API, and its parts behave."""

from __future__ import annotations

import io
import socket
import time
from typing import TYPE_CHECKING

import adbutils
import pytest

from tests.adb_double import EMULATOR, SME2_PHONE, AdbDoubleServer, FakeDevice
from tests.adb_double.fixtures import SME2_SERIAL, Lab, double_lab
from tests.adb_double.shell_exec import OutputUnmapper

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with double_lab(tmp_path, (SME2_PHONE, SME2_SERIAL)) as lab:
        yield lab


@pytest.fixture
def adb(lab: Lab) -> adbutils.AdbClient:
    return adbutils.AdbClient("127.0.0.1", lab.port, socket_timeout=5)


def test_adbutils_host_services(adb: adbutils.AdbClient, lab: Lab) -> None:
    assert adb.server_version() == 41
    [info] = adb.list(extended=True)
    assert (info.serial, info.state) == (SME2_SERIAL, "device")
    assert info.tags["model"] == "V2509A" and info.tags["transport_id"] == "1"
    device = adb.device(SME2_SERIAL)
    assert device.get_state() == "device"
    assert device.get_serialno() == SME2_SERIAL
    assert "shell_v2" in device.get_features().split(",")
    assert device.prop.model == "V2509A"


def test_adbutils_shell_v1_and_v2(adb: adbutils.AdbClient) -> None:
    device = adb.device(SME2_SERIAL)
    assert device.shell("echo out; echo err >&2") == "out\nerr"  # v1 merges the streams
    result = device.shell2("echo out; echo err >&2; exit 7", v2=True)
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert device.shell2("sh -c 'exit 3'").returncode == 3  # v1 with adbutils' exit marker


def test_adbutils_sync_push_stat_list_pull(adb: adbutils.AdbClient, lab: Lab, tmp_path: Path) -> None:
    device = adb.device(SME2_SERIAL)
    payload = bytes(range(256)) * 1000
    assert device.sync.push(io.BytesIO(payload), "/data/local/tmp/new/dir/f.bin", mode=0o600) == len(payload)
    info = device.sync.stat("/data/local/tmp/new/dir/f.bin")
    assert info.size == len(payload) and info.mode & 0o777 == 0o600
    assert not device.sync.exists("/data/local/tmp/none")
    assert [f.path for f in device.sync.list("/data/local/tmp/new/dir")] == [".", "..", "f.bin"]
    assert device.sync.read_bytes("/data/local/tmp/new/dir/f.bin") == payload
    device.sync.pull("/data/local/tmp/new/dir/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == payload
    phone = lab.server.devices[0]
    assert phone.received[-1].path == "/data/local/tmp/new/dir/f.bin" and phone.received[-1].size == len(payload)
    assert phone.bytes_received == len(payload)
    with pytest.raises(adbutils.AdbError, match="No such file"):
        device.sync.read_bytes("/data/local/tmp/none")


def test_device_paths_and_proc_sys_are_served_from_the_fixture(adb: adbutils.AdbClient) -> None:
    device = adb.device(SME2_SERIAL)
    assert "sme2" in device.shell("grep -m1 Features /proc/cpuinfo")
    assert device.shell("cat /sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq") == "4210000"
    assert device.shell("uname -r").startswith("6.12.23-android16")
    assert device.shell("getprop ro.soc.model") == "MT6993"
    assert device.shell("getprop no.such.prop fallback") == "fallback"
    assert (
        device.shell("settings put global stay_on_while_plugged_in 7; settings get global stay_on_while_plugged_in")
        == "7"
    )
    assert device.shell("cd /data/local/tmp && pwd") == "/data/local/tmp"


def test_the_sme1_and_emulator_fixtures_differ_where_it_matters(tmp_path: Path) -> None:
    with double_lab(tmp_path, (EMULATOR, "emulator-5554")) as lab:
        device = adbutils.AdbClient("127.0.0.1", lab.port, socket_timeout=5).device("emulator-5554")
        assert device.shell("getprop ro.kernel.qemu") == "1"
        assert "sme" not in device.shell("cat /proc/cpuinfo").split()
        assert device.shell("uname -m") == "x86_64"


def test_states_and_disappearing_devices(adb: adbutils.AdbClient, lab: Lab) -> None:
    phone = lab.server.devices[0]
    phone.state = "unauthorized"
    assert adb.list()[0].state == "unauthorized"
    with pytest.raises(adbutils.AdbError, match="device unauthorized"):
        adb.device(SME2_SERIAL).shell("true")
    phone.state = "offline"
    with pytest.raises(adbutils.AdbError, match="device offline"):
        adb.device(SME2_SERIAL).shell("true")
    phone.state = "device"
    phone.unplug()
    assert adb.list() == []
    with pytest.raises(adbutils.AdbError, match="not found"):
        adb.device(SME2_SERIAL).shell("true")
    phone.replug()
    assert adb.device(SME2_SERIAL).shell("echo back") == "back"


def test_stop_ends_hung_and_running_commands_quickly(tmp_path: Path) -> None:
    server = AdbDoubleServer().start()
    phone = server.add_device(FakeDevice.from_fixture(SME2_PHONE, SME2_SERIAL, tmp_path))
    phone.fail_shell("hang-me", "hang")
    phone.kill_on_hangup = False
    adb = adbutils.AdbClient("127.0.0.1", server.port, socket_timeout=5)
    hung = adb.device(SME2_SERIAL).shell("hang-me", stream=True)
    running = adb.device(SME2_SERIAL).shell("sleep 60", stream=True)
    deadline = time.monotonic() + 3
    while server.running_commands < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.running_commands == 1
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3
    assert server.running_commands == 0
    hung.close()
    running.close()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", server.port)) != 0


def test_several_connections_at_once(adb: adbutils.AdbClient) -> None:
    streams = [adb.device(SME2_SERIAL).shell(f"sleep 0.2; echo {i}", stream=True) for i in range(5)]
    try:
        assert [s.read_until_close().strip() for s in streams] == [str(i) for i in range(5)]
    finally:
        for s in streams:
            s.close()


# ---- parts ---------------------------------------------------------------------------------------
def test_host_path_never_leaves_the_device_root(lab: Lab) -> None:
    phone = lab.server.devices[0]
    assert phone.host_path("/data/local/tmp/x") == phone.root / "data/local/tmp/x"
    assert phone.host_path("/../../etc/passwd") == phone.root / "etc/passwd"
    assert phone.host_path("/data/../../../x") == phone.root / "x"


@pytest.mark.parametrize(
    ("command", "mapped"),
    [
        ("cat /proc/cpuinfo", "cat R/proc/cpuinfo"),
        ("'/data/local/tmp/a b'", "'R/data/local/tmp/a b'"),
        ("--etdump_path=/data/x", "--etdump_path=R/data/x"),
        ("LD_LIBRARY_PATH=/data/lib:/vendor/lib64", "LD_LIBRARY_PATH=R/data/lib:R/vendor/lib64"),
        ("ls /sdcard", "ls R/sdcard"),
        ("echo foo/data /database /system/bin/sh ~/data", "echo foo/data /database /system/bin/sh ~/data"),
    ],
)
def test_command_rewrite(lab: Lab, command: str, mapped: str) -> None:
    phone = lab.server.devices[0]
    assert phone.rewrite_command(command) == mapped.replace("R/", f"{phone.root}/")


def test_output_unmapper_handles_a_root_split_across_chunks() -> None:
    root = b"/tmp/dev/root"
    text = b"hash  /tmp/dev/root/data/x\n/tmp/dev/root\n"
    for cut in range(len(text) + 1):
        unmapper = OutputUnmapper(root)
        assert unmapper.feed(text[:cut]) + unmapper.feed(text[cut:]) + unmapper.flush() == b"hash  /data/x\n/\n"
