"""The public site's pages: the landing page, the archive, each article's and digest's web version.

One set of functions makes the pages for `newsletter serve` (paths without a trailing slash, as the
emails link them: /archive/<slug>) and for the static export (folders holding index.html); every
link between pages is relative, so an export works under any path of any host. The web templates
are the folder's `templates/web/` first, then the built-in ones.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from babel import Locale
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, TemplateError, select_autoescape
from markupsafe import Markup
from sqlalchemy import Engine

from ..config import Config
from ..content.articles import Article, article_paths, load_article
from ..errors import NewsletterError, TemplateProblem
from ..render.assets import AssetStore
from ..render.i18n import install, locale_for, translations
from ..render.images import AssetLinks
from ..render.web import WebBody, web_body
from ..state.digests import published

PER_PAGE = 20  # entries on one archive page
LATEST = 5  # articles on the landing page
log = logging.getLogger("newsletter.serve")


@dataclass(frozen=True)
class Entry:
    """One item of the archive: an article, or a digest that went out (its key is its slug)."""

    slug: str
    kind: Literal["article", "digest"]
    title: str
    date: dt.datetime  # wall time in [schedule] timezone
    summary: str = ""
    article: Article | None = None
    articles: tuple[Article, ...] = ()

    @classmethod
    def of(cls, article: Article) -> Entry:
        return cls(article.slug, "article", article.title, article.date, article.summary, article=article)


@dataclass(frozen=True)
class Layout:
    """Where each page lives: `serve` paths (archive/<slug>) or static folders (archive/<slug>/)."""

    static: bool

    def home(self) -> str:
        return ""

    def archive(self, page: int = 1) -> str:
        path = "archive" if page == 1 else f"archive/page/{page}"
        return f"{path}/" if self.static else path

    def item(self, slug: str) -> str:
        return f"archive/{slug}/" if self.static else f"archive/{slug}"

    @staticmethod
    def file_for(path: str) -> str:
        """The file a static page path is written to: `archive/x/` -> `archive/x/index.html`."""
        return f"{path}index.html" if path == "" or path.endswith("/") else path


def relative(page: str, target: str) -> str:
    """The link from the page at `page` to `target` (both relative to the site's root)."""
    return "../" * page.count("/") + target or "./"


@dataclass(frozen=True)
class Here:
    """What a template needs to link from the page being rendered: `here.url(...)`, `here.home`..."""

    layout: Layout
    path: str
    subscribe_action: str
    canonical: str = ""

    def url(self, target: str) -> str:
        return relative(self.path, target)

    @property
    def home(self) -> str:
        return self.url(self.layout.home())

    @property
    def archive(self) -> str:
        return self.url(self.layout.archive())

    @property
    def feed(self) -> str:
        return self.url("feed.xml")

    @property
    def assets(self) -> str:
        return self.url("assets/")

    def page(self, number: int) -> str:
        return self.url(self.layout.archive(number))

    def link(self, item: Entry | Article) -> str:
        return self.url(self.layout.item(item.slug))


@functools.cache
def web_environment(templates: str, locale: Locale) -> Environment:
    """The web templates: the folder's `templates/web/` first, then the built-in ones; one per language."""
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(Path(templates) / "web")), PackageLoader("newsletter.web", "public_templates")]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install(env, locale)
    return env


@dataclass
class SiteIndex:
    """Published articles and the digests that went out, kept between requests.

    The issues folder is listed again when its own time stamp changes (a file added, removed or
    renamed, as editors save) and at most a second after the last look otherwise; only files whose
    size or time changed are read again. The digests come from the state database each time.
    """

    config: Config
    engine: Engine
    rescan_seconds: float = 1.0
    _files: dict[Path, tuple[tuple[int, int], Article | None]] = field(default_factory=dict)
    _by_slug: dict[str, Article | None] = field(default_factory=dict)
    _newest_first: list[Article] = field(default_factory=list)
    _folder_stamp: int = -1
    _scanned_at: float = -1e9
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> dt.datetime:
        """Now as an article's date reads: a wall time in the schedule's zone."""
        return dt.datetime.now(self.config.schedule.timezone).replace(tzinfo=None)

    def _load(self) -> dict[str, Article | None]:
        """Every article file by slug (None: it does not load), re-reading only changed files."""
        folder = self.config.path("issues")
        try:
            folder_stamp = folder.stat().st_mtime_ns
        except OSError:
            folder_stamp = -1
        with self._lock:
            fresh = time.monotonic() - self._scanned_at < self.rescan_seconds
            if fresh and folder_stamp == self._folder_stamp:
                return self._by_slug
            paths = article_paths(folder)
            seen = {}
            for path in paths:
                try:
                    stat = path.stat()
                except OSError:
                    continue
                stamp = (stat.st_mtime_ns, stat.st_size)
                cached = self._files.get(path)
                if cached is None or cached[0] != stamp:
                    try:
                        cached = (stamp, load_article(path))
                    except NewsletterError as exc:
                        log.error("archive: %s", exc)
                        cached = (stamp, None)
                seen[path] = cached
            self._files = seen
            self._by_slug = {path.stem: article for path, (_stamp, article) in seen.items()}
            loaded = [a for a in self._by_slug.values() if a is not None]
            self._newest_first = sorted(loaded, key=lambda a: (a.date, a.slug), reverse=True)
            self._folder_stamp, self._scanned_at = folder_stamp, time.monotonic()
            return self._by_slug

    def articles(self) -> tuple[list[Article], dict[str, Article | None]]:
        """(published articles newest first, every file by slug)."""
        files = self._load()
        now = self.now()
        return [a for a in self._newest_first if a.is_published(now)], files

    def entries(self) -> list[Entry]:
        """The archive: published articles and sent digests, newest first."""
        articles, _files = self.articles()
        by_slug = {a.slug: a for a in articles}
        entries = [Entry.of(a) for a in articles]
        tz = self.config.schedule.timezone
        for digest in published(self.engine):
            held = tuple(by_slug[s] for s in digest.slugs if s in by_slug)
            date = digest.sent_at.replace(tzinfo=dt.UTC).astimezone(tz).replace(tzinfo=None)
            summary = " · ".join(a.title for a in held)
            entries.append(Entry(digest.key, "digest", digest.title, date, summary, articles=held))
        return sorted(entries, key=lambda e: (e.date, e.slug), reverse=True)


class SitePages:
    """The HTML of each page, for `serve` (static=False) or the static export (static=True)."""

    def __init__(self, config: Config, engine: Engine, *, static: bool) -> None:
        self.config = config
        self.layout = Layout(static)
        self.index = SiteIndex(config, engine)
        self.base_url = config.newsletter.base_url.rstrip("/")
        self.store = AssetStore(config.path("issues"))
        self.csp = ""  # a <meta> Content-Security-Policy for static pages (serve sends it as a header)

    @property
    def env(self) -> Environment:
        return web_environment(str(self.config.path("templates").resolve()), locale_for(self.config))

    def here(self, path: str, canonical: bool | str = False) -> Here:
        """Links from the page at `path`; `canonical`: the page's address at base_url (public pages only),
        or the address it was first published at (a blog post pulled from its feed)."""
        subscribe = f"{self.base_url}/subscribe" if self.layout.static else relative(path, "subscribe")
        if isinstance(canonical, str) and canonical:
            return Here(self.layout, path, subscribe, canonical)
        address = f"{self.base_url}/{path.rstrip('/')}" if canonical and self.base_url and path else ""
        if canonical and self.base_url and not path:
            address = f"{self.base_url}/"
        return Here(self.layout, path, subscribe, address)

    def render(self, template: str, path: str, *, canonical: bool | str = False, **context: Any) -> str:
        try:
            return self.env.get_template(template).render(
                newsletter=self.config.newsletter, here=self.here(path, canonical), csp=self.csp, **context
            )
        except TemplateError as exc:
            where = getattr(exc, "filename", None) or getattr(exc, "name", None) or template
            line = getattr(exc, "lineno", None)
            raise TemplateProblem(
                f"web template {where}{f':{line}' if line else ''}: {exc.message or exc}; fix the template"
            ) from None

    def links_for(self, path: str, base_url: str = "") -> AssetLinks:
        """Asset URLs relative to the page at `path`, or absolute under `base_url` (the feed)."""
        prefix = f"{base_url.rstrip('/')}/assets/" if base_url else relative(path, "assets/")
        return AssetLinks(self.store, prefix, max_width=None)

    # --- pages -----------------------------------------------------------------------------------

    def home(self) -> str:
        articles, _files = self.index.articles()
        return self.render("home.html", "", canonical=True, latest=[Entry.of(a) for a in articles[:LATEST]])

    def archive_pages(self, entries: Sequence[Entry] | None = None) -> int:
        total = len(self.index.entries() if entries is None else entries)
        return max(1, -(-total // PER_PAGE))

    def archive(self, page: int = 1, entries: Sequence[Entry] | None = None) -> str | None:
        """One page of the archive, or None past the last one."""
        entries = self.index.entries() if entries is None else entries
        pages = self.archive_pages(entries)
        if not 1 <= page <= pages:
            return None
        shown = entries[(page - 1) * PER_PAGE : page * PER_PAGE]
        return self.render(
            "archive.html", self.layout.archive(page), canonical=True, entries=shown, page=page, pages=pages
        )

    def item(self, slug: str, entries: Sequence[Entry] | None = None) -> str | None:
        """An article's or a digest's web page; None when nothing is published under `slug`.

        A broken article raises its ContentError (serve logs it and shows a plain 500 page).
        """
        entries = self.index.entries() if entries is None else entries
        found = next((e for e in entries if e.slug == slug), None)
        if found is None:
            _articles, files = self.index.articles()
            if slug in files and files[slug] is None:
                load_article(self.config.path("issues") / f"{slug}.md")  # raises the file's own error
            return None
        path = self.layout.item(slug)
        if found.kind == "digest":
            return self.render("digest.html", path, canonical=True, entry=found)
        article = found.article
        assert article is not None
        articles = [e for e in entries if e.kind == "article"]
        position = articles.index(found)
        newer = articles[position - 1] if position > 0 else None
        older = articles[position + 1] if position + 1 < len(articles) else None
        body = self.body(article, path)
        return self.render(
            "article.html",
            path,
            canonical=article.canonical_url or True,
            entry=found,
            article=article,
            body=Markup(body.html),
            newer=newer,
            older=older,
        )

    def body(self, article: Article, path: str, base_url: str = "") -> WebBody:
        return web_body(article, self.links_for(path, base_url))

    def not_found(self) -> str:
        """The static export's 404.html (most static hosts show it for any missing page)."""
        gettext = translations(locale_for(self.config)).gettext
        return self.render(
            "error.html",
            "404.html",
            title=gettext("Not found"),
            message=gettext("There is nothing at this address. The archive lists everything that was published."),
        )
