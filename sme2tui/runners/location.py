"""Where runners live: one folder per user, not one per working directory.

A runners folder relative to the working directory breaks as soon as sme2tui runs from a read-only folder
(a CI checkout, `/`), and builds the same runner again in every folder people run from. The default is the
user's cache (`$XDG_CACHE_HOME/sme2tui/runners`, else `~/.cache/sme2tui/runners`), shared by every run on
this machine; `runners_dir` in a config, `--runners-dir` on the command line or `SME2TUI_RUNNERS_DIR` move
it. Every runner records the sources and toolchain it was built from, so a shared folder never serves a
stale binary, and builds in it take the folder's lock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sme2tui.run.lock import FolderLock

ENV_VAR = "SME2TUI_RUNNERS_DIR"
# Another process building the same runner: wait for it (a build takes seconds), then use what it built.
BUILD_WAIT_S = 900.0


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    if base and Path(base).is_absolute():
        return Path(base) / "sme2tui"
    try:
        return Path.home() / ".cache" / "sme2tui"
    except RuntimeError:  # no HOME and no passwd entry (some containers)
        import tempfile

        return Path(tempfile.gettempdir()) / f"sme2tui-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def default_runners_dir() -> Path:
    configured = os.environ.get(ENV_VAR)
    return Path(configured).expanduser() if configured else user_cache_dir() / "runners"


def runners_root(configured: str | os.PathLike[str] | None) -> Path:
    """The runners folder: what the config or the command line says, else the per-user default."""
    return Path(configured).expanduser() if configured else default_runners_dir()


def lock_build_folder(build_dir: Path, *, action: str, wait_s: float | None = None) -> FolderLock:
    """Every runner build (host, arm64) holds its build folder's lock: two builds in one CMake folder corrupt
    each other, and two runs may want the same runner at once. A second build waits for the first."""
    from sme2tui.run.lock import FolderLock
    from sme2tui.storage import require_writable_folder

    require_writable_folder(build_dir, what_path="runners_dir in the config, or --runners-dir", action=action)
    return FolderLock.acquire(build_dir, purpose="build", what="runner build folder",
                              wait_hint="wait for the other build to finish",
                              wait_s=BUILD_WAIT_S if wait_s is None else wait_s)
