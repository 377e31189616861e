"""Every output sample and diagram in the docs is what the current code produces (scripts/gen_docs.py --check).

Samples are regenerated from deterministic sources (the committed reference run through the real rendering
code, real commands run in-process, the ADB test double); machine-dependent captures are checked for drift
(the checks and checkpoints they show must still be the ones the code emits). If this fails after you changed
an output on purpose: `python scripts/gen_docs.py` and commit the result.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen_docs() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gen_docs", None)


def test_samples_and_diagrams_are_current(gen_docs: ModuleType) -> None:
    problems = gen_docs.process(check=True, capture=False)
    assert not problems, "\n".join(problems) + "\nregenerate with: python scripts/gen_docs.py"


def test_every_marked_block_is_known_and_every_sample_is_used(gen_docs: ModuleType) -> None:
    used = set()
    for path in gen_docs.doc_files():
        for match in gen_docs.MARKER.finditer(path.read_text(encoding="utf-8")):
            kind, name = match.group(1), match.group(2)
            known = gen_docs.SAMPLES if kind == "sample" else gen_docs.CAPTURE_COMMANDS
            assert name in known, f"{path.name}: unknown {kind} {name!r}"
            assert match.group(3).strip().startswith("```"), f"{path.name}: {kind} {name!r} was never generated"
            used.add(name)
    assert set(gen_docs.SAMPLES) | set(gen_docs.CAPTURE_COMMANDS) == used


def test_a_changed_output_makes_its_sample_stale(gen_docs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if `sme2tui models` printed something new: the committed sample must be reported, nothing written.
    before = (ROOT / "docs/steps/models-and-export.md").read_text(encoding="utf-8")
    monkeypatch.setitem(gen_docs.SAMPLES, "models", lambda: "$ sme2tui models\nsomething new")
    problems = gen_docs.process(check=True, capture=False)
    assert problems == ["docs/steps/models-and-export.md: sample 'models' is stale"]
    assert (ROOT / "docs/steps/models-and-export.md").read_text(encoding="utf-8") == before


def test_a_changed_diagram_is_stale(gen_docs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    real = gen_docs.diagrams

    def changed() -> dict[str, str]:
        out: dict[str, str] = real()
        out["pipeline.svg"] = out["pipeline.svg"].replace("sme2tui export", "sme2tui exporter")
        return out

    monkeypatch.setattr(gen_docs, "diagrams", changed)
    assert gen_docs.process(check=True, capture=False) == ["docs/img/pipeline.svg is stale"]


def test_captured_output_that_drifted_from_the_code_is_reported(gen_docs: ModuleType) -> None:
    page = (ROOT / "docs/steps/environment.md").read_text(encoding="utf-8")
    doctor = re.search(r"<!-- captured: doctor -->\n```console\n(.*?)```", page, re.DOTALL)
    assert doctor is not None
    assert gen_docs.check_captured("doctor", doctor.group(1)) == []
    renamed = doctor.group(1).replace(" ✓ cmake:", " ✓ cmake version:")
    assert gen_docs.check_captured("doctor", renamed)
    build = (ROOT / "docs/steps/runners.md").read_text(encoding="utf-8")
    assert gen_docs.check_captured("build-host", build) == []
    assert gen_docs.check_captured("build-host", build.replace("✓ architecture [", "✓ arch check ["))


def test_the_diagrams_describe_themselves(gen_docs: ModuleType) -> None:
    for name, svg in gen_docs.diagrams().items():
        assert "<title" in svg and "<desc" in svg, name
        assert (ROOT / "docs" / "img" / name).is_file(), name
    alts = gen_docs.diagram_alt_texts()
    assert all(len(text.split()) >= 12 for text in alts.values()), alts
