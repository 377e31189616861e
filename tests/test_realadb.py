"""The Android path through the REAL adb server (Debian's adb 29.0.6 here): sme2tui → adbutils → `adb` (a
fresh server on a free port, per test) → `adb connect` → adbd doubles that speak the device transport
protocol (tests/adb_double/adbd.py), backed by the same fake devices and faults as the host-protocol double.

What the server decides here is real: device states (device/unauthorized/offline), shell v2 from the
device's features, stream and transport teardown when a device drops, reconnection when it comes back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sme2tui.android import AndroidClient
from sme2tui.etdump import read_etdump
from sme2tui.exit_codes import ExitCode
from tests.adb_double.device import SME2_PHONE
from tests.adb_double.real_server import RealAdbLab, real_adb_lab
from tests.adb_double.realadb_pipeline import REALADB, auto, build_host_runner, manifest_of, phone_config
from tests.conftest import REPO, run_cli

pytestmark = REALADB


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_host_runner(tmp_path_factory.mktemp("realadb-runners"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RealAdbLab]:
    with real_adb_lab(tmp_path) as lab:
        yield lab


def test_full_pipeline_through_the_real_server(runner: Path, lab: RealAdbLab, tmp_path: Path,
                                               session_root: Path) -> None:
    phone = lab.add(SME2_PHONE)
    result, out = auto(phone_config(runner, lab, phone.serial), tmp_path, session_root)
    assert result.returncode == 0, result.stderr
    assert f"✓ adb: ADB server at {lab.endpoint}; devices: {phone.serial} (device)" in result.stderr  # the doctor
    manifest = manifest_of(out)
    device = manifest["device"]
    assert device["serial"] == phone.serial and device["sme"] == "sme2" and device["abi"] == "arm64-v8a"
    for cell_id, cell in manifest["cells"].items():
        assert cell["status"] == "done" and cell["device"] == phone.serial
        for r in (0, 1):
            assert read_etdump(Path(out["run_dir"]) / "cells" / cell_id / f"etdump-r{r}.etdp").iterations
    assert phone.fixed_performance_mode == "false"
    opened = lab.adbd(phone).opened
    assert any(s.startswith("shell,v2:") for s in opened) and "sync:" in opened  # through the server
    assert manifest["pushed_bytes"][phone.serial] > 1_000_000

    again, out2 = auto(phone_config(runner, lab, phone.serial), tmp_path, session_root)
    assert again.returncode == 0, again.stderr
    assert manifest_of(out2)["pushed_bytes"] == {phone.serial: 0}


def test_devices_lists_every_state_the_server_reports(lab: RealAdbLab, tmp_path: Path) -> None:
    """`sme2tui devices` through the real server: tags from the phone's CNXN banner, and phones that are not
    ready listed with the reason a person can act on."""
    ready = lab.add(SME2_PHONE)
    locked = lab.add(SME2_PHONE, state="unauthorized")
    hung = lab.add(SME2_PHONE, state="offline")
    result = run_cli("devices", "--json", "--adb-server", lab.endpoint, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    by_serial = {d["serial"]: d for d in json.loads(result.stdout)}
    assert set(by_serial) == {ready.serial, locked.serial, hung.serial}
    assert by_serial[ready.serial]["sme"] == "sme2" and by_serial[ready.serial]["error"] is None
    locked_entry, hung_entry = by_serial[locked.serial], by_serial[hung.serial]
    assert locked_entry["state"] == "unauthorized" and "Allow USB debugging" in locked_entry["error"]
    assert hung_entry["state"] == "offline" and "adb reconnect" in hung_entry["error"]
    tags = {e.serial: e.tags for e in AndroidClient(lab.endpoint).list_devices()}
    assert tags[ready.serial]["model"] == "V2509A" and tags[ready.serial]["product"] == "PD2509"
    assert int(tags[locked.serial]["transport_id"]) > 0


@pytest.mark.parametrize("features", [("shell_v2", "cmd", "stat_v2", "ls_v2"), ("shell_v2", "cmd")])
def test_the_banner_features_decide_stat_v2(features: tuple[str, ...], lab: RealAdbLab, tmp_path: Path) -> None:
    """The real adb client and server pick the sync commands from the phone's CNXN features."""
    phone = lab.add(SME2_PHONE, features=features)
    local = tmp_path / "blob.bin"
    local.write_bytes(bytes(range(256)) * 1000)
    serial = ["-s", phone.serial]
    assert lab.server.run(*serial, "push", str(local), "/data/local/tmp/x/blob.bin").returncode == 0
    assert phone.read("/data/local/tmp/x/blob.bin") == local.read_bytes()
    listing = lab.server.run(*serial, "ls", "/data/local/tmp/x")
    assert "blob.bin" in listing.stdout
    assert lab.server.run(*serial, "pull", "/data/local/tmp/x/blob.bin", str(tmp_path / "back.bin")).returncode == 0
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    used = {ident for ident, _ in phone.sync_log}
    if "stat_v2" in features:
        assert {"STA2", "LIS2"} <= used and not used & {"STAT", "LIST"}, used
    else:
        assert not used & {"STA2", "LST2", "LIS2"} and "LIST" in used, used


def test_a_phone_without_shell_v2_is_refused_with_a_reason(lab: RealAdbLab, tmp_path: Path) -> None:
    phone = lab.add(SME2_PHONE, features=("cmd", "stat_v2"))
    result = run_cli("devices", "--json", "--adb-server", lab.endpoint, cwd=tmp_path, timeout=60)
    (entry,) = json.loads(result.stdout)
    assert entry["serial"] == phone.serial and "does not support ADB shell v2" in entry["error"]
    assert not any(s.startswith("shell,v2:") for s in lab.adbd(phone).opened)


def test_two_phones_in_parallel(runner: Path, lab: RealAdbLab, tmp_path: Path, session_root: Path) -> None:
    first, second = lab.add(SME2_PHONE), lab.add(SME2_PHONE)
    second.write("/data/local/tmp/sme2tui/mine.txt", b"a file sme2tui did not put there")
    config = phone_config(runner, lab, None, serials=[first.serial, second.serial], cleanup=True)
    config["threads"] = [1, 2]
    result, out = auto(config, tmp_path, session_root)
    assert result.returncode == 0, result.stderr
    # cleanup: everything sme2tui put on the phones is gone, and nothing else
    assert not first.exists("/data/local/tmp/sme2tui")
    assert [p.name for p in second.host_path("/data/local/tmp/sme2tui").iterdir()] == ["mine.txt"]
    manifest = manifest_of(out)
    by_device: dict[str, set[int]] = {}
    for cell in manifest["cells"].values():
        assert cell["status"] == "done"
        by_device.setdefault(cell["device"], set()).add(cell["threads"])
    assert by_device == {first.serial: {1}, second.serial: {2}}


@pytest.mark.parametrize(("state", "how"), [("unauthorized", "listed"), ("offline", "listed"),
                                           ("unauthorized", "connect")])
def test_phone_not_ready_stops_before_any_work(state: str, how: str, runner: Path, lab: RealAdbLab, tmp_path: Path,
                                               session_root: Path) -> None:
    """Already listed in that state, or reached through the config's `connect` (adb 29 answers
    "failed to authenticate" there): either way the answer is the state's own error and fix."""
    phone = lab.add(SME2_PHONE, state=state, connect=how == "listed")
    runs = session_root / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    connect = {"connect": [phone.serial]} if how == "connect" else {}
    result, out = auto(phone_config(runner, lab, phone.serial, **connect), tmp_path, session_root)
    assert result.returncode == ExitCode.DEVICE, result.stderr
    assert out["error"]["kind"] == state and out["error"]["fix"]
    assert "Traceback" not in result.stderr
    assert (set(runs.iterdir()) if runs.exists() else set()) == before, "no run folder for a phone that cannot run"


def test_ctrl_c_mid_round_stops_the_runner_on_the_phone(runner: Path, lab: RealAdbLab, tmp_path: Path,
                                                        session_root: Path) -> None:
    phone = lab.add(SME2_PHONE)
    phone.kill_on_hangup = False  # like real adbd: a pty-less command outlives the client that started it
    config = phone_config(runner, lab, phone.serial)
    config["iterations"], config["rounds"] = 5000, 1  # a round far longer than the test
    path = tmp_path / "long.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sme2tui", "--auto", "--config", str(path), "--output-root",
                             str(session_root / "runs")], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, cwd=tmp_path, env=env)
    assert proc.stderr is not None
    try:
        deadline = time.monotonic() + 120
        while not _runner_processes(phone.root):  # the round has started on the phone
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == ExitCode.INTERRUPTED, rest
    finally:
        proc.kill()
    assert "--resume" in rest and "Traceback" not in rest
    for _ in range(50):
        if not _runner_processes(phone.root):
            break
        time.sleep(0.1)
    assert not _runner_processes(phone.root), "the runner kept running on the phone after Ctrl-C"
    run_dir = max((session_root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"


def _runner_processes(device_root: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-f", str(device_root / "data/local/tmp/sme2tui/runners")], capture_output=True,
                         text=True, check=False)
    return out.stdout.split()


KERNELS = {
    "on": ["kai_kernel_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa",
           "xnn_pf32_gemm_minmax_ukernel_32x32c2__neonsme2"],
    "off": ["xnn_f32_gemm_minmax_ukernel_6x8__aarch64_neonfma_lane_ld128",
            "xnn_f32_igemm_minmax_ukernel_4x8__aarch64_neonfma_lane_ld128"],
}


def kernel_log_runner(real: Path, side: str, where: Path) -> Path:
    """A stand-in for a kernel-log Android runner (XNN_LOG_LEVEL=4): XNNPACK names the micro-kernels it
    picks in Android's log — liblog, under the runner's own pid — and then the real runner runs in this
    same process (exec keeps the pid). On the device double, liblog is `$ANDROID_LOGD_DOUBLE`."""
    where.mkdir(parents=True)
    lines = "".join(
        f"printf '%s\\t%s\\t%s\\t%s\\tI\\tXNNPACK\\t%s\\n' \"$(date +%m-%d)\" \"$(date +%H:%M:%S.%3N)\" $$ $$ "
        f"'selected micro-kernel {k}' >> \"$ANDROID_LOGD_DOUBLE\"\n" for k in KERNELS[side])
    script = where / "sme2_runner"
    script.write_text(f"#!/bin/sh\n{lines}exec {real} \"$@\"\n")
    script.chmod(0o755)
    return script


def test_kernel_log_from_the_phone_feeds_the_sme2_evidence(runner: Path, lab: RealAdbLab, tmp_path: Path,
                                                           session_root: Path) -> None:
    phone = lab.add(SME2_PHONE)
    phone.log(1, "I", "ActivityManager", "another process: xnn_noise_ukernel__sme2 must not be collected")
    config = phone_config(runner, lab, phone.serial)
    config["variants"] = [
        {"name": "sme2-off", "delegate": "xnnpack", "sme2": "off",
         "runner": str(kernel_log_runner(runner, "off", tmp_path / "off"))},
        {"name": "sme2-on", "delegate": "xnnpack", "sme2": "on",
         "runner": str(kernel_log_runner(runner, "on", tmp_path / "on"))},
    ]
    config["compare"] = {"baseline": "sme2-off", "candidate": "sme2-on"}
    result, out = auto(config, tmp_path, session_root)
    assert "Traceback" not in result.stderr
    manifest = manifest_of(out)
    assert all(c["status"] == "done" for c in manifest["cells"].values()), result.stderr
    for cell_id, cell in manifest["cells"].items():
        log = (Path(out["run_dir"]) / "cells" / cell_id / "kernel.log").read_text()
        side = "on" if cell["variant"] == "sme2-on" else "off"
        rounds = json.loads((Path(out["run_dir"]) / "cells" / cell_id / "timing.json").read_text())["rounds"]
        assert [r["round"] for r in rounds] == [0, 1] and all(r["pid"] > 1 for r in rounds)
        for r in rounds:  # each round's log is that round's process, found by its pid
            assert f"--pid={r['pid']}" in log
        assert all(k in log for k in KERNELS[side]) and "noise" not in log
        assert log.count("XNNPACK") == 2 * len(KERNELS[side])
    assert "SME2 evidence [sme2-on]: variant `sme2-on`: SME2 kernels seen (XNNPACK kernel log" in result.stderr
    assert "SME2 evidence [sme2-off]: variant `sme2-off`: SME2 kernels not seen (XNNPACK kernel log" in result.stderr
    assert any(s.startswith("shell,v2:") and "logcat -d -v threadtime --pid=" in s for s in lab.adbd(phone).opened)
