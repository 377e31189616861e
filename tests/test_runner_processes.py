"""Runner processes never outlive their round, on the emulated target as on the host: QEMU runs in its own
session and its whole group is killed on a timeout, Ctrl-C, or when it exits leaving a child behind (which
would hold the log pipe open). And the arm64 runner build holds the runner build folder's lock, like the host
build, so two builds never write one CMake folder at once."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from sme2tui.events import CellStatus
from sme2tui.run.emulated import run_qemu
from sme2tui.run.lock import FolderBusy, FolderLock

# Stands in for qemu-aarch64: writes a line of "log" to the -D file, leaves a child (a guest helper) running that
# inherits the log pipe, then either exits or keeps running.
FAKE_QEMU = """#!/bin/sh
log=/dev/null
while [ $# -gt 0 ]; do
  case "$1" in -D) log="$2"; shift 2;; -d) shift 2;; *) shift;; esac
done
echo "IN: kai_run_fake" >> "$log"
sleep {marker} >> "$log" &
{rest}
"""


def _fake_qemu(tmp_path: Path, rest: str) -> tuple[Path, str]:
    marker = f"{3000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    script = tmp_path / "qemu-aarch64"
    script.write_text(FAKE_QEMU.format(marker=marker, rest=rest))
    script.chmod(0o755)
    return script, marker


def _alive(marker: str) -> bool:
    out = subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())


def _drain(rounds: object) -> tuple[int, float, object]:
    try:
        while True:
            next(rounds)  # type: ignore[call-overload]
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _gone(marker: str) -> bool:
    deadline = time.monotonic() + 5  # SIGKILL is asynchronous: give the kernel a moment to reap
    while _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(marker)


def test_a_qemu_that_exits_leaving_a_child_is_cleaned_up_at_once(tmp_path: Path) -> None:
    qemu, marker = _fake_qemu(tmp_path, "exit 0")
    result: dict[str, tuple[int, float, object]] = {}
    worker = threading.Thread(target=lambda: result.update(done=_drain(
        run_qemu([str(qemu), "runner"], tmp_path, 0, ["-d", "in_asm"], None, 60.0))), daemon=True)
    try:
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), "the round hung: a leftover child kept the log pipe open"
        code, _, stats = result["done"]
        assert code == 0 and stats is not None and stats.lines == 1  # type: ignore[attr-defined]
        assert _gone(marker), "a child of the emulated round outlived it"
    finally:  # without the fix the child would linger for an hour: end it by its unique command line
        subprocess.run(["pkill", "-KILL", "-f", f"^sleep {marker}$"], check=False)


def test_a_timed_out_qemu_loses_its_whole_group(tmp_path: Path) -> None:
    qemu, marker = _fake_qemu(tmp_path, "sleep 600")
    code, seconds, _ = _drain(run_qemu([str(qemu), "runner"], tmp_path, 0, ["-d", "in_asm"], None, 1.0))
    assert code == -9 and seconds == 1.0
    assert _gone(marker)


def test_ctrl_c_during_an_emulated_round_kills_its_group(tmp_path: Path) -> None:
    qemu, marker = _fake_qemu(tmp_path, "sleep 600")

    def interrupt(_elapsed: float) -> CellStatus:
        assert _alive(marker)  # the round really runs its child before the "Ctrl-C"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _drain(run_qemu([str(qemu), "runner"], tmp_path, 0, None, None, 60.0, interrupt))
    assert _gone(marker)


def test_a_cancelled_emulated_round_kills_its_group(tmp_path: Path) -> None:
    from sme2tui.errors import Interrupted

    qemu, marker = _fake_qemu(tmp_path, "sleep 600")
    cancel = threading.Event()
    rounds = run_qemu([str(qemu), "runner"], tmp_path, 0, None, cancel, 60.0,
                      lambda s: CellStatus("c", "running", f"{s:.0f} s"))
    next(rounds)  # one heartbeat: the round is running
    cancel.set()
    with pytest.raises(Interrupted):
        _drain(rounds)
    assert _gone(marker)


def test_the_arm64_build_waits_for_the_build_folders_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sme2tui.runners import location
    from sme2tui.runners.arm64 import arm64_build_dir, build_arm64_runner

    monkeypatch.setattr(location, "BUILD_WAIT_S", 0.3)
    build_dir = arm64_build_dir(tmp_path)
    build_dir.mkdir(parents=True)
    held = FolderLock.acquire(build_dir, purpose="build", what="runner build folder")  # another build is running
    try:
        events = build_arm64_runner(build_dir)
        next(events)  # StepStarted
        with pytest.raises(FolderBusy) as busy:
            next(events)
        assert "runner build folder" in busy.value.what and "wait for the other build" in (busy.value.fix or "")
        assert not (build_dir / "CMakeCache.txt").exists()
    finally:
        held.release()
