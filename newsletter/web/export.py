"""`newsletter site build`: the public site as files, for any static host.

The same pages as `newsletter serve` (index.html, archive/, archive/page/N/, archive/<slug>/, feed.xml,
404.html) and the assets the published articles use, under their hashed names. The site is built in
a new folder beside the target and swapped in at the end, so a host never serves half a build and
pages of deleted articles disappear. A folder that a build did not make is never replaced.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine

from ..config import Config
from ..errors import ConfigError, NewsletterError
from ..render.assets import Asset
from .feed import atom_feed
from .site import Layout, SitePages

MARKER = ".newsletter-site"  # written into every build; only such a folder is replaced


@dataclass(frozen=True)
class ExportReport:
    out: Path
    pages: int
    assets: int
    seconds: float


def static_csp(base_url: str) -> str:
    """The pages' policy as a <meta> tag (a static host's headers are not ours to set).

    `frame-ancestors` cannot be set from a page; the form may post to `serve` at base_url.
    """
    parts = urlsplit(base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; form-action {origin}; "
        "base-uri 'none'"
    )


def _replaceable(out: Path) -> bool:
    return not out.exists() or (out.is_dir() and ((out / MARKER).is_file() or not any(out.iterdir())))


def build_site(
    config: Config, engine: Engine, out: Path, progress: Callable[[int, int], None] | None = None
) -> ExportReport:
    """Write the site into `out`; `progress(done, total)` is called as pages are written."""
    started = time.monotonic()
    base_url = config.newsletter.base_url.rstrip("/")
    if not base_url:
        raise ConfigError(
            f"{config.where}: [newsletter] base_url is empty: the feed needs absolute links and the signup form "
            f"posts to `newsletter serve` there; set it (e.g. https://news.example.org)"
        )
    if not _replaceable(out):
        raise NewsletterError(
            f"{out}: exists and was not made by `newsletter site build`; choose a new or empty folder "
            f"(the build replaces the folder's whole content)"
        )
    pages = SitePages(config, engine, static=True)
    pages.csp = static_csp(base_url)
    entries = pages.index.entries()
    articles = [e.article for e in entries if e.article is not None]
    archive_pages = pages.archive_pages(entries)
    total = 3 + archive_pages + len(entries)  # home, feed, 404, the archive's pages, one page per entry
    work = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    assets: dict[Path, Asset] = {}
    done = 0

    def write(path: str, data: str | bytes) -> None:
        nonlocal done
        target = work / Layout.file_for(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        done += 1
        if progress is not None:
            progress(done, total)

    try:
        work.mkdir(parents=True)
        (work / MARKER).write_text("made by `newsletter site build`; the next build replaces this folder\n")
        write("", pages.home())
        for number in range(1, archive_pages + 1):
            write(pages.layout.archive(number), _page(pages.archive(number, entries)))
        for entry in entries:
            write(pages.layout.item(entry.slug), _page(pages.item(entry.slug, entries)))
            if entry.article is not None:
                for asset in pages.body(entry.article, pages.layout.item(entry.slug)).assets:
                    assets[asset.path] = asset
        write("feed.xml", atom_feed(pages, articles, base_url))
        write("404.html", pages.not_found())
        for asset in assets.values():
            target = work / "assets" / asset.hashed_name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(asset.path, target)
        _swap(work, out)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise NewsletterError(f"{out}: cannot write the site ({exc.strerror}); choose another folder") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ExportReport(out, done, len(assets), time.monotonic() - started)


def _page(html: str | None) -> str:
    if html is None:  # an entry vanished between listing and rendering (a file deleted mid-build)
        raise NewsletterError("an article disappeared while the site was built; run `newsletter site build` again")
    return html


def _swap(work: Path, out: Path) -> None:
    """Put the new build in place of the old one: two renames, then the old build is removed."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)
