"""DeviceSession against the ADB double: files in and out, commands, faults, and device facts."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
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
from tests.adb_double import SME2_PHONE, FakeDevice, ShellFault
from tests.adb_double.fixtures import SME2_SERIAL, STANDARD_DEVICES, Lab, double_lab

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FAST = Timeouts(connect=1.0, query=5.0, transfer=5.0, run=5.0)
REMOTE = f"{TOOL_DIR}/models/blob.bin"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with double_lab(tmp_path, *STANDARD_DEVICES) as lab:
        yield lab


@pytest.fixture
def phone(lab: Lab) -> FakeDevice:
    return lab.server.devices[0]


@pytest.fixture
def session(lab: Lab) -> DeviceSession:
    return DeviceSession(AndroidClient(f"127.0.0.1:{lab.port}", timeouts=FAST), SME2_SERIAL)


def _blob(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(bytes((i * seed) % 251 for i in range(size)))
    return path


# ---- push ----------------------------------------------------------------------------------------
def test_push_if_changed_pushes_once_then_skips(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    local = _blob(tmp_path / "blob.bin", 300_000)
    assert session.push_if_changed(local, REMOTE) == 300_000
    assert phone.read(REMOTE) == local.read_bytes()
    received = phone.bytes_received
    assert session.push_if_changed(local, REMOTE) == 0
    assert phone.bytes_received == received  # nothing re-sent
    assert not phone.exists(REMOTE + ".partial")
    _blob(local, 300_000, seed=7)
    assert session.push_if_changed(local, REMOTE) == 300_000
    assert phone.read(REMOTE) == local.read_bytes()


def test_a_skipped_push_still_applies_the_mode(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    local = _blob(tmp_path / "runner", 1000)
    session.push_if_changed(local, f"{TOOL_DIR}/bin/runner", mode=0o644)
    assert phone.host_path(f"{TOOL_DIR}/bin/runner").stat().st_mode & 0o777 == 0o644
    assert session.push_if_changed(local, f"{TOOL_DIR}/bin/runner", mode=0o755) == 0
    assert phone.host_path(f"{TOOL_DIR}/bin/runner").stat().st_mode & 0o777 == 0o755


def test_push_cut_midway_keeps_the_old_file_and_can_be_retried(
    session: DeviceSession, phone: FakeDevice, tmp_path: Path
) -> None:
    old = _blob(tmp_path / "old.bin", 50_000, seed=3)
    session.push_if_changed(old, REMOTE)
    new = _blob(tmp_path / "new.bin", 400_000, seed=5)
    phone.drop_push_after(150_000)
    with pytest.raises(AndroidDeviceError) as info:
        session.push_if_changed(new, REMOTE)
    assert info.value.kind is Fault.CONNECTION_LOST and info.value.phase == "push"
    assert phone.read(REMOTE) == old.read_bytes()  # never a half-new file under the real name
    assert session.push_if_changed(new, REMOTE) == 400_000
    assert phone.read(REMOTE) == new.read_bytes()


def test_push_when_the_device_vanishes(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    phone.drop_push_after(10_000, vanish=True)
    with pytest.raises(AndroidDeviceError) as info:
        session.push_if_changed(_blob(tmp_path / "b", 100_000), REMOTE)
    assert info.value.kind is Fault.GONE
    assert info.value.fix is not None and "reconnect" in info.value.fix


def test_storage_full(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    phone.set_free_bytes(10_000)
    with pytest.raises(AndroidDeviceError) as info:
        session.push_if_changed(_blob(tmp_path / "b", 100_000), REMOTE)
    err = info.value
    assert err.kind is Fault.STORAGE_FULL and err.phase == "push"
    assert err.detail is not None and "No space left on device" in err.detail
    assert err.fix is not None and "df" in err.fix
    assert not phone.exists(REMOTE) and not phone.exists(REMOTE + ".partial")


def test_push_refuses_relative_paths(session: DeviceSession, tmp_path: Path) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        session.push_if_changed(_blob(tmp_path / "b", 10), "relative/b")
    assert info.value.kind is Fault.UNSAFE


# ---- pull ----------------------------------------------------------------------------------------
def test_pull(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    phone.write(f"{TOOL_DIR}/out/result.etdump", b"\x01\x02" * 100_000)
    local = tmp_path / "cells" / "a" / "result.etdump"
    assert session.pull(f"{TOOL_DIR}/out/result.etdump", local) == 200_000
    assert local.read_bytes() == b"\x01\x02" * 100_000
    assert sorted(p.name for p in local.parent.iterdir()) == ["result.etdump"]


def test_pull_cut_midway_leaves_no_partial_file(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    phone.write(f"{TOOL_DIR}/out/result.etdump", b"z" * 300_000)
    local = tmp_path / "pulled" / "result.etdump"
    local.parent.mkdir()
    local.write_bytes(b"previous complete result")
    phone.drop_pull_after(100_000)
    with pytest.raises(AndroidDeviceError) as info:
        session.pull(f"{TOOL_DIR}/out/result.etdump", local)
    assert info.value.kind is Fault.CONNECTION_LOST and info.value.phase == "pull"
    assert local.read_bytes() == b"previous complete result"
    assert [p.name for p in local.parent.iterdir()] == ["result.etdump"]


def test_pull_of_a_missing_file(session: DeviceSession, tmp_path: Path) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        session.pull(f"{TOOL_DIR}/out/missing.etdump", tmp_path / "pulled" / "x")
    assert info.value.kind is Fault.REMOTE_MISSING
    assert list((tmp_path / "pulled").iterdir()) == []


# ---- run -----------------------------------------------------------------------------------------
def test_run_exit_code_streams_env_cwd_and_pinning(session: DeviceSession, phone: FakeDevice) -> None:
    session.ensure_dir(f"{TOOL_DIR}/cell 1")
    result = session.run(
        ["sh", "-c", 'echo "lib=$LD_LIBRARY_PATH"; pwd; echo oops >&2; exit 3'],
        env={"LD_LIBRARY_PATH": f"{TOOL_DIR}/lib"},
        cwd=f"{TOOL_DIR}/cell 1",
        cpu_mask="f0",
    )
    assert result.exit_code == 3 and not result.ok and result.signal is None
    assert result.stdout == f"lib={TOOL_DIR}/lib\n{TOOL_DIR}/cell 1\n"
    assert result.stderr == "oops\n"
    assert result.duration > 0
    assert "taskset f0 sh -c" in phone.shell_log[-1]
    with pytest.raises(AndroidDeviceError) as info:
        result.check()
    assert info.value.kind is Fault.COMMAND_FAILED and info.value.detail is not None and "oops" in info.value.detail


def test_a_mask_naming_cpus_the_device_lacks_fails_on_the_device(session: DeviceSession) -> None:
    result = session.run(["true"], cpu_mask="100")  # CPU 8 on an 8-core phone
    assert result.exit_code == 1 and "Invalid argument" in result.stderr


@pytest.mark.parametrize(("sig", "name", "hint"), [(9, "SIGKILL", "low-memory"), (11, "SIGSEGV", "crash")])
def test_killed_by_signal_is_classified(
    session: DeviceSession, phone: FakeDevice, sig: int, name: str, hint: str
) -> None:
    phone.fail_shell(r"\brunner\b", "signal", signal=sig)
    result = session.run(["sh", "-c", "echo runner; sleep 5"])
    assert result.exit_code == 128 + sig
    assert (result.signal, result.signal_name) == (sig, name)
    with pytest.raises(AndroidDeviceError) as info:
        result.check()
    assert info.value.kind is Fault.KILLED_BY_SIGNAL
    assert info.value.fix is not None and hint in info.value.fix


def test_a_program_that_crashes_for_real_reports_its_signal(session: DeviceSession) -> None:
    result = session.run(["sh", "-c", "kill -SEGV $$"])
    assert result.signal_name == "SIGSEGV"


def test_a_hung_command_times_out_within_its_deadline(session: DeviceSession, phone: FakeDevice) -> None:
    phone.fail_shell("runner", "hang")
    start = time.monotonic()
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["./runner"], timeout=0.5)
    assert 0.4 < time.monotonic() - start < 3
    assert info.value.kind is Fault.TIMEOUT
    # The session is still usable afterwards.
    assert session.run(["echo", "ok"]).stdout == "ok\n"


def test_a_chatty_command_still_hits_the_deadline(session: DeviceSession) -> None:
    start = time.monotonic()
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["sh", "-c", "while :; do echo tick; sleep 0.05; done"], timeout=0.6)
    assert time.monotonic() - start < 3
    assert info.value.kind is Fault.TIMEOUT


def test_connection_dropped_during_a_run(session: DeviceSession, phone: FakeDevice) -> None:
    phone.fail_shell("runner", "drop", times=1)
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["./runner", "--x"])
    assert info.value.kind is Fault.CONNECTION_LOST and info.value.phase == "run"
    assert session.run(["echo", "again"]).ok


def test_device_unplugged_during_a_run(session: DeviceSession, phone: FakeDevice) -> None:
    phone.fail_shell("runner", "vanish")
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["./runner"])
    assert info.value.kind is Fault.GONE
    with pytest.raises(AndroidDeviceError) as again:
        session.run(["true"])
    assert again.value.kind is Fault.GONE


def test_device_removed_between_commands(lab: Lab, session: DeviceSession) -> None:
    lab.server.remove_device(SME2_SERIAL)
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["true"])
    assert info.value.kind is Fault.GONE


def test_authorization_revoked_between_commands(session: DeviceSession, phone: FakeDevice) -> None:
    phone.state = "unauthorized"
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["true"])
    assert info.value.kind is Fault.UNAUTHORIZED


def test_server_gone_between_commands(lab: Lab, session: DeviceSession) -> None:
    lab.server.stop()
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["true"])
    assert info.value.kind is Fault.NO_SERVER


# ---- housekeeping --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/data/local/tmp",
        TOOL_DIR,
        TOOL_DIR + "/",
        f"{TOOL_DIR}/../other",
        f"{TOOL_DIR}/a/../../x",
        f"{TOOL_DIR}-evil/x",
        "/sdcard/DCIM",
        "relative/x",
        f"{TOOL_DIR}/a\n/b",
    ],
)
def test_remove_tree_refuses_anything_outside_the_tool_dir(
    session: DeviceSession, phone: FakeDevice, path: str
) -> None:
    before = len(phone.shell_log)
    with pytest.raises(AndroidDeviceError) as info:
        session.remove_tree(path)
    assert info.value.kind is Fault.UNSAFE
    assert len(phone.shell_log) == before  # nothing was sent


def test_remove_tree_inside_the_tool_dir(session: DeviceSession, phone: FakeDevice) -> None:
    phone.write(f"{TOOL_DIR}/runs/r1/a/b.txt", b"x")
    phone.write(f"{TOOL_DIR}/keep.txt", b"y")
    session.remove_tree(f"{TOOL_DIR}/runs/r1")
    assert not phone.exists(f"{TOOL_DIR}/runs/r1")
    assert phone.exists(f"{TOOL_DIR}/keep.txt")


def test_thermal_big_cores_and_performance_mode(lab: Lab, session: DeviceSession, phone: FakeDevice) -> None:
    assert session.thermal_status() == 0
    phone.set_thermal_status(3)
    assert session.thermal_status() == 3
    assert session.big_cores() == (4, 5, 6, 7)
    assert session.big_cores_mask() == "f0"
    assert session.big_cores_mask([7]) == "80"
    pinned = DeviceSession(session.client, SME2_SERIAL, big_cores=[6, 7])
    assert pinned.big_cores_mask() == "c0"
    with session.fixed_performance_mode() as enabled:
        assert enabled and phone.fixed_performance_mode == "true"
    assert phone.fixed_performance_mode == "false"
    emulator = DeviceSession(session.client, "emulator-5554")
    with pytest.raises(AndroidDeviceError) as info:
        emulator.big_cores()  # no cpufreq on the emulator
    assert info.value.kind is Fault.UNSUPPORTED


# ---- a real program, pushed, run, and its output pulled ------------------------------------------
RUNNER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    const char *out = NULL; int iters = 1; int code = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--etdump_path") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--num_executions") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--exit") && i + 1 < argc) code = atoi(argv[++i]);
    }
    if (!out) { fprintf(stderr, "no --etdump_path\n"); return 2; }
    FILE *f = fopen(out, "wb");
    if (!f) { perror(out); return 1; }
    const char *lib = getenv("LD_LIBRARY_PATH");
    for (int i = 0; i < iters; i++) fprintf(f, "iteration %d lib=%s\n", i, lib ? lib : "(none)");
    fclose(f);
    printf("ran %d iterations\n", iters);
    return code;
}
"""


@pytest.fixture(scope="module")
def native_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a native stand-in runner")
    work = tmp_path_factory.mktemp("runner")
    (work / "runner.c").write_text(RUNNER_C)
    subprocess.run([cc, "-O1", "-o", str(work / "runner"), str(work / "runner.c")], check=True, timeout=60)
    return work / "runner"


def test_a_pushed_native_program_runs_and_its_output_comes_back(
    session: DeviceSession, phone: FakeDevice, native_runner: Path, tmp_path: Path
) -> None:
    cell = f"{TOOL_DIR}/runs/r1/cell 1"
    session.ensure_dir(cell)
    assert session.push_if_changed(native_runner, f"{TOOL_DIR}/bin/runner", mode=0o755) > 0
    assert session.push_if_changed(native_runner, f"{TOOL_DIR}/bin/runner", mode=0o755) == 0
    result = session.run(
        [f"{TOOL_DIR}/bin/runner", "--etdump_path", f"{cell}/out.etdump", "--num_executions", "3"],
        env={"LD_LIBRARY_PATH": f"{TOOL_DIR}/lib"},
        cwd=cell,
        cpu_mask=session.big_cores_mask(),
        check=True,
    )
    assert result.stdout == "ran 3 iterations\n"
    local = tmp_path / "out.etdump"
    session.pull(f"{cell}/out.etdump", local)
    # Paths the program wrote are host paths in the double (it maps device paths); strip the mapping.
    text = local.read_text().replace(str(phone.root), "")
    assert text.splitlines() == [f"iteration {i} lib={TOOL_DIR}/lib" for i in range(3)]
    assert (
        hashlib.sha256(local.read_bytes()).hexdigest() == hashlib.sha256(phone.read(f"{cell}/out.etdump")).hexdigest()
    )
    failing = session.run([f"{TOOL_DIR}/bin/runner", "--etdump_path", f"{cell}/x", "--exit", "7"])
    assert failing.exit_code == 7


# ---- facts and the devices report ----------------------------------------------------------------
def test_facts_collected_through_the_double(session: DeviceSession) -> None:
    facts = session.facts()
    assert facts.sme == "sme2" and facts.model == "vivo X300" and facts.soc == "Mediatek MT6993"
    assert facts.big_cores == (4, 5, 6, 7) and facts.thermal_status == 0
    assert facts.cores[0].governor == "schedutil"


def test_devices_report_covers_every_device_even_unready_ones(lab: Lab) -> None:
    lab.add(SME2_PHONE, "LOCKED0001", state="unauthorized")
    client = AndroidClient(f"127.0.0.1:{lab.port}", timeouts=FAST)
    report = list_devices_report(client)
    by_serial = {f.serial: f for f in report}
    assert [by_serial[s].sme for s in (SME2_SERIAL, "SME1REF0001", "emulator-5554")] == [
        "sme2",
        "sme-only",
        "none",
    ]
    locked = by_serial["LOCKED0001"]
    assert locked.state == "unauthorized" and locked.error is not None and "Allow USB debugging" in locked.error
    json.dumps([f.to_dict() for f in report])  # --json must serialise
    text = render_devices_text(report)
    assert "vivo X300 · Mediatek MT6993 · Android 16 (SDK 36)" in text
    assert "0-3 C1-Pro 2.70 GHz · 4-6 C1-Premium 3.50 GHz · 7 C1-Ultra 4.21 GHz; big cores 4-7 (mask f0)" in text
    assert "SME: sme-only" in text and "EMULATOR" in text
    assert "LOCKED0001  unauthorized" in text
    assert render_devices_text([]).startswith("no devices")


def test_a_hung_program_is_killed_on_the_device_after_the_timeout(lab: Lab, phone: FakeDevice) -> None:
    phone.kill_on_hangup = False  # like adbd with a pty-less shell: hanging up does not stop the program
    session = DeviceSession(AndroidClient(f"127.0.0.1:{lab.port}", timeouts=FAST), SME2_SERIAL)
    # Control: a raw command line that times out keeps running on the device.
    with pytest.raises(AndroidDeviceError):
        session.run_line("sleep 30", timeout=0.3)
    assert lab.server.running_commands == 1
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["sleep", "31"], timeout=0.3)
    assert info.value.kind is Fault.TIMEOUT
    assert info.value.detail is not None and "has been killed" in info.value.detail
    deadline = time.monotonic() + 3
    while lab.server.running_commands > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lab.server.running_commands == 1  # only the control is left
    assert list(phone.host_path(f"{TOOL_DIR}/.pids").iterdir()) == []


def test_pid_files_are_removed_after_normal_runs(session: DeviceSession, phone: FakeDevice) -> None:
    session.run(["true"], check=True)
    assert session.run(["sh", "-c", "exit 4"]).exit_code == 4
    assert list(phone.host_path(f"{TOOL_DIR}/.pids").iterdir()) == []


def test_device_going_offline_mid_run_is_reported_as_offline(session: DeviceSession, phone: FakeDevice) -> None:
    phone.fail_shell("runner", "drop", times=1)
    original = phone.take_shell_fault

    def drop_and_go_offline(command: str) -> ShellFault | None:
        fault = original(command)
        if fault is not None:
            phone.state = "offline"
        return fault

    phone.take_shell_fault = drop_and_go_offline  # type: ignore[method-assign]
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["./runner"])
    assert info.value.kind is Fault.OFFLINE and info.value.phase == "run"
    assert "changed during run" in info.value.what


def test_pulled_files_get_ordinary_permissions(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    phone.write(f"{TOOL_DIR}/out/r.txt", b"r")
    session.pull(f"{TOOL_DIR}/out/r.txt", tmp_path / "r.txt")
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o644


def test_importing_facts_does_not_import_adbutils() -> None:
    code = "import sys, sme2tui.android.facts, sme2tui.android.errors; assert 'adbutils' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_stderr_printed_before_a_cut_is_kept_in_the_error(session: DeviceSession, phone: FakeDevice) -> None:
    phone.fail_shell("corrupt", "vanish", after_output=len("model file is corrupt\n"))
    with pytest.raises(AndroidDeviceError) as info:
        session.run(["sh", "-c", "echo 'model file is corrupt' >&2; sleep 5"])
    assert info.value.kind is Fault.GONE
    assert info.value.detail is not None and "model file is corrupt" in info.value.detail


@pytest.mark.parametrize(
    "tool_dir", ["/", "/data/local/tmp", "/data/local/tmp/", "/sdcard/sme2tui", "rel", "/data/local/tmp/a/../.."]
)
def test_the_tool_dir_must_be_a_folder_below_data_local_tmp(session: DeviceSession, tool_dir: str) -> None:
    with pytest.raises(AndroidDeviceError) as info:
        DeviceSession(session.client, SME2_SERIAL, tool_dir=tool_dir)
    assert info.value.kind is Fault.UNSAFE


def test_a_configured_tool_dir_bounds_removal_and_holds_pid_files(session: DeviceSession, phone: FakeDevice) -> None:
    custom = DeviceSession(session.client, SME2_SERIAL, tool_dir="/data/local/tmp/bench")
    phone.write("/data/local/tmp/bench/r1/x", b"x")
    custom.run(["true"], check=True)
    assert phone.host_path("/data/local/tmp/bench/.pids").is_dir()
    with pytest.raises(AndroidDeviceError):
        custom.remove_tree(f"{TOOL_DIR}/r1")
    custom.remove_tree("/data/local/tmp/bench/r1")
    assert not phone.exists("/data/local/tmp/bench/r1")


def test_push_to_an_awkward_file_name(session: DeviceSession, phone: FakeDevice, tmp_path: Path) -> None:
    remote = f'{TOOL_DIR}/models/it\'s a \\ "model" $(x).pte'
    local = _blob(tmp_path / "m.pte", 5000)
    assert session.push_if_changed(local, remote) == 5000
    assert phone.read(remote) == local.read_bytes()
    assert session.push_if_changed(local, remote) == 0
    assert session.sha256(remote) == hashlib.sha256(local.read_bytes()).hexdigest()
    assert session.sha256(f"{TOOL_DIR}/models/none.pte") is None
