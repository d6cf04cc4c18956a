"""What the preview shows, made by the same functions as `newsletter render` and `send-test`.

`Previewer` holds the current config (reloaded when the file changes) and a cache of rendered
articles keyed by file stats, so a request or a file change re-renders only what changed: editing
one article re-renders that article; editing a template, the config or the list re-renders all.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path

from ..config import Config, load_config
from ..content.articles import Article, article_paths, resolve_article
from ..content.issue import Issue, issue_for
from ..content.subscribers import sample_subscriber
from ..digest.plan import issue_for_digest, next_digest_plan
from ..errors import ConfigError, NewsletterError
from ..render.issue import render_issue, template_files
from ..render.lint import GMAIL_CLIP_BYTES
from ..render.mime import MessageFactory

Stat = tuple[str, int, int, int]


def _stat(path: Path) -> Stat:
    """Identity of a file's current content: (path, mtime_ns, size, inode); zeros when missing."""
    try:
        st = path.stat()
    except OSError:
        return (str(path), 0, 0, 0)
    return (str(path), st.st_mtime_ns, st.st_size, st.st_ino)


def _lf(text: str) -> str:
    """SMTP carries CRLF line ends; the files `render` writes (and mail clients show) have LF."""
    return text.replace("\r\n", "\n")


@dataclass(frozen=True)
class Preview:
    """One issue as the sample subscriber receives it, or the error that stops it from rendering."""

    key: str
    title: str = ""
    article: Article | None = None
    articles: tuple[Article, ...] = ()
    error: str = ""
    subject: str = ""
    html: str = ""
    text: str = ""
    eml: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recipient: str = ""

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode())

    @property
    def clipped(self) -> bool:
        return self.html_bytes > GMAIL_CLIP_BYTES


@dataclass(frozen=True)
class IndexEntry:
    slug: str
    title: str
    date: dt.datetime | None
    draft: bool
    warnings: int
    error: str


def preview_of(config: Config, issue: Issue) -> Preview:
    """Render once and build the sample subscriber's complete message, as `render` does (build.py)."""
    rendered = render_issue(issue, config)
    sample = sample_subscriber(config)
    eml = MessageFactory(rendered, config).build(sample)
    msg = email.message_from_bytes(eml, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    return Preview(
        key=issue.key,
        title=issue.title or issue.subject,
        article=issue.articles[0] if issue.kind == "article" else None,
        articles=issue.articles,
        subject=rendered.subject,
        html=_lf(html_part.get_content()) if html_part else "",
        text=_lf(text_part.get_content()) if text_part else "",
        eml=eml,
        headers=[(name, str(value)) for name, value in msg.items()],
        warnings=list(rendered.warnings),
        recipient=sample.email,
    )


class Previewer:
    """The preview's state: config (reloadable), render cache, and the next digest."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None) -> None:
        self._config = config
        self._config_error = ""
        self._env = env
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[Stat, ...], Preview]] = {}

    # -- config ---------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        """The current config; raises the last reload's ConfigError until the file is fixed."""
        if self._config_error:
            raise ConfigError(self._config_error)
        return self._config

    @property
    def last_good_config(self) -> Config:
        return self._config

    def reload_config(self) -> None:
        if self._config.source is None:
            return
        try:
            self._config = load_config(self._config.source, env=self._env)
            self._config_error = ""
        except ConfigError as exc:
            self._config_error = str(exc)

    # -- rendering ------------------------------------------------------------------------
    def _shared_stats(self, config: Config) -> tuple[Stat, ...]:
        files = [*template_files(config), config.path("subscribers")]
        if config.source is not None:
            files.append(config.source)
        return tuple(_stat(p) for p in files)

    def article_path(self, slug: str) -> Path | None:
        """The article file for a slug from a URL, only if it is one of the issues folder's articles."""
        try:
            paths = article_paths(self.config.path("issues"))
        except NewsletterError:
            return None
        return next((p for p in paths if p.stem == slug), None)

    def article(self, slug: str) -> Preview | None:
        """The article's preview (None: no such article); rendered only when its file or a shared file changed."""
        try:
            config = self.config
        except ConfigError as exc:
            return Preview(key=slug, title=slug, error=str(exc))
        path = self.article_path(slug)
        if path is None:
            return None
        key = (_stat(path), *self._shared_stats(config))
        with self._lock:
            cached = self._cache.get(slug)
            if cached is not None and cached[0] == key:
                return cached[1]
            try:
                article = resolve_article(str(path), config.path("issues"))
                result = preview_of(config, issue_for(article))
            except NewsletterError as exc:
                result = Preview(key=slug, title=slug, error=str(exc))
            self._cache[slug] = (key, result)
            return result

    def index(self) -> tuple[list[IndexEntry], str]:
        """Every article (newest first, broken files first) and an error that stops listing at all."""
        try:
            paths = article_paths(self.config.path("issues"))
        except NewsletterError as exc:
            return [], str(exc)
        entries = []
        for path in paths:
            preview = self.article(path.stem) or Preview(key=path.stem, error="deleted while listing")
            article = preview.article
            entries.append(
                IndexEntry(
                    slug=path.stem,
                    title=article.title if article else path.stem,
                    date=article.date if article else None,
                    draft=article.draft if article else False,
                    warnings=len(preview.warnings),
                    error=preview.error,
                )
            )
        entries.sort(key=lambda e: (e.date is None, e.date or dt.datetime.min, e.slug), reverse=True)
        return entries, ""

    # -- digest ---------------------------------------------------------------------------
    def digest(self, now: dt.datetime | None = None) -> Preview | None:
        """The next digest (the one `newsletter digest` shows), when it has articles to send; its
        warnings include the files left out of it and what would stop it from going to the list."""
        try:
            config = self.config
            if config.schedule.mode != "digest":
                return None
            plan = next_digest_plan(config, now or dt.datetime.now(config.schedule.timezone))
            if plan is None:
                return None
            preview = preview_of(config, issue_for_digest(config, plan))
            return replace(preview, warnings=[*plan.skipped, *preview.warnings])
        except NewsletterError as exc:
            return Preview(key="digest", title="Next digest", error=str(exc))
        except Exception as exc:  # the state database (locked, unreadable) must not take the index down
            return Preview(key="digest", title="Next digest", error=f"digest: {type(exc).__name__}: {exc}")
