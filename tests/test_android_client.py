"""Reaching ADB servers and choosing devices, with the real adbutils client against the loopback double."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import adbutils
import pytest
from adbutils.errors import AdbConnectionError

from sme2tui.android import AdbEndpoint, AndroidClient, AndroidDeviceError, DeviceSession, Fault, Timeouts
from sme2tui.android.endpoint import DEFAULT_PORT
from sme2tui.errors import DeviceError
from tests.adb_double import EMULATOR, SME1_ONLY, SME2_PHONE, AdbDoubleServer, FakeDevice
from tests.adb_double.fixtures import SME1_SERIAL, SME2_SERIAL, STANDARD_DEVICES, Lab, double_lab

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FAST = Timeouts(connect=1.0, query=5.0, transfer=5.0, run=5.0)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with double_lab(tmp_path, *STANDARD_DEVICES) as lab:
        yield lab


def _client(port: int, **env: str) -> AndroidClient:
    return AndroidClient(f"127.0.0.1:{port}", timeouts=FAST, environ=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---- endpoints -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5037", AdbEndpoint("127.0.0.1", 5037)),
        ("tcp:lab-host:5038", AdbEndpoint("lab-host", 5038)),
        ("tcp:5039", AdbEndpoint("127.0.0.1", 5039)),
        ("6000", AdbEndpoint("127.0.0.1", 6000)),
        ("[::1]:5037", AdbEndpoint("::1", 5037)),
    ],
)
def test_endpoint_parse(text: str, expected: AdbEndpoint) -> None:
    assert AdbEndpoint.parse(text) == expected


@pytest.mark.parametrize("text", ["", "host", "host:port", "host:99999", "a:b:c"])
def test_bad_endpoint_says_how_to_write_it(text: str) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        AdbEndpoint.parse(text)
    assert info.value.kind is Fault.BAD_ENDPOINT and info.value.fix


def test_endpoint_from_environment_in_adbs_order() -> None:
    assert AdbEndpoint.from_env({}) == AdbEndpoint("127.0.0.1", DEFAULT_PORT)
    assert AdbEndpoint.from_env({"ANDROID_ADB_SERVER_PORT": "5040"}) == AdbEndpoint("127.0.0.1", 5040)
    assert AdbEndpoint.from_env({"ANDROID_ADB_SERVER_ADDRESS": "lab", "ANDROID_ADB_SERVER_PORT": "5041"}) == (
        AdbEndpoint("lab", 5041)
    )
    assert AdbEndpoint.from_env({"ANDROID_ADB_SERVER_HOST": "lab2"}) == AdbEndpoint("lab2", DEFAULT_PORT)
    both = {"ADB_SERVER_SOCKET": "tcp:other:6001", "ANDROID_ADB_SERVER_PORT": "5040"}
    assert AdbEndpoint.from_env(both) == AdbEndpoint("other", 6001)
    with pytest.raises(AndroidDeviceError, match="not a port number"):
        AdbEndpoint.from_env({"ANDROID_ADB_SERVER_PORT": "abc"})


def test_client_uses_the_environment_when_no_endpoint_is_given(lab: Lab) -> None:
    client = AndroidClient(timeouts=FAST, environ={"ADB_SERVER_SOCKET": f"tcp:127.0.0.1:{lab.port}"})
    assert client.server_version() == 41


# ---- server --------------------------------------------------------------------------------------
def test_no_server_is_reported_and_no_adb_server_is_started() -> None:
    port = _free_port()
    client = _client(port)
    start = time.monotonic()
    with pytest.raises(DeviceError) as info:
        client.list_devices()
    assert time.monotonic() - start < 5
    err = info.value
    assert isinstance(err, AndroidDeviceError) and err.kind is Fault.NO_SERVER
    assert f"127.0.0.1:{port}" in err.what
    assert err.fix is not None and "adb start-server" in err.fix
    # adbutils would have spawned its bundled adb on this port; we must not have.
    with socket.socket() as s:
        s.settimeout(0.5)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_server_version_and_listing(lab: Lab) -> None:
    client = _client(lab.port)
    assert client.server_version() == 41
    entries = client.list_devices()
    assert [(e.serial, e.state) for e in entries] == [
        (SME2_SERIAL, "device"),
        (SME1_SERIAL, "device"),
        ("emulator-5554", "device"),
    ]
    assert entries[0].tags["model"] == "V2509A"


# ---- choosing a device ---------------------------------------------------------------------------
def test_several_devices_and_no_serial_lists_them(lab: Lab) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        _client(lab.port).select()
    err = info.value
    assert err.kind is Fault.SEVERAL_DEVICES
    assert err.where is not None and SME2_SERIAL in err.where and "emulator-5554" in err.where
    assert err.fix is not None and "ANDROID_SERIAL" in err.fix


def test_serial_from_argument_or_android_serial(lab: Lab) -> None:
    assert _client(lab.port).select(SME1_SERIAL) == SME1_SERIAL
    assert _client(lab.port, ANDROID_SERIAL=SME2_SERIAL).select() == SME2_SERIAL
    # An explicit serial wins over the environment.
    assert _client(lab.port, ANDROID_SERIAL=SME2_SERIAL).select(SME1_SERIAL) == SME1_SERIAL


def test_serial_not_found(lab: Lab) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        _client(lab.port).select("NOPE123")
    assert info.value.kind is Fault.NOT_FOUND
    assert info.value.where is not None and SME2_SERIAL in info.value.where


def test_single_device_is_chosen_without_a_serial(tmp_path: Path) -> None:
    with double_lab(tmp_path, (SME2_PHONE, SME2_SERIAL)) as lab:
        assert _client(lab.port).select() == SME2_SERIAL


def test_no_device(tmp_path: Path) -> None:
    with double_lab(tmp_path) as lab, pytest.raises(AndroidDeviceError) as info:
        _client(lab.port).select()
    assert info.value.kind is Fault.NO_DEVICE
    assert info.value.fix is not None and "USB debugging" in info.value.fix


@pytest.mark.parametrize(
    ("state", "kind", "hint"),
    [
        ("unauthorized", Fault.UNAUTHORIZED, "Allow USB debugging"),
        ("offline", Fault.OFFLINE, "adb kill-server"),
    ],
)
def test_devices_that_are_not_ready(tmp_path: Path, state: str, kind: Fault, hint: str) -> None:
    with double_lab(tmp_path) as lab:
        lab.add(SME2_PHONE, SME2_SERIAL, state=state)
        client = _client(lab.port)
        with pytest.raises(AndroidDeviceError) as info:
            client.select(SME2_SERIAL)
        assert info.value.kind is kind
        assert info.value.fix is not None and hint in info.value.fix
        # The adb server's own refusal (a transport to it) is classified the same way.
        with pytest.raises(AndroidDeviceError) as info2:
            DeviceSession(client, SME2_SERIAL).run(["true"])
        assert info2.value.kind is kind


# ---- network devices and remote labs -------------------------------------------------------------
def test_adb_connect_to_a_network_device(lab: Lab) -> None:
    phone = FakeDevice.from_fixture(SME2_PHONE, "192.168.1.50:5555", lab.base)
    lab.server.add_network_device(phone)
    client = _client(lab.port)
    assert "192.168.1.50:5555" not in [e.serial for e in client.list_devices()]
    assert client.connect("192.168.1.50:5555") == "192.168.1.50:5555"
    assert client.connect("192.168.1.50:5555") == "192.168.1.50:5555"  # "already connected" is fine
    assert client.state_of("192.168.1.50:5555") == "device"
    client.disconnect("192.168.1.50:5555")
    assert client.state_of("192.168.1.50:5555") is None
    with pytest.raises(AndroidDeviceError) as info:
        client.disconnect("192.168.1.50:5555")
    assert info.value.kind is Fault.NOT_FOUND


def test_adb_connect_refused(lab: Lab) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        _client(lab.port).connect("10.0.0.9:5555")
    assert info.value.kind is Fault.CONNECT_FAILED
    assert info.value.detail is not None and "Connection refused" in info.value.detail


def test_a_second_server_is_a_separate_remote_lab(lab: Lab, tmp_path: Path) -> None:
    with AdbDoubleServer() as remote:
        remote.add_device(FakeDevice.from_fixture(EMULATOR, "lab-emulator", tmp_path / "remote"))
        assert [e.serial for e in _client(remote.port).list_devices()] == ["lab-emulator"]
        assert "lab-emulator" not in [e.serial for e in _client(lab.port).list_devices()]


def test_old_servers_use_the_legacy_transport_request(tmp_path: Path) -> None:
    with double_lab(tmp_path, (SME1_ONLY, SME1_SERIAL), version=40) as lab:
        result = DeviceSession(_client(lab.port), SME1_SERIAL).run(["getprop", "ro.soc.model"], check=True)
        assert result.stdout.strip() == "EX-SME1"
        assert f"host:transport:{SME1_SERIAL}" in lab.server.requests
        assert not any(r.startswith("host:tport:") for r in lab.server.requests)


def test_modern_servers_get_tport(lab: Lab) -> None:
    DeviceSession(_client(lab.port), SME2_SERIAL).run(["true"], check=True)
    assert f"host:tport:serial:{SME2_SERIAL}" in lab.server.requests


def test_the_adbutils_layer_itself_never_spawns_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # Below our own probe: adbutils' connection would run `adb start-server` (its bundled adb) here.
    spawned: list[object] = []
    monkeypatch.setattr(adbutils._adb.subprocess, "run", lambda *a, **k: spawned.append(a))
    port = _free_port()
    client = _client(port)
    with pytest.raises(adbutils.AdbError):
        client.adb.server_version()
    assert spawned == []
    # Control: plain adbutils does try to start a server.
    with pytest.raises(adbutils.AdbError):
        adbutils.AdbClient("127.0.0.1", port).server_version()
    assert spawned != []
    err = client.translate(AdbConnectionError("connect to adb server failed: x"), phase="t")
    assert err.kind is Fault.NO_SERVER
