"""HTML produced by Markdown -> readable plain text, links as numbered references.

Written here (rather than html2text, which is GPL-3.0) and fed only the Markdown output, whose
tag set is small and known: headings, paragraphs, lists, quotes, code, tables, images, footnotes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from html.parser import HTMLParser

from markupsafe import escape

WIDTH = 72
_BLOCKS = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "table",
    "blockquote",
    "hr",
    "figure",
    "ul",
    "ol",
    "li",
    "tr",
    "dl",
    "dt",
    "dd",
}


@dataclass
class _Frame:
    tag: str
    prefix: str = ""  # added before every line of the block's content (quotes, list indents)
    first_prefix: str | None = None  # prefix of the first line (list bullets)
    counter: int = 0


@dataclass
class Links:
    """Numbered link references shared across one email's text part."""

    urls: list[str] = field(default_factory=list)

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def footer(self) -> str:
        return "\n".join(f"[{i}] {url}" for i, url in enumerate(self.urls, 1))


class _TextWriter(HTMLParser):
    def __init__(self, links: Links, width: int) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.width = width
        self.out: list[str] = []
        self.tight: list[bool] = []  # block sits inside a list item: no blank line before it
        self.inline: list[str] = []
        self.stack: list[_Frame] = []
        self.href: list[str | None] = []
        self.link_text: list[list[str]] = []
        self.pre = 0
        self.skip = 0
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.rows: list[tuple[list[str], bool]] = []
        self.header_row = False
        self.sups: list[bool] = []  # open <sup> tags: True for footnote references

    # -- helpers ---------------------------------------------------------
    def _prefix(self) -> tuple[str, str]:
        first = rest = ""
        for frame in self.stack:
            rest += frame.prefix
            first += frame.first_prefix if frame.first_prefix is not None else frame.prefix
        return first, rest

    def _flush(self, heading: str | None = None) -> None:
        text = "".join(self.inline)
        self.inline = []
        if self.pre:
            return
        text = " ".join(text.split())
        if not text:
            return
        first, rest = self._prefix()
        # A list item's bullet is printed once: later blocks of the same item indent instead.
        for frame in self.stack:
            if frame.first_prefix is not None:
                frame.first_prefix = None
        if heading == "h1":
            self._add(f"{first}{text}\n{first}{'=' * min(len(text), self.width)}")
        elif heading == "h2":
            self._add(f"{first}{text}\n{first}{'-' * min(len(text), self.width)}")
        elif heading:
            self._add(f"{first}{'#' * int(heading[1])} {text}")
        else:
            self._add(
                textwrap.fill(
                    text,
                    width=self.width,
                    initial_indent=first,
                    subsequent_indent=rest,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )

    def _add(self, block: str) -> None:
        self.out.append(block)
        self.tight.append(any(f.tag == "li" for f in self.stack))

    def _emit(self, text: str) -> None:
        if self.cell is not None:
            self.cell.append(text)
        else:
            self.inline.append(text)
        for parts in self.link_text:
            parts.append(text)

    # -- parser callbacks ----------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self.skip:
            self.skip += tag not in {"br", "img", "hr"}
            return
        if tag in {"style", "script"} or (tag == "a" and "footnote-backref" in (a.get("class") or "")):
            self.skip = 1
            return
        if tag in _BLOCKS and tag not in {"tr"} and self.cell is None:
            self._flush()
        if tag == "blockquote":
            self.stack.append(_Frame(tag, prefix="> "))
        elif tag in {"ul", "ol"}:
            self.stack.append(_Frame(tag))
        elif tag == "li":
            parent = next((f for f in reversed(self.stack) if f.tag in {"ul", "ol"}), None)
            in_notes = any(f.tag == "footnotes" for f in self.stack)
            if parent is not None and parent.tag == "ol":
                parent.counter += 1
                bullet = f"[^{parent.counter}] " if in_notes else f"{parent.counter}. "
            else:
                bullet = "- "
            self.stack.append(_Frame(tag, prefix=" " * len(bullet), first_prefix=bullet))
        elif tag == "pre":
            self.pre += 1
            self.inline = []
        elif tag == "br":
            self._emit("\n" if self.pre else " ")
            if not self.pre and self.cell is None:
                self._flush()
        elif tag == "hr":
            if not (self.stack and self.stack[-1].tag == "footnotes"):
                first, _ = self._prefix()
                self._add(first + "-" * 24)
        elif tag == "img":
            alt = (a.get("alt") or "").strip()
            self._emit(f"[image: {alt}]" if alt else "[image]")
        elif tag == "a":
            self.href.append(a.get("href"))
            self.link_text.append([])
        elif tag == "table":
            self.rows = []
        elif tag == "tr":
            self.row = []
            self.header_row = False
        elif tag in {"td", "th"}:
            self.cell = []
            self.header_row = self.header_row or tag == "th"
        elif tag == "div" and "footnote" in (a.get("class") or ""):
            self.stack.append(_Frame("footnotes"))
        elif tag == "sup":
            is_note = (a.get("id") or "").startswith("fnref")
            self.sups.append(is_note)
            if is_note:
                self._emit("[^")

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        if tag == "a" and self.href:
            href = self.href.pop()
            text = "".join(self.link_text.pop()).strip()
            if href and not href.startswith("#"):
                if href.removeprefix("mailto:") == text:
                    return  # an autolink already shows its address
                self._emit(f" [{self.links.number(href)}]")
            return
        if tag == "sup":
            if self.sups and self.sups.pop():
                self._emit("]")
            return
        if tag == "pre":
            self.pre -= 1
            code = "".join(self.inline).rstrip("\n")
            self.inline = []
            _first, rest = self._prefix()
            self._add("\n".join(f"{rest}    {line}".rstrip() for line in code.split("\n")))
            return
        if tag in {"td", "th"} and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
            return
        if tag == "tr" and self.row is not None:
            self.rows.append((self.row, self.header_row))
            self.row = None
            return
        if tag == "table":
            self._table()
            return
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self._flush(heading=tag)
            return
        if tag in _BLOCKS:
            self._flush()
        if tag in {"blockquote", "ul", "ol", "li"} or (
            tag == "div" and self.stack and self.stack[-1].tag == "footnotes"
        ):
            for i in range(len(self.stack) - 1, -1, -1):
                if self.stack[i].tag == tag or (tag == "div" and self.stack[i].tag == "footnotes"):
                    del self.stack[i:]
                    break

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self._emit(data)

    def _table(self) -> None:
        if not self.rows:
            return
        widths = [0] * max(len(r) for r, _ in self.rows)
        for row, _ in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        first, _ = self._prefix()
        lines = []
        for row, is_header in self.rows:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
            lines.append(first + " | ".join(cells).rstrip())
            if is_header:
                lines.append(first + "-+-".join("-" * w for w in widths))
        self._add("\n".join(lines))
        self.rows = []

    def result(self) -> str:
        self._flush()
        parts: list[str] = []
        for i, block in enumerate(self.out):
            if i:
                parts.append("\n" if self.tight[i] and self.tight[i - 1] else "\n\n")
            parts.append(block)
        return "".join(parts)


def html_to_text(html: str, links: Links | None = None, width: int = WIDTH) -> str:
    """Plain text of a Markdown HTML fragment; links go into `links` as numbered references."""
    writer = _TextWriter(links if links is not None else Links(), width)
    writer.feed(html)
    writer.close()
    return writer.result()


class LazyText:
    """The text of an HTML fragment, made when a template first prints it.

    So the text part numbers its links in the order they appear in it, and a fragment the template
    leaves out (a digest entry's full text when it shows summaries) numbers none: the `Links:` list
    holds only links whose numbers the reader can find above it.
    """

    def __init__(self, html: str, links: Links) -> None:
        self.html = html
        self.links = links
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = html_to_text(self.html, self.links)
        return self._text

    def __bool__(self) -> bool:
        return bool(self.html.strip())

    def __html__(self) -> str:
        """Printed by an HTML template: the text, escaped, numbering nothing in the text part's list."""
        return str(escape(html_to_text(self.html, Links())))
