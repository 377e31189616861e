"""The step guides: one Markdown page per step under `docs/steps/`, read as six blocks.

One source, two renderings: the pages are the documentation people read on GitHub, and the wizard shows the
same text for each of its steps (`why_text` for the one-line "why", `guide_markdown` for the guide pane).
So a fix to a page fixes the wizard too, and the docs tests (which check every command and every sample on
the pages) cover what the wizard shows.

Torch-free and Textual-free on purpose: the core never imports the UI, and the wizard must be able to show
its guide before any heavy import. The pages reach an installed package through the `sme2tui/data/docs`
symlink (package data follows symlinks when the wheel is built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent / "data" / "docs"
STEPS_DIR = DOCS_DIR / "steps"

# The pages in reading order (file stems under docs/steps/).
STEPS: tuple[str, ...] = (
    "environment",
    "runners",
    "models-and-export",
    "run-on-host",
    "run-on-android",
    "emulated",
    "analyze",
    "your-own-model",
    "agents-and-ci",
)

# The six `##` blocks every page has, in this order, and the StepGuide field each one fills.
BLOCKS: tuple[tuple[str, str], ...] = (
    ("Why this matters", "why"),
    ("Quick start", "quick_start"),
    ("What you should see", "what_you_should_see"),
    ("Check it worked", "check_it_worked"),
    ("Troubleshooting", "troubleshooting"),
    ("Apply it to your model", "apply_to_your_model"),
)

# Wizard step keys (screens/guide.py's WHY and GUIDE dicts) → the page that explains that step.
WIZARD_PAGES: dict[str, str] = {
    "environment": "environment",
    "build": "runners",
    "model": "models-and-export",
    "run": "run-on-host",
    "analyze": "analyze",
    "history": "run-on-host",
}
# The History screen has no page of its own: it shows this `###` section of its page.
HISTORY_SECTION = "Run folders: re-run, edit, resume"

# Blocks the wizard's guide pane shows, under `###` headings (its title bar already says why).
_WIZARD_BLOCKS = ("quick_start", "what_you_should_see", "check_it_worked", "troubleshooting",
                  "apply_to_your_model")

_HEADING = re.compile(r"^## (.+?)[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_IMAGE = re.compile(r"^!\[[^\]]*\]\([^)]*\)\s*$\n?", re.MULTILINE)
_COMMENT = re.compile(r"^<!--.*?-->\s*$\n?", re.MULTILINE)
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"\*\*|__|`")


class GuideError(ValueError):
    """A page is missing, or does not have the six blocks in order (a docs bug; the docs tests catch it)."""


@dataclass(frozen=True)
class StepGuide:
    """One page, split into its six blocks (Markdown, without their `##` headings)."""

    step: str
    title: str
    why: str
    quick_start: str
    what_you_should_see: str
    check_it_worked: str
    troubleshooting: str
    apply_to_your_model: str

    def block(self, field: str) -> str:
        text: str = getattr(self, field)
        return text


def page_path(step: str) -> Path:
    if step not in STEPS:
        raise GuideError(f"unknown step {step!r}; the steps are {', '.join(STEPS)}")
    return STEPS_DIR / f"{step}.md"


def parse_page(text: str, step: str) -> StepGuide:
    """Split a page into its title and six blocks; raise GuideError unless they are exactly the six, in order."""
    title_match = re.match(r"# (.+)\n", text)
    if title_match is None:
        raise GuideError(f"{step}: the page must start with a `# Title` line")
    # Samples can contain Markdown (a report's `## Answer`): look for headings outside code fences only,
    # blanking the fences without moving any offset.
    outside = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    headings = list(_HEADING.finditer(outside))
    names = [m.group(1) for m in headings]
    expected = [name for name, _ in BLOCKS]
    if names != expected:
        raise GuideError(f"{step}: the `##` blocks are {names}, expected exactly {expected}")
    blocks: dict[str, str] = {}
    for index, (match, (_, field)) in enumerate(zip(headings, BLOCKS, strict=True)):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        blocks[field] = text[match.end():end].strip()
    return StepGuide(step=step, title=title_match.group(1).strip(), **blocks)


@cache
def step_guide(step: str) -> StepGuide:
    """The guide of one step (a page stem from STEPS), parsed from its page."""
    path = page_path(step)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuideError(f"{step}: cannot read {path}: {exc}") from exc
    return parse_page(text, step)


def _plain(markdown: str) -> str:
    """Markdown → one plain line: the wizard shows the why-line as plain text (and Rich markup treats `[`)."""
    text = _LINK.sub(r"\1", markdown)
    text = _EMPHASIS.sub("", text)
    return " ".join(text.split())


def _for_terminal(markdown: str) -> str:
    """Drop what a terminal cannot show: images (the wizard draws its own charts) and sample markers."""
    return _COMMENT.sub("", _IMAGE.sub("", markdown)).strip()


def _section(markdown: str, heading: str) -> str:
    """The body of one `### heading` section inside a block (up to the next `###`)."""
    match = re.search(rf"^### {re.escape(heading)}\s*$(.*?)(?=^### |\Z)", markdown, re.MULTILINE | re.DOTALL)
    if match is None:
        raise GuideError(f"no `### {heading}` section")
    return match.group(1).strip()


def _first_paragraph(markdown: str) -> str:
    return markdown.strip().split("\n\n", 1)[0]


def _wizard_page(key: str) -> StepGuide:
    if key not in WIZARD_PAGES:
        raise KeyError(key)
    return step_guide(WIZARD_PAGES[key])


def why_text(key: str) -> str:
    """The wizard's why-line for a wizard step key (environment, build, model, run, analyze, history).

    The first paragraph of the page's "Why this matters", as plain text (same shape as screens/guide.py WHY).
    """
    guide = _wizard_page(key)
    if key == "history":
        return _plain(_first_paragraph(_section(guide.apply_to_your_model, HISTORY_SECTION)))
    return _plain(_first_paragraph(guide.why))


def guide_markdown(key: str) -> str:
    """The wizard's guide pane for a wizard step key: Markdown with `###` sections (shape of screens/guide.py GUIDE).

    The page's blocks after "Why this matters", images and sample markers removed. The run step also points
    at the Android page, and History shows the run-folder section of the run page.
    """
    guide = _wizard_page(key)
    if key == "history":
        section = _section(guide.apply_to_your_model, HISTORY_SECTION)
        return f"### {HISTORY_SECTION}\n{_for_terminal(section)}\n"
    titles = dict((field, name) for name, field in BLOCKS)
    parts = [f"### {titles[field]}\n{_for_terminal(guide.block(field))}" for field in _WIZARD_BLOCKS]
    if key == "run":
        android = step_guide("run-on-android")
        parts.append(f"### On an Android phone\n{_plain(_first_paragraph(android.why))} "
                     "Page: docs/steps/run-on-android.md (`sme2tui --auto --config configs/templates/android.json` "
                     "after `sme2tui devices`).")
    return "\n\n".join(parts) + "\n"


def wizard_why() -> dict[str, str]:
    """Every why-line, keyed like screens/guide.py WHY."""
    return {key: why_text(key) for key in WIZARD_PAGES}


def wizard_guide() -> dict[str, str]:
    """Every guide pane, keyed like screens/guide.py GUIDE."""
    return {key: guide_markdown(key) for key in WIZARD_PAGES}
