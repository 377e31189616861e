"""Read CMakeCache.txt files: entries for manifests, and the on/off comparison that proves a runner pair
differs only in its SME switches."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

_ENTRY = re.compile(r"^(?P<key>[^#/][^:=]*):(?P<type>[A-Z]+)=(?P<value>.*)$")


def read_cache(path: Path) -> dict[str, tuple[str, str]]:
    """Map each cache key to (type, value). Comment lines (# and //) are skipped."""
    entries: dict[str, tuple[str, str]] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = _ENTRY.match(line)
        if match:
            entries[match["key"]] = (match["type"], match["value"])
    return entries


def select(entries: dict[str, tuple[str, str]], prefixes: Iterable[str]) -> dict[str, str]:
    """Cache values whose key starts with one of `prefixes` (exact keys work too), sorted by key."""
    wanted = tuple(prefixes)
    # "-ADVANCED" entries only say whether cmake-gui hides a variable; they describe nothing built.
    return {k: v for k, (_, v) in sorted(entries.items()) if k.startswith(wanted) and not k.endswith("-ADVANCED")}
