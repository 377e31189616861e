"""Command lines for process-level runners, shared by the host and Android targets.

Two flavours: our `sme2_runner` (in-process warmup, per-iteration timing JSON, real inputs) and upstream
`executor_runner` (SME2 pair builds). Upstream has no --warmup: it runs warmup + iterations executions
in one process and the analysis drops the first `warmup` ETDump iterations — warmup still happens in the
same process, never in a separate one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RunnerFlavour = Literal["sme2_runner", "executor_runner"]


@dataclass(frozen=True)
class RoundPlan:
    index: int
    warmup: int
    iterations: int


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
) -> list[str]:
    if flavour == "sme2_runner":
        argv = [binary, f"--model_path={pte}", f"--num_executions={iterations}", f"--warmup={warmup}",
                f"--cpu_threads={threads}"]
        if timing_json:
            argv.append(f"--timing_json={timing_json}")
    else:
        argv = [binary, f"--model_path={pte}", f"--num_executions={warmup + iterations}", f"--cpu_threads={threads}"]
    if etdump:
        argv.append(f"--etdump_path={etdump}")
    if inputs:
        argv.append(f"--inputs={','.join(inputs)}")
    return argv
