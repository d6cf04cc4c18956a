"""`newsletter site build`: the static export checked file by file, every link followed, and opened in Chromium.

The export is served by a plain static file server (Python's http.server), as any static host would,
and its pages are opened in Debian's headless Chromium at 375 px: no console errors (CSP violations
included) and no horizontal scrolling.
"""

from __future__ import annotations

import functools
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import pytest
from playwright.sync_api import Browser

from newsletter.config import load_config
from newsletter.state.engine import engine_for
from newsletter.web.export import MARKER, build_site

from .helpers import DATA, TLS, WELCOME, Cli, article, write_article

BASE = "https://news.example.org"
PICTURES = "2026-11-25-pictures"
STAND_IN = '<svg xmlns="http://www.w3.org/2000/svg" width="536" height="120"><rect width="536" height="120"/></svg>'


def pictures(folder: Path) -> None:
    (folder / "issues" / "images").mkdir(exist_ok=True)
    shutil.copyfile(DATA / "images" / "chain.png", folder / "issues" / "images" / "chain.png")
    (folder / "issues" / "images" / "unused.png").write_bytes((DATA / "images" / "small.png").read_bytes())
    write_article(
        folder,
        f"{PICTURES}.md",
        "---\ntitle: Pictures of a chain\ndate: 2026-11-25\nsummary: With a picture.\n---\n\n![The chain](images/chain.png)\n",
    )


@pytest.fixture
def site(cli: Cli, folder: Path) -> Path:
    """The folder's site, built by the CLI with a base_url and two drafts that must not appear."""
    pictures(folder)
    article(folder, "2026-11-26-secret", "2026-11-26", draft=True, title="Secret draft")
    cli.env.update({"NEWSLETTER_NEWSLETTER_BASE_URL": BASE, "NEWSLETTER_NEWSLETTER_DESCRIPTION": "Long reads."})
    result = cli("site", "build")
    assert result.exit_code == 0, result.output + result.stderr
    assert re.fullmatch(r"wrote 8 pages and 1 asset to site in \d+\.\d s\n", result.stdout)
    return folder / "site"


def links_of(html: str) -> list[str]:
    return re.findall(r'(?:href|src|action)="([^"]+)"', html)


def test_export_holds_every_page_the_feed_and_the_used_assets(site: Path) -> None:
    files = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    slugs = ["2026-11-09-tls-certificates", "2026-11-16-password-managers", WELCOME, PICTURES]
    (image,) = [f for f in files if f.startswith("assets/")]
    assert re.fullmatch(r"assets/images/chain\.[0-9a-f]{10}\.png", image)  # used only: not unused.png
    assert files == sorted(
        [MARKER, "404.html", "index.html", "feed.xml", "archive/index.html", image]
        + [f"archive/{slug}/index.html" for slug in slugs]
    )
    assert (site / image).read_bytes() == (DATA / "images" / "chain.png").read_bytes()
    home = (site / "index.html").read_text()
    assert "Secret draft" not in home and "Long reads." in home
    assert f'<form class="subscribe" method="post" action="{BASE}/subscribe">' in home
    assert f"form-action {BASE}" in home  # the page's own policy: a static host sets no headers of ours
    article_page = (site / "archive" / PICTURES / "index.html").read_text()
    assert f'<link rel="canonical" href="{BASE}/archive/{PICTURES}">' in article_page
    assert re.search(
        r'<img alt="The chain" src="\.\./\.\./assets/images/chain\.[0-9a-f]{10}\.png" width="1072"', article_page
    )
    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert feed.bozo == 0 and [e.link for e in feed.entries][:2] == [
        f"{BASE}/archive/{PICTURES}",
        f"{BASE}/archive/{WELCOME}",
    ]


def test_every_relative_link_of_every_page_leads_to_a_file_of_the_export(site: Path) -> None:
    checked = 0
    for page in site.rglob("*.html"):
        url = "http://static.test/" + str(page.relative_to(site)).removesuffix("index.html")
        for link in links_of(page.read_text()):
            target = urljoin(url, link)
            if not target.startswith("http://static.test/") or link.startswith("#"):
                continue
            path = unquote(urlsplit(target).path).lstrip("/")
            found = site / path
            assert (found / "index.html").is_file() if path.endswith("/") or not path else found.is_file(), (
                f"{page.relative_to(site)}: {link} -> {path}"
            )
            checked += 1
    assert checked > 50


def test_a_rebuild_drops_deleted_articles_and_refuses_a_folder_it_did_not_make(
    cli: Cli, folder: Path, site: Path
) -> None:
    (folder / "issues" / f"{PICTURES}.md").unlink()
    assert cli("site", "build").exit_code == 0
    assert not (site / "archive" / PICTURES).exists() and not (site / "assets").exists()
    assert (site / "archive" / TLS / "index.html").is_file()
    mine = folder / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = cli("site", "build", "mine")
    assert result.exit_code == 2 and "was not made by `newsletter site build`" in result.stderr
    assert (mine / "notes.txt").read_text() == "keep me" and not (mine / "index.html").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".mine")]  # no half-built folder left


def test_without_base_url_the_export_is_refused_in_one_line(cli: Cli) -> None:
    result = cli("site", "build")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "[newsletter] base_url is empty" in result.stderr


def test_progress_counts_every_file(cli: Cli, folder: Path) -> None:
    for day in range(1, 29):
        article(folder, f"2026-02-{day:02d}-note", f"2026-02-{day:02d}")
    config = load_config(folder / "newsletter.toml", env={"NEWSLETTER_NEWSLETTER_BASE_URL": BASE})
    seen: list[tuple[int, int]] = []
    report = build_site(config, engine_for(config), folder / "out", lambda done, total: seen.append((done, total)))
    total = 3 + 2 + 31  # home, feed, 404; two archive pages; 31 articles
    assert seen == [(n, total) for n in range(1, total + 1)] and report.pages == total
    assert (folder / "out" / "archive" / "page" / "2" / "index.html").is_file()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_host(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_pages_in_chromium_at_375px_have_no_console_errors_and_no_horizontal_scroll(
    browser: Browser, static_host: str
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    # The example article's image lives on example.org, which is offline here: a stand-in.
    context.route(
        "https://example.org/**", lambda route: route.fulfill(status=200, content_type="image/svg+xml", body=STAND_IN)
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    paths = ["", "archive/", f"archive/{PICTURES}/", f"archive/{TLS}/", f"archive/{WELCOME}/", "404.html"]
    for path in paths:
        response = page.goto(static_host + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("load")
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path}: {width[0]} px wide in a {width[1]} px window"
        images = page.evaluate("[...document.images].map(i => [i.currentSrc, i.complete && i.naturalWidth > 0])")
        assert all(ok for _src, ok in images), f"{path}: images not loaded: {images}"
    # The article's next/previous links and the archive link work by clicking, as a reader would.
    page.goto(static_host + f"archive/{WELCOME}/")
    page.get_by_role("link", name=re.compile("Newer: Pictures of a chain")).click()
    assert page.url == static_host + f"archive/{PICTURES}/"
    page.get_by_role("link", name="Archive").click()
    assert page.url == static_host + "archive/"
    assert errors == [], errors
    context.close()
