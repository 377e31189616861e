"""The step pages: six blocks in order, honest SME2 figures, and the wizard's view of the same text (sme2tui.guide)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sme2tui import guide
from sme2tui.guide import BLOCKS, STEPS, WIZARD_PAGES, GuideError, guide_markdown, parse_page, step_guide, why_text

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "steps"
PUBLISHED = json.loads((ROOT / "sme2tui/data/reference/sme2_blog_squeezesam.json").read_text(encoding="utf-8"))


def test_every_page_is_a_step_and_every_step_has_a_page() -> None:
    assert sorted(p.stem for p in PAGES.glob("*.md")) == sorted(STEPS)


@pytest.mark.parametrize("step", STEPS)
def test_page_has_the_six_blocks_in_order_and_none_is_empty(step: str) -> None:
    text = (PAGES / f"{step}.md").read_text(encoding="utf-8")
    outside_code = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    assert re.findall(r"^## (.+)$", outside_code, re.MULTILINE) == [name for name, _ in BLOCKS]
    page = step_guide(step)
    for _, field in BLOCKS:
        assert len(page.block(field)) > 80, f"{step}: {field} is (nearly) empty"


@pytest.mark.parametrize("step", STEPS)
def test_page_shows_a_command_and_real_output(step: str) -> None:
    page = step_guide(step)
    assert "```bash" in page.quick_start, f"{step}: Quick start has no copy/paste commands"
    assert "```bash" in page.check_it_worked, f"{step}: Check it worked has no validation command"
    assert re.search(r"[Ee]xpected", page.check_it_worked), f"{step}: Check it worked states no expected result"
    assert re.search(r"<!-- (sample|captured): ", page.what_you_should_see), (
        f"{step}: What you should see has no generated or captured output")


def test_a_page_with_a_missing_or_moved_block_is_refused() -> None:
    good = (PAGES / "analyze.md").read_text(encoding="utf-8")
    parse_page(good, "analyze")
    missing = good.replace("## Check it worked\n", "## Checks\n")
    swapped = good.replace("## Quick start", "## TMP").replace("## What you should see", "## Quick start").replace(
        "## TMP", "## What you should see")
    extra = good.replace("## Troubleshooting", "## Notes\n\nx\n\n## Troubleshooting")
    for bad in (missing, swapped, extra):
        with pytest.raises(GuideError):
            parse_page(bad, "analyze")


def test_published_sme2_figures_match_the_data_and_are_labelled() -> None:
    published = {(row["sme2_off"], row["sme2_on"]) for row in PUBLISHED["latency"]}
    speedups = {f"{row['speedup']:g}" for row in PUBLISHED["latency"]}
    seen = 0
    for path in [*PAGES.glob("*.md"), ROOT / "AGENTS.md"]:
        text = path.read_text(encoding="utf-8")
        for paragraph in text.split("\n\n"):
            pairs = {(int(a), int(b)) for a, b in re.findall(r"\b(\d{3,4}) → (\d{3}) ms", paragraph)}
            quoted = set(re.findall(r"(?<![\d.])(\d\.\d+)×", paragraph)) if "SqueezeSAM" in paragraph else set()
            if not pairs and not quoted:
                continue
            seen += 1
            assert pairs <= published, f"{path.name}: {pairs - published} are not the published figures"
            assert quoted <= speedups, f"{path.name}: {quoted - speedups} are not the published speedups"
            assert "published" in paragraph.lower(), f"{path.name}: figures not labelled as published: {paragraph[:99]}"
    assert seen >= 6


@pytest.mark.parametrize("step", [s for s in STEPS if s != "agents-and-ci"])
def test_why_block_carries_the_published_figures_where_they_belong(step: str) -> None:
    why = step_guide(step).why
    if step in ("environment", "run-on-host", "run-on-android", "analyze", "your-own-model"):
        assert "not measured here" in why, f"{step}: the published figures are not marked as not measured here"


def test_each_page_says_what_was_verified_here() -> None:
    for step in STEPS:
        text = (PAGES / f"{step}.md").read_text(encoding="utf-8")
        assert re.search(r"[Vv]erified here|[Hh]onest status", text), f"{step}: no statement of what was verified"


# --------------------------------------------------------------------------------------------- the wizard's view


def test_wizard_keys_match_the_screens_dicts() -> None:
    from screens import guide as screens_guide  # plain dicts, no Textual import

    assert set(WIZARD_PAGES) == set(screens_guide.WHY) == set(screens_guide.GUIDE)
    assert set(guide.wizard_why()) == set(screens_guide.WHY)
    assert set(guide.wizard_guide()) == set(screens_guide.GUIDE)


@pytest.mark.parametrize("key", sorted(WIZARD_PAGES))
def test_why_text_is_one_plain_line(key: str) -> None:
    text = why_text(key)
    assert 40 < len(text) < 400
    assert "\n" not in text
    # Static() renders Rich markup: a `[` would be read as a tag; Markdown markers would show literally.
    assert not re.search(r"[\[\]`*]", text), text


@pytest.mark.parametrize("key", sorted(WIZARD_PAGES))
def test_guide_markdown_has_the_screens_shape(key: str) -> None:
    text = guide_markdown(key)
    assert text.startswith("### ") and text.endswith("\n")
    assert "<!--" not in text and "![" not in text
    assert "\n## " not in re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def test_guide_text_is_the_page_text() -> None:
    page = step_guide("analyze")
    wizard = guide_markdown("analyze")
    assert page.troubleshooting.split("\n")[0] in wizard
    assert why_text("analyze") in " ".join(page.why.split())
    assert "run-on-android" in guide_markdown("run")
    assert "resume" in guide_markdown("history") and "resume" in why_text("history")


def test_unknown_keys_and_steps_are_refused() -> None:
    with pytest.raises(KeyError):
        why_text("nope")
    with pytest.raises(GuideError):
        step_guide("nope")


def test_guide_is_light_and_finds_its_pages_through_the_package() -> None:
    assert guide.DOCS_DIR == ROOT / "sme2tui" / "data" / "docs"
    link = ROOT / "sme2tui" / "data" / "docs"
    assert link.is_symlink() and link.resolve() == (ROOT / "docs").resolve()
    code = ("import sys, sme2tui.guide as g; g.wizard_guide(); "
            "bad = [m for m in ('torch', 'executorch', 'textual') if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
