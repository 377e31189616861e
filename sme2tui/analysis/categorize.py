"""The one categorizer. Rules are data (`configs/categories.json`, overridable); this module applies them.

Every event name gets exactly one category: CONV, GEMM, DATA_MOVEMENT, ELEMENTWISE or OTHER. A name no rule
matches lands in OTHER *and* is reported as unknown, so nobody is silently misled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sme2tui.errors import ConfigError

CATEGORIES = ("CONV", "GEMM", "DATA_MOVEMENT", "ELEMENTWISE", "OTHER")
OVERHEAD = "OVERHEAD"
ALL_BUCKETS = (*CATEGORIES, OVERHEAD)
DEFAULT_RULES = Path(__file__).resolve().parent.parent / "data" / "categories.json"

_SUFFIX = re.compile(r"\s+#\d+$")


@dataclass(frozen=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    note: str


@dataclass(frozen=True)
class Categorization:
    category: str
    known: bool  # False: no rule matched (reported as unknown)
    rule: str  # the regex that matched, for explaining a placement


def normalize_name(name: str) -> str:
    """'Convolution (NHWC, F32) IGEMM #3' -> 'Convolution (NHWC, F32) IGEMM'; 'native_call_mean.out' -> 'mean.out'."""
    name = _SUFFIX.sub("", name.strip())
    return name.removeprefix("native_call_")


class Categorizer:
    def __init__(self, rules: list[Rule], source: str) -> None:
        self.rules = rules
        self.source = source
        self._by_name: dict[str, Categorization] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> Categorizer:
        return _load(str(path or DEFAULT_RULES))

    def categorize(self, name: str) -> Categorization:
        # Traces repeat a few hundred names millions of times: normalize and match each name once.
        known = self._by_name.get(name)
        if known is None:
            known = self._by_name[name] = self._categorize(normalize_name(name))
        return known

    @lru_cache(maxsize=4096)  # noqa: B019  (categorizers live for the whole process; names repeat a lot)
    def _categorize(self, normalized: str) -> Categorization:
        for rule in self.rules:
            if rule.pattern.search(normalized):
                return Categorization(rule.category, True, rule.pattern.pattern)
        return Categorization("OTHER", False, "")


@lru_cache(maxsize=8)
def _load(path: str) -> Categorizer:
    from sme2tui.config_json import loads, read_config_text

    text = read_config_text(Path(path), what="category rules", missing_fix="check the --categories path")
    data = loads(text, path)  # bounded read; duplicate keys, bad JSON: ConfigError
    fix = "compare with configs/categories.json: {\"rules\": [{\"category\": \"CONV\", \"match\": \"REGEX\"}, …]}"
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        got = _json_type(data) if not isinstance(data, dict) else f"`rules` as {_json_type(data.get('rules'))}"
        raise ConfigError(f"category rules must be a JSON object with a `rules` list (got {got})", where=path, fix=fix)
    rules = []
    for i, raw in enumerate(data["rules"]):
        where = f"{path}: rules[{i}]"
        if not isinstance(raw, dict) or raw.get("category") not in CATEGORIES or "match" not in raw:
            raise ConfigError("each rule needs `category` (one of " + ", ".join(CATEGORIES) + ") and `match`",
                              where=where, fix=fix)
        if not isinstance(raw["match"], str) or not isinstance(raw.get("note", ""), str):
            raise ConfigError("`match` (and `note`) must be strings", where=where,
                              fix="write the regular expression as a JSON string")
        try:
            pattern = re.compile(raw["match"], re.IGNORECASE)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ConfigError(f"bad regular expression: {exc}", where=where, fix="fix the `match` regex") from None
        rules.append(Rule(raw["category"], pattern, raw.get("note", "")))
    if not rules:
        raise ConfigError("no rules in the category file", where=path, fix="compare with configs/categories.json")
    return Categorizer(rules, path)


def _json_type(value: object) -> str:
    kinds = ((bool, "true/false"), (dict, "an object"), (list, "an array"), (str, "a string"), (int, "a number"),
             (float, "a number"))
    return "nothing" if value is None else next((name for t, name in kinds if isinstance(value, t)), "a value")


_TYPES = re.compile(r"\(([^)]*)\)\s*(\S.*)?$")


def kernel_info(name: str) -> tuple[str, bool]:
    """(kernel family, KleidiAI?) from an XNNPACK name such as 'Fully Connected (NC, QP8, F32, QC4W) GEMM'.

    KleidiAI micro-kernels use packed types whose names carry a 'P': PF16, PF32, QP8, PQS8.
    """
    match = _TYPES.search(normalize_name(name))
    if not match:
        return "", False
    types = [t.strip() for t in match.group(1).split(",")]
    family = (match.group(2) or "").strip()
    kleidi = any(re.fullmatch(r"P[A-Z0-9]+|QP\d+", t) for t in types)
    label = ", ".join(types) + (f" {family}" if family else "")
    return label, kleidi
