"""The documented exit codes of every sme2tui command (README "Exit codes" lists the same table)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug in sme2tui: the message points at the saved traceback
    CONFIG = 2  # bad command line, config file, missing input file, unusable path, edited or busy run folder
    ENVIRONMENT = 3  # a required tool or package is missing or too old; the disk is full or read-only
    EXPORT = 4  # the model could not be exported
    RUN = 5  # a cell failed to run (runner crashed, timed out, ...)
    ANALYSIS = 6  # an ETDump or run folder could not be read (damaged, truncated, wrong shape)
    DEVICE = 7  # no usable Android device / ADB server
    CHECKPOINT = 8  # everything ran, but a validation checkpoint failed (numerics, evidence)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: completed work is kept, resume with --resume


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "internal error (a bug); the traceback is saved in ~/.cache/sme2tui/last-error.txt "
    "(printed with --debug)",
    ExitCode.CONFIG: "configuration or usage error (bad key, wrong type, missing file, unknown model, unusable path, "
    "edited or busy run folder)",
    ExitCode.ENVIRONMENT: "environment error (missing or too old tool/package, disk full or read-only)",
    ExitCode.EXPORT: "export failed",
    ExitCode.RUN: "a cell failed to run",
    ExitCode.ANALYSIS: "analysis failed (unreadable ETDump, damaged run folder)",
    ExitCode.DEVICE: "Android device or ADB server problem",
    ExitCode.CHECKPOINT: "finished, but a validation checkpoint failed",
    ExitCode.INTERRUPTED: "interrupted; completed cells are kept, continue with --resume RUN_DIR",
}
