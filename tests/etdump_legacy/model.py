"""What an ETDump holds once read: profile events grouped into iterations (plain, immutable data)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

EventKind = Literal["total", "load", "wrapper", "delegated_op", "operator"]

# Inspector's rule for a start time later than the end time (`Event._calculate_elapsed_time`): assume a
# 32-bit tick counter wrapped around. The reader rejects backwards events outside 32 bits, so `duration`
# never has to fail.
_MAX_U32 = 2**32 - 1


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    """One profile event as logged by the runtime.

    `name` is what ExecuTorch's Inspector shows as `Event.name`: for an event with a delegate debug id
    (e.g. XNNPACK's "Convolution (NHWC, F32) IGEMM #1") it is that id, otherwise the logged name.
    """

    name: str
    chain_index: int
    instruction_id: int
    delegate_debug_id_int: int
    delegate_debug_id_str: str | None
    start: int
    end: int
    kind: EventKind
    parent: int

    @property
    def duration(self) -> int:
        """Elapsed ticks (`end - start`), with Inspector's 32-bit wrap-around rule."""
        if self.end >= self.start:
            return self.end - self.start
        return (_MAX_U32 - self.start) + self.end


@dataclass(frozen=True, slots=True)
class Iteration:
    """One `Method::execute` call: its total and every profile event it logged, in file order."""

    index: int
    total: int
    events: tuple[ProfileEvent, ...]


@dataclass(frozen=True, slots=True)
class EtdumpTrace:
    """A whole ETDump file: load-time events plus one `Iteration` per execute call (warmups included)."""

    path: Path
    version: int
    ticks_per_ns: float
    iterations: tuple[Iteration, ...]
    load_events: tuple[ProfileEvent, ...]
    event_count: int

    def leaf_events(self, iteration: Iteration) -> list[ProfileEvent]:
        """Events whose time is not also counted by another event of the iteration.

        That excludes the total, load events and wrappers that have children; a wrapper without children
        (e.g. a delegate that logs no internal events) is itself the finest measurement, so it stays.
        """
        parents = {event.parent for event in iteration.events}
        return [
            event
            for index, event in enumerate(iteration.events)
            if event.kind not in ("total", "load") and not (event.kind == "wrapper" and index in parents)
        ]


def _fast_event_factory() -> Callable[[str, int, int, int, str | None, int, int, EventKind, int], ProfileEvent]:
    """A constructor for ProfileEvent about twice as fast as the frozen dataclass `__init__`.

    The reader builds one ProfileEvent per event (200k+ per file) and the generated frozen `__init__`
    goes through `object.__setattr__` by name for each of the nine fields, which dominated read time.
    Setting the slots through their descriptors gives an identical object (tests compare the two).
    """
    new = object.__new__
    (s_name, s_chain, s_instr, s_dd_int, s_dd_str, s_start, s_end, s_kind, s_parent) = (
        getattr(ProfileEvent, field.name).__set__ for field in fields(ProfileEvent)
    )

    def make(
        name: str,
        chain_index: int,
        instruction_id: int,
        delegate_debug_id_int: int,
        delegate_debug_id_str: str | None,
        start: int,
        end: int,
        kind: EventKind,
        parent: int,
    ) -> ProfileEvent:
        event = new(ProfileEvent)
        s_name(event, name)
        s_chain(event, chain_index)
        s_instr(event, instruction_id)
        s_dd_int(event, delegate_debug_id_int)
        s_dd_str(event, delegate_debug_id_str)
        s_start(event, start)
        s_end(event, end)
        s_kind(event, kind)
        s_parent(event, parent)
        return event

    return make


make_event: Final = _fast_event_factory()


def iteration_total_ns(trace: EtdumpTrace) -> list[float]:
    """Per-iteration `Method::execute` time in nanoseconds, warmups included, in execution order."""
    return [iteration.total / trace.ticks_per_ns for iteration in trace.iterations]
