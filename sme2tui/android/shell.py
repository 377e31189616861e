"""Device command lines built from argv lists, so that nothing a user supplies can run anything else.

adbd hands the command string to `/system/bin/sh -c` (mksh on Android). Every argument is wrapped in
single quotes, inside which mksh (like any POSIX shell) expands nothing: not `$()`, backticks, `;`,
globs or newlines. A single quote itself is written as `'\\''` (close, escaped quote, reopen).
Only NUL cannot be carried (the command is a C string), so it is refused.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from sme2tui.android.errors import AndroidDeviceError, Fault

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Words that need no quotes; keeping them bare makes the recorded command lines readable. `=` is not
# among them: a bare first word `A=b` would be an assignment, not a command.
_BARE = re.compile(r"^[A-Za-z0-9_@%+:,./-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPU_MASK = re.compile(r"^(0x)?[0-9a-fA-F]+$")
# The host protocol prefixes a request with 4 hex digits; "shell,v2:" takes 9 of the 65535 bytes.
MAX_COMMAND_BYTES = 65535 - len("shell,v2:")


def quote(arg: str) -> str:
    """One shell word that the device shell reads back as exactly `arg`."""
    if "\x00" in arg:
        raise AndroidDeviceError(
            Fault.UNSAFE,
            "an argument for the device contains a NUL character",
            detail=repr(arg),
            fix="remove the NUL from the name, path or extra argument",
        )
    if _BARE.match(arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def join(argv: Sequence[str]) -> str:
    if isinstance(argv, str):
        # A bare string would be split into characters; demanding a list keeps quoting in one place.
        raise TypeError("argv must be a sequence of arguments, not a string")
    return " ".join(quote(a) for a in argv)


def command_line(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    cpu_mask: str | None = None,
    pidfile: str | None = None,
    pid_record: str | None = None,
) -> str:
    """`cd CWD && NAME=value... taskset MASK argv...`, every user-supplied piece quoted.

    With `pidfile`, the program runs as a background job of the device shell whose pid is written to
    `pidfile` (removed when it ends) and whose exit status (128+N for signal N) becomes the shell's. adbd
    does not kill a pty-less command when the client goes away, so this pid is how a timed-out or
    orphaned run gets stopped (see `kill_line`). With `pid_record` too, the pid is also written there and
    kept: Android logs by pid, so it is how the program's own log is found afterwards (`logcat --pid`).
    """
    if not argv:
        raise ValueError("argv is empty")
    assignments: list[str] = []
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name):
            raise AndroidDeviceError(
                Fault.UNSAFE,
                f"{name!r} is not a valid environment variable name",
                fix="use letters, digits and underscores, not starting with a digit",
            )
        assignments.append(f"{name}={quote(value)}")
    words: list[str] = []
    if cpu_mask is not None:
        if not _CPU_MASK.match(cpu_mask) or int(cpu_mask, 16) == 0:
            raise AndroidDeviceError(
                Fault.UNSAFE,
                f"CPU mask {cpu_mask!r} is not a non-zero hex number",
                fix="write it like f0 (CPUs 4-7) or 80 (CPU 7)",
            )
        words += ["taskset", cpu_mask.lower().removeprefix("0x")]
    words.append(join(argv))
    program = " ".join(words)
    if pid_record is not None and pidfile is None:
        raise ValueError("pid_record needs pidfile (the program must run as a background job)")
    if pidfile is None:
        line = " ".join([*assignments, program])
        if cwd is not None:
            line = f"cd {quote(cwd)} && {line}"
    else:
        # `export` rather than `A=b exec ...`: whether prefix assignments reach an exec'd program is a
        # corner where shells have differed.
        steps = [f"cd {quote(cwd)}"] if cwd is not None else []
        if assignments:
            steps.append("export " + " ".join(assignments))
        steps.append(f"exec {program}")
        pid = quote(pidfile)
        record = f" echo $! > {quote(pid_record)};" if pid_record is not None else ""
        line = (
            f"mkdir -p {quote(posixpath.dirname(pidfile))} && "
            f"{{ ( {' && '.join(steps)} ) & echo $! > {pid};{record} wait $!; rc=$?; rm -f {pid}; exit $rc; }}"
        )
    if len(line.encode()) > MAX_COMMAND_BYTES:
        raise AndroidDeviceError(
            Fault.UNSAFE,
            f"the device command is {len(line.encode())} bytes; ADB carries at most {MAX_COMMAND_BYTES}",
            fix="shorten the extra runner arguments or paths",
        )
    return line


def kill_line(pidfile: str) -> str:
    """Kill the program recorded in `pidfile` (if it still runs) and remove the file; prints "killed"."""
    pid = quote(pidfile)
    return f'[ -f {pid} ] && kill -9 "$(cat {pid})" 2>/dev/null && echo killed; rm -f {pid}'
