"""What the email's HTML needs beyond what Markdown and premailer write.

Two steps, each one pass of a small tokenizer over start tags (comments, and so Outlook's
conditional comments, are left as they are):

- `article_body`: an article's Markdown HTML before it goes into the theme. Its headings start
  below the email's own title and never skip a level (h1 -> h3 confuses screen readers), a data
  table's header cells get `scope`, and an image whose size nobody knows gets the column's width
  (Outlook shows an image at its own size, however wide, and ignores CSS `max-width`).
- `after_inlining`: what premailer leaves behind. It turns every `background-color`, `text-align`,
  `vertical-align`, `width` and `height` of the stylesheet into an attribute on whatever element has
  it: `bgcolor` on `<pre>` and `<code>`, `width` on `<body>`, `align` on a `<p>`. Those attributes
  are kept where Outlook reads them and HTML knows them (tables and their cells, an image's size,
  the body's colour) and removed elsewhere, but only where the element's own style says the same,
  so nothing a template author wrote by hand is lost.
"""

from __future__ import annotations

import re

from .images import CONTENT_WIDTH

# A comment (kept as is), or a start or end tag with its attributes (quoted values may hold '>').
_TOKEN = re.compile(
    r"""<!--.*?-->|<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>""",
    re.S,
)
_ATTRIBUTE = r"""\s+{name}\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+)"""
_STYLE = re.compile(r"""\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_TABLE_PARTS = {"table", "thead", "tbody", "tfoot", "tr", "td", "th", "col", "colgroup"}
# premailer's attribute, the CSS property it comes from, and the elements where the attribute stays.
_PREMAILER_ATTRIBUTES = {
    "bgcolor": ("background-color", {"body", "table", "tr", "td", "th"}),
    "align": ("text-align", _TABLE_PARTS | {"img"}),
    "valign": ("vertical-align", _TABLE_PARTS),
    "width": ("width", {"table", "td", "th", "col", "colgroup", "img"}),
    "height": ("height", {"table", "td", "th", "img"}),
}
_HEADING = re.compile(r"h([1-6])")


def _has(attributes: str, name: str) -> bool:
    return re.search(_ATTRIBUTE.format(name=name), attributes, re.I) is not None


def _without(attributes: str, name: str) -> str:
    return re.sub(_ATTRIBUTE.format(name=name), "", attributes, flags=re.I)


def _style_properties(attributes: str) -> set[str]:
    match = _STYLE.search(attributes)
    if match is None:
        return set()
    style = match.group(1) if match.group(1) is not None else match.group(2)
    return {part.split(":", 1)[0].strip().lower() for part in style.split(";") if ":" in part}


def after_inlining(html: str) -> str:
    """premailer's output without the presentational attributes HTML does not allow where they landed."""

    def fix(match: re.Match[str]) -> str:
        closing, tag, attributes = match.group(1), (match.group(2) or "").lower(), match.group(3)
        if closing or not tag or not attributes or "=" not in attributes:
            return match.group(0)
        properties = None
        changed = False
        for name, (css, allowed) in _PREMAILER_ATTRIBUTES.items():
            if tag in allowed or not _has(attributes, name):
                continue
            if properties is None:
                properties = _style_properties(attributes)
            if css in properties:
                attributes, changed = _without(attributes, name), True
        return f"<{match.group(2)}{attributes}>" if changed else match.group(0)

    return _TOKEN.sub(fix, html)


def article_body(html: str, top: int) -> str:
    """An article's HTML with headings from `top` down without gaps, `th scope`, and every image sized.

    The levels an article uses are renumbered in order (h1, h3 -> h2, h3 under an email's h1 title);
    an `<img>` without a `width` (a remote image: local ones are sized from their file) gets the
    content column's.
    """
    levels = sorted({int(m.group(2)[1]) for m in _TOKEN.finditer(html) if _HEADING.fullmatch(m.group(2) or "")})
    renumber = {level: min(6, top + rank) for rank, level in enumerate(levels)}
    in_head = False

    def fix(match: re.Match[str]) -> str:
        closing, tag, attributes = match.group(1), (match.group(2) or "").lower(), match.group(3)
        if not tag:
            return match.group(0)
        if _HEADING.fullmatch(tag):
            return f"<{closing}h{renumber[int(tag[1])]}{attributes}>"
        nonlocal in_head
        if tag == "thead":
            in_head = not closing
        elif tag == "th" and not closing and not _has(attributes, "scope"):
            attributes = f' scope="{"col" if in_head else "row"}"' + attributes
            return f"<th{attributes}>"
        elif tag == "img" and not closing and not _has(attributes, "width"):
            self_closing = attributes.rstrip().endswith("/")
            inner = attributes.rstrip()[:-1] if self_closing else attributes
            return f'<img{inner} width="{CONTENT_WIDTH}"{" /" if self_closing else ""}>'
        return match.group(0)

    return _TOKEN.sub(fix, html)
