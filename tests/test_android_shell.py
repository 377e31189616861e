"""Command lines for the device: every user-supplied word arrives as exactly one argument, inert."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from sme2tui.android import AndroidClient, AndroidDeviceError, DeviceSession, Fault, Timeouts
from sme2tui.android.shell import MAX_COMMAND_BYTES, command_line, join, kill_line, quote
from tests.adb_double import SME2_PHONE
from tests.adb_double.fixtures import SME2_SERIAL, Lab, double_lab

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HOSTILE = [
    "plain",
    "with space",
    "it's",
    "'",
    "''",
    "a;b",
    "$(touch CANARY)",
    "`touch CANARY`",
    "${HOME}",
    "$HOME",
    "line1\nline2",
    "*",
    "?.pte",
    "[ab]",
    "~",
    "-n",
    "a=b",
    "back\\slash",
    '"dq"',
    "&& true",
    "|| true",
    "> out",
    "#comment",
    "",
    "tab\there",
    "ünïcödé模型",
    "{a,b}",
    "!x",
]


def _argv_back(line: str) -> list[str]:
    """What a POSIX shell makes of `line` as the arguments of printf (NUL-separated)."""
    out = subprocess.run(["/bin/sh", "-c", f"printf '%s\\0' {line}"], capture_output=True, timeout=10, check=True)
    return out.stdout.decode().split("\0")[:-1]


@pytest.mark.parametrize("word", HOSTILE)
def test_each_word_round_trips_through_a_posix_shell(word: str) -> None:
    assert _argv_back(quote(word)) == [word]


def test_join_keeps_word_boundaries() -> None:
    assert _argv_back(join(HOSTILE)) == HOSTILE


def test_plain_words_stay_readable_and_assignments_do_not() -> None:
    assert join(["./runner", "--threads", "4", "/data/local/tmp/x.pte"]) == "./runner --threads 4 /data/local/tmp/x.pte"
    assert quote("A=b") == "'A=b'"  # a bare first word A=b would be an assignment
    assert quote("") == "''"


def test_a_string_argv_is_refused() -> None:
    with pytest.raises(TypeError):
        join("ls -l")


def test_nul_cannot_be_carried() -> None:
    with pytest.raises(AndroidDeviceError) as info:
        quote("a\x00b")
    assert info.value.kind is Fault.UNSAFE


def test_command_line_parts() -> None:
    line = command_line(
        ["./runner", "--model_path", "my model.pte"],
        env={"LD_LIBRARY_PATH": "/data/local/tmp/sme2tui/lib"},
        cwd="/data/local/tmp/sme2tui/run 1",
        cpu_mask="0xF0",
    )
    assert line == (
        "cd '/data/local/tmp/sme2tui/run 1' && LD_LIBRARY_PATH=/data/local/tmp/sme2tui/lib "
        "taskset f0 ./runner --model_path 'my model.pte'"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env": {"BAD NAME": "x"}}, "environment variable name"),
        ({"env": {"X;touch y": "x"}}, "environment variable name"),
        ({"cpu_mask": "f0; reboot"}, "CPU mask"),
        ({"cpu_mask": "0"}, "CPU mask"),
    ],
)
def test_command_line_refuses_unsafe_env_names_and_masks(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AndroidDeviceError, match=message):
        command_line(["true"], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("script", "status"), [("exit 5", 5), ("kill -9 $$", 137), ("kill -SEGV $$", 139)])
def test_pidfile_form_keeps_exit_status_and_cleans_up(tmp_path: Path, script: str, status: int) -> None:
    pidfile = tmp_path / "pids" / "p1"
    line = command_line(["sh", "-c", script], env={"A": "x y"}, cwd=str(tmp_path), pidfile=str(pidfile))
    done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, timeout=10)
    assert done.returncode == status
    assert not pidfile.exists() and pidfile.parent.is_dir()


def test_pidfile_form_records_the_programs_pid_and_env(tmp_path: Path) -> None:
    pidfile = tmp_path / "p2"
    line = command_line(["sh", "-c", 'echo "$$ $A"; cat "$0"', str(pidfile)], env={"A": "it's"}, pidfile=str(pidfile))
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, timeout=10, text=True).stdout.split("\n")
    pid, a = out[0].split(" ", 1)
    assert a == "it's"
    assert out[1] == pid  # the pid file names the program itself, not a wrapper shell


def test_kill_line_kills_only_the_recorded_program(tmp_path: Path) -> None:
    pidfile = tmp_path / "p3"
    proc = subprocess.Popen(["sleep", "30"])
    try:
        pidfile.write_text(f"{proc.pid}\n")
        out = subprocess.run(["/bin/sh", "-c", kill_line(str(pidfile))], capture_output=True, timeout=10, text=True)
        assert out.stdout == "killed\n"
        assert proc.wait(timeout=5) == -9
        assert not pidfile.exists()
        again = subprocess.run(["/bin/sh", "-c", kill_line(str(pidfile))], capture_output=True, timeout=10, text=True)
        assert again.stdout == "" and again.returncode == 0
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_overlong_command_is_refused_before_sending() -> None:
    with pytest.raises(AndroidDeviceError, match="ADB carries at most"):
        command_line(["echo", "x" * (MAX_COMMAND_BYTES + 1)])


# ---- for real, against the ADB double ------------------------------------------------------------
@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with double_lab(tmp_path, (SME2_PHONE, SME2_SERIAL)) as lab:
        yield lab


def test_hostile_names_run_nothing_on_the_device(lab: Lab) -> None:
    device = lab.server.devices[0]
    canary = "/data/local/tmp/CANARY"
    hostile = [
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"x; touch {canary}",
        f"x' ; touch {canary}; echo '",
        f"x\ntouch {canary}",
        f"x && touch {canary}",
        f"x | touch {canary}",
    ]
    session = DeviceSession(AndroidClient(f"127.0.0.1:{lab.port}", timeouts=Timeouts(query=10, run=10)), SME2_SERIAL)
    # The control: the same text unquoted really would create the canary on this device.
    session.run_line(f"echo $(touch {canary})")
    assert device.exists(canary)
    device.host_path(canary).unlink()

    result = session.run(["printf", "%s\\n", *hostile], env={"MODEL": hostile[0]}, cwd="/data/local/tmp")
    assert result.ok
    assert result.stdout.splitlines() == "\n".join(hostile).splitlines()
    assert not device.exists(canary)
    session.run(["sh", "-c", 'printf "%s" "$MODEL"'], env={"MODEL": hostile[0]}, check=True)
    assert not device.exists(canary)
    # Paths are quoted too: a hostile folder name is just a folder name. (No "/" in it: the double maps
    # device paths even inside words, which would move the folder.)
    name = "m $(touch CANARY2) `touch CANARY3`; touch CANARY4"
    session.ensure_dir(f"/data/local/tmp/sme2tui/{name}")
    assert device.host_path(f"/data/local/tmp/sme2tui/{name}").is_dir()
    assert not any((device.root / c).exists() for c in ("CANARY2", "CANARY3", "CANARY4"))
