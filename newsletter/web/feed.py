"""The Atom 1.0 feed (RFC 4287) of the latest articles: full content, absolute links, update times.

Built with ElementTree, so every title and body is escaped as XML requires whatever it holds. Entry
ids are the articles' archive URLs (stable for as long as the slug is); `updated` is the front
matter's `updated:` when an article says it was revised, else its date.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from ..content.articles import Article
from .site import SitePages

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
FEED_SIZE = 20
ET.register_namespace("", ATOM)


def _moment(value: dt.datetime, tz: dt.tzinfo) -> str:
    """RFC 3339 with the zone's offset: article dates are wall times in [schedule] timezone."""
    aware = value if value.tzinfo else value.replace(tzinfo=tz)
    return aware.replace(microsecond=0).isoformat()


def updated_of(article: Article) -> dt.datetime:
    """The front matter's `updated:` (a revision), else the article's date."""
    value: Any = article.extra.get("updated")
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return max(dt.datetime.fromisoformat(value.strip()).replace(tzinfo=None), article.date)
        except ValueError:
            pass
    return article.date


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def atom_feed(pages: SitePages, articles: Sequence[Article], base_url: str) -> bytes:
    """The feed of `articles` (newest first, at most FEED_SIZE) with links under `base_url`."""
    config = pages.config
    tz = config.schedule.timezone
    base = base_url.rstrip("/")
    shown = list(articles[:FEED_SIZE])
    feed = ET.Element(f"{{{ATOM}}}feed", {XML_LANG: config.newsletter.language})
    _add(feed, "id", f"{base}/")
    _add(feed, "title", config.newsletter.name)
    if config.newsletter.description:
        _add(feed, "subtitle", config.newsletter.description)
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/feed.xml")
    _add(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    newest = max((updated_of(a) for a in shown), default=dt.datetime(1970, 1, 1))
    _add(feed, "updated", _moment(newest, tz))
    author = _add(feed, "author")
    _add(author, "name", config.newsletter.name)
    _add(feed, "generator", "newsletter")
    for article in shown:
        url = f"{base}/{pages.layout.item(article.slug).rstrip('/')}"
        entry = _add(feed, "entry", **{XML_BASE: url})
        _add(entry, "id", url)
        _add(entry, "title", article.title)
        _add(entry, "link", rel="alternate", type="text/html", href=url)
        _add(entry, "published", _moment(article.date, tz))
        _add(entry, "updated", _moment(updated_of(article), tz))
        if article.author:
            _add(_add(entry, "author"), "name", article.author)
        for tag in article.tags:
            _add(entry, "category", term=tag)
        if article.summary:
            _add(entry, "summary", article.summary)
        body = pages.body(article, pages.layout.item(article.slug), base_url=base)
        _add(entry, "content", body.html, type="html")
    xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"
