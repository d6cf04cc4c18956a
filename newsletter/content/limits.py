"""What an article may ask of the renderer: its size, its front matter's aliases, its Markdown's nesting.

Python-Markdown recurses per nesting level and scans a paragraph again for every `[` it cannot close,
and YAML aliases let 400 bytes stand for hundreds of millions of values: a broken or hostile file
could otherwise hold `render`, the preview or `serve` for minutes. These checks are cheap (one pass
over the lines) and run when the article is read, so every command reports the same line.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ARTICLE_BYTES = 5 * 1024 * 1024
MAX_FRONT_MATTER_VALUES = 10_000  # values once aliases are expanded
MAX_NESTING = 32  # list, quote and indentation levels on one line
MAX_OPEN_BRACKETS = 32  # `[` not yet closed within a paragraph
MAX_PARAGRAPH = 64 * 1024  # characters between blank lines (fenced code excepted)

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_MARKER = re.compile(r" {0,3}(?:>|[-*+](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$))[ \t]?")
_BRACKET = re.compile(r"(?<!\\)[\[\]]")  # not \[ or \]


def front_matter_too_deep(text: str, limit: int = MAX_NESTING) -> bool:
    """Whether the front matter's YAML nests deeper than `limit` (PyYAML recurses per level, slowly).

    Counted before parsing: `[`/`{` open at once, and indentation (a level per 2 columns).
    """
    depth = 0
    for char in re.findall(r"[\[\]{}]", text):
        depth = depth + 1 if char in "[{" else max(depth - 1, 0)
        if depth > limit:
            return True
    return any(len(line) - len(line.lstrip(" ")) > 2 * limit for line in text.split("\n"))


def front_matter_too_big(value: Any, limit: int = MAX_FRONT_MATTER_VALUES) -> bool:
    """Whether the front matter holds more than `limit` values with its aliases expanded (or refers to itself).

    A walk that stops at the limit: a YAML alias bomb costs `limit` steps, not its expansion.
    """
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
    return False


def _depth(line: str) -> int:
    """Nesting levels a line opens: a level per 4 columns of indentation, per `>` and per list marker."""
    stripped = line.lstrip(" \t")
    indent = len(line[: len(line) - len(stripped)].expandtabs(4))
    markers, at = 0, 0
    while (found := _MARKER.match(stripped, at)) is not None and found.end() > at:
        markers += 1
        at = found.end()
    return indent // 4 + markers


def markdown_problem(body: str) -> tuple[int, str] | None:
    """(line within `body`, what is wrong and how to fix it) for Markdown past the bounds; None when fine."""
    fence = ""
    paragraph = open_brackets = 0
    for number, line in enumerate(body.split("\n"), 1):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            continue
        if opening:
            fence, paragraph, open_brackets = opening.group(1), 0, 0
            continue
        if not line.strip():
            paragraph = open_brackets = 0
            continue
        depth = _depth(line)
        if depth > MAX_NESTING:
            return number, (
                f"nested {depth} levels deep (lists, quotes or indentation); at most {MAX_NESTING} render: flatten it"
            )
        paragraph += len(line) + 1
        if paragraph > MAX_PARAGRAPH:
            return number, (
                f"a paragraph of more than {MAX_PARAGRAPH:,} characters; break it up with blank lines "
                f"(Markdown slows down badly on longer ones)"
            )
        if "[" in line:
            for bracket in _BRACKET.finditer(line):
                open_brackets = open_brackets + 1 if bracket.group() == "[" else max(open_brackets - 1, 0)
                if open_brackets > MAX_OPEN_BRACKETS:
                    return number, (
                        f"more than {MAX_OPEN_BRACKETS} '[' open at once in a paragraph; close them, or write "
                        f"\\[ for a literal bracket"
                    )
        elif "]" in line:
            open_brackets = max(open_brackets - len(_BRACKET.findall(line)), 0)
    return None
