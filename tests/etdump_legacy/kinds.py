"""Which profile events are totals, load steps, wrappers, delegate-internal ops or plain operators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tests.etdump_legacy.model import EventKind

TOTAL_NAME: Final = "Method::execute"
LOAD_NAMES: Final = frozenset({"Method::init", "Program::load_method"})
WRAPPER_NAMES: Final = frozenset({"DELEGATE_CALL", "OPERATOR_CALL"})

_KIND_BY_NAME: Final[dict[str, EventKind]] = {
    TOTAL_NAME: "total",
    **dict.fromkeys(LOAD_NAMES, "load"),
    **dict.fromkeys(WRAPPER_NAMES, "wrapper"),
}


def kind_of_name(name: str) -> EventKind:
    """Kind of an event without a delegate debug id (those are always "delegated_op")."""
    return _KIND_BY_NAME.get(name, "operator")
