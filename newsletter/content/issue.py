"""Issues: what one campaign sends, a single article or a digest of several."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from .articles import Article


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

    @property
    def article(self) -> Article:
        return self.articles[0]

    @property
    def draft(self) -> bool:
        return any(a.draft for a in self.articles)

    @functools.cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.subject.encode())
        for a in self.articles:
            digest.update((a.source_hash or hashlib.sha256(a.body.encode()).hexdigest()).encode())
        return digest.hexdigest()[:16]


def issue_for(article: Article) -> Issue:
    return Issue(
        key=article.slug,
        kind="article",
        subject=article.subject or article.title,
        articles=(article,),
        title=article.title,
        summary=article.summary,
    )
