"""User-facing errors: each says what is wrong, where, and how to fix it, and carries an exit code.

Anything a user can cause is raised as a `Sme2Error` subclass; the CLI prints it without a traceback.
Anything else is a bug and is reported as `ExitCode.INTERNAL`.
"""

from __future__ import annotations

from sme2tui.exit_codes import ExitCode


class Sme2Error(Exception):
    """An error the user can fix. `what` is the problem, `where` the file/field/device, `fix` the remedy."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix

    def render(self) -> str:
        lines = [f"error: {self.what}"]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.fix:
            lines.append(f"  fix:   {self.fix}")
        return terminal_safe("\n".join(lines))

    def to_dict(self) -> dict[str, str | int | None]:
        return {
            "error": type(self).__name__,
            "what": self.what,
            "where": self.where,
            "fix": self.fix,
            "exit_code": int(self.exit_code),
        }


class ConfigError(Sme2Error):
    exit_code = ExitCode.CONFIG


class EnvironmentProblem(Sme2Error):
    exit_code = ExitCode.ENVIRONMENT


class ExportError(Sme2Error):
    exit_code = ExitCode.EXPORT


class RunError(Sme2Error):
    exit_code = ExitCode.RUN


class AnalysisError(Sme2Error):
    exit_code = ExitCode.ANALYSIS


class DeviceError(Sme2Error):
    exit_code = ExitCode.DEVICE


class CheckpointFailed(Sme2Error):
    exit_code = ExitCode.CHECKPOINT


class Interrupted(Sme2Error):
    exit_code = ExitCode.INTERRUPTED


# Bidirectional overrides and isolates reorder what a terminal shows; C0/C1 controls (but line breaks and tabs)
# and DEL start escape sequences. Paths, runner output and file contents end up in messages: they are shown
# escaped, never interpreted by the user's terminal.
_BIDI = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on (ESC, BEL, CR, C1, bidi overrides, lone surrogates)
    written as a visible \\uXXXX escape."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch not in "\n\t") or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in _BIDI:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
