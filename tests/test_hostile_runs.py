"""Hostile run folders, disks and runners: every one gets a clean answer (what, where, fix) and a documented
exit code — never exit 1, never a traceback, never a hang — and nothing completed is lost or overwritten.

- Corrupted copies of the committed reference run (truncations, non-UTF-8, null/{}/[], missing keys, wrong
  types, files and folders swapped, an edited config) through `analyze`, `report`, `compare`, `--resume`.
- Run folders edited or raced: config hash, re-measuring cells whose files are gone, the folder lock (busy,
  stale after SIGKILL).
- Disks: a small tmpfs filled mid-run (exit 3, the manifest says so, resume finishes after space is freed),
  read-only mounts, a file where a folder must be, paths too long, a read-only working directory.
- Runners that lie in their timing JSON, hang, fork children, flood stderr; Ctrl-C kills the process group.

Mounting needs root (CI runs as root): elsewhere those tests skip and say so. About 60 s on 2 cores.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sme2tui.cli import main
from sme2tui.exit_codes import ExitCode
from tests.conftest import REPO, run_cli

REFERENCE = REPO / "runs" / "reference"
READY_PTE = REPO / "tests" / "data" / "pte" / "fp32_xnnpack.pte"
CLEAN_CODES = {int(ExitCode.OK), int(ExitCode.CONFIG), int(ExitCode.ANALYSIS)}


# --- helpers ---------------------------------------------------------------------------------------------------


def tree_hashes(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[path.relative_to(root).as_posix()] = "link:" + str(path.readlink())
        elif path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[path.relative_to(root).as_posix() + "/"] = "dir"
        else:
            out[path.relative_to(root).as_posix()] = "special"
    return out


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """`sme2tui ARGS` in this process (fast); returns (exit code, stdout + stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_clean(code: int, output: str, allowed: set[int] | None = None) -> None:
    assert code != ExitCode.INTERNAL, output
    assert "Traceback" not in output and "internal error" not in output, output
    if allowed is not None:
        assert code in allowed, output
    if code != 0:
        assert "fix:" in output, output


def needs_root(reason: str) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
        return
    message = f"{reason} needs root to mount a tmpfs (CI runs as root; here: run the tests with sudo)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    needs_root("this test")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


def fill(path: Path, leave: int = 0) -> Path:
    """Fill the file system holding `path` to the last byte (then free `leave` bytes); returns the filler."""
    filler = path / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


# --- corrupted copies of a real run folder ---------------------------------------------------------------------

Mutation = Callable[[Path], None]


def _rewrite(rel: str, edit: Callable[[Any], Any]) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return apply


def _bytes(rel: str, edit: Callable[[bytes], bytes]) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        path.write_bytes(edit(path.read_bytes()))
    return apply


def _to_folder(rel: str) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        path.unlink() if path.is_file() else shutil.rmtree(path)
        (path / "inside").mkdir(parents=True)
    return apply


def _to_file(rel: str) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        path.write_text("not a folder\n")
    return apply


def _symlink(rel: str, target: str) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        path.unlink()
        path.symlink_to(target)
    return apply


def _fifo(rel: str) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        path.unlink()
        os.mkfifo(path)
    return apply


def _delete(rel: str) -> Mutation:
    def apply(run: Path) -> None:
        path = run / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return apply


def _drop(*keys: str) -> Callable[[Any], Any]:
    def edit(data: Any) -> Any:
        node = data
        for key in keys[:-1]:
            node = node[key] if not isinstance(node, list) else node[int(key)]
        if isinstance(node, dict):
            node.pop(keys[-1], None)
        return data
    return edit


def _set(value: Any, *keys: str) -> Callable[[Any], Any]:
    def edit(data: Any) -> Any:
        node = data
        for key in keys[:-1]:
            node = node[key] if not isinstance(node, list) else node[int(key)]
        node[keys[-1]] = value
        return data
    return edit


def _first_cell(data: dict[str, Any]) -> str:
    return next(iter(data["cells"]))


def _cell_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def apply(data: Any) -> Any:
        edit(data["cells"][_first_cell(data)])
        return data
    return apply


def _json_file_mutations(rel: str) -> dict[str, Mutation]:
    """The generic damage any JSON file of a run folder can suffer."""
    size = (REFERENCE / rel).stat().st_size
    cases: dict[str, Mutation] = {}
    for at in sorted({0, 1, size // 10, size // 2, size - 2}):
        cases[f"{rel} truncated at {at}"] = _bytes(rel, lambda b, n=at: b[:n])
    cases[f"{rel} non-UTF-8"] = _bytes(rel, lambda b: b[: len(b) // 2] + b"\xff\xfe\xc3(" + b[len(b) // 2:])
    cases[f"{rel} latin-1"] = _bytes(rel, lambda b: b.replace(b'"', b'"\xe9', 1))
    for name, text in (("null", "null"), ("{}", "{}"), ("[]", "[]"), ("string", '"x"'), ("number", "1e999"),
                       ("NaN", "NaN"), ("deep", "[" * 100_000 + "]" * 100_000)):
        cases[f"{rel} is {name}"] = _bytes(rel, lambda b, t=text: t.encode())
    cases[f"{rel} is a folder"] = _to_folder(rel)
    cases[f"{rel} is /dev/zero"] = _symlink(rel, "/dev/zero")
    cases[f"{rel} is a FIFO"] = _fifo(rel)
    cases[f"{rel} missing"] = _delete(rel)
    return cases


MANIFEST_CASES: dict[str, Mutation] = {
    **_json_file_mutations("manifest.json"),
    **{f"manifest.json without {key}": _rewrite("manifest.json", _drop(key))
       for key in ("cells", "config_hash", "status", "versions", "files", "warnings", "exports", "schema_version")},
    "manifest cells is a list": _rewrite("manifest.json", _set([], "cells")),
    "manifest cells is a string": _rewrite("manifest.json", _set("x", "cells")),
    "manifest cell is null": _rewrite("manifest.json", lambda d: _set(None, "cells", _first_cell(d))(d)),
    "manifest cell threads is a string": _rewrite("manifest.json", _cell_edit(lambda c: c.update(threads="1"))),
    "manifest cell warmup is null": _rewrite("manifest.json", _cell_edit(lambda c: c.update(warmup=None))),
    "manifest cell files is a dict": _rewrite("manifest.json", _cell_edit(lambda c: c.update(files={}))),
    "manifest cell without model": _rewrite("manifest.json", _cell_edit(lambda c: c.pop("model"))),
    "manifest versions.executorch is a string": _rewrite("manifest.json", _set("1.5", "versions", "executorch")),
    "manifest config_hash is a number": _rewrite("manifest.json", _set(5, "config_hash")),
    "manifest schema_version from the future": _rewrite("manifest.json", _set(99, "schema_version")),
    "manifest files entry without sha256": _rewrite("manifest.json", _set([{"path": "x"}], "files")),
}
CONFIG_CASES: dict[str, Mutation] = {
    **_json_file_mutations("config.json"),
    "config.json edited (iterations)": _rewrite("config.json", _set(21, "iterations")),
    "config.json edited (variant renamed)": _rewrite("config.json", lambda d: _set("xnn", "name")(d["variants"][1])
                                                     and d),
    "config.json reformatted only": _bytes("config.json", lambda b: json.dumps(json.loads(b), indent=7).encode()),
}
SUMMARY_CASES: dict[str, Mutation] = {
    **_json_file_mutations("analysis/summary.json"),
    "summary cells is a list": _rewrite("analysis/summary.json", _set([], "cells")),
    "summary latencies empty": _rewrite("analysis/summary.json",
                                        lambda d: _set([], "cells", _first_cell(d), "latencies_ms")(d)),
    "summary latency is NaN": _bytes("analysis/summary.json",
                                     lambda b: b.replace(b'"median": ', b'"median": NaN, "x": ', 1)),
    "summary pair speedup is a string": _rewrite("analysis/summary.json", _set("fast", "pairs", "0", "speedup")),
    "summary pairs without candidate": _rewrite("analysis/summary.json", _drop("pairs", "0", "candidate")),
    "summary operators is a string": _rewrite("analysis/summary.json",
                                              lambda d: _set("x", "cells", _first_cell(d), "operators")(d)),
    "summary pair speedup negative": _rewrite("analysis/summary.json", _set(-3.0, "pairs", "0", "speedup", "value")),
    "summary pair speedup not its medians' ratio": _rewrite(
        "analysis/summary.json", lambda d: _set(d["pairs"][0]["speedup"]["ci_low"], "pairs", "0", "speedup",
                                                "value")(d)),
    "summary pair speedup outside its interval": _rewrite(
        "analysis/summary.json", lambda d: _set(d["pairs"][0]["speedup"]["value"] * 2, "pairs", "0", "speedup",
                                                "ci_low")(d)),
    "summary pair of a missing cell": _rewrite("analysis/summary.json", _set("gone", "pairs", "0", "candidate_cell")),
    "analysis is a file": _to_file("analysis"),
    "analysis missing": _delete("analysis"),
}
CELL = "cells/mobilenet_quick__fp32__xnnpack__t1"
PORTABLE = "cells/mobilenet_quick__fp32__portable__t1"


def _etdumps_from(run: Path, source: str, target: str, how: str) -> None:
    for dump in sorted((run / source).glob("etdump-r*.etdp")):
        into = run / target / dump.name
        into.unlink()
        if how == "copy":
            shutil.copyfile(dump, into)
        elif how == "link":
            os.link(dump, into)
        else:
            into.symlink_to(dump)


def _swap_etdumps(run: Path) -> None:
    for dump in sorted((run / PORTABLE).glob("etdump-r*.etdp")):
        other = run / CELL / dump.name
        held = dump.with_suffix(".held")
        dump.rename(held)
        other.rename(dump)
        held.rename(other)


CELL_CASES: dict[str, Mutation] = {
    "cells/ missing": _delete("cells"),
    "cells is a file": _to_file("cells"),
    "a cell folder missing": _delete(CELL),
    f"{CELL}/timing.json truncated": _bytes(f"{CELL}/timing.json", lambda b: b[:40]),
    f"{CELL}/timing.json is null": _bytes(f"{CELL}/timing.json", lambda b: b"null"),
    f"{CELL}/timing.json rounds is a string": _rewrite(f"{CELL}/timing.json", _set("3", "rounds")),
    f"{CELL}/timing.json round escapes the folder": _rewrite(
        f"{CELL}/timing.json", lambda d: _set("../../manifest.json", "rounds", "0", "etdump")(d)),
    f"{CELL}/timing.json round iterations is null": _rewrite(f"{CELL}/timing.json",
                                                             _set(None, "rounds", "1", "iterations")),
    f"{CELL}/timing.json iterations_ns has text": _rewrite(f"{CELL}/timing.json", _set(["a"], "iterations_ns")),
    f"{CELL}/timing.json is /dev/zero": _symlink(f"{CELL}/timing.json", "/dev/zero"),
    f"{CELL}/etdump-r1.etdp is a folder": _to_folder(f"{CELL}/etdump-r1.etdp"),
    f"{CELL}/etdump-r1.etdp truncated": _bytes(f"{CELL}/etdump-r1.etdp", lambda b: b[:100]),
    # Plausible files that are not this cell's measurement: refused, never a confident speedup.
    f"{CELL} ETDumps copied from the portable cell": lambda run: _etdumps_from(run, PORTABLE, CELL, "copy"),
    f"{CELL} ETDumps hard-linked to the portable cell's": lambda run: _etdumps_from(run, PORTABLE, CELL, "link"),
    f"{CELL} ETDumps symlinked to the portable cell's": lambda run: _etdumps_from(run, PORTABLE, CELL, "symlink"),
    "the two cells' ETDumps swapped": _swap_etdumps,
    f"{CELL}/timing.json round listed twice": _rewrite(f"{CELL}/timing.json",
                                                      lambda d: d["rounds"].append(dict(d["rounds"][0])) or d),
    f"{CELL}/timing.json round warmup changed": _rewrite(f"{CELL}/timing.json", _set(9, "rounds", "0", "warmup")),
    f"{CELL}/timing.json round iterations changed": _rewrite(f"{CELL}/timing.json",
                                                             lambda d: _set(d["rounds"][1]["iterations"] + 5,
                                                                            "rounds", "1", "iterations")(d)),
    f"{CELL}/timing.json wall times all zero": _rewrite(f"{CELL}/timing.json",
                                                        lambda d: _set([0] * len(d["iterations_ns"]),
                                                                       "iterations_ns")(d)),
}


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(REFERENCE, copy, symlinks=True)
    return copy


def _check_commands(run: Path, capsys: pytest.CaptureFixture[str], commands: list[list[str | Path]],
                    keep: tuple[str, ...]) -> list[int]:
    before = tree_hashes(run)
    codes = []
    for argv in commands:
        code, output = cli(capsys, *argv)
        assert_clean(code, output, CLEAN_CODES)
        after = tree_hashes(run)
        if code != 0 and "analyze" not in argv:
            assert after == before, f"{argv} failed ({code}) but changed files"
        for rel in keep:  # never rewritten, whatever the command did
            assert after.get(rel) == before.get(rel), f"{argv} changed {rel}"
        assert ".lock" not in after, "a lock file was left behind"
        codes.append(code)
    return codes


@pytest.mark.parametrize("case", sorted({**MANIFEST_CASES, **CONFIG_CASES}))
def test_damaged_manifest_or_config_is_refused(case: str, run_copy: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ({**MANIFEST_CASES, **CONFIG_CASES})[case](run_copy)
    commands: list[list[str | Path]] = [["analyze", run_copy], ["report", run_copy], ["--auto", "--resume", run_copy],
                                        ["compare", run_copy, run_copy]]
    if case == "config.json reformatted only":  # the same config, other whitespace: still the run's config
        code, output = cli(capsys, "report", run_copy)
        assert code == 0, output
        return
    codes = _check_commands(run_copy, capsys, commands[:3], keep=("manifest.json", "config.json"))
    assert all(c in (ExitCode.CONFIG, ExitCode.ANALYSIS) for c in codes), (case, codes)
    _check_commands(run_copy, capsys, commands[3:], keep=("manifest.json", "config.json"))


@pytest.mark.parametrize("case", sorted(SUMMARY_CASES))
def test_damaged_analysis_is_refused_by_report_and_compare(case: str, run_copy: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    SUMMARY_CASES[case](run_copy)
    codes = _check_commands(run_copy, capsys, [["report", run_copy], ["compare", run_copy, REFERENCE],
                                               ["compare", REFERENCE, run_copy]],
                            keep=("manifest.json", "config.json"))
    assert all(c in (ExitCode.CONFIG, ExitCode.ANALYSIS) for c in codes), (case, codes)


@pytest.mark.parametrize("case", sorted(CELL_CASES))
def test_damaged_cells_are_named_by_analyze(case: str, run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    CELL_CASES[case](run_copy)
    (code,) = _check_commands(run_copy, capsys, [["analyze", run_copy]],
                              keep=("manifest.json", "config.json", "cells/mobilenet_quick__fp32__portable__t1/"
                                    "timing.json"))
    assert code == ExitCode.ANALYSIS, case
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert summary["failed_cells"] and all(summary["cell_errors"][c]["fix"] for c in summary["failed_cells"])


def test_analyze_of_a_committed_run_keeps_its_manifest(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_hashes(run_copy)
    code, output = cli(capsys, "analyze", run_copy)
    assert code == 0, output
    after = tree_hashes(run_copy)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(k.startswith("analysis/") for k in changed), changed


def test_compare_of_folders_that_are_not_runs_suggests_what_works(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = cli(capsys, "compare", empty, empty)
    assert_clean(code, output, {int(ExitCode.CONFIG)})
    assert "not a run folder" in output and "sme2tui analyze" not in output
    code, output = cli(capsys, "analyze", empty)  # what the old suggestion led to
    assert_clean(code, output, {int(ExitCode.CONFIG)})
    code, output = cli(capsys, "compare", tmp_path / "nowhere", REFERENCE)
    assert_clean(code, output, {int(ExitCode.CONFIG)})


# --- a real small run (ready program, native runner): edits, damage, resume, locks -----------------------------


def ready_config(tmp: Path, **overrides: Any) -> Path:
    config: dict[str, Any] = {"name": "ready", "models": [{"pte": str(READY_PTE)}], "threads": [1, 2],
                              "warmup": 1, "iterations": 4, "rounds": 2}
    config.update(overrides)
    path = tmp / f"{config['name']}.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small-run")
    result = run_cli("--auto", "--json", "--config", ready_config(root), "--output-root", root / "runs", cwd=root)
    assert result.returncode == 0, result.stderr
    return Path(json.loads(result.stdout)["run_dir"])


def _manifest(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "manifest.json").read_text()))


def test_resume_remeasures_cells_whose_files_are_gone(small_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    cells = sorted((run / "cells").iterdir())
    shutil.rmtree(cells[0])
    damaged = cells[1] / "timing.json"
    damaged.write_text(damaged.read_text().replace("1", "2", 1))  # same size, other bytes
    code, output = cli(capsys, "analyze", run)
    assert_clean(code, output, {int(ExitCode.ANALYSIS)})
    assert "--resume" in output
    code, output = cli(capsys, "--auto", "--resume", run)
    assert code == 0, output
    assert f"cell {cells[0].name} was done, but its folder" in output
    assert f"cell {cells[1].name} was done, but cells/{cells[1].name}/timing.json changed" in output
    manifest = _manifest(run)
    assert manifest["status"] == "complete" and all(c["status"] == "done" for c in manifest["cells"].values())
    assert set(manifest["resumed"][-1]["remeasured"]) == {cells[0].name, cells[1].name}
    assert list((run / "cells").glob(f"{cells[1].name}.damaged-*"))  # moved aside, not deleted


def test_edited_config_is_refused_before_any_work(small_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    config = json.loads((run / "config.json").read_text())
    config["threads"] = [1]
    (run / "config.json").write_text(json.dumps(config))
    before = tree_hashes(run)
    for argv in (["analyze", run], ["report", run], ["--auto", "--resume", run]):
        code, output = cli(capsys, *argv)
        assert_clean(code, output, {int(ExitCode.CONFIG)})
        assert "config.json was changed after the run was made" in output and "nothing was written" in output
    assert tree_hashes(run) == before


HOLD_LOCK = """
import sys, time
from pathlib import Path
from sme2tui.run.lock import FolderLock
lock = FolderLock.acquire(Path(sys.argv[1]), purpose="resume")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold_lock(run: Path, seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run), str(seconds)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_in_use_is_refused_and_a_stale_lock_taken_over(small_run: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    holder = _hold_lock(run, 60)
    try:
        before = tree_hashes(run)
        for argv in (["--auto", "--resume", run], ["analyze", run], ["report", run]):
            code, output = cli(capsys, *argv)
            assert_clean(code, output, {int(ExitCode.CONFIG)})
            assert f"in use by pid {holder.pid}" in output and f"kill {holder.pid}" in output
        assert tree_hashes(run) == before
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up; its lock file stays behind
        holder.wait()
    assert (run / ".lock").is_file()
    code, output = cli(capsys, "report", run)
    assert code == 0, output
    assert f"took over the lock of pid {holder.pid}" in output and "no longer runs" in output
    assert not (run / ".lock").exists()


def test_lock_of_a_live_process_is_respected_even_without_flock(tmp_path: Path) -> None:
    """A lock file naming a live process (a file system where flock is not shared) is not stolen; one whose
    pid was reused by another process (another start time) is stale."""
    from sme2tui.run.lock import FolderBusy, FolderLock, me, process_start

    holder = me("run")
    (tmp_path / ".lock").write_text(json.dumps({**holder.__dict__, "pid": os.getppid(),
                                                "start": process_start(os.getppid())}))
    with pytest.raises(FolderBusy):
        FolderLock.acquire(tmp_path, purpose="analyze")
    (tmp_path / ".lock").write_text(json.dumps({**holder.__dict__, "pid": os.getppid(), "start": "1"}))
    lock = FolderLock.acquire(tmp_path, purpose="analyze")
    assert lock.taken_over is not None and lock.note and "no longer runs" in lock.note
    lock.release()
    assert not (tmp_path / ".lock").exists()


# --- fake runners: they lie, hang, fork, flood ---------------------------------------------------------------

FAKE_RUNNER = """\
#!{python}
import json, os, subprocess, sys, time
from pathlib import Path
MODE, STATE = {mode!r}, Path({state!r})
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
n, w = int(args["num_executions"]), int(args["warmup"])
calls = STATE / "calls"
call = int(calls.read_text()) if calls.exists() else 0
calls.write_text(str(call + 1))
good = {{"warmup_ns": [1000] * w, "measured_ns": [2000 + 10 * i for i in range(n)]}}
payload = {{
    "ok": good, "garbage": "}}{{ not json", "empty-list": [], "null": None,
    "text-times": {{"warmup_ns": [1000] * w, "measured_ns": ["fast"] * n}},
    "negative": {{"warmup_ns": [1000] * w, "measured_ns": [-5] * n}},
    "nan": "NAN", "fewer": {{"warmup_ns": [1000] * w, "measured_ns": [2000] * (n - 1)}},
    "more": {{"warmup_ns": [1000] * w, "measured_ns": [2000] * (n + 3)}},
    "bools": {{"warmup_ns": [True] * w, "measured_ns": [True] * n}},
    "huge-int": {{"warmup_ns": [1000] * w, "measured_ns": [10 ** 400] * n}},
    "overclaim": {{"warmup_ns": [1000] * w, "measured_ns": [10 ** 15] * n}},
    "zero": {{"warmup_ns": [0] * w, "measured_ns": [0] * n}},
}}.get(MODE, good)

def write_timing(data):
    text = data if isinstance(data, str) else json.dumps(data)
    if text == "NAN":
        text = json.dumps({{"warmup_ns": [1000] * w, "measured_ns": [1.5] * n}}).replace("1.5", "NaN")
    Path(args["timing_json"]).write_text(text)

def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (STATE / f"child-{{call}}").write_text(str(proc.pid))

if MODE == "hang":
    child()
    time.sleep(600)
if MODE == "fork-and-exit":
    child()
if MODE == "flood":
    chunk = b"x" * (1 << 20)
    for _ in range(300):
        os.write(2, chunk)
    os.write(2, b"\\nrunner: the last words\\n")
    sys.exit(3)
if MODE == "fill-once" and call == 1:  # the second cell: the first one is done by then
    filler = Path(os.environ["FAKE_FILL"]) / "filler.bin"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\\0" * 65536)
                handle.flush()
        except OSError:
            pass
    try:
        write_timing(good)
    except OSError as exc:
        print(f"runner: cannot write timing: {{exc}}", file=sys.stderr)
        sys.exit(7)
    sys.exit(0)
write_timing(payload)
print(f"Model executed successfully {{n}} time(s)")
"""


def fake_runner(tmp: Path, mode: str) -> tuple[Path, Path]:
    state = tmp / f"state-{mode}"
    state.mkdir(parents=True, exist_ok=True)
    path = tmp / f"sme2_runner_fake_{mode.replace('-', '_')}"
    path.write_text(FAKE_RUNNER.format(python=sys.executable, mode=mode, state=str(state)))
    path.chmod(0o755)
    return path, state


def fake_config(tmp: Path, runner: Path, **overrides: Any) -> Path:
    config: dict[str, Any] = {"name": "fake", "models": [{"pte": str(READY_PTE)}],
                              "variants": [{"name": "fake", "runner": str(runner)}], "warmup": 1, "iterations": 4,
                              "rounds": 2, "profile": False, "target": {"kind": "host", "timeout_s": 5}}
    config.update(overrides)
    path = tmp / "fake.json"
    path.write_text(json.dumps(config))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


@pytest.mark.parametrize("mode", ["garbage", "empty-list", "null", "text-times", "negative", "nan", "fewer", "more",
                                  "bools", "huge-int", "overclaim"])
def test_a_runner_that_lies_in_its_timing_fails_the_cell(mode: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    runner, _state = fake_runner(tmp_path, mode)
    code, output = cli(capsys, "--auto", "--config", fake_config(tmp_path, runner), "--output-root", tmp_path / "runs")
    assert_clean(code, output, {int(ExitCode.RUN)})
    (run,) = (tmp_path / "runs").iterdir()
    (cell,) = _manifest(run)["cells"].values()
    assert cell["status"] == "failed" and cell["error"]["kind"] == "runner-output-invalid", cell
    assert "output is not usable" in cell["error"]["what"]


def test_a_hanging_runner_times_out_and_its_children_die(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner, state = fake_runner(tmp_path, "hang")
    config = fake_config(tmp_path, runner, target={"kind": "host", "timeout_s": 1.5}, rounds=1)
    started = time.monotonic()
    code, output = cli(capsys, "--auto", "--config", config, "--output-root", tmp_path / "runs")
    assert time.monotonic() - started < 30
    assert_clean(code, output, {int(ExitCode.RUN)})
    assert "target.timeout_s" in output
    child = int((state / "child-0").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the runner's child outlived the timeout"


def test_a_runner_that_leaves_children_behind_is_cleaned_up(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    runner, state = fake_runner(tmp_path, "fork-and-exit")
    code, output = cli(capsys, "--auto", "--config", fake_config(tmp_path, runner), "--output-root", tmp_path / "runs")
    assert code == 0, output
    children = [int(p.read_text()) for p in state.glob("child-*")]
    assert len(children) == 2
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in children)


def test_ctrl_c_kills_the_runner_and_its_children(tmp_path: Path) -> None:
    runner, state = fake_runner(tmp_path, "hang")
    config = fake_config(tmp_path, runner, target={"kind": "host", "timeout_s": 600})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sme2tui", "--auto", "--config", str(config), "--output-root",
                             str(tmp_path / "runs")], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)
    deadline = time.monotonic() + 60
    while not (state / "child-0").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err and "--resume" in err
    child = int((state / "child-0").read_text())
    time.sleep(0.2)
    assert not _alive(child)
    (run,) = (tmp_path / "runs").iterdir()
    assert _manifest(run)["status"] == "interrupted"


def test_a_runner_flooding_stderr_costs_a_bounded_tail(tmp_path: Path) -> None:
    """300 MB of stderr: the cell fails with the last words of the runner, and sme2tui's memory stays small."""
    runner, _state = fake_runner(tmp_path, "flood")
    probe = textwrap.dedent(f"""
        import resource, subprocess, sys
        done = subprocess.run([sys.executable, "-m", "sme2tui", "--auto", "--config", {str(fake_config(tmp_path,
                               runner, rounds=1))!r}, "--output-root", {str(tmp_path / 'runs')!r}],
                              capture_output=True, text=True)
        print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.stderr.write(done.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    code, peak_kb = map(int, done.stdout.split())
    assert code == ExitCode.RUN and "Traceback" not in done.stderr, done.stderr
    assert peak_kb < 150 * 1024, f"peak RSS {peak_kb // 1024} MB for a 300 MB stderr"
    (run,) = (tmp_path / "runs").iterdir()
    (cell,) = _manifest(run)["cells"].values()
    assert cell["error"]["stderr_tail"].endswith("runner: the last words") and len(cell["error"]["stderr_tail"]) <= 2000


def test_a_worker_flooding_stderr_and_stdout_is_read_in_bounded_pieces(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    from sme2tui.workers.launcher import WorkerFailed, run_worker

    worker = tmp_path / "flood_worker.py"
    worker.write_text(textwrap.dedent("""
        import os, sys
        chunk = b"y" * (1 << 20)
        for _ in range(100):
            os.write(1, chunk)  # one 100 MB line on the event channel
        os.write(1, b"\\n")
        for _ in range(100):
            os.write(2, chunk)
        os.write(2, b"\\nworker: the last words\\n")
        sys.exit(4)
    """))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the worker module lives there
    tracemalloc.start()
    try:
        with pytest.raises(WorkerFailed) as failed:
            list(run_worker("flood_worker", {}, step="run", stderr_log=tmp_path / "worker.log"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert failed.value.returncode == 4 and failed.value.stderr_tail.endswith("worker: the last words")
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MB held for 200 MB of output"
    assert (tmp_path / "worker.log").stat().st_size > 100 * 2**20


# --- disks ---------------------------------------------------------------------------------------------------


def test_disk_full_mid_run_stops_with_exit_3_and_resume_finishes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "110m") as disk:
        runner, state = fake_runner(tmp_path, "fill-once")
        config = fake_config(tmp_path, runner, threads=[1, 2], rounds=1)
        env = {"FAKE_FILL": str(disk)}
        result = run_cli("--auto", "--json", "--config", config, "--output-root", disk / "runs", cwd=tmp_path,
                         env=env)
        assert result.returncode == ExitCode.ENVIRONMENT, result.stderr
        assert "Traceback" not in result.stderr and "disk is full" in result.stderr
        assert f"--resume {disk / 'runs'}" in json.loads(result.stdout)["error"]["fix"]
        (run,) = (disk / "runs").iterdir()
        manifest = _manifest(run)
        assert manifest["status"] == "failed" and manifest["error"]["exit_code"] == ExitCode.ENVIRONMENT
        states = {c["threads"]: c["status"] for c in manifest["cells"].values()}
        assert states == {1: "done", 2: "failed"}  # completed work kept
        assert [c["error"]["kind"] for c in manifest["cells"].values() if c["status"] == "failed"] == ["disk-full"]
        calls = int((state / "calls").read_text())
        (disk / "filler.bin").unlink()
        result = run_cli("--auto", "--resume", run, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert int((state / "calls").read_text()) == calls + 1  # only the missing cell ran again
        assert _manifest(run)["status"] == "complete"


def test_disk_full_during_analysis_is_exit_3_and_nothing_lost(small_run: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "20m") as disk:
        run = disk / small_run.name
        shutil.copytree(small_run, run)
        shutil.rmtree(run / "analysis")
        manifest = (run / "manifest.json").read_bytes()
        filler = fill(disk, leave=8192)  # room for the lock file, not for the analysis
        result = run_cli("analyze", run)
        assert result.returncode == ExitCode.ENVIRONMENT, result.stderr
        assert "Traceback" not in result.stderr and "disk is full" in result.stderr
        assert (run / "manifest.json").read_bytes() == manifest
        assert not list(run.rglob(".*.tmp*")) and not list(run.rglob(".summary.json.*"))
        filler.unlink()
        assert run_cli("analyze", run).returncode == 0


def test_disk_full_during_export_is_exit_3(tmp_path: Path) -> None:
    """The export worker hits the full disk when it writes the program: exit 3, no half-written cache entry."""
    config = tmp_path / "export.json"
    config.write_text(json.dumps({"name": "e", "models": [{"builtin": "mobilenet_quick"}],
                                  "variants": [{"name": "portable", "delegate": "portable"}]}))
    with tmpfs(tmp_path / "disk", "2m") as disk:
        fill(disk)
        result = run_cli("export", "--config", config, "--output-root", disk / "runs")
        assert result.returncode == ExitCode.ENVIRONMENT, result.stderr
        assert "Traceback" not in result.stderr and "disk is full" in result.stderr and "fix:" in result.stderr
        assert not any((disk / "runs" / ".cache" / "exports").iterdir())


def test_analysis_that_is_a_file_is_not_overwritten(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(run_copy / "analysis")
    (run_copy / "analysis").write_text("my notes\n")
    before = tree_hashes(run_copy)
    code, output = cli(capsys, "analyze", run_copy)
    assert_clean(code, output, {int(ExitCode.CONFIG)})
    assert "is not a folder" in output and tree_hashes(run_copy) == before


def test_read_only_disks(small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tmpfs(tmp_path / "disk", "40m") as disk:
        run = disk / small_run.name
        shutil.copytree(small_run, run)
        config = ready_config(tmp_path)
        remount(disk, "ro")
        try:
            code, output = cli(capsys, "analyze", run)
            assert_clean(code, output, {int(ExitCode.ENVIRONMENT)})
            assert "read-only" in output
            code, output = cli(capsys, "compare", run, run)  # reads only: works
            assert code == 0, output
            code, output = cli(capsys, "--auto", "--config", config, "--output-root", disk / "new")
            assert_clean(code, output, {int(ExitCode.ENVIRONMENT)})
            assert "read-only" in output
            from sme2tui.doctor import check_disk

            check = check_disk(disk / "runs")
            assert check.status == "fail" and "read-only" in check.detail and "GB free" not in check.detail
        finally:
            remount(disk, "rw")


def test_a_read_only_working_directory_does_not_break_auto(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "cwd", "1m") as cwd:
        remount(cwd, "ro")
        try:
            result = run_cli("--auto", "--config", ready_config(tmp_path, threads=[1]), "--output-root",
                             tmp_path / "runs", cwd=cwd)
        finally:
            remount(cwd, "rw")
    assert result.returncode == 0, result.stderr
    assert "on native runners" in result.stderr  # the runner was found where the user can write


def test_paths_that_cannot_be_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    config = ready_config(tmp_path, threads=[1])
    for root in (a_file, Path("/dev/null"), a_file / "below", tmp_path / ("n" * 300), Path("/" + "d/" * 2100)):
        code, output = cli(capsys, "--auto", "--config", config, "--output-root", root)
        assert_clean(code, output, {int(ExitCode.CONFIG)})  # the README: a path that cannot be a folder is 2
    for runners in (a_file, Path("/dev/null")):
        code, output = cli(capsys, "build", "host", "--runners-dir", runners)
        assert_clean(code, output, {int(ExitCode.CONFIG), int(ExitCode.ENVIRONMENT)})
        assert "not a folder" in output or "is a file" in output
    assert a_file.read_text() == "x"


def test_storage_errors_name_the_problem() -> None:
    from sme2tui.storage import storage_error

    for code, words, exit_code in ((errno.ENOSPC, "disk is full", 3), (errno.EDQUOT, "quota", 3),
                                   (errno.EROFS, "read-only", 3), (errno.EACCES, "permission denied", 3),
                                   (errno.ENAMETOOLONG, "too long", 2), (errno.EISDIR, "is a folder", 2),
                                   (errno.EIO, "I/O error", 3)):
        error = storage_error(OSError(code, os.strerror(code), "/nowhere/x"), action="write x")
        assert words in error.what and error.fix and int(error.exit_code) == exit_code


# --- smaller ones ----------------------------------------------------------------------------------------------


def test_debug_is_accepted_after_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "models", "--debug")[0] == 0
    assert cli(capsys, "--debug", "models")[0] == 0
    assert cli(capsys, "config", "validate", str(REPO / "configs" / "examples" / "quickstart.json"), "--debug")[0] == 0


def test_atomic_writes_respect_the_umask(tmp_path: Path) -> None:
    from sme2tui.fileio import write_text_atomic

    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            path = tmp_path / f"file-{mask:o}"
            write_text_atomic(path, "x")
            assert stat.S_IMODE(path.stat().st_mode) == mode
        finally:
            os.umask(old)
    existing = tmp_path / "kept"
    existing.write_text("old")
    existing.chmod(0o640)
    write_text_atomic(existing, "new")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640


def test_doctor_disk_threshold_and_message_agree(tmp_path: Path) -> None:
    from sme2tui.doctor import MIN_FREE_BYTES, check_disk

    with tmpfs(tmp_path / "small", "50m") as small:
        check = check_disk(small / "runs")
    assert check.status == "fail"
    assert f"at least {MIN_FREE_BYTES // 10**6} MB" in check.detail and f"{MIN_FREE_BYTES // 10**6} MB" in check.fix


def test_build_refuses_what_this_host_cannot_do_before_asking_for_sources(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANDROID_NDK", "ANDROID_NDK_HOME", "ANDROID_NDK_ROOT", "ANDROID_HOME", "ANDROID_SDK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    code, output = cli(capsys, "build", "android", "--source", tmp_path / "missing")
    assert_clean(code, output, {int(ExitCode.ENVIRONMENT)})
    assert "no Android NDK found" in output and "source tree" not in output
    if sys.platform != "darwin":
        code, output = cli(capsys, "build", "macos")
        assert_clean(code, output, {int(ExitCode.ENVIRONMENT)})
        assert "Apple Silicon Mac" in output and "source tree" not in output
    ndk = tmp_path / "ndk"  # an NDK as far as the lookup can tell, so the build reaches the source tree
    (ndk / "build" / "cmake").mkdir(parents=True)
    (ndk / "build" / "cmake" / "android.toolchain.cmake").write_text("")
    (ndk / "source.properties").write_text("Pkg.Revision = 27.2.12479018\n")
    (tmp_path / "tree").mkdir()
    code, output = cli(capsys, "build", "android", "--source", tmp_path / "tree", "--ndk", ndk)
    assert_clean(code, output, {int(ExitCode.ENVIRONMENT)})
    assert "point --source at the root" in output and "--path" not in output


def test_step_scripts_find_sme2tui_without_an_active_venv(tmp_path: Path) -> None:
    """`bash scripts/01_doctor.sh` from a checkout whose venv is not active: the checkout's .venv, else a clear
    error (not bash's "cannot execute: Is a directory" from the sme2tui/ source folder)."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "sme2tui").mkdir()  # the source folder bash used to try to execute
    for name in ("_sme2tui.sh", "01_doctor.sh", "05_analyze.sh"):
        shutil.copy(REPO / "scripts" / name, checkout / "scripts" / name)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "scripts/01_doctor.sh"], cwd=checkout, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == ExitCode.ENVIRONMENT and "Is a directory" not in done.stderr
    assert "bash scripts/setup.sh" in done.stderr
    venv = checkout / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "sme2tui").write_text('#!/bin/sh\necho "sme2tui $*"\n')
    (venv / "sme2tui").chmod(0o755)
    done = subprocess.run(["bash", str(checkout / "scripts" / "05_analyze.sh"), "runs/x"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "sme2tui analyze runs/x", done.stderr


@pytest.mark.parametrize("field,value", [("variant", "portable"), ("threads", 8), ("model", "other"),
                                         ("dtype", "int8")])
def test_a_manifest_cannot_relabel_a_cell(field: str, value: Any, run_copy: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """What a cell is comes from the run's (hash-checked) config: an edited manifest copy of it changes no label,
    so the xnnpack cell is never reported as a second "portable" or as an 8-thread cell."""
    _rewrite("manifest.json", lambda d: _set(value, "cells", CELL.removeprefix("cells/"), field)(d))(run_copy)
    code, output = cli(capsys, "analyze", run_copy)
    assert_clean(code, output, {0})
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    cell = summary["cells"][CELL.removeprefix("cells/")]
    assert (cell["model"], cell["dtype"], cell["variant"], cell["threads"]) == ("mobilenet_quick", "fp32", "xnnpack",
                                                                               1)
    (pair,) = summary["pairs"]
    assert (pair["baseline"], pair["candidate"], pair["threads"]) == ("portable", "xnnpack", 1)


def test_compare_makes_no_speedup_of_emulated_time(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite("analysis/summary.json", _set("emulated", "target"))(run_copy)
    for argv in (["compare", run_copy, REFERENCE], ["compare", REFERENCE, run_copy]):
        code, output = cli(capsys, *argv)
        assert_clean(code, output, {int(ExitCode.CONFIG)})
        assert "emulated target" in output and "×" not in output


def test_resume_refuses_a_program_that_changed_since_the_run_started(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A ready .pte replaced before --resume: the measured cells ran the old program, so resuming would pair
    two programs (and label the new one with the old one's dtype). Refused; the run's own copy is untouched."""
    program = tmp_path / "model.pte"
    shutil.copyfile(READY_PTE, program)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"name": "swap", "models": [{"pte": str(program)}], "threads": [1], "warmup": 1,
                                  "iterations": 3, "rounds": 1}))
    code, output = cli(capsys, "--auto", "--config", config, "--output-root", tmp_path / "runs")
    assert code == 0, output
    (run,) = (tmp_path / "runs").iterdir()
    manifest = _manifest(run)
    manifest["cells"][next(iter(manifest["cells"]))]["status"] = "failed"
    (run / "manifest.json").write_text(json.dumps(manifest))
    copies = {p.name: p.read_bytes() for p in (run / "programs").iterdir()}
    shutil.copyfile(READY_PTE.with_name("int8_xnnpack.pte"), program)  # re-exported meanwhile
    code, output = cli(capsys, "--auto", "--resume", run)
    assert_clean(code, output, {int(ExitCode.CONFIG)})
    assert "changed since this run started" in output and str(config) in output
    assert {p.name: p.read_bytes() for p in (run / "programs").iterdir()} == copies


def test_a_pair_measured_in_different_sessions_is_flagged(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After a resume that re-measured one cell of a pair, the two sides were not interleaved: the speedup is
    still shown, with a warning that says so and how to measure both together."""
    code, output = cli(capsys, "analyze", run_copy)
    assert code == 0 and "not measured interleaved" not in output, output
    _rewrite(f"{CELL}/timing.json", _set([], "interleaved_with"))(run_copy)  # what the resumed session writes
    code, output = cli(capsys, "analyze", run_copy)
    assert_clean(code, output, {0})
    warnings = json.loads((run_copy / "analysis" / "summary.json").read_text())["warnings"]
    assert any("not measured interleaved (a resume re-measured one of them)" in w for w in warnings), warnings
    assert "delete cells/mobilenet_quick__fp32__portable__t1 and cells/mobilenet_quick__fp32__xnnpack__t1" in output


def test_a_lock_file_that_is_a_fifo_is_refused_with_a_fix(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(run_copy / ".lock")
    code, output = cli(capsys, "analyze", run_copy)
    assert_clean(code, output, {int(ExitCode.CONFIG)})
    assert ".lock is not a regular file" in output and "delete it" in output


def test_paths_with_terminal_escapes_are_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder named with an escape sequence (or a runner's output, a kit's file name) is printed as visible
    \\u001b text; the user's terminal never receives the sequence."""
    odd = tmp_path / "a\x1b[2Jb\u202e"
    odd.mkdir()
    code, output = cli(capsys, "analyze", odd)
    assert_clean(code, output, {int(ExitCode.CONFIG)})
    assert "\x1b" not in output and "\u202e" not in output and "a\\u001b[2Jb\\u202e" in output


def test_analyze_of_a_run_with_no_measured_cell_says_so(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite("manifest.json", _set({}, "cells"))(run_copy)
    before = tree_hashes(run_copy)
    code, output = cli(capsys, "analyze", run_copy)
    assert_clean(code, output, {int(ExitCode.ANALYSIS)})
    assert "is measured: there is nothing to analyze" in output and "--resume" in output
    assert tree_hashes(run_copy) == before  # the previous analysis is not replaced by an empty one
