"""Versions of the heavy packages, read from their files without importing them (startup stays light).

Importing `executorch` or `torch` costs seconds; `doctor`, `--help` and manifests only need the version
strings and the git commits, which both packages keep in a plain `version.py`.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from sme2tui import __version__ as TOOL_VERSION

__all__ = ["TOOL_VERSION", "PackageVersion", "package_version"]


@dataclass(frozen=True)
class PackageVersion:
    name: str
    version: str | None  # None: not installed
    git_commit: str | None
    location: str | None


def _read_version_py(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return values
    for node in tree.body:
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            values[target.id] = value.value
    return values


def package_version(name: str) -> PackageVersion:
    """Version and git commit of an installed package such as `torch` or `executorch`."""
    spec = importlib.util.find_spec(name)  # top-level find_spec does not import the package
    if spec is None or not spec.submodule_search_locations:
        return PackageVersion(name, None, None, None)
    root = Path(next(iter(spec.submodule_search_locations)))
    values = _read_version_py(root / "version.py")
    version = values.get("__version__")
    if version is None:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = None
    return PackageVersion(name, version, values.get("git_version"), str(root))
