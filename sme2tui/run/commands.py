"""Command lines for process-level runners, shared by the host and Android targets.

Two flavours: our `sme2_runner` (in-process warmup, per-iteration timing JSON, real inputs) and upstream
`executor_runner` (SME2 pair builds). Upstream has no --warmup: it runs warmup + iterations executions
in one process and the analysis drops the first `warmup` ETDump iterations — warmup still happens in the
same process, never in a separate one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

RunnerFlavour = Literal["sme2_runner", "executor_runner"]


@dataclass(frozen=True)
class RoundPlan:
    index: int
    warmup: int
    iterations: int


# What `sme2_runner --progress` prints on stdout as measured executions finish: "…measured=K/N".
PROGRESS_PREFIX = b"sme2_runner: progress measured="


def last_progress(chunk: bytes) -> int | None:
    """The last measured-execution count in complete lines of sme2_runner --progress output (None: none)."""
    count = None
    for line in chunk.splitlines():
        if line.startswith(PROGRESS_PREFIX):
            done, _, total = line.removeprefix(PROGRESS_PREFIX).partition(b"/")
            total = total.strip()
            # At most 18 digits: a count, not a number Python refuses to convert (over 4300 digits) or to trust.
            if done.isdigit() and total.isdigit() and len(done) <= 18 and len(total) <= 18 and int(done) <= int(total):
                count = int(done)
    return count


PROGRESS_TAIL_BYTES = 4096  # an unfinished stdout line kept between polls; longer ones are no progress line


class ProgressReader:
    """Measured-execution counts from a runner's growing stdout file (sme2_runner --progress), for the host and
    the emulated target alike: complete lines only (an unfinished last line waits for the next poll, bounded),
    and a count never goes back, whatever a runner prints."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._unfinished = b""
        self.measured = 0

    def poll(self) -> bool:
        """Read what the runner wrote since the last poll; True when it reported more measured executions."""
        complete, _, unfinished = (self._unfinished + self._handle.read(1 << 16)).rpartition(b"\n")
        self._unfinished = unfinished[-PROGRESS_TAIL_BYTES:]
        count = last_progress(complete) if PROGRESS_PREFIX in complete else None
        if count is not None and count > self.measured:
            self.measured = count
            return True
        return False


def split_rounds(iterations: int, rounds: int) -> list[int]:
    """Spread iterations over rounds as evenly as possible (never a round with zero iterations)."""
    rounds = max(1, min(rounds, iterations))
    base, extra = divmod(iterations, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


def flavour_of(binary_name: str) -> RunnerFlavour:
    return "sme2_runner" if binary_name.startswith("sme2_runner") else "executor_runner"


def runner_argv(
    flavour: RunnerFlavour,
    binary: str,
    *,
    pte: str,
    threads: int,
    warmup: int,
    iterations: int,
    etdump: str | None,
    timing_json: str | None,
    inputs: list[str] | None,
    progress: bool = False,
) -> list[str]:
    """`progress`: ask sme2_runner for its measured-execution counts as it goes (PROGRESS_PREFIX lines); only
    for a runner that knows the flag (native.supports_progress), an older one refuses unknown flags."""
    if flavour == "sme2_runner":
        argv = [binary, f"--model_path={pte}", f"--num_executions={iterations}", f"--warmup={warmup}",
                f"--cpu_threads={threads}"]
        if timing_json:
            argv.append(f"--timing_json={timing_json}")
        if progress:
            argv.append("--progress")
    else:
        argv = [binary, f"--model_path={pte}", f"--num_executions={warmup + iterations}", f"--cpu_threads={threads}"]
    if etdump:
        argv.append(f"--etdump_path={etdump}")
    if inputs:
        argv.append(f"--inputs={','.join(inputs)}")
    return argv


# A runner's iterations must fit in the round sme2tui timed from outside; the slack covers the granularity of
# the two clocks. Shared by the host, emulated and Android targets.
ROUND_CLOCK_TOLERANCE = 1.05
ROUND_CLOCK_SLACK_S = 0.05


def round_overclaim(warmup_ns: Sequence[int | float], measured_ns: Sequence[int | float],
                    round_seconds: float) -> str | None:
    """Why a runner's own times cannot be measurements of a round that took `round_seconds` from start to exit
    (a runner that made its numbers up, or a broken clock: they would become a speedup), or None."""
    claimed = (sum(warmup_ns) + sum(measured_ns)) / 1e9
    if claimed > round_seconds * ROUND_CLOCK_TOLERANCE + ROUND_CLOCK_SLACK_S:
        return (f"its iterations add up to {claimed:.6g} s, but the whole round took {round_seconds:.3f} s (timed "
                "from outside): its times are not measurements")
    return None
