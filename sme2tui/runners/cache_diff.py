"""Prove an on/off pair differs only in the SME switches, by comparing their configured CMakeCache.txt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sme2tui.errors import CheckpointFailed
from sme2tui.runners.cmake_cache import read_cache
from sme2tui.runners.variants import SME_SWITCHES

if TYPE_CHECKING:
    from pathlib import Path

_BUILD_DIR = "<build-dir>"
# Bookkeeping CMake rewrites on every configure; equal in substance even when the text differs.
_IGNORED = frozenset({"CMAKE_CACHEFILE_DIR"})


@dataclass(frozen=True, slots=True)
class CacheDifference:
    key: str
    on: str | None  # None: the entry is missing on that side
    off: str | None


def _normalised(build_dir: Path) -> dict[str, str]:
    # Paths inside each build folder legitimately differ (…/android-sme2-on/_deps vs …-off/_deps);
    # replacing the folder with a placeholder keeps every other difference visible.
    entries = read_cache(build_dir / "CMakeCache.txt")
    prefixes = sorted({str(build_dir), str(build_dir.resolve())}, key=len, reverse=True)
    out: dict[str, str] = {}
    for key, (_, value) in entries.items():
        if key in _IGNORED or key.endswith("-ADVANCED"):
            continue
        for prefix in prefixes:
            value = value.replace(prefix, _BUILD_DIR)
        out[key] = value
    return out


def diff_pair(on_dir: Path, off_dir: Path) -> list[CacheDifference]:
    """Every cache entry that differs between two configured build folders, except the SME switches."""
    on, off = _normalised(on_dir), _normalised(off_dir)
    return [
        CacheDifference(key, on.get(key), off.get(key))
        for key in sorted(on.keys() | off.keys())
        if key not in SME_SWITCHES and on.get(key) != off.get(key)
    ]


def sme_values(build_dir: Path) -> dict[str, str]:
    entries = read_cache(build_dir / "CMakeCache.txt")
    return {k: entries[k][1] for k in SME_SWITCHES if k in entries}


def require_only_sme_differs(on_dir: Path, off_dir: Path) -> None:
    """Refuse a pair whose configurations differ in anything but the SME switches, naming the flags.

    Also refuses a pair whose SME switches did not take (both sides equal), which would be an on/off
    comparison of two identical builds.
    """
    differences = diff_pair(on_dir, off_dir)
    if differences:
        shown = "; ".join(f"{d.key}: on={d.on!r} off={d.off!r}" for d in differences[:6])
        more = f" (and {len(differences) - 6} more)" if len(differences) > 6 else ""
        raise CheckpointFailed(
            f"the sme2-on and sme2-off builds differ in more than the SME switches: {shown}{more}",
            where=f"{on_dir / 'CMakeCache.txt'} vs {off_dir / 'CMakeCache.txt'}",
            fix="build both variants with identical arguments and toolchain; remove the differing flag "
            "(or delete both build folders if one was configured by hand) and build again",
        )
    on, off = sme_values(on_dir), sme_values(off_dir)
    for switch in SME_SWITCHES:
        if on.get(switch) != "ON" or off.get(switch) != "OFF":
            raise CheckpointFailed(
                f"{switch} is {on.get(switch)!r} in the sme2-on build and {off.get(switch)!r} in the "
                "sme2-off build; expected ON and OFF",
                where=f"{on_dir / 'CMakeCache.txt'} vs {off_dir / 'CMakeCache.txt'}",
                fix="delete both build folders and build the pair again with sme2tui",
            )
