"""Locate the installed executorch wheel and read its version and git commit without importing it.

Importing executorch pulls in torch (seconds, hundreds of MB); a build only needs two strings from
executorch/version.py and the path of the CMake package, so both are read as files.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from sme2tui.errors import EnvironmentProblem


@dataclass(frozen=True, slots=True)
class ExecutorchPackage:
    root: Path  # site-packages/executorch
    version: str  # e.g. "1.5.1+cpu"
    git_commit: str  # the source commit the wheel was built from ("" if the wheel did not record it)

    @property
    def cmake_dir(self) -> Path:
        return self.root / "share" / "cmake"


def _package_root() -> Path:
    # find_spec on a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem(
            "the executorch Python package is not installed",
            where="this Python environment",
            fix="pip install executorch==1.5.1 torch==2.13.0",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def read_version_file(path: Path) -> tuple[str, str]:
    """(__version__, git_version) from a version.py, evaluated as literals, never executed."""
    version, commit = "", ""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if not isinstance(target, ast.Name) or value is None:
            continue
        try:
            literal = ast.literal_eval(value)
        except ValueError:
            continue
        if target.id == "__version__" and isinstance(literal, str):
            version = literal
        elif target.id == "git_version" and isinstance(literal, str):
            commit = literal
    return version, commit


def find_executorch(require_cmake: bool = True) -> ExecutorchPackage:
    root = _package_root()
    version_file = root / "version.py"
    version, commit = read_version_file(version_file) if version_file.is_file() else ("", "")
    package = ExecutorchPackage(root=root, version=version, git_commit=commit)
    if require_cmake and not (package.cmake_dir / "executorch-config.cmake").is_file():
        raise EnvironmentProblem(
            f"the installed executorch {version or '(unknown version)'} has no CMake package, so a native "
            "runner cannot be built against it",
            where=str(package.cmake_dir),
            fix="install a wheel that ships share/cmake/executorch-config.cmake: "
            "pip install --force-reinstall executorch==1.5.1 torch==2.13.0",
        )
    return package
