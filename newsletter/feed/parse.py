"""An RSS or Atom document, read by feedparser into plain entries; a malformed one is refused.

feedparser reads every RSS and Atom dialect in use and forgives a lot; what we forgive is less: a
document that is not well-formed XML is refused with its line and column, since what a lenient parse
makes of it is not something to mail to a list. feedparser's own sanitizing and link resolving are
off (convert.py sanitizes with nh3 and resolves links against each entry's own address).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import html
import io
import json
import re
import time
import xml.sax
from dataclasses import dataclass
from typing import Any

import feedparser

from ..errors import FeedError

_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class Entry:
    """One post as the feed gives it: text fields plain, HTML fields as HTML, times as UTC instants."""

    source_id: str
    title: str
    link: str  # the post's address (absolute http(s)), or ""
    published: dt.datetime | None
    author: str
    tags: tuple[str, ...]
    summary_html: str
    content_html: str  # the full content when the feed has it, else ""
    base: str  # where relative links in the content point from
    position: int  # its place in the feed (1 = first), for messages

    @property
    def fingerprint(self) -> str:
        """What the feed says about the post; a change means the post changed on the blog."""
        published = self.published.isoformat() if self.published else ""
        fields = [self.title, self.link, published, self.author, list(self.tags), self.summary_html, self.content_html]
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Feed:
    title: str
    version: str  # rss20, atom10...
    entries: tuple[Entry, ...]
    problems: tuple[str, ...] = ()  # entries left out, one line each


def plain(text: str) -> str:
    """Markup and entities out, whitespace (line breaks included) collapsed: a title, a name."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def _text(detail: Any, value: str) -> str:
    if isinstance(detail, dict) and detail.get("type") in _HTML_TYPES:
        return plain(value)
    return _SPACE.sub(" ", value).strip()


def _time(entry: Any) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if isinstance(parsed, time.struct_time):
            return dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC)
    return None


def _html_of(detail: Any) -> str:
    """HTML of a summary or content; plain text is escaped into paragraphs."""
    value = str(detail.get("value", "")) if isinstance(detail, dict) else ""
    if not value.strip():
        return ""
    if detail.get("type") in _HTML_TYPES:
        return value
    return "".join(f"<p>{html.escape(part.strip())}</p>" for part in re.split(r"\n\s*\n", value) if part.strip())


def _http(url: str) -> str:
    return url if url.lower().startswith(("https://", "http://")) else ""


def _entry(raw: Any, position: int, base: str) -> Entry | str:
    link = _http(str(raw.get("link", "")).strip())
    title = _text(raw.get("title_detail"), str(raw.get("title", "")))
    source_id = _SPACE.sub(" ", str(raw.get("id", "") or raw.get("guid", "") or link)).strip()
    if not source_id:
        if not title:
            return f"entry {position} has no id, link or title: left out"
        seed = f"{title}|{raw.get('published', '')}"
        source_id = f"sha256:{hashlib.sha256(seed.encode()).hexdigest()}"
    contents = [c for c in raw.get("content", []) if isinstance(c, dict) and str(c.get("value", "")).strip()]
    # The richest version the feed offers: HTML over plain text, then the longest.
    contents.sort(key=lambda c: (c.get("type") in _HTML_TYPES, len(str(c.get("value", "")))), reverse=True)
    content_html = _html_of(contents[0]) if contents else ""
    # An xml:base the document itself sets; feedparser otherwise reports the feed's own address, and
    # a post's relative links point from the post (a static site's page bundle), not from the feed.
    content_base = str(contents[0].get("base") or "") if contents else ""
    if content_base == base:
        content_base = ""
    summary_html = _html_of(raw.get("summary_detail") or {"type": "text/html", "value": raw.get("summary", "")})
    author_detail = raw.get("author_detail") or {}
    author = str(author_detail.get("name") or "") if isinstance(author_detail, dict) else ""
    if not author and "@" not in str(raw.get("author", "")):
        author = str(raw.get("author", ""))
    tags: list[str] = []
    for tag in raw.get("tags", []) or []:
        name = plain(str(tag.get("label") or tag.get("term") or ""))
        if name and name.lower() not in {t.lower() for t in tags}:
            tags.append(name)
    return Entry(
        source_id=source_id,
        title=title,
        link=link,
        published=_time(raw),
        author=plain(author),
        tags=tuple(tags),
        summary_html=summary_html,
        content_html=content_html,
        base=_http(content_base) or link or _http(base),
        position=position,
    )


def parse(body: bytes, name: str, base: str = "") -> Feed:
    """The entries of an RSS or Atom document; a FeedError naming what is wrong when it is neither."""
    headers = {"content-location": base} if base else None
    # Bytes in a file object: feedparser would open a bytes or str argument as a path or a URL.
    parsed = feedparser.parse(
        io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False, response_headers=headers
    )
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if isinstance(problem, _HARMLESS):
        problem = None
    if isinstance(problem, xml.sax.SAXParseException):
        raise FeedError(
            f"{name}: not a well-formed feed (line {problem.getLineNumber()}, column {problem.getColumnNumber()}: "
            f"{problem.getMessage()}); nothing was written: fix the feed or tell the blog's owner"
        )
    version = str(parsed.get("version") or "")
    if not version:
        what = "an empty document" if not body.strip() else "neither RSS nor Atom"
        start = body.lstrip()[:15].decode("utf-8", "replace").lower()
        if start.startswith(("<!doctype html", "<html")):
            what = "a web page, not a feed"
        raise FeedError(f"{name}: {what}; give the address of the blog's RSS or Atom feed (often /feed/ or /index.xml)")
    if problem is not None:
        raise FeedError(f"{name}: the feed cannot be read ({problem}); nothing was written")
    entries: list[Entry] = []
    problems: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(parsed.get("entries", []), start=1):
        found = _entry(raw, position, base)
        if isinstance(found, str):
            problems.append(found)
        elif found.source_id not in seen:  # a feed listing one post twice: the first is the one
            seen.add(found.source_id)
            entries.append(found)
    title = _text(parsed.feed.get("title_detail"), str(parsed.feed.get("title", "")))
    return Feed(title, version, tuple(entries), tuple(problems))
