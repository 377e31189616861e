"""Which profile events are totals, load steps, wrappers, delegate-internal ops or plain operators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sme2tui.etdump.model import EventKind

TOTAL_NAME: Final = "Method::execute"
LOAD_NAMES: Final = frozenset({"Method::init", "Program::load_method"})
WRAPPER_NAMES: Final = frozenset({"DELEGATE_CALL", "OPERATOR_CALL"})

_KIND_BY_NAME: Final[dict[str, EventKind]] = {
    TOTAL_NAME: "total",
    **dict.fromkeys(LOAD_NAMES, "load"),
    **dict.fromkeys(WRAPPER_NAMES, "wrapper"),
}

# Kinds as small integers, for the per-event kind column (index = code).
KINDS: Final[tuple[EventKind, ...]] = ("total", "load", "wrapper", "delegated_op", "operator")
KIND_CODES: Final[dict[EventKind, int]] = {kind: code for code, kind in enumerate(KINDS)}
TOTAL: Final = KIND_CODES["total"]
LOAD: Final = KIND_CODES["load"]
WRAPPER: Final = KIND_CODES["wrapper"]
DELEGATED_OP: Final = KIND_CODES["delegated_op"]
OPERATOR: Final = KIND_CODES["operator"]


def kind_of_name(name: str) -> EventKind:
    """Kind of an event without a delegate debug id (those are always "delegated_op")."""
    return _KIND_BY_NAME.get(name, "operator")
