"""The full pipeline with an Android target, against the loopback ADB double: real adbutils over a real
socket, files really pushed and pulled, the host-built runner standing in for the arm64 one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sme2tui.etdump import read_etdump
from sme2tui.exit_codes import ExitCode
from tests.adb_double.fixtures import EMULATOR, EMULATOR_SERIAL, SME2_PHONE, SME2_SERIAL, Lab, double_lab
from tests.conftest import REPO, run_cli, tiny_config

pytestmark = pytest.mark.slow
SECOND_PHONE = "X300SME2B2"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("android-runners")
    result = run_cli("build", "host", "--runners-dir", root)
    assert result.returncode == 0, result.stderr
    return root / "host-native" / "sme2_runner"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    devices = ((SME2_PHONE, SME2_SERIAL), (SME2_PHONE, SECOND_PHONE), (EMULATOR, EMULATOR_SERIAL))
    with double_lab(tmp_path, *devices) as lab:
        yield lab


def fake(lab: Lab, serial: str) -> Any:
    return next(d for d in lab.server.devices if d.serial == serial)


def phone_config(runner: Path, lab: Lab, **target: Any) -> dict[str, Any]:
    return tiny_config(
        name="phone", iterations=4, warmup=1, rounds=2,
        variants=[{"name": "portable", "delegate": "portable", "runner": str(runner)},
                  {"name": "xnnpack", "delegate": "xnnpack", "runner": str(runner)}],
        target={"kind": "android", "adb_server": f"127.0.0.1:{lab.port}", "serial": SME2_SERIAL,
                "allow_foreign_runner": True, "fixed_performance_mode": True, **target},
    )


def auto(config: dict[str, Any], tmp_path: Path, session_root: Path, *extra: str) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / "phone.json"
    path.write_text(json.dumps(config))
    result = run_cli("--auto", "--json", "--config", path, "--output-root", session_root / "runs", *extra,
                     cwd=tmp_path)
    return result, json.loads(result.stdout) if result.stdout.strip() else {}


def test_full_pipeline_on_a_phone(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    result, out = auto(phone_config(runner, lab), tmp_path, session_root)
    assert result.returncode == 0, result.stderr
    run_dir = Path(out["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    device = manifest["device"]
    assert device["serial"] == SME2_SERIAL and device["sme"] == "sme2" and device["abi"] == "arm64-v8a"
    assert device["big_cores"] and device["thermal_status"] == 0
    for cell_id, cell in manifest["cells"].items():
        assert cell["status"] == "done" and cell["device"] == SME2_SERIAL
        assert cell["thermal"] == [[0, 0], [0, 0]]  # before/after, every round
        for r in (0, 1):
            assert (run_dir / "cells" / cell_id / f"etdump-r{r}.etdp").stat().st_size > 0
    # A host binary on a test double is never an SME2 measurement, whatever the device says.
    assert out["comparison"]["is_sme2"] is False and out["pairs"][0]["speedup"]["verdict"] == "faster"
    assert "allow_foreign_runner is on" in " ".join(manifest["warnings"])
    assert "✓ device SME2 [X300SME2A1]" in result.stderr
    phone = fake(lab, SME2_SERIAL)
    assert phone.fixed_performance_mode == "false"  # switched on for the run, restored after
    commands = "\n".join(phone.shell_log)
    assert "taskset" in commands and "LD_LIBRARY_PATH=" in commands

    # The same config again: everything is already on the phone, nothing is pushed.
    again, out2 = auto(phone_config(runner, lab), tmp_path, session_root)
    assert again.returncode == 0, again.stderr
    manifest2 = json.loads((Path(out2["run_dir"]) / "manifest.json").read_text())
    assert manifest["pushed_bytes"][SME2_SERIAL] > 1_000_000
    assert manifest2["pushed_bytes"] == {SME2_SERIAL: 0}


def test_two_phones_split_the_cells(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    config = phone_config(runner, lab, serial=None, serials=[SME2_SERIAL, SECOND_PHONE])
    config["threads"] = [1, 2]
    result, out = auto(config, tmp_path, session_root)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    by_device: dict[str, set[int]] = {}
    for cell in manifest["cells"].values():
        assert cell["status"] == "done"
        by_device.setdefault(cell["device"], set()).add(cell["threads"])
    assert by_device == {SME2_SERIAL: {1}, SECOND_PHONE: {2}}  # one group per phone, variants kept together
    assert set(manifest["devices"]) == {SME2_SERIAL, SECOND_PHONE}


def test_emulator_is_called_out(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    config = phone_config(runner, lab, serial=EMULATOR_SERIAL)
    config["variants"][1]["sme2"] = "on"
    config["variants"][0]["sme2"] = "off"
    result, out = auto(config, tmp_path, session_root)
    assert "! device SME2 [emulator-5554]" in result.stderr and "is an emulator" in result.stderr
    assert out["comparison"]["is_sme2"] is False


def test_connection_dropped_mid_run_then_resume(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    phone = fake(lab, SME2_SERIAL)
    phone.fail_shell("etdump-r1", "drop", times=1)  # the second round of the first cell loses the connection
    result, out = auto(phone_config(runner, lab), tmp_path, session_root)
    assert result.returncode == ExitCode.RUN, result.stderr
    assert "Traceback" not in result.stderr
    run_dir = Path(out["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    errors = [c["error"] for c in manifest["cells"].values() if c["status"] == "failed"]
    assert errors and errors[0]["kind"] in ("connection-lost", "gone")
    resumed = run_cli("--auto", "--json", "--resume", run_dir, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(c["status"] == "done" for c in manifest["cells"].values())


def test_runner_killed_by_signal_is_classified(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    fake(lab, SME2_SERIAL).fail_shell("--num_executions", "signal", signal=11, times=1)
    result, out = auto(phone_config(runner, lab), tmp_path, session_root)
    assert result.returncode == ExitCode.RUN
    manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    (failed,) = [c for c in manifest["cells"].values() if c["status"] == "failed"]
    assert failed["error"]["kind"] == "KILLED_BY_SIGNAL" and "SIGSEGV" in failed["error"]["what"]


def test_storage_full_is_classified(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    fake(lab, SME2_SERIAL).set_free_bytes(10_000)
    result, out = auto(phone_config(runner, lab), tmp_path, session_root)
    assert result.returncode == ExitCode.RUN
    manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    kinds = {c["error"]["kind"] for c in manifest["cells"].values()}
    assert kinds == {"storage-full"}
    assert "No space left" in json.dumps(manifest["cells"])


def test_unauthorized_device_stops_before_any_work(runner: Path, lab: Lab, tmp_path: Path,
                                                   session_root: Path) -> None:
    lab.add(SME2_PHONE, "LOCKED1", state="unauthorized")
    runs_before = set((session_root / "runs").iterdir()) if (session_root / "runs").exists() else set()
    result, _ = auto(phone_config(runner, lab, serial="LOCKED1"), tmp_path, session_root)
    assert result.returncode == ExitCode.DEVICE
    assert "LOCKED1 has not authorized this computer" in result.stderr and "Allow USB debugging" in result.stderr
    assert "Traceback" not in result.stderr
    runs_after = set((session_root / "runs").iterdir()) if (session_root / "runs").exists() else set()
    assert runs_after == runs_before, "no run folder for a device that cannot run anything"


def test_hostile_runner_name_never_executes(runner: Path, lab: Lab, tmp_path: Path, session_root: Path) -> None:
    """A runner file name full of shell syntax is pushed and run as one quoted word, never as a command."""
    hostile_dir = tmp_path / "bin"
    hostile_dir.mkdir()
    hostile = hostile_dir / "sme2_runner'; touch CANARY; echo $(touch CANARY2)`touch CANARY3`"
    hostile.write_bytes(runner.read_bytes())
    hostile.chmod(0o755)
    config = phone_config(runner, lab)
    for variant in config["variants"]:
        variant["runner"] = str(hostile)
    result, _ = auto(config, tmp_path, session_root)
    assert result.returncode == 0, result.stderr
    phone = fake(lab, SME2_SERIAL)
    assert not list(phone.root.rglob("CANARY*")), "hostile text was executed on the device"
    assert any("CANARY" in c for c in phone.shell_log)  # it did reach the device, as data


@pytest.mark.parametrize("lie", ['{"measured_ns": "fast"}', '{"measured_ns": [1]}', "9" * 5000],
                         ids=["wrong-type", "too-few", "5000-digit-number"])
def test_a_runner_that_lies_in_its_timing_file_fails_its_cell(lie: str, runner: Path, lab: Lab, tmp_path: Path,
                                                              session_root: Path) -> None:
    """The real runner runs; then its timing file is replaced by a lie. The cell fails with what is wrong."""
    liar = tmp_path / "liar" / "sme2_runner"
    liar.parent.mkdir()
    liar.write_text(f"#!/bin/sh\n{runner} \"$@\"; rc=$?\nfor a; do case $a in --timing_json=*) "
                    f"printf '%s' '{lie}' > \"${{a#--timing_json=}}\";; esac; done\nexit $rc\n")
    liar.chmod(0o755)
    config = phone_config(runner, lab)
    config["variants"][1]["runner"] = str(liar)
    result, out = auto(config, tmp_path, session_root)
    assert result.returncode == ExitCode.RUN and "Traceback" not in result.stderr, result.stderr
    cells = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())["cells"]
    (failed,) = [c for c in cells.values() if c["status"] == "failed"]
    assert failed["error"]["kind"] == "RUNNER_OUTPUT" and failed["error"]["fix"]
    assert sum(c["status"] == "done" for c in cells.values()) == 1


FAULTS = {
    "dropped mid-push": (lambda d: d.drop_push_after(50_000), {"connection-lost", "gone"}),
    "dropped mid-pull": (lambda d: d.drop_pull_after(100), {"connection-lost", "gone"}),
    "device gone mid-run": (lambda d: d.fail_shell("--num_executions", "vanish", times=1), {"gone", "connection-lost"}),
    "hung command": (lambda d: d.fail_shell("--num_executions", "hang", times=1), {"timeout"}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_classified_and_resume_completes(fault: str, runner: Path, lab: Lab, tmp_path: Path,
                                                  session_root: Path) -> None:
    inject, kinds = FAULTS[fault]
    phone = fake(lab, SME2_SERIAL)
    inject(phone)
    result, out = auto(phone_config(runner, lab, timeout_s=8), tmp_path, session_root)
    assert result.returncode in (ExitCode.RUN, ExitCode.DEVICE), result.stderr
    assert "Traceback" not in result.stderr
    run_dir = Path(out["run_dir"]) if out.get("run_dir") else max((session_root / "runs").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    errors = [c["error"] for c in manifest["cells"].values() if c["status"] == "failed"]
    assert errors and {e["kind"] for e in errors} <= kinds, errors
    assert all(e.get("what") and e.get("fix") is not None for e in errors)
    if fault == "device gone mid-run":
        phone.replug()  # the cable goes back in
    resumed = run_cli("--auto", "--json", "--resume", run_dir, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(c["status"] == "done" for c in manifest["cells"].values())
    for cell_id in manifest["cells"]:  # nothing half-pulled was kept as if complete
        for etdump in (run_dir / "cells" / cell_id).glob("etdump-r*.etdp"):
            assert read_etdump(etdump).iterations


def test_remote_lab_server_is_a_target_like_any_other(runner: Path, lab: Lab, tmp_path: Path,
                                                      session_root: Path) -> None:
    with double_lab(tmp_path / "remote", (SME2_PHONE, "LAB-PHONE-7")) as remote:
        config = phone_config(runner, lab, serial=None,
                              serials=[SME2_SERIAL, f"LAB-PHONE-7@127.0.0.1:{remote.port}"])
        config["threads"] = [1, 2]
        result, out = auto(config, tmp_path, session_root)
        assert result.returncode == 0, result.stderr
        manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
        assert {c["device"] for c in manifest["cells"].values()} == {SME2_SERIAL,
                                                                     f"LAB-PHONE-7@127.0.0.1:{remote.port}"}


def test_ctrl_c_mid_round_stops_the_runner_on_the_device(runner: Path, lab: Lab, tmp_path: Path,
                                                         session_root: Path) -> None:
    config = phone_config(runner, lab)
    config["iterations"], config["rounds"] = 5000, 1  # a round far longer than the test
    path = tmp_path / "long.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sme2tui", "--auto", "--config", str(path), "--output-root",
                             str(session_root / "runs")], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, cwd=tmp_path, env=env)
    assert proc.stderr is not None
    phone = fake(lab, SME2_SERIAL)
    phone.kill_on_hangup = False  # like real adbd: a command outlives the client that started it
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "pinned to CPU mask" in line:
            break
        assert time.monotonic() < deadline
    while not _runner_processes(phone.root):  # the round has started on the device
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == ExitCode.INTERRUPTED, rest
    assert "--resume" in rest and "Traceback" not in rest
    for _ in range(50):
        if not _runner_processes(phone.root):
            break
        time.sleep(0.1)
    assert not _runner_processes(phone.root), "the runner kept running on the device after Ctrl-C"
    run_dir = max((session_root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"


def _runner_processes(device_root: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-f", str(device_root / "data/local/tmp/sme2tui/runners")], capture_output=True,
                         text=True, check=False)
    return out.stdout.split()


def test_a_round_on_the_phone_says_it_is_alive() -> None:
    """While adb waits for the runner, the cell reports about once a second (the phone says nothing until exit)."""
    import queue

    from sme2tui.events import CellStatus, Event
    from sme2tui.run.android import _heartbeat

    out: queue.Queue[Event | None] = queue.Queue()
    with _heartbeat(out, "c", "round 2/3 on phone", 5, 10, {"device": "phone"}):
        time.sleep(2.3)
    beats = [out.get_nowait() for _ in range(out.qsize())]
    assert len(beats) in (2, 3)
    first = beats[0]
    assert isinstance(first, CellStatus) and first.detail == "round 2/3 on phone: 1 s"
    assert (first.iterations_done, first.iterations_total, first.extra) == (5, 10, {"device": "phone"})
    time.sleep(1.2)
    assert out.empty()  # stopped with the block
