"""The public site under a real uvicorn on 127.0.0.1: every route's status, content and headers.

The landing page, the paginated archive (with a digest that really went out), the web version of an
article, the Atom feed read by feedparser, /assets with an image an email links to, path traversal,
sanitizing, template overrides and the languages of the email and the pages.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest

from newsletter.config import Config, load_config
from newsletter.digest.plan import plan_digest
from newsletter.digest.runner import freeze_plan, resume_pending

from .helpers import DATA, TLS, WELCOME, Cli, article, at, run_async, write_article
from .live import LiveServer
from .smtpd import free_port

PASSWORDS = "2026-11-16-password-managers"
PICTURES = "2026-11-25-pictures"


def pictures(folder: Path) -> Path:
    """An article with a relative image (1072x400 px) and a relative PDF, as authors write them."""
    (folder / "issues" / "images").mkdir(exist_ok=True)
    shutil.copyfile(DATA / "images" / "chain.png", folder / "issues" / "images" / "chain.png")
    (folder / "issues" / "files").mkdir(exist_ok=True)
    (folder / "issues" / "files" / "report.pdf").write_bytes(b"%PDF-1.4\n% a report\n")
    return write_article(
        folder,
        f"{PICTURES}.md",
        "---\ntitle: Pictures of a chain\ndate: 2026-11-25\nsummary: With a picture.\nauthor: Ada\ntags: [tls]\n---\n\n"
        "![The chain](images/chain.png)\n\nThe [full report](files/report.pdf).\n",
    )


def configure(cli: Cli, **env: str) -> Config:
    cli.env.update({"NEWSLETTER_NEWSLETTER_DESCRIPTION": "Long reads on privacy, every other week.", **env})
    return load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})


@pytest.fixture
def server(cli: Cli, folder: Path) -> Iterator[LiveServer]:
    pictures(folder)
    with LiveServer(configure(cli)) as live:
        yield live


def assert_site_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in response.headers


# --- routes ----------------------------------------------------------------------------------


def test_landing_page_has_name_description_signup_form_and_latest_issues(server: LiveServer) -> None:
    page = server.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert_site_headers(page)
    html = page.text
    assert "<h1>Privacy Notes</h1>" in html and "Long reads on privacy, every other week." in html
    form = re.search(r'<form class="subscribe" method="post" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form and form[1] == "subscribe"
    assert {"email", "name", "website"} == set(re.findall(r'name="(\w+)"', form[2]))
    assert '<link rel="alternate" type="application/atom+xml" title="Privacy Notes" href="feed.xml">' in html
    # Newest first, with date and summary; the archive is one link away.
    assert html.index("Pictures of a chain") < html.index("Welcome to Privacy Notes") < html.index("Password managers")
    assert "November 25, 2026" in html and "With a picture." in html
    assert 'href="archive/2026-11-25-pictures"' in html and 'href="archive"' in html


def test_archive_lists_published_issues_newest_first_and_hides_drafts_and_future(
    server: LiveServer, folder: Path
) -> None:
    article(folder, "2026-11-26-secret", "2026-11-26", draft=True, title="Secret draft")
    article(folder, "2099-01-01-future", "2099-01-01", title="Not yet")
    page = server.get("/archive")
    assert page.status_code == 200
    assert_site_headers(page)
    slugs = re.findall(r'<h3><a href="archive/([^"]+)">', page.text)
    assert slugs == [PICTURES, WELCOME, PASSWORDS, TLS]
    assert "Secret draft" not in page.text and "Not yet" not in page.text
    assert server.get("/archive/2026-11-26-secret").status_code == 404
    assert server.get("/archive/2099-01-01-future").status_code == 404
    assert httpx.get(server.url + "/archive/", follow_redirects=True).status_code == 200  # redirected, not a 404


def test_archive_is_paginated(cli: Cli, folder: Path) -> None:
    for day in range(1, 46):
        article(
            folder, f"2026-0{1 + day // 28}-{1 + day % 28:02d}-note-{day}", f"2026-0{1 + day // 28}-{1 + day % 28:02d}"
        )
    with LiveServer(configure(cli)) as server:
        first, second, third = (server.get(p) for p in ("/archive", "/archive/page/2", "/archive/page/3"))
        counts = [len(re.findall(r"<h3>", r.text)) for r in (first, second, third)]
        assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
        assert counts == [20, 20, 8]  # 45 notes and the 3 example articles
        assert 'rel="next" href="archive/page/2"' in first.text and "Page 1 of 3" in first.text
        assert (
            'rel="prev" href="../../archive"' in second.text and 'rel="next" href="../../archive/page/3"' in second.text
        )
        assert 'rel="next"' not in third.text
        assert server.get("/archive/page/4").status_code == 404
        assert server.get("/archive/page/1").status_code == 404  # page 1 is /archive


def test_web_version_is_the_article_not_the_email(server: LiveServer) -> None:
    page = server.get(f"/archive/{WELCOME}")
    assert page.status_code == 200
    assert_site_headers(page)
    html = page.text
    assert "<h1>Welcome to Privacy Notes</h1>" in html
    assert "November 23, 2026" in html and "Mira Köhler" in html and "1 min read" in html
    assert "<li>meta</li>" in html and "<li>privacy</li>" in html  # tags
    # Previous and next issues, and a subscribe call-to-action.
    assert f'rel="prev" class="prev" href="../archive/{PASSWORDS}"' in html
    assert f'rel="next" class="next" href="../archive/{PICTURES}"' in html
    assert 'action="../subscribe"' in html
    # None of the email's personal parts, and no link to itself.
    assert "Hi there" not in html and "Hi " not in html and "because you subscribed" not in html
    assert "/unsubscribe" not in html and "__NL" not in html
    assert f'href="../archive/{WELCOME}"' not in html and "View online" not in html and "Read on the web" not in html


def test_not_found_and_broken_pages_show_no_internals(server: LiveServer, folder: Path) -> None:
    missing = server.get("/no/such/page")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert_site_headers(missing)
    write_article(folder, "2026-01-02-broken.md", "---\ntitle: [broken\ndate: 2026-01-02\n---\nx\n")
    broken = server.get("/archive/2026-01-02-broken")
    assert broken.status_code == 500 and "cannot be shown" in broken.text
    assert "issues/" not in broken.text and "YAML" not in broken.text and "Traceback" not in broken.text
    assert_site_headers(broken)
    assert server.get("/archive").status_code == 200  # the rest of the archive still works
    assert httpx.post(server.url + "/archive").status_code == 405


def test_article_html_is_sanitized_for_the_web(server: LiveServer, folder: Path) -> None:
    write_article(
        folder,
        "2026-11-24-hostile.md",
        "---\ntitle: Hostile\ndate: 2026-11-24\n---\n\nText.\n\n<script>alert(1)</script>\n"
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">\n<base href="https://evil.example/">\n'
        '<img src="https://example.org/x.png" alt="x" onerror="alert(2)">\n<iframe src="https://evil.example/"></iframe>\n'
        '<a href="javascript:alert(3)">click</a> <form action="https://evil.example/"><input name="p"></form>\n',
    )
    html = server.get("/archive/2026-11-24-hostile").text
    body = html[html.index('<div class="body">') :]
    for bad in ("<script", "alert(", "<meta", "<base", "onerror", "<iframe", "javascript:", "evil.example"):
        assert bad not in body, bad
    assert "<p>Text.</p>" in body and '<img src="https://example.org/x.png" alt="x">' in body


# --- the feed --------------------------------------------------------------------------------


def test_atom_feed_is_valid_for_feedparser_with_full_content_and_absolute_links(cli: Cli, folder: Path) -> None:
    pictures(folder)
    for day in range(1, 23):
        article(folder, f"2026-10-{day:02d}-older-{day}", f"2026-10-{day:02d}")
    base = "https://news.example.org"
    with LiveServer(configure(cli, NEWSLETTER_NEWSLETTER_BASE_URL=base)) as server:
        response = server.get("/feed.xml")
        page = server.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Privacy Notes" and feed.feed.subtitle == "Long reads on privacy, every other week."
    assert feed.feed.id == f"{base}/" and feed.feed.language == "en"
    assert {link.rel: link.href for link in feed.feed.links} == {"self": f"{base}/feed.xml", "alternate": f"{base}/"}
    assert len(feed.entries) == 20  # the latest 20 of 25
    newest = feed.entries[0]
    assert newest.title == "Pictures of a chain" and newest.link == f"{base}/archive/{PICTURES}"
    assert newest.id == newest.link and newest.author == "Ada" and [t.term for t in newest.tags] == ["tls"]
    assert newest.published == "2026-11-25T00:00:00+01:00" and newest.updated_parsed is not None
    content = newest.content[0]
    assert content.type == "text/html"
    assert re.search(rf'<img [^>]*src="{base}/assets/images/chain\.[0-9a-f]{{10}}\.png"', content.value)
    assert f"{base}/assets/files/report." in content.value
    tls = next(e for e in feed.entries if e.link.endswith(TLS))
    assert "<h2>The chain</h2>" in tls.content[0].value  # the whole article, not a teaser
    assert [e.updated_parsed for e in feed.entries] == sorted((e.updated_parsed for e in feed.entries), reverse=True)
    assert '<link rel="alternate" type="application/atom+xml"' in page.text


def test_feed_without_base_url_uses_the_address_it_was_asked_at(server: LiveServer) -> None:
    feed = feedparser.parse(server.get("/feed.xml").content)
    assert feed.bozo == 0 and feed.entries[0].link == f"{server.url}/archive/{PICTURES}"


# --- images and assets -----------------------------------------------------------------------


def test_relative_image_in_email_is_an_absolute_sized_asset_url_that_the_server_serves(cli: Cli, folder: Path) -> None:
    pictures(folder)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli.env.update({"NEWSLETTER_NEWSLETTER_BASE_URL": base, "NEWSLETTER_SECRET_KEY": "s" * 40})
    result = cli("render", PICTURES)
    assert result.exit_code == 0, result.output
    assert "relative" not in result.stderr
    html = (folder / "build" / f"{PICTURES}.html").read_text()
    img = re.search(r"<img [^>]*>", html)
    assert img is not None
    src = re.search(r'src="([^"]+)"', img[0])
    assert src and re.fullmatch(rf"{base}/assets/images/chain\.[0-9a-f]{{10}}\.png", src[1])
    assert 'width="536"' in img[0] and 'height="200"' in img[0]  # 1072x400 capped at the column, proportions kept
    pdf = re.search(rf'href="({base}/assets/files/report\.[0-9a-f]{{10}}\.pdf)"', html)
    assert pdf
    config = load_config(folder / "newsletter.toml", env={**os.environ, **cli.env})
    server = LiveServer(config)
    server.port = port
    server.server.config.port = port
    with server:
        image = httpx.get(src[1])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content == (DATA / "images" / "chain.png").read_bytes()
        assert image.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert image.headers["x-content-type-options"] == "nosniff"
        document = httpx.get(pdf[1])
        assert document.status_code == 200 and document.headers["content-type"] == "application/pdf"
        plain = server.get("/assets/images/chain.png")  # the name without hash: found, not cached for ever
        assert plain.status_code == 200 and plain.headers["cache-control"] == "public, max-age=300"
        # A changed image gets a new name; the old name (in emails already sent) still shows the image.
        shutil.copyfile(DATA / "images" / "small.png", folder / "issues" / "images" / "chain.png")
        assert cli("render", PICTURES).exit_code == 0
        changed = re.search(r'<img [^>]*src="([^"]+)"[^>]*>', (folder / "build" / f"{PICTURES}.html").read_text())
        assert changed and changed[1] != src[1] and 'width="200"' in changed[0] and 'height="100"' in changed[0]
        assert httpx.get(changed[1]).content == (DATA / "images" / "small.png").read_bytes()
        stale = httpx.get(src[1])
        assert stale.status_code == 200 and stale.headers["cache-control"] == "public, max-age=300"


def test_relative_image_without_base_url_stays_a_lint_warning(cli: Cli, folder: Path) -> None:
    pictures(folder)
    result = cli("render", PICTURES)
    assert result.exit_code == 0
    assert "warning: relative image: images/chain.png" in result.stderr and "base_url" in result.stderr
    assert 'src="images/chain.png"' in (folder / "build" / f"{PICTURES}.html").read_text()


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../newsletter.toml",
        "/assets/%2e%2e/newsletter.toml",
        "/assets/..%2Fnewsletter.toml",
        "/assets/images/..%2F..%2Fnewsletter.toml",
        "/assets/%2E%2E%2F%2E%2E%2Fnewsletter.toml",
        "/assets//etc/passwd",
        "/assets/%2Fetc%2Fpasswd",
        "/assets/..%5Cnewsletter.toml",
        "/assets/images%5C..%5C..%5Cnewsletter.toml",
        "/assets/2026-11-09-tls-certificates.md",
        "/assets/.hidden.png",
        "/assets/outside.png",
        "/assets/images/missing.png",
        "/assets/",
        "/assets/images/chain.png%00.md",
    ],
)
def test_path_traversal_and_other_files_are_404(server: LiveServer, folder: Path, path: str) -> None:
    (folder / "issues" / ".hidden.png").write_bytes((DATA / "images" / "small.png").read_bytes())
    (folder / "secret.png").write_bytes((DATA / "images" / "small.png").read_bytes())
    (folder / "issues" / "outside.png").symlink_to(folder / "secret.png")  # a link out of issues/
    assert server.raw(path) == 404


# --- digests in the archive ------------------------------------------------------------------


@pytest.mark.usefixtures("database")
def test_a_digest_that_went_out_is_in_the_archive_with_its_articles(cli: Cli, letter: Path) -> None:
    article(letter, "2026-11-18-first", "2026-11-18", title="First of the week")
    article(letter, "2026-11-20-second", "2026-11-20", title="Second of the week")
    config = configure(
        cli,
        NEWSLETTER_PATHS_SUBSCRIBERS="subscribers.csv",
        NEWSLETTER_SCHEDULE_TIMEZONE="Europe/Berlin",
        NEWSLETTER_NEWSLETTER_BASE_URL="https://news.example.org",  # a digest needs links to its articles
        NEWSLETTER_SECRET_KEY="s" * 32,
    )
    with LiveServer(config) as server:
        assert "Digest" not in server.get("/archive").text  # nothing went out yet
        plan = plan_digest(config, at("2026-11-23T09:00"))
        assert freeze_plan(config, plan)  # frozen: its campaign is about to go out (or was cut short)
        assert plan.key == "digest-2026-11-23"  # named after its cron run
        assert f"archive/{plan.key}" in server.get("/archive").text
        (outcome,) = run_async(resume_pending(config))  # the campaign goes out
        assert outcome.status == "sent" and outcome.recipients == 3
        index = server.get("/archive").text
        assert '<span class="kind">Digest</span>' in index
        assert f'<a href="archive/{plan.key}">Privacy Notes: week 48</a>' in index
        page = server.get(f"/archive/{plan.key}")
        assert page.status_code == 200
        assert_site_headers(page)
        html = page.text
        assert "<h1>Privacy Notes: week 48</h1>" in html and "2 articles" in html
        assert html.index("First of the week") < html.index("Second of the week")
        assert '<a href="../archive/2026-11-18-first">First of the week</a>' in html
        assert "About 2026-11-18-first." in html and "Read more →" in html
        assert "Hi " not in html and "/unsubscribe" not in html


# --- templates and languages -----------------------------------------------------------------


def test_a_web_template_in_templates_web_overrides_the_built_in_one(cli: Cli, folder: Path, server: LiveServer) -> None:
    (folder / "templates" / "web").mkdir()
    (folder / "templates" / "web" / "article.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 class="mine">{{ article.title }}</h1>{{ body }}{% endblock %}'
    )
    html = server.get(f"/archive/{WELCOME}").text
    assert '<h1 class="mine">Welcome to Privacy Notes</h1>' in html and "Thank you for subscribing" in html
    assert 'class="site-name"' in html  # the built-in base.html around it


def march_article(folder: Path) -> None:
    write_article(
        folder,
        "2026-03-05-march.md",
        "---\ntitle: Ein Artikel im März\ndate: 2026-03-05\nauthor: Mira\nsummary: Kurz.\n---\n\n"
        + "Wort " * 1100
        + "\n",
    )


@pytest.mark.parametrize(
    ("language", "expected", "absent"),
    [
        (
            "de",
            [
                "5. März 2026",
                "5 Min. Lesezeit",
                "Hallo Ada,",  # the greeting takes the first name
                ">Abmelden</a>",
                ">Online ansehen</a>",
                "Sie erhalten Privacy Notes, weil Sie sich mit",
                "Im Web lesen",
                'lang="de"',
            ],
            ["min read", "March", "Unsubscribe", "View online"],
        ),
        (
            "fr",
            [
                "5 mars 2026",
                "5 min de lecture",
                "Bonjour Ada,",
                ">Se désabonner</a>",
                ">Voir en ligne</a>",
                "Vous recevez Privacy Notes parce que",
                "Lire sur le web",
                'lang="fr"',
            ],
            ["min read", "March", "Unsubscribe", "View online"],
        ),
    ],
)
def test_german_and_french_email_and_web_pages_of_a_march_article(
    cli: Cli, folder: Path, language: str, expected: list[str], absent: list[str]
) -> None:
    march_article(folder)
    base = "https://news.example.org"
    config = configure(
        cli,
        NEWSLETTER_NEWSLETTER_LANGUAGE=language,
        NEWSLETTER_NEWSLETTER_BASE_URL=base,
        NEWSLETTER_SECRET_KEY="s" * 40,
    )
    result = cli("render", "2026-03-05-march")
    assert result.exit_code == 0, result.output + result.stderr
    html = (folder / "build" / "2026-03-05-march.html").read_text()
    text = (folder / "build" / "2026-03-05-march.txt").read_text()
    for want in expected:
        assert want in html, want
    for unwanted in absent:
        assert unwanted not in html, unwanted
    assert expected[1] in text and expected[2] in text
    # "View online" is at the top of the email, before the masthead.
    assert html.index(expected[4]) < html.index(">Privacy Notes</a>")
    with LiveServer(config) as server:
        page = server.get("/archive/2026-03-05-march").text
        home = server.get("/").text
    assert expected[0] in page and expected[1] in page and f'<html lang="{language}">' in page
    words = {
        "de": ["Archiv", "Abonnieren", "E-Mail-Adresse", "Neueste Ausgaben"],
        "fr": ["Archives", "S’abonner", "Adresse e-mail", "Derniers numéros"],
    }[language]
    for word in words:
        assert word in home, word
    assert "Subscribe" not in home and "Latest issues" not in home


def test_a_regional_language_falls_back_to_its_catalog_and_keeps_its_dates(cli: Cli, folder: Path) -> None:
    march_article(folder)
    cli.env["NEWSLETTER_NEWSLETTER_LANGUAGE"] = "de-AT"
    assert cli("render", "2026-03-05-march").exit_code == 0
    html = (folder / "build" / "2026-03-05-march.html").read_text()
    assert "5. März 2026" in html and "5 Min. Lesezeit" in html and 'lang="de-AT"' in html
    cli.env["NEWSLETTER_NEWSLETTER_LANGUAGE"] = "en-GB"
    assert cli("render", "2026-03-05-march").exit_code == 0
    assert "5 March 2026" in (folder / "build" / "2026-03-05-march.html").read_text()


def test_an_unknown_language_is_one_line_naming_the_key(cli: Cli) -> None:
    cli.env["NEWSLETTER_NEWSLETTER_LANGUAGE"] = "xx-nowhere"
    result = cli("render", "latest")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "[newsletter] language: 'xx-nowhere'" in result.stderr and "BCP 47" in result.stderr


def test_email_from_a_send_carries_the_view_online_link_first(cli: Cli) -> None:
    cli.env.update({"NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org", "NEWSLETTER_SECRET_KEY": "s" * 40})
    assert cli("send", TLS, "--yes").exit_code == 0
    raw = next((cli.folder / "outbox" / TLS).glob("*.eml")).read_bytes()
    html = email.message_from_bytes(raw, policy=email.policy.default).get_body(("html",)).get_content()
    links = re.findall(r'<a href="([^"]+)"', html)
    assert links[0] == f"https://news.example.org/archive/{TLS}"


def test_the_cached_index_sees_an_article_edited_in_place_within_a_second_or_two(
    server: LiveServer, folder: Path
) -> None:
    assert "Welcome to Privacy Notes" in server.get("/archive").text
    path = folder / "issues" / f"{WELCOME}.md"
    with open(path, "r+", encoding="utf-8") as f:  # in place: the folder's own time stamp does not change
        text = f.read().replace("title: Welcome to Privacy Notes", "title: Welcome, edited")
        f.seek(0)
        f.write(text)
        f.truncate()
    deadline = time.monotonic() + 5
    while "Welcome, edited" not in server.get("/archive").text:
        assert time.monotonic() < deadline, "the edit never showed"
        time.sleep(0.1)
    assert "<h1>Welcome, edited</h1>" in server.get(f"/archive/{WELCOME}").text


def test_an_svg_asset_is_sandboxed_and_every_response_has_the_common_headers(server: LiveServer, folder: Path) -> None:
    (folder / "issues" / "images" / "diagram.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    )
    svg = server.get("/assets/images/diagram.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in svg.headers["content-security-policy"]
    for path in ("/healthz", "/feed.xml", "/assets/images/chain.png", "/nothing", "/archive/"):
        response = httpx.get(server.url + path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
