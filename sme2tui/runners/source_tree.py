"""`sme2tui setup executorch`: get an ExecuTorch source tree to build the SME2 runner pairs from.

Either clone it (with submodules) at a pinned ref, by default the exact commit the installed executorch
wheel was built from, so the runners on the device and the exporter on the host are the same code; or
adopt a tree the user already has, recording its commit and whether it is dirty. An adopted tree is only
ever read: nothing here checks out, resets, or initialises anything in it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme2tui.errors import EnvironmentProblem
from sme2tui.events import Checkpoint, Event, LogLine, StepFinished, StepStarted
from sme2tui.runners.etpackage import find_executorch
from sme2tui.runners.proc import CommandFailed, stream_command
from sme2tui.runners.toolchain import require_free_space

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator, Sequence

UPSTREAM = "https://github.com/pytorch/executorch.git"
# A full clone with submodules is a few GB; a build folder per variant adds about 1 GB each.
_CLONE_BYTES = 6 * 2**30
# Present in every ExecuTorch tree this tool can build from; their absence in a tree that is not a git
# checkout (an unpacked archive) means the submodules were never fetched.
KEY_SUBMODULE_FILES = (
    "backends/xnnpack/third-party/XNNPACK/CMakeLists.txt",
    "third-party/flatbuffers/CMakeLists.txt",
)


@dataclass(frozen=True, slots=True)
class SourceTree:
    path: str
    commit: str
    dirty: bool
    adopted: bool  # True: the user's own tree, never modified
    ref: str = ""  # what was asked for ("" when adopting without --ref)
    remote: str = ""
    version: str = ""  # version.txt at the tree's root, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise EnvironmentProblem(
            "git is not installed",
            where="PATH",
            fix="install git (`apt-get install git`, `xcode-select --install`)",
        )
    return git


def _git_out(path: Path, *args: str) -> str:
    result = subprocess.run([_git(), "-C", str(path), *args], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise EnvironmentProblem(
            f"git {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}",
            where=str(path),
            fix="check that the folder is an intact git checkout of ExecuTorch",
        )
    return result.stdout


def describe_tree(path: Path, *, flag: str = "--path") -> SourceTree:
    """Commit and dirty flag of an ExecuTorch checkout, read-only (`git rev-parse`, `git status`).
    `flag` is the option that named the folder (`--path` for setup, `--source` for builds), for the fix."""
    if not (path / "CMakeLists.txt").is_file():
        raise EnvironmentProblem(
            "this folder is not an ExecuTorch source tree (no CMakeLists.txt at its root)",
            where=str(path),
            fix=f"point {flag} at the root of an ExecuTorch checkout, or let `sme2tui setup executorch` clone one",
        )
    version_file = path / "version.txt"
    version = version_file.read_text().strip() if version_file.is_file() else ""
    if not (path / ".git").exists():
        return SourceTree(path=str(path), commit="", dirty=False, adopted=True, version=version)
    commit = _git_out(path, "rev-parse", "HEAD").strip()
    # --porcelain lists modified tracked files, untracked files and modified submodules; any of them means
    # the binary cannot be reproduced from the commit alone.
    dirty = bool(_git_out(path, "status", "--porcelain").strip())
    return SourceTree(path=str(path), commit=commit, dirty=dirty, adopted=True, version=version)


def missing_submodules(path: Path) -> list[str]:
    """Submodules that are not checked out (from `git submodule status`, else by key files)."""
    missing = [f for f in KEY_SUBMODULE_FILES if not (path / f).is_file()]
    if (path / ".git").exists():
        status = _git_out(path, "submodule", "status", "--recursive")
        # A leading "-" marks a submodule that was never initialised.
        missing += [line.split()[1] for line in status.splitlines() if line.startswith("-")]
    return sorted(set(missing))


def require_submodules(path: Path) -> None:
    missing = missing_submodules(path)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise EnvironmentProblem(
            f"the ExecuTorch source tree is missing submodules: {shown}",
            where=str(path),
            fix=f"run `git -C {path} submodule update --init --recursive` (or let `sme2tui setup executorch` "
            "clone a fresh tree)",
        )


def default_ref() -> str:
    """The commit the installed executorch wheel was built from (read from its version.py)."""
    commit = find_executorch(require_cmake=False).git_commit
    if not commit:
        raise EnvironmentProblem(
            "the installed executorch package does not record the commit it was built from",
            where="executorch/version.py (git_version)",
            fix="pass --ref with the ExecuTorch tag or commit that matches your exporter",
        )
    return commit


def _git_stream(argv: Sequence[str], cwd: Path | None, cancel: threading.Event | None) -> Iterator[Event]:
    try:
        yield from stream_command([_git(), *argv], cwd=cwd, cancel=cancel, source="git")
    except CommandFailed as failed:
        hint = (failed.tail or ["(no output)"])[-1]
        raise EnvironmentProblem(
            f"git {argv[0]} failed (exit {failed.returncode}): {hint}",
            where=str(cwd) if cwd else " ".join(argv),
            fix="check the network/remote and the ref; a failed clone leaves nothing behind, so just retry",
        ) from failed


def _is_local(remote: str) -> bool:
    return remote.startswith("file://") or Path(remote).exists()


def _adopt(path: Path, ref: str | None) -> Iterator[Event]:
    tree = describe_tree(path)
    require_submodules(path)
    yield Checkpoint(
        step="build",
        name="executorch-source",
        status="warn" if tree.dirty or not tree.commit else "pass",
        detail=f"adopted {path} at {tree.commit[:12] or 'an unknown commit (not a git checkout)'}"
        + (" with local changes" if tree.dirty else ""),
        fix="commit or stash the changes so the runners can be reproduced from the commit" if tree.dirty else "",
    )
    if ref:
        wanted = _resolve_local(path, ref)
        if wanted and wanted != tree.commit:
            yield Checkpoint(
                step="build",
                name="executorch-ref",
                status="warn",
                detail=f"the tree is at {tree.commit[:12]}, not at {ref} ({wanted[:12]}); left as it is",
                fix=f"check out {ref} yourself, or run setup without --path to get a clean clone",
            )
    adopted = SourceTree(**{**tree.to_dict(), "ref": ref or ""})
    yield StepFinished(step="build", ok=True, summary=f"using ExecuTorch tree {path}", data=adopted.to_dict())


def _resolve_local(path: Path, ref: str) -> str:
    for candidate in (ref, f"origin/{ref}"):
        result = subprocess.run(
            [_git(), "-C", str(path), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return result.stdout.strip()
    return ""


def _clone(path: Path, ref: str, remote: str, cancel: threading.Event | None) -> Iterator[Event]:
    require_free_space(path.parent, _CLONE_BYTES, "an ExecuTorch clone with submodules")
    # Cloned beside the destination and renamed at the end, so an interrupted clone never looks like a
    # finished tree that a later run would adopt.
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Local remotes (tests, mirrors) use file:// submodules, which git refuses by default since 2.38.
    config = ["-c", "protocol.file.allow=always"] if _is_local(remote) else []
    yield from _git_stream([*config, "clone", "--no-checkout", remote, str(partial)], None, cancel)
    commit = _resolve_local(partial, ref)
    if not commit:
        shutil.rmtree(partial)
        raise EnvironmentProblem(
            f"the ref {ref!r} does not exist in {remote}",
            where=remote,
            fix="pass --ref with an existing tag, branch or commit (default: the installed wheel's commit)",
        )
    yield from _git_stream(["-C", str(partial), "checkout", "--quiet", "--detach", commit], None, cancel)
    yield from _git_stream([*config, "-C", str(partial), "submodule", "update", "--init", "--recursive"], None, cancel)
    partial.replace(path)
    tree = describe_tree(path)
    cloned = SourceTree(**{**tree.to_dict(), "adopted": False, "ref": ref, "remote": remote})
    yield Checkpoint(step="build", name="executorch-source", status="pass", detail=f"cloned {remote} at {commit[:12]}")
    yield StepFinished(step="build", ok=True, summary=f"ExecuTorch {commit[:12]} in {path}", data=cloned.to_dict())


def default_source_dir(ref: str) -> Path:
    """Where a tool-managed clone of `ref` lives: one folder per ref under the user's cache directory,
    so asking for another ref never rewrites an existing tree."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ref)[:40]
    return cache / "sme2tui" / f"executorch-{safe[:12] if re.fullmatch(r'[0-9a-f]{40}', ref) else safe}"


def setup_executorch(
    path: Path | None = None,
    *,
    ref: str | None = None,
    remote: str = UPSTREAM,
    cancel: threading.Event | None = None,
) -> Iterator[Event]:
    """Adopt the ExecuTorch tree at `path` if there is one, else clone `remote` there at `ref`.

    Without `path`, the tree lives in `default_source_dir(ref)` (a clone made by an earlier call for the
    same ref is adopted, not cloned again).

    `ref` defaults to the installed wheel's commit when cloning; when adopting it is only compared (a
    warning if the tree is elsewhere), never checked out. The last event is StepFinished whose `data` is
    `SourceTree.to_dict()`: path, commit, dirty, adopted, ref, remote, version.
    """
    yield StepStarted(step="build", title="Set up the ExecuTorch source tree")
    if path is None:
        ref = ref or default_ref()
        path = default_source_dir(ref)
    path = path.expanduser().resolve()
    if path.exists() and any(path.iterdir()):
        yield LogLine(step="build", text=f"{path} exists: adopting it as is", source="git")
        yield from _adopt(path, ref)
        return
    wanted = ref or default_ref()
    yield LogLine(step="build", text=f"cloning {remote} at {wanted} into {path}", source="git")
    yield from _clone(path, wanted, remote, cancel)
