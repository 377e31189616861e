"""The words on each step: a short "why this matters" line and a guide (what you should see,
troubleshooting, how to apply the step to your own model).

One source, two renderings: the text lives in the documentation pages (docs/steps/*.md, packaged as
sme2tui/data/docs) and `sme2tui.guide` parses them; the wizard shows the same words a reader sees.
"""

from __future__ import annotations

from sme2tui.guide import wizard_guide, wizard_why

WHY: dict[str, str] = wizard_why()
GUIDE: dict[str, str] = wizard_guide()
