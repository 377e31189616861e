"""What the wizard remembers between steps: plain data (the config as a JSON dict, paths, decisions).

The config is validated by the core (`parse_config`) whenever a step needs a `RunConfig`; the UI itself
never holds pydantic objects, so editing a field can never leave a half-valid model around.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from screens.configedit import named_after_selection
from sme2tui.config import parse_config

if TYPE_CHECKING:
    from sme2tui.config import RunConfig

SELECTION = ("models", "dtypes", "variants", "warmup", "iterations", "target")  # what the Model step chooses
BUILTIN_QUICKSTART = Path(__file__).resolve().parent.parent / "sme2tui" / "data" / "quickstart.json"


@dataclass
class WizardState:
    config_data: dict[str, Any]
    config_source: str
    config_dir: Path | None
    output_root: Path
    host: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None  # the run the Run/Analyze steps show
    resume_dir: Path | None = None  # an interrupted run to continue
    accepted_warnings: list[str] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)
    exported_hash: str = ""  # config (models/dtypes/variants) the Model step exported and checked
    # Started from the built-in quickstart: once the selection differs from it, the config (and so the run
    # folder and report) is named after what was chosen, not "quickstart" with the quickstart's description.
    auto_named: bool = False
    _start: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, config_path: Path | None, output_root: Path | None = None) -> WizardState:
        from sme2tui.config import load_config

        path = config_path or BUILTIN_QUICKSTART
        load_config(path)  # raises the core's ConfigError (what, where, fix) before any screen opens
        data = json.loads(path.read_text(encoding="utf-8"))
        source = str(config_path) if config_path else "built-in quickstart"
        root = output_root or Path(str(data.get("output_root", "runs")))
        state = cls(config_data=data, config_source=source,
                    config_dir=config_path.resolve().parent if config_path else None, output_root=root,
                    auto_named=config_path is None)
        state._start = dict(data)
        return state

    def with_name(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` named after its selection when the wizard names the config (see `auto_named`)."""
        if not self.auto_named:
            return data
        if all(data.get(k) == self._start.get(k) for k in SELECTION):
            return {**data, "name": self._start.get("name"), "description": self._start.get("description", "")}
        return named_after_selection(data)

    def config(self) -> RunConfig:
        """The validated config; raises the core's ConfigError (what, where, fix) when it is not valid."""
        from sme2tui.config import resolve_paths

        config = parse_config(self.config_data, source=self.config_source)
        return resolve_paths(config, base=self.config_dir) if self.config_dir else config

    def export_hash(self) -> str:
        """What an export depends on; changing any of it means exporting (and checking) again."""
        keys = ("models", "dtypes", "variants", "validate_numerics", "seed")
        return json.dumps({k: self.config_data.get(k) for k in keys}, sort_keys=True)

    def replace_config(self, data: dict[str, Any], source: str, config_dir: Path | None) -> None:
        self.config_data = data
        self.config_source = source
        self.config_dir = config_dir
        self.auto_named = False  # a run's or a file's config keeps the name it has
        self.exported_hash = ""
        self.passed.discard("model")
