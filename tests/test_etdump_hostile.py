"""Hostile ETDumps: every one ends as an EtdumpError (exit 6 from the CLI) quickly and in bounded memory.

In process for the many (truncations, bit flips, self-referencing offsets), through `sme2tui analyze`
for a few (exit code, message, no traceback, peak RSS of the child). Takes ~15 s.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from sme2tui.errors import ConfigError
from sme2tui.etdump import EtdumpError, EtdumpTrace, parse_etdump, read_etdump
from sme2tui.etdump.reader import MAX_MB_VARIABLE
from sme2tui.exit_codes import ExitCode
from tests.conftest import REPO
from tests.data.etdump.build_etdump import Profile, RunData, build

DATA = REPO / "tests" / "data" / "etdump"
XNNPACK = DATA / "xnnpack_fp32.etdp"
FIXTURES = sorted(DATA.glob("*.etdp"))
# Generous bounds for one parse of a few-KB file: a hang or a blow-up is orders of magnitude beyond.
SECONDS_PER_PARSE = 2.0
MAX_CHILD_RSS_MB = 250


def bigger_file() -> bytes:
    """~60 iterations of a conv/mean/linear-like stream in many runs (a few hundred events)."""
    runs = [RunData("Default", [Profile("Method::init", 0, 1, 50, chain_index=-1)])]
    for index in range(60):
        base = 10_000 * (index + 1)
        runs.append(RunData("Execute", [
            Profile(None, 0, base + 10, base + 20, dd_str=f"Convolution (NHWC, F32) IGEMM #{index % 3}"),
            Profile("DELEGATE_CALL", 0, base + 5, base + 30),
            Profile("native_call_mean.out", 1, base + 31, base + 40),
            Profile("OPERATOR_CALL", 1, base + 30, base + 41),
            Profile("Method::execute", 0, base, base + 50, chain_index=-1),
        ]))  # fmt: skip
    return build(runs)


def parse_or_refuse(data: bytes, name: str = "hostile.etdp") -> EtdumpTrace | None:
    """Parse; an EtdumpError naming the input is fine, anything else (or a slow parse) fails the test."""
    begin = time.perf_counter()
    try:
        trace: EtdumpTrace | None = parse_etdump(data, name)
    except EtdumpError as error:
        assert error.where == name and error.fix
        trace = None
    assert time.perf_counter() - begin < SECONDS_PER_PARSE
    if trace is not None:
        # Events never outnumber the 4-byte slots that list them.
        assert trace.event_count <= len(data) // 4
    return trace


# --- in process: many inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [XNNPACK.read_bytes(), bigger_file()], ids=["fixture", "many-runs"])
def test_truncation_at_every_offset_is_refused(data: bytes) -> None:
    step = max(1, len(data) // 1500)
    for length in range(0, len(data), step):
        with pytest.raises(EtdumpError):
            parse_etdump(data[:length], "cut.etdp")


def test_truncated_files_on_disk_are_refused_before_decoding(tmp_path: Path) -> None:
    data = bigger_file()
    path = tmp_path / "cut.etdp"
    for length in (1, 7, 11, 12, 13, len(data) // 3, len(data) - 1):
        path.write_bytes(data[:length])
        with pytest.raises(EtdumpError, match=r"truncated|not an ETDump"):
            read_etdump(path)


@pytest.mark.parametrize("data", [XNNPACK.read_bytes(), bigger_file()], ids=["fixture", "many-runs"])
def test_random_bit_flips_end_as_etdump_errors(data: bytes) -> None:
    rng = random.Random(4242)
    refused = 0
    for trial in range(1500):
        mutated = bytearray(data)
        for _ in range(1 + trial % 8):
            position = rng.randrange(len(mutated))
            mutated[position] ^= 1 << rng.randrange(8)
        refused += parse_or_refuse(bytes(mutated)) is None
    assert refused > 300


def test_offsets_pointing_at_themselves_backwards_or_past_the_end() -> None:
    """Rewrite every 4-byte slot (each offset, length and vtable offset of the file is one of them) to
    point at itself, at the file start, at the last bytes, or far away: the walk never loops or recurses,
    it refuses or reads something bounded."""
    data = XNNPACK.read_bytes()
    replacements: list[Callable[[int], int]] = [
        lambda at: 0,  # a uoffset of 0 points at itself; a soffset of 0 makes a table its own vtable
        lambda at: (-at) % 2**32,  # back to the file start
        lambda at: max(len(data) - at - 4, 0),  # the last four bytes
        lambda at: 2**31 - 1,
        lambda at: 2**32 - 4,  # a soffset of -4: the vtable right after the table
    ]
    for at in range(0, len(data) - 3, 4):
        for replace in replacements:
            mutated = bytearray(data)
            mutated[at : at + 4] = struct.pack("<I", replace(at))
            parse_or_refuse(bytes(mutated))


def test_runs_that_share_one_event_list_are_refused() -> None:
    """A corrupt run list pointing every run at the same (big) event list must not multiply the events."""
    data = bytearray(build([RunData("Execute", [Profile("a", 0, 1, 2), Profile("Method::execute", 0, 0, 3)]),
                            RunData("Execute", [Profile("b", 0, 1, 2), Profile("Method::execute", 0, 0, 3)])]))
    trace = parse_etdump(bytes(data), "ok.etdp")
    assert trace.event_count == 4
    # Find the two run tables' event-list offsets and make the second point at the first's list.
    from sme2tui.etdump.bytesview import ByteView
    from sme2tui.etdump.flatbuf import parse_header, root_table, table_fields, table_vector

    view = ByteView(bytes(data))
    root = root_table(view, parse_header(bytes(data[:12]), len(data)))
    runs = table_vector(view, int(table_fields(view, _one(root), (4, 4), "root").target(view, 1, "runs")[0]), "runs")
    fields = table_fields(view, runs, (4, 4, 4, 4), "run")
    lists = fields.target(view, 3, "events")
    slot = int(runs[1] + fields.offsets[3][1])
    data[slot : slot + 4] = struct.pack("<I", int(lists[0]) - slot)
    with pytest.raises(EtdumpError, match="share event-list bytes"):
        parse_etdump(bytes(data), "shared.etdp")


def _one(value: int) -> object:
    import numpy as np

    return np.array([value], dtype=np.int64)


def test_huge_string_length_is_refused() -> None:
    data = bytearray(build([RunData("Execute", [Profile("Method::execute", 0, 0, 3, chain_index=-1)])]))
    at = data.find(b"Method::execute")
    data[at - 4 : at] = struct.pack("<I", 2**32 - 1)
    with pytest.raises(EtdumpError, match="string"):
        parse_etdump(bytes(data), "long-name.etdp")


def test_memory_stays_bounded_on_damaged_input() -> None:
    """Python + numpy allocations while parsing damaged copies stay within a small multiple of the file."""
    data = bigger_file()
    rng = random.Random(7)
    tracemalloc.start()
    try:
        for _ in range(200):
            mutated = bytearray(data)
            for _ in range(4):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            parse_or_refuse(bytes(mutated))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * len(data) + 8 * 2**20


# --- the file itself -------------------------------------------------------------------------------


def test_symlink_to_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    link = tmp_path / "zero.etdp"
    link.symlink_to("/dev/zero")
    with pytest.raises(EtdumpError, match="character device") as caught:
        read_etdump(link)
    assert "/dev/zero" in (caught.value.where or "")
    assert caught.value.fix


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.etdp"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            read_etdump(fifo)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the stuck open() so the daemon thread can end, then fail
        with fifo.open("wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], EtdumpError)
    assert "FIFO" in outcome[0].what


def test_directory_empty_file_and_wrong_magic(tmp_path: Path) -> None:
    with pytest.raises(EtdumpError, match="folder"):
        read_etdump(tmp_path)
    empty = tmp_path / "empty.etdp"
    empty.write_bytes(b"")
    with pytest.raises(EtdumpError, match="empty"):
        read_etdump(empty)
    wrong = tmp_path / "wrong.etdp"
    wrong.write_bytes(struct.pack("<II", 100, 8) + b"ET12" + bytes(100))
    with pytest.raises(EtdumpError, match="not an ETDump"):
        read_etdump(wrong)


def test_oversized_sparse_files_are_refused_from_the_header(tmp_path: Path) -> None:
    """Sparse files (no real disk use): a 600 MB one without an ETDump header, and a 3 GB one whose header
    announces 3 GB: both are refused after reading 12 bytes."""
    junk = tmp_path / "junk.etdp"
    with junk.open("wb") as handle:
        handle.truncate(600 * 10**6)
    begin = time.perf_counter()
    with pytest.raises(EtdumpError, match="not an ETDump"):
        read_etdump(junk)
    huge = tmp_path / "huge.etdp"
    with huge.open("wb") as handle:
        handle.write(struct.pack("<II", 3 * 10**9 - 4, 8) + b"ED00")
        handle.truncate(3 * 10**9)
    with pytest.raises(EtdumpError, match=MAX_MB_VARIABLE) as caught:
        read_etdump(huge)
    assert "3,000 MB" in caught.value.what and f"{MAX_MB_VARIABLE}=3000" in (caught.value.fix or "")
    assert time.perf_counter() - begin < 2


def test_size_limit_can_be_raised_or_lowered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "padded.etdp"
    data = XNNPACK.read_bytes()
    path.write_bytes(struct.pack("<I", 2 * 10**6) + data[4:] + bytes(2 * 10**6 + 4 - len(data)))
    monkeypatch.setenv(MAX_MB_VARIABLE, "1")
    with pytest.raises(EtdumpError, match="more than the 1 MB"):
        read_etdump(path)
    monkeypatch.setenv(MAX_MB_VARIABLE, "3")
    assert read_etdump(path).event_count == read_etdump(XNNPACK).event_count
    for bad in ("lots", "-5", "0", "1" * 30):
        monkeypatch.setenv(MAX_MB_VARIABLE, bad)
        with pytest.raises(ConfigError, match=MAX_MB_VARIABLE):
            read_etdump(XNNPACK)


# --- through the CLI ----------------------------------------------------------------------------


# Runs `sme2tui analyze ARGS` and, at exit, writes the process's own peak RSS (VmHWM: the high-water mark of
# its memory since exec) to the fd named by PEAK_FD. Not wait4's ru_maxrss: Linux carries that across fork and
# execve, so a child of a pytest worker that has loaded torch would "peak" at the worker's size at once.
_REPORT_PEAK = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "")
    os.write(int(os.environ["PEAK_FD"]), peak.encode())
atexit.register(report)
sys.argv = ["sme2tui", "analyze", *sys.argv[1:]]
runpy.run_module("sme2tui", run_name="__main__", alter_sys=True)
"""


def run_analyze(*paths: Path, timeout: float = 60) -> tuple[int, str, float]:
    """`sme2tui analyze PATHS` in a child; (exit code, stderr, that child's peak RSS in MB).

    The peak is the child's own VmHWM where Linux reports it (see _REPORT_PEAK), else its wait4 ru_maxrss
    (RUSAGE_CHILDREN would be the largest of every child this test process ever had)."""
    peak_read, peak_write = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAK_FD": str(peak_write)}
    hwm_known = Path("/proc/self/status").is_file()
    argv = [sys.executable, "-c", _REPORT_PEAK] if hwm_known else [sys.executable, "-m", "sme2tui", "analyze"]
    child = subprocess.Popen([*argv, *map(str, paths)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, pass_fds=(peak_write,))
    os.close(peak_write)
    assert child.stderr is not None
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.append(child.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            pytest.fail(f"`sme2tui analyze {' '.join(map(str, paths))}` did not finish in {timeout} s")
        time.sleep(0.02)
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    with os.fdopen(peak_read, "rb") as report:
        hwm_kb = report.read().decode().strip()
    if hwm_known:
        assert hwm_kb.isdigit(), f"the child did not report its peak memory (exit {child.returncode})"
    peak_kb = int(hwm_kb) if hwm_kb.isdigit() else usage.ru_maxrss
    return child.returncode, "".join(stderr), peak_kb / 1024


@pytest.mark.parametrize("make", ["dev-zero", "fifo", "truncated", "empty", "sparse-600MB", "bit-flipped"])
def test_cli_refuses_hostile_files_with_exit_6(make: str, tmp_path: Path) -> None:
    path = tmp_path / f"{make}.etdp"
    if make == "dev-zero":
        path.symlink_to("/dev/zero")
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "truncated":
        path.write_bytes(XNNPACK.read_bytes()[:1000])
    elif make == "empty":
        path.write_bytes(b"")
    elif make == "sparse-600MB":
        with path.open("wb") as handle:
            handle.truncate(600 * 10**6)
    else:
        data = bytearray(XNNPACK.read_bytes())
        data[40:48] = b"\xff" * 8
        path.write_bytes(bytes(data))
    code, stderr, peak_mb = run_analyze(path)
    assert code == ExitCode.ANALYSIS, stderr
    assert "Traceback" not in stderr and "error:" in stderr and "fix:" in stderr
    assert peak_mb < MAX_CHILD_RSS_MB


def test_run_folder_with_hostile_etdumps_fails_those_cells_only(tmp_path: Path) -> None:
    """In a copy of the reference run, one cell's ETDumps become a /dev/zero link and a FIFO: analyze ends
    with exit 6 naming them, the other cell is still analyzed, nothing hangs."""
    run = tmp_path / "run"
    shutil.copytree(REPO / "runs" / "reference", run, symlinks=True)
    cell = next(path for path in sorted((run / "cells").iterdir()) if "xnnpack" in path.name)
    dumps = sorted(cell.glob("etdump*.etdp"))
    assert len(dumps) >= 2
    dumps[0].unlink()
    dumps[0].symlink_to("/dev/zero")
    dumps[1].unlink()
    os.mkfifo(dumps[1])
    code, stderr, peak_mb = run_analyze(run)
    assert code == ExitCode.ANALYSIS, stderr
    assert "character device" in stderr and "Traceback" not in stderr
    assert peak_mb < MAX_CHILD_RSS_MB
