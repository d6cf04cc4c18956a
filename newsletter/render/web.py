"""An article's body for the web (the archive page and the Atom feed): Markdown, asset links, sanitized.

The email trusts the author's HTML (a mail client strips what it dislikes); a web page does not: an
article's `<script>`, `<meta http-equiv="refresh">`, `<base>`, `<iframe>` or `onerror=` must never
reach a reader's browser from our origin. nh3 (Rust's ammonia) keeps the tags and attributes that
Markdown produces and drops the rest. Bodies are cached while the article and its assets are unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import nh3

from ..content.articles import Article
from .assets import Asset
from .images import AssetLinks
from .issue import markdown_to_html

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "a": {"href", "hreflang", "title", "id"},  # classes: _CLASSES (ammonia wants them only there)
    "img": {"alt", "width", "height", "src", "title", "loading"},
    "abbr": {"title"},
    "sup": {"id"},
    "li": {"id"},
    "th": {*nh3.ALLOWED_ATTRIBUTES["th"], "style"},
    "td": {*nh3.ALLOWED_ATTRIBUTES["td"], "style"},
    "*": {"lang", "dir"},
}
# Markdown's footnotes and table alignment are all the classes and styles an article needs.
_CLASSES = {"div": {"footnote"}, "a": {"footnote-ref", "footnote-backref"}}
_URL_SCHEMES = {"http", "https", "mailto", "tel"}


def sanitize(html: str) -> str:
    """Only what Markdown makes: no scripts, styles, frames, forms, meta or base tags, no event handlers."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "template", "textarea", "title"},
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        filter_style_properties={"text-align"},
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class WebBody:
    """An article's sanitized HTML and the assets it references (the static export copies them)."""

    html: str
    assets: tuple[Asset, ...]
    stamps: tuple[tuple[int, int], ...]

    @property
    def current(self) -> bool:
        return all(_stamp(a.path) == stamp for a, stamp in zip(self.assets, self.stamps, strict=True))


@functools.lru_cache(maxsize=2048)
def _body(source_hash: str, body: str, path: Path, links: AssetLinks) -> WebBody:
    used: list[Asset] = []
    html = sanitize(links.rewrite(markdown_to_html(body, path), path.parent, used))
    unique = tuple(dict.fromkeys(used))
    return WebBody(html, unique, tuple(_stamp(a.path) for a in unique))


def web_body(article: Article, links: AssetLinks) -> WebBody:
    """The article's sanitized HTML, its relative images and files pointing at `links.prefix`.

    Cached by the article's content; an asset that changed since (a new hash, a new size) renders anew.
    """
    found = _body(article.source_hash, article.body, article.path, links)
    if not found.current:
        _body.cache_clear()
        found = _body(article.source_hash, article.body, article.path, links)
    return found
