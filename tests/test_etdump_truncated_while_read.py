"""An ETDump that another process truncates while it is being read (a resumed run rewriting it, a runner writing
the same path) must not kill sme2tui with SIGBUS: the reader never maps the file itself (small files are read
into memory, larger ones are mapped from a private copy), and a file that shrinks before it is copied is refused
with "changed while it was read" (exit 6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sme2tui.etdump import iteration_total_ns, read_etdump
from sme2tui.etdump import reader as etdump_reader
from sme2tui.etdump.errors import EtdumpError
from sme2tui.exit_codes import ExitCode
from tests.conftest import REPO

SOURCE = REPO / "tests" / "data" / "etdump" / "xnnpack_fp32.etdp"
# Truncates the file between opening it and decoding it: with the file itself mapped, the decoder's next read
# of the mapping is a SIGBUS that kills the process (no exception can catch it), hence a child process.
CHILD = """
import json, os, sys
from pathlib import Path
from sme2tui.etdump import iteration_total_ns
from sme2tui.etdump import reader
path = Path(sys.argv[1])
reader.IN_MEMORY_BYTES = int(sys.argv[2])
real = reader.decode
def truncated_meanwhile(buffer, header, release=None):
    os.truncate(path, 0)
    return real(buffer, header, release)
reader.decode = truncated_meanwhile
print(json.dumps(iteration_total_ns(reader.read_etdump(path))))
"""


@pytest.mark.parametrize("in_memory_bytes", [0, 8 * 2**20], ids=["private-copy", "in-memory"])
def test_truncating_the_file_while_it_is_read_does_not_kill_the_reader(tmp_path: Path, in_memory_bytes: int) -> None:
    path = tmp_path / "live.etdp"
    shutil.copy(SOURCE, path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(in_memory_bytes)], capture_output=True,
                           text=True, timeout=120, env=env)
    assert child.returncode == 0, f"the reader died (exit {child.returncode}): {child.stderr[-800:]}"
    assert path.stat().st_size == 0  # the truncation really happened before decoding
    assert json.loads(child.stdout) == iteration_total_ns(read_etdump(SOURCE))  # the data as it was when opened


@pytest.mark.parametrize("in_memory_bytes", [0, 8 * 2**20], ids=["private-copy", "in-memory"])
def test_a_file_that_shrinks_before_it_is_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         in_memory_bytes: int) -> None:
    path = tmp_path / "live.etdp"
    shutil.copy(SOURCE, path)
    real = etdump_reader._header

    def header_then_truncate(*args: object) -> object:
        header = real(*args)  # type: ignore[arg-type]
        os.truncate(path, SOURCE.stat().st_size // 2)  # a writer starts over after the header was checked
        return header

    monkeypatch.setattr(etdump_reader, "_header", header_then_truncate)
    monkeypatch.setattr(etdump_reader, "IN_MEMORY_BYTES", in_memory_bytes)
    with pytest.raises(EtdumpError) as refused:
        read_etdump(path)
    assert "changed while it was read" in refused.value.what and refused.value.fix
    assert refused.value.exit_code == ExitCode.ANALYSIS
