"""Issues: what one campaign sends, a single article or a digest of several."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContentError
from .articles import Article
from .names import normalize_tag

AUDIENCE_SEPARATOR = "@"  # a segment's campaign key: <slug>@<tag>+<tag>


@dataclass(frozen=True)
class Issue:
    """What one campaign sends: a single article, or a digest of several.

    `key` is the campaign's identity in the state store (slug, or digest period);
    `content_hash` changes whenever what subscribers would read changes.
    """

    key: str
    kind: str  # "article" | "digest"
    subject: str
    articles: tuple[Article, ...]
    title: str = ""
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    audience: tuple[str, ...] = ()  # tags: only subscribers with any of them; empty: the whole list

    @property
    def article(self) -> Article:
        return self.articles[0]

    @property
    def draft(self) -> bool:
        return any(a.draft for a in self.articles)

    @property
    def campaign_key(self) -> str:
        """The campaign's key: the issue's, plus the audience for a segment send (its own campaign)."""
        if not self.audience:
            return self.key
        return f"{self.key}{AUDIENCE_SEPARATOR}{'+'.join(sorted(self.audience))}"

    @functools.cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.subject.encode())
        for a in self.articles:
            digest.update((a.source_hash or hashlib.sha256(a.body.encode()).hexdigest()).encode())
        return digest.hexdigest()[:16]


def audience_of(article: Article) -> tuple[str, ...]:
    """Front matter `audience: [paid, beta]` (or `audience: paid`): the tags a send of it reaches."""
    raw = article.extra.get("audience")
    if raw in (None, "", []):
        return ()
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else None
    if items is None or not all(isinstance(t, str) for t in items):
        raise ContentError(f"{article.path}: audience: expected a list of tags like [paid, beta]")
    try:
        return tuple(dict.fromkeys(t for t in (normalize_tag(t) for t in items) if t))
    except ValueError as exc:
        raise ContentError(f"{article.path}: audience: {exc}") from None


def issue_for(article: Article, audience: tuple[str, ...] | None = None) -> Issue:
    """The issue of one article; `audience` (from `send --tag`) replaces the front matter's."""
    return Issue(
        key=article.slug,
        kind="article",
        subject=article.subject or article.title,
        articles=(article,),
        title=article.title,
        summary=article.summary,
        audience=audience_of(article) if audience is None else audience,
    )
