"""What a kit experiment is, read from its name and runner path (the kit has no field for either).

The kit's conventions (its configs/templates and `build_runners.sh`): experiments are named
`<platform>_sme2_on` / `<platform>_sme2_off` (`android_…`, `mac_…`, with `_trace` for kernel-log runs), and
runners live in `executorch/cmake-out/<preset>/executor_runner` where the SME2-off preset is the on preset
plus `-sme2-off` (`android-arm64-v9a` / `android-arm64-v9a-sme2-off`, `mac-arm64` / `mac-arm64-sme2-off`,
`…-xnnlog` for log-enabled builds). The kit itself decides "off" when a name contains `sme2_off`/`sme2-off`
and "on" for any other name containing `sme2`.

Names are claims, not evidence: sme2tui records the side as what the experiment *claims* (a variant's
`sme2`), checks it against kernel logs where there are any, and never calls a pair of adopted builds an
SME2 comparison it has proven.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Side = Literal["on", "off"]
Platform = Literal["android", "macos", "linux"]

_OFF = re.compile(r"sme2[_-]?off|no[_-]?sme2|sme2[_-]?disabled?|without[_-]?sme2|nosme", re.IGNORECASE)
_ON = re.compile(r"sme2[_-]?on(?![a-z])|sme2[_-]?enabled?|with[_-]?sme2", re.IGNORECASE)
_SME2 = re.compile(r"sme2", re.IGNORECASE)
_SIDE_WORD = re.compile(r"(sme2[_-]?)(on|off)(?![a-z])", re.IGNORECASE)
_PLATFORM_WORDS: dict[str, Platform] = {
    "android": "android", "mac": "macos", "macos": "macos", "darwin": "macos", "apple": "macos", "m4": "macos",
    "m5": "macos", "osx": "macos", "linux": "linux", "host": "linux", "x86": "linux", "x86_64": "linux",
}
_TRACE = re.compile(r"(^|[_-])(trace|xnntrace|xnnlog|kernellog|log)($|[_-])", re.IGNORECASE)


@dataclass(frozen=True)
class Inferred:
    value: str | None
    reason: str


def side_from_text(text: str) -> Side | None:
    if _OFF.search(text):
        return "off"
    if _ON.search(text):
        return "on"
    return None


def preset_of(runner_path: str) -> str | None:
    """`executorch/cmake-out/<preset>/executor_runner` → `<preset>` (the folder the binary sits in)."""
    parent = PurePosixPath(runner_path.replace("\\", "/")).parent.name
    return parent or None


def sme2_side(name: str, runner_path: str | None, other_runner_paths: list[str]) -> Inferred:
    """The SME2 side an experiment claims, with the reason; None when nothing says (or they disagree)."""
    by_name = side_from_text(name)
    by_path: Side | None = None
    path_reason = ""
    if runner_path:
        preset = preset_of(runner_path) or ""
        by_path = side_from_text(preset)
        if by_path is not None:
            path_reason = f"runner preset `{preset}`"
        elif preset and any(preset_of(p) == f"{preset}-sme2-off" for p in other_runner_paths):
            # The kit's build script names the pair <preset> and <preset>-sme2-off.
            by_path, path_reason = "on", f"runner preset `{preset}` (its pair is `{preset}-sme2-off`)"
    if by_name and by_path and by_name != by_path:
        return Inferred(None, f"name `{name}` says SME2 {by_name} but {path_reason} says {by_path}: left unclaimed")
    if by_name:
        return Inferred(by_name, f"name `{name}`")
    if by_path:
        return Inferred(by_path, path_reason)
    if _SME2.search(name):
        return Inferred("on", f"name `{name}` contains `sme2` (the kit reads that as SME2 on)")
    return Inferred(None, "neither the name nor the runner path says")


def platform(name: str, runner_path: str | None) -> Inferred:
    """Where the experiment ran: android (adb), macos or linux (this host), from the name, then the runner path."""
    for word in re.split(r"[_\-. ]+", name.lower()):
        if word in _PLATFORM_WORDS:
            return Inferred(_PLATFORM_WORDS[word], f"name `{name}`")
    if runner_path:
        text = runner_path.replace("\\", "/").lower()
        if text.startswith("/data/local/tmp"):
            return Inferred("android", f"device path `{runner_path}`")
        for part in PurePosixPath(text).parts:
            word = re.split(r"[_\-.]", part)[0]
            if word in _PLATFORM_WORDS:
                return Inferred(_PLATFORM_WORDS[word], f"runner path `{runner_path}`")
    return Inferred(None, "neither the name nor the runner path says")


def is_trace_name(name: str) -> bool:
    """A kernel-log (trace) experiment by name, e.g. `mac_sme2_on_trace`."""
    return bool(_TRACE.search(name))


def base_name(name: str) -> str:
    """The name without its trace suffix: `mac_sme2_on_trace` → `mac_sme2_on` (pairs a trace with its timing run)."""
    return re.sub(r"[_-](trace|xnntrace|xnnlog|kernellog)$", "", name, flags=re.IGNORECASE)


def counterpart(name: str) -> str | None:
    """`android_sme2_off` → `android_sme2_on` and back (same spelling), None when the name has no side."""
    match = _SIDE_WORD.search(name)
    if match is None:
        return None
    other = {"on": "off", "off": "on"}[match.group(2).lower()]
    if match.group(2).isupper():
        other = other.upper()
    return name[:match.start(2)] + other + name[match.end(2):]
