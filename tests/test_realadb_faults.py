"""Device faults through the REAL adb server (see test_realadb.py): a phone that drops mid-push, mid-run or
mid-pull, vanishes, turns unauthorized or goes offline. Each ends in the classified error the manifest
promises, completed cells are kept, and `--resume` finishes once the phone is back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sme2tui.etdump import read_etdump
from sme2tui.exit_codes import ExitCode
from tests.adb_double.device import SME2_PHONE, FakeDevice
from tests.adb_double.real_server import RealAdbLab, real_adb_lab
from tests.adb_double.realadb_pipeline import REALADB, auto, build_host_runner, phone_config
from tests.conftest import run_cli

pytestmark = REALADB


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_host_runner(tmp_path_factory.mktemp("realadb-runners"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RealAdbLab]:
    with real_adb_lab(tmp_path) as lab:
        yield lab


SECOND_GROUP = "t2/"  # the cells with threads=2: device paths .../cells/<model>__<dtype>__<variant>__t2/...


@dataclass(frozen=True)
class Fault:
    inject: Callable[[FakeDevice], None]
    kinds: set[str]  # the error kinds the manifest may promise
    kept: int  # cells completed before the fault, kept by the run
    recover: Callable[[FakeDevice], None] | None = None  # what a person does before --resume


FAULTS = {
    # Everything is pushed during the first group (the second reuses it), so a push fault hits that one.
    "drops mid-push": Fault(lambda p: p.drop_push_after(50_000), {"connection-lost"}, kept=0),
    "drops mid-run": Fault(lambda p: p.fail_shell("--cpu_threads=2", "drop", times=1), {"connection-lost"}, kept=2),
    "drops mid-pull": Fault(lambda p: p.drop_pull_after(100, pattern=SECOND_GROUP), {"connection-lost"}, kept=2),
    # Through the real server a vanished network phone is "offline" while the server retries it.
    "vanishes mid-run": Fault(lambda p: p.fail_shell("--cpu_threads=2", "vanish", times=1), {"offline", "gone"},
                              kept=2, recover=lambda p: p.replug()),
    "turns unauthorized": Fault(lambda p: p.fail_shell("--cpu_threads=2", "reconnect", state="unauthorized",
                                                       times=1),
                                {"unauthorized"}, kept=2, recover=lambda p: setattr(p, "state", "device")),
    "goes offline": Fault(lambda p: p.fail_shell("--cpu_threads=2", "reconnect", state="offline", times=1),
                          {"offline"}, kept=2, recover=lambda p: setattr(p, "state", "device")),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_classified_and_resume_finishes(name: str, runner: Path, lab: RealAdbLab, tmp_path: Path,
                                                 session_root: Path) -> None:
    fault = FAULTS[name]
    phone = lab.add(SME2_PHONE)
    fault.inject(phone)
    config = phone_config(runner, lab, phone.serial, timeout_s=20)
    config["threads"] = [1, 2]  # two groups of cells, one after the other on this phone
    config["rounds"] = 1  # alternation is test_realadb.py's business; here one round per cell is enough
    result, out = auto(config, tmp_path, session_root)
    assert result.returncode in (ExitCode.RUN, ExitCode.DEVICE), result.stderr
    assert "Traceback" not in result.stderr
    run_dir = Path(out["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    failed = {k: c["error"] for k, c in manifest["cells"].items() if c["status"] == "failed"}
    assert failed and {e["kind"] for e in failed.values()} <= fault.kinds, failed
    assert all(e["what"] and e["fix"] for e in failed.values())
    done = {k for k, c in manifest["cells"].items() if c["status"] == "done"}
    assert len(done) == fault.kept and all(k.endswith("__t1") for k in done)
    if fault.recover is not None:
        fault.recover(phone)
    lab.server.wait_for(phone.serial, "device")  # the server reconnects the phone by itself
    resumed = run_cli("--auto", "--json", "--resume", run_dir, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(c["status"] == "done" for c in manifest["cells"].values())
    for cell_id in manifest["cells"]:
        for etdump in (run_dir / "cells" / cell_id).glob("etdump-r*.etdp"):
            assert read_etdump(etdump).iterations
