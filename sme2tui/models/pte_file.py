"""Is this path a ready ExecuTorch program? The cheap checks a model picker can make at once.

A `.pte` is an ExecuTorch `Program` flatbuffer: `executorch/schema/program.fbs` declares
`file_identifier "ET12"`, which flatbuffers store in bytes 4..8 (after the 4-byte root offset). Reading
those 8 bytes tells a program from a typo, a folder, an ETRecord or a truncated download before anything
is queued; what the program computes (dtype, delegation) is read from the program by the export stage.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from sme2tui.errors import ConfigError

PROGRAM_IDENTIFIER = b"ET12"
HEADER_BYTES = 8


@dataclass(frozen=True)
class ProgramFile:
    path: Path  # absolute
    size: int


def check_program_file(path: Path | str, *, where: str = "") -> ProgramFile:
    """The checked program file; ConfigError (what, where, fix) when it is missing, not a regular file, or
    not an ExecuTorch program."""
    given = Path(path).expanduser()
    where = where or str(given)
    try:
        info = given.stat()  # follows symlinks: a link to a program is a program
    except FileNotFoundError:
        raise ConfigError(f"no such file: {given}", where=where,
                          fix="check the path (relative paths start from the folder sme2tui runs in)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {given}: {exc.strerror}", where=where,
                          fix="check the path and its permissions") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{given} is {kind}", where=where, fix="give the path of the .pte file itself")
    try:
        with given.open("rb") as handle:
            header = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {given}: {exc.strerror}", where=where,
                          fix="check the file's permissions") from None
    if len(header) < HEADER_BYTES or header[4:8] != PROGRAM_IDENTIFIER:
        found = header[4:8]
        shown = found.decode("ascii") if found.isascii() and found.isalnum() else found.hex() or "nothing"
        raise ConfigError(
            f"{given.name} is not an ExecuTorch program: no \"{PROGRAM_IDENTIFIER.decode()}\" identifier at "
            f"bytes 4..8 (found {shown})", where=where,
            fix="give the .pte that to_executorch() wrote (not an .etrecord, .etdp or a truncated copy)")
    return ProgramFile(given.absolute(), info.st_size)
