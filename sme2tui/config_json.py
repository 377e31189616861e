"""Reading a config file's JSON strictly, before any field is validated.

`json.loads` alone accepts things that later turn into silent mistakes or crashes: duplicate keys (the
last one silently wins), `NaN`/`Infinity`, integers with thousands of digits (Python's int-string limit
raises ValueError), nesting deep enough to exhaust the recursion limit, and strings carrying terminal
escapes or characters that are invalid in XML (they would reach the terminal and the SVG charts). Each of
those becomes a `ConfigError` that names what and where, and the size of what is read is bounded.
"""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from sme2tui.errors import ConfigError

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a real config is a few KB; the bound keeps /dev/zero & co. harmless
MAX_DEPTH = 24  # the deepest real key (target.serials[i]) is 3 levels down
MAX_INT_DIGITS = 30  # the biggest allowed number (seed, 2**32 - 1) has 10 digits
# The description may hold line breaks and tabs; labels, names, paths and keys may not.
MULTILINE_FIELDS = frozenset({"description"})
_BIDI = {0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}


class _TooManyDigits(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


class _Keys(dict[str, Any]):
    """A JSON object that remembers the keys it saw more than once (found and reported after parsing)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = _Keys(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        obj.repeated = tuple(key for key, count in counts.items() if count > 1)
    return obj


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _TooManyDigits(digits)
    return int(text)


def _constant(name: str) -> Any:
    raise ValueError(name)


def describe_char(ch: str) -> str:
    """'U+001B (ESCAPE)' — how an unwanted character is named in messages."""
    name = unicodedata.name(ch, "")
    if not name and ord(ch) < 0x20:
        name = {0x1B: "ESCAPE", 0x07: "BELL", 0x08: "BACKSPACE", 0x0D: "CARRIAGE RETURN", 0x00: "NUL"}.get(
            ord(ch), "control character")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def unsafe_char(text: str, *, multiline: bool = False) -> str | None:
    """The first character that must not reach a terminal, a file name or an XML document, or None.

    Refused: C0/C1 control characters (ESC starts terminal escapes; line breaks and tabs are allowed only
    in free text), DEL, unpaired surrogates (not encodable as UTF-8), bidirectional overrides (they reorder
    what a terminal shows) and the non-characters U+FFFE/U+FFFF (invalid in XML).
    """
    for ch in text:
        code = ord(ch)
        if code < 0x20:
            if multiline and ch in "\n\t":
                continue
            return ch
        if 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in _BIDI or code in (0xFFFE, 0xFFFF):
            return ch
    return None


def shown(text: str, limit: int = 60) -> str:
    """A string as it may be printed: unsafe characters escaped, long text shortened."""
    out = json.dumps(text[:limit])[1:-1]
    return out + ("…" if len(text) > limit else "")


def _path_text(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{shown(part, 40)}" if out else shown(part, 40))
    return out or "(top level)"


def check_tree(data: Any, source: str) -> None:
    """Depth, repeated keys and unsafe characters anywhere in the parsed document (iterative: no recursion)."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise ConfigError(f"the JSON nests deeper than {MAX_DEPTH} levels at `{_path_text(path[:6])}…`",
                              where=source, fix="no config key nests more than 4 levels; remove the nested value")
        if isinstance(node, dict):
            repeated = getattr(node, "repeated", ())
            if repeated:
                key = repeated[0]
                raise ConfigError(
                    f"the key `{shown(key)}` appears more than once in `{_path_text(path)}` (JSON would silently "
                    "keep only the last one)", where=f"{source}: {_path_text([*path, key])}",
                    fix="keep one of them: delete or merge the others")
            for key, value in node.items():
                bad = unsafe_char(key)
                if bad is not None:
                    raise ConfigError(f"a key in `{_path_text(path)}` contains {describe_char(bad)}: "
                                      f"`{shown(key)}`", where=source, fix="remove the character from the key")
                stack.append((value, [*path, key]))
        elif isinstance(node, list):
            stack.extend((value, [*path, i]) for i, value in enumerate(node))
        elif isinstance(node, str):
            last = next((p for p in reversed(path) if isinstance(p, str)), "")
            bad = unsafe_char(node, multiline=last in MULTILINE_FIELDS)
            if bad is not None:
                raise ConfigError(
                    f"`{_path_text(path)}` contains {describe_char(bad)}: \"{shown(node)}\"",
                    where=f"{source}: {_path_text(path)}",
                    fix="remove it; control characters, terminal escapes and bidirectional overrides are not "
                    "allowed in config text (they would reach the terminal, file names and the SVG charts)")


def loads(text: str, source: str) -> Any:
    """Parse config JSON strictly (see the module docstring); raises ConfigError."""
    if not text.strip():
        raise ConfigError("the file is empty", where=source, fix="write a JSON object, e.g. {\"models\": [...]}")
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_integer, parse_constant=_constant)
    except _TooManyDigits as exc:
        match = re.search(rf"\d{{{MAX_INT_DIGITS + 1},}}", text)
        at = f":{_line_col(text, match.start())}" if match else ""
        raise ConfigError(f"a number with {exc.digits} digits (at most {MAX_INT_DIGITS} are accepted)",
                          where=f"{source}{at}", fix="use a number in the allowed range (`sme2tui config schema`)"
                          ) from None
    except RecursionError:
        raise ConfigError(f"the JSON nests too deeply to read (more than {MAX_DEPTH} levels are never needed)",
                          where=source, fix="remove the deeply nested value") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", where=f"{source}:{exc.lineno}:{exc.colno}",
                          fix="fix the JSON syntax at that line (trailing commas and comments are not allowed)"
                          ) from None
    except ValueError as exc:  # NaN / Infinity / -Infinity (parse_constant), or a number Python refuses
        raise ConfigError(f"`{shown(str(exc))}` is not a number JSON allows", where=source,
                          fix="use a finite number") from None
    check_tree(data, source)
    return data


def _line_col(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"{line}:{index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def read_config_text(path: Path, *, what: str = "config",
                     missing_fix: str = "check the path, or create one with `sme2tui init` or from configs/templates/"
                     ) -> str:
    """The file's text, refusing folders, unreadable files, oversized input and non-UTF-8."""
    where = str(path)
    try:
        # Non-blocking open: a FIFO nobody writes to must not hang us (reads block again below, and end at
        # once when no writer has it open; process substitution, `<(…)`, still works).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        os.set_blocking(fd, True)
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}", where=where, fix=missing_fix) from None
    except OSError as exc:
        raise ConfigError(f"cannot open the {what} file: {exc.strerror}", where=where,
                          fix="check the path and its permissions") from None
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise ConfigError(f"{path} is a folder, not a {what} file", where=where,
                              fix="pass the JSON file inside it, e.g. configs/examples/quickstart.json"
                              if what == "config" else "pass the JSON file inside it")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file: {exc.strerror}", where=where,
                          fix="check the path and its permissions") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the {what} file is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MB", where=where,
                          fix="it should be a few KB of JSON; check you passed the right file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file is not UTF-8 text", where=where, fix="save it as UTF-8 JSON") from None
