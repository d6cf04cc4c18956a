"""`newsletter feed pull`: a blog's RSS or Atom feed into issues/, through the real CLI and a real HTTP
server on 127.0.0.1 serving the feeds in tests/data/feeds (WordPress RSS 2.0 with content:encoded,
a static site's Atom feed, summaries only, hostile HTML, a malformed feed), plus a feed that grows
and one whose post changes after a local edit. The state is a real SQLite file, and a real
PostgreSQL database where the pull's records are at stake.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import markdown
import pytest

from newsletter.content.articles import load_article
from newsletter.content.issue import issue_for
from newsletter.render.issue import render_issue
from newsletter.state.engine import engine_for
from newsletter.web.site import SitePages

from .feedserver import FeedServer
from .helpers import DATA, LINKS, Cli, config_of, wipe_state, write_article

FEEDS = DATA / "feeds"
PASSKEYS = "2026-11-26-passkeys-one-year-later.md"
DNS = "2026-11-24-a-short-note-on-dns-over-https.md"
NEW_ITEM = """<item>
<title>Recovery codes, printed</title>
<link>https://blog.example.org/2026/11/28/recovery-codes-printed/</link>
<dc:creator><![CDATA[Mira Köhler]]></dc:creator>
<pubDate>Sat, 28 Nov 2026 10:00:00 +0000</pubDate>
<guid isPermaLink="false">https://blog.example.org/?p=420</guid>
<description><![CDATA[Paper still wins.]]></description>
<content:encoded><![CDATA[<p>Paper still wins.</p>]]></content:encoded>
</item>
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[FeedServer]:
    root = tmp_path / "served"
    shutil.copytree(FEEDS, root)
    with FeedServer(root, delay=3.0) as server:
        yield server


@pytest.fixture
def feed_cli(letter: Path, cli: Cli, served: FeedServer) -> Cli:
    cli.env.update({"NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin", "NEWSLETTER_FEED_URL": served.url("wordpress.xml")})
    return cli


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "issues").glob("*.md"))


def as_html(path: Path) -> str:
    return markdown.markdown(load_article(path).body, extensions=["extra", "smarty", "sane_lists"])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_harmless(html: str) -> None:
    """No active content from the post: no script, frame, object, svg, base or refresh, no handler, no odd links."""
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag not in {"script", "iframe", "frame", "object", "embed", "svg", "base"}, tag
        assert not (tag == "meta" and ("http-equiv", "refresh") in attrs)
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "action"):
                assert (value or "").startswith(("https://", "http://", "mailto:", "#", "../", "assets/")), (tag, value)


def one_error(result: object, code: int) -> str:
    out = getattr(result, "output", "")
    assert getattr(result, "exit_code", None) == code, out
    assert out.count("\n") == 1 and out.startswith("newsletter: error: "), out
    return str(out)


# --- what a pull writes ----------------------------------------------------------------------------


def test_a_wordpress_feed_becomes_articles_with_front_matter_and_clean_markdown(feed_cli: Cli, letter: Path) -> None:
    result = feed_cli("feed", "pull")
    assert result.exit_code == 0, result.output
    assert files(letter) == [DNS, PASSKEYS]
    assert result.output.splitlines() == [
        f"wrote issues/{DNS}: “A short note on DNS over HTTPS” (2026-11-24 18:30)",
        f"wrote issues/{PASSKEYS}: “Passkeys, one year later” (2026-11-26 09:10)",
        f"feed {feed_cli.env['NEWSLETTER_FEED_URL']}: 2 entries: 2 new (wrote), 0 already pulled",
    ]
    text = (letter / "issues" / PASSKEYS).read_text(encoding="utf-8")
    assert text.startswith(
        "---\n"
        "title: Passkeys, one year later\n"
        "date: 2026-11-26 09:10\n"  # 08:10 UTC, in the schedule's zone
        "author: Mira Köhler\n"
        "summary: A year after switching every account I could to passkeys, here is what worked, what broke, and "
        "the one recovery plan you need before you start.\n"  # the excerpt, its "… Continue reading" cut off
        "tags:\n- Security\n- Passkeys\n"  # categories, the same one twice only once
        "canonical_url: https://blog.example.org/2026/11/26/passkeys-one-year-later/\n"
        "source_id: https://blog.example.org/?p=412\n"
        "---\n\n"
    ), text
    for markdown_piece in (
        "## What worked\n",
        "-   Shared accounts, through the family vault:\n    -   the bank (yes, really)\n",
        "1.  An old tablet that could not sync the keys.\n",
        "[claimed to support them](https://blog.example.org/2026/03/02/when-sites-lie/)",
        '![The browser\'s passkey prompt](https://blog.example.org/wp-content/uploads/2026/11/passkey-prompt-1024x576.png){: width="536" height="302" }',
        "*The prompt most people see first*",
        "> Have two authenticators before you remove the password.\n",
        "```python\ndef has_backup(account):\n    return len(account.passkeys) >= 2 and account.recovery_codes\n```",
        "| Device | Synced | Notes |\n| --- | --- | --- |\n| Phone | yes | primary |",
        "uses `*` wildcards &amp; 2 &lt; 3",
        "[the post on recovery codes](https://blog.example.org/2026/10/12/recovery-codes/)",  # a root-relative link
    ):
        assert markdown_piece in text, markdown_piece
    # An embedded player cannot play in an email: a link to what it showed.
    dns = (letter / "issues" / DNS).read_text(encoding="utf-8")
    assert "[DNS, explained in five minutes](https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?feature=oembed)" in dns
    html = as_html(letter / "issues" / PASSKEYS)
    for tag in ("<h2>What worked</h2>", "<ul>", "<ol>", "<blockquote>", '<code class="language-python">', "<table>", "<th>Device</th>"):
        assert tag in html, tag
    assert 'src="https://blog.example.org/wp-content/uploads/2026/11/passkey-prompt-1024x576.png"' in html
    assert "<td>uses <code>*</code> wildcards &amp; 2 &lt; 3</td>" in html
    # Nothing a blog's HTML carries for its own page: classes, srcset, ids.
    assert "wp-block" not in text and "srcset" not in text and "class=" not in text


def test_the_email_says_read_on_the_blog_and_the_web_version_names_it_canonical(feed_cli: Cli, letter: Path) -> None:
    feed_cli.env.update(LINKS)
    assert feed_cli("feed", "pull").exit_code == 0
    write_article(letter, "2026-11-25-own.md", "---\ntitle: Our own\ndate: 2026-11-25\nsummary: S.\n---\n\nMine.\n")
    config = config_of(feed_cli)
    post = load_article(letter / "issues" / PASSKEYS)
    rendered = render_issue(issue_for(post), config)
    blog = "https://blog.example.org/2026/11/26/passkeys-one-year-later/"
    assert f'<a href="{blog}" style=' in rendered.html or f'<a href="{blog}">' in rendered.html
    assert "Read on the blog →" in rendered.html
    assert f"Read on the blog: {blog}" in rendered.text
    own = render_issue(issue_for(load_article(letter / "issues" / "2026-11-25-own.md")), config)
    assert "Read on the blog" not in own.html + own.text
    pages = SitePages(config, engine_for(config), static=False)
    page = pages.item(PASSKEYS.removesuffix(".md"))
    assert page is not None and f'<link rel="canonical" href="{blog}">' in page
    own_page = pages.item("2026-11-25-own")
    assert own_page is not None and '<link rel="canonical" href="https://news.example.org/archive/2026-11-25-own">' in own_page


def test_a_static_sites_atom_feed_links_resolve_against_each_post(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    result = feed_cli("feed", "pull", served.url("static-atom.xml"))
    assert result.exit_code == 0, result.output
    name = "2026-11-25-reading-a-tls-handshake-its-certificates.md"
    assert files(letter) == ["2026-11-18-why-my-static-site-has-no-comments.md", name]
    post = load_article(letter / "issues" / name)
    assert post.title == "Reading a TLS handshake & its certificates"  # type="html": the entity decoded once
    assert f"{post.date:%Y-%m-%d %H:%M}" == "2026-11-25 21:00"  # +01:00 is Berlin's own offset then
    assert post.author == "Sam Ortiz" and post.tags == ("tls", "networking")
    assert post.summary == "What each message of a TLS 1.3 handshake says, read with openssl."
    assert post.canonical_url == "https://notes.example.net/posts/tls-handshake/"
    # Relative to the post (a page bundle's image), to the site's root, and to the post itself.
    assert "](https://notes.example.net/posts/tls-handshake/handshake.svg)" in post.body
    assert "[the post on OCSP](https://notes.example.net/posts/ocsp/)" in post.body
    assert "[the chain above](https://notes.example.net/posts/tls-handshake/#the-chain)" in post.body
    assert "```\n$ openssl s_client -connect example.org:443 -servername example.org\n```" in post.body
    assert "| 1 | An intermediate CA |" in post.body
    other = load_article(letter / "issues" / "2026-11-18-why-my-static-site-has-no-comments.md")
    assert "[sam@notes.example.net](mailto:sam@notes.example.net)" in other.body


def test_a_feed_with_only_summaries_gives_the_summary_as_the_body(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    assert feed_cli("feed", "pull", served.url("summaries.xml")).exit_code == 0
    banners = load_article(letter / "issues" / "2026-11-25-three-things-about-cookie-banners.md")
    assert banners.author == "Robin Vale"  # the RSS <author> address is not published
    assert len(banners.summary) <= 280 and banners.summary.endswith("tolerate, and…")
    assert banners.body.strip().startswith("Most of them ask for consent they do not need")
    plain = load_article(letter / "issues" / "2026-11-23-plain-text-a-defence.md")
    assert plain.summary == "Why the plain-text part of an email still matters."
    assert plain.body.strip() == "Why the *plain-text part* of an email still matters."
    assert plain.title == "Plain text: a defence" and plain.author == ""


def test_hostile_html_never_reaches_the_file_the_email_or_the_web_page(
    feed_cli: Cli, letter: Path, served: FeedServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-4711\n")
    hostile = served.root / "hostile.xml"
    hostile.write_text(hostile.read_text().replace("file:///etc/hostname", secret.as_uri()))
    feed_cli.env.update(LINKS)
    assert feed_cli("feed", "pull", served.url("hostile.xml")).exit_code == 0
    (path,) = (letter / "issues").glob("*.md")
    text = path.read_text(encoding="utf-8").split("source_id: ", 1)[1]  # the title is text: below it
    for gone in ("evil.example", "tracker.example", "TOPSECRET", "frame fallback", "position:fixed", "data:", "<"):
        assert gone not in text, gone
    assert_harmless(as_html(path))
    post = load_article(path)
    assert post.title == "Totally normal post Bcc: victim@example.com <script>alert('title')</script>"  # one line of text
    assert "[six](https://hostile.example.org/ok)" in post.body and "one, two, three, four, five," in post.body
    assert "[https://video.example/embed/42](https://video.example/embed/42)" in post.body  # the frame, as a link
    config = config_of(feed_cli)
    rendered = render_issue(issue_for(post), config)
    page = SitePages(config, engine_for(config), static=False).item(post.slug)
    assert page is not None
    email_html, _text = rendered.personalize({"email": "ada@example.com", "name": "Ada"}, "https://news.example.org/u/x")
    for html in (email_html, page):
        assert_harmless(html)
        assert "&lt;script&gt;alert(&#34;text&#34;)&lt;/script&gt;" in html or "&lt;script&gt;alert(" in html
        assert "&lt;img src=x onerror=alert" in html  # text, not a tag
    assert "\n" not in rendered.subject


# --- what a pull refuses -------------------------------------------------------------------------


def test_a_malformed_feed_is_one_line_and_writes_nothing(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    (served.root / "page.html").write_text("<!DOCTYPE html><html><body><h1>My blog</h1></body></html>")
    (served.root / "empty.xml").write_text("")
    cases = {
        "malformed.xml": "not a well-formed feed (line 11, column 15: mismatched tag); nothing was written",
        "page.html": "a web page, not a feed; give the address of the blog's RSS or Atom feed",
        "empty.xml": "an empty document;",
        "status/404": "the server answered 404 Not Found; check [feed] url",
    }
    for name, message in cases.items():
        out = one_error(feed_cli("feed", "pull", served.url(name)), 1)
        assert f"newsletter: error: {served.url(name)}: {message}" in out, out
    assert files(letter) == []


def test_a_feed_that_times_out_is_one_line(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    feed_cli.env["NEWSLETTER_FEED_TIMEOUT"] = "0.5"
    out = one_error(feed_cli("feed", "pull", served.url("slow/wordpress.xml")), 1)
    assert out == (
        f"newsletter: error: {served.url('slow/wordpress.xml')}: the feed did not arrive within 0.5 s; check the "
        f"address, or raise [feed] timeout\n"
    )
    refused = one_error(feed_cli("feed", "pull", "http://127.0.0.1:1/feed.xml"), 1)
    assert "cannot read the feed (" in refused and "check the address and the network" in refused
    assert files(letter) == []


def test_a_feed_over_the_size_cap_is_refused_unread(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    feed_cli.env["NEWSLETTER_FEED_MAX_SIZE_MB"] = "0.002"  # the WordPress fixture is about 5 KB
    for where in (served.url("wordpress.xml"), served.url("stream/wordpress.xml"), str(FEEDS / "wordpress.xml")):
        out = one_error(feed_cli("feed", "pull", where), 1)
        assert out.endswith(": the feed is larger than 0.002 MB; nothing was read (raise [feed] max_size_mb if it really is that large)\n"), out
    assert files(letter) == []
    # Small on the wire, large unpacked: the cap holds for what it unpacks to.
    bomb = (FEEDS / "summaries.xml").read_text().replace("<channel>", "<channel>" + "<!--" + " " * 3_000_000 + "-->")
    (served.root / "bomb.xml").write_text(bomb)
    feed_cli.env["NEWSLETTER_FEED_MAX_SIZE_MB"] = "1"
    out = one_error(feed_cli("feed", "pull", served.url("gzip/bomb.xml")), 1)
    assert "the feed is larger than 1 MB; nothing was read" in out
    assert feed_cli("feed", "pull", served.url("gzip/summaries.xml")).exit_code == 0  # gzip itself is fine
    del feed_cli.env["NEWSLETTER_FEED_MAX_SIZE_MB"]
    assert feed_cli("feed", "pull", served.url("stream/wordpress.xml")).exit_code == 0  # no Content-Length: read to the end
    assert feed_cli("feed", "pull", served.url("moved/static-atom.xml")).exit_code == 0  # a redirect is followed
    assert len(files(letter)) == 6


def test_only_http_urls_and_local_files_are_read(feed_cli: Cli, letter: Path) -> None:
    for given, message in (
        ("ftp://blog.example.org/feed", "ftp:// is not read; give an http(s):// URL or the path of a local file"),
        ("file:///etc/passwd", "file:// is not read"),
        ("https://", "names no host"),
    ):
        out = one_error(feed_cli("feed", "pull", given), 2)
        assert out.startswith(f"newsletter: error: URL_OR_FILE: {given!r}") and message in out, out
    out = one_error(feed_cli("feed", "pull", "no-such-feed.xml"), 2)
    assert "no-such-feed.xml: no such feed file; check the path" in out
    feed_cli.env["NEWSLETTER_FEED_URL"] = "gopher://old.example/feed"
    out = one_error(feed_cli("feed", "pull"), 2)
    assert "environment variable NEWSLETTER_FEED_URL: 'gopher://old.example/feed': gopher:// is not read" in out
    (letter / "newsletter.toml").write_text((letter / "newsletter.toml").read_text() + '\n[feed]\nurl = "feed.xml"\n')
    del feed_cli.env["NEWSLETTER_FEED_URL"]
    shutil.copy(FEEDS / "summaries.xml", letter / "feed.xml")  # relative to the config's folder
    assert feed_cli("feed", "pull").exit_code == 0 and len(files(letter)) == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("URL", "javascript://alert(1)", "NEWSLETTER_FEED_URL: 'javascript://alert(1)': javascript:// is not read"),
        ("TIMEOUT", "0", "NEWSLETTER_FEED_TIMEOUT: must be more than 0 seconds"),
        ("MAX_SIZE_MB", "-1", "NEWSLETTER_FEED_MAX_SIZE_MB: must be more than 0"),
        ("INTERVAL", "30s", "NEWSLETTER_FEED_INTERVAL: must be 0 (only before each run) or at least 1m"),
        ("MODE", "weekly", "'weekly' is not one of 'digest', 'each'"),
    ],
)
def test_bad_feed_settings_are_one_line_errors(feed_cli: Cli, key: str, value: str, message: str) -> None:
    feed_cli.env[f"NEWSLETTER_FEED_{key}"] = value
    out = one_error(feed_cli("feed", "pull"), 2)
    assert message in out, out


def test_a_bad_canonical_url_in_front_matter_is_one_line(cli: Cli, letter: Path) -> None:
    write_article(letter, "x.md", "---\ntitle: X\ndate: 2026-11-25\ncanonical_url: javascript:alert(1)\n---\n\nBody.\n")
    out = one_error(cli("render", "x"), 2)
    assert "issues/x.md: canonical_url: 'javascript:alert(1)' is not a full http(s) address" in out


# --- idempotency ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("database")
def test_a_feed_that_grows_writes_only_the_new_post(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    assert feed_cli("feed", "pull").exit_code == 0
    assert files(letter) == [DNS, PASSKEYS]
    feed = served.root / "wordpress.xml"
    feed.write_text(feed.read_text().replace("<item>", NEW_ITEM + "\t<item>", 1))
    second = feed_cli("feed", "pull")
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[0] == (
        "wrote issues/2026-11-28-recovery-codes-printed.md: “Recovery codes, printed” (2026-11-28 11:00)"
    )
    assert second.output.splitlines()[-1].endswith(": 3 entries: 1 new (wrote), 2 already pulled")
    assert files(letter) == [DNS, PASSKEYS, "2026-11-28-recovery-codes-printed.md"]
    # Unchanged since: the server answers 304 to the validator it gave, and nothing is read or written.
    third = feed_cli("feed", "pull")
    assert third.output.endswith(": not changed since the last pull; nothing new\n"), third.output
    assert served.requests[-1][1].get("If-None-Match", "").startswith('"')
    assert len(files(letter)) == 3


@pytest.mark.usefixtures("database")
def test_a_post_updated_on_the_blog_is_rewritten_unless_the_file_was_edited_here(
    feed_cli: Cli, letter: Path, served: FeedServer
) -> None:
    assert feed_cli("feed", "pull").exit_code == 0
    dns = letter / "issues" / DNS
    edited = dns.read_text().replace("Choose the resolver first", "Pick the resolver first (my note)")
    dns.write_text(edited)
    feed = served.root / "wordpress.xml"
    text = feed.read_text().replace("<h2 class=\"wp-block-heading\">What broke</h2>", "<h2>What broke, a year on</h2>")
    feed.write_text(text.replace("the protocol second.", "the protocol second. (Updated.)"))
    result = feed_cli("feed", "pull")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"kept issues/{DNS} as it is: the post changed on the blog, but the file was edited here since it was "
        f"pulled (`newsletter feed pull --overwrite` takes the blog's version)",
        f"updated issues/{PASSKEYS}: the post changed on the blog",
    ]
    assert result.output.splitlines()[-1].endswith(": 2 entries: 0 new (wrote), 1 updated, 1 kept as edited here, 0 already pulled")
    assert "## What broke, a year on" in (letter / "issues" / PASSKEYS).read_text()
    assert dns.read_text() == edited
    # Said once: the next pull is quiet about it.
    again = feed_cli("feed", "pull", "--since", "2026-01-01")  # --since: no conditional GET, the whole feed is read
    assert again.output.splitlines() == [f"feed {served.url('wordpress.xml')}: 2 entries: 0 new (wrote), 2 already pulled"]
    # --overwrite takes the blog's version.
    over = feed_cli("feed", "pull", "--overwrite")
    assert f"updated issues/{DNS}: --overwrite" in over.output
    assert "(Updated.)" in dns.read_text() and "my note" not in dns.read_text()


@pytest.mark.usefixtures("database")
def test_a_deleted_file_stays_deleted_and_a_lost_state_database_duplicates_nothing(
    feed_cli: Cli, letter: Path, served: FeedServer
) -> None:
    assert feed_cli("feed", "pull").exit_code == 0
    (letter / "issues" / DNS).unlink()
    assert feed_cli("feed", "pull", "--since", "2026-01-01").exit_code == 0
    assert files(letter) == [PASSKEYS]  # deleted here: not pulled again
    # The state database is lost: the files' source_id still say which posts are here.
    (letter / "issues" / "2026-11-26-passkeys-renamed.md").write_bytes((letter / "issues" / PASSKEYS).read_bytes())
    (letter / "issues" / PASSKEYS).unlink()
    wipe_state(feed_cli)
    result = feed_cli("feed", "pull")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote issues/{DNS}: “A short note on DNS over HTTPS” (2026-11-24 18:30)",
        f"feed {served.url('wordpress.xml')}: 2 entries: 1 new (wrote), 1 already pulled",
    ]
    assert files(letter) == [DNS, "2026-11-26-passkeys-renamed.md"]


def test_dry_run_lists_and_writes_nothing_and_since_limits_how_far_back(feed_cli: Cli, letter: Path) -> None:
    dry = feed_cli("feed", "pull", "--dry-run")
    assert dry.exit_code == 0 and dry.output.splitlines() == [
        f"would write issues/{DNS}: “A short note on DNS over HTTPS” (2026-11-24 18:30)",
        f"would write issues/{PASSKEYS}: “Passkeys, one year later” (2026-11-26 09:10)",
        f"feed {feed_cli.env['NEWSLETTER_FEED_URL']}: 2 entries: 2 new (would write), 0 already pulled",
    ]
    assert files(letter) == []
    since = feed_cli("feed", "pull", "--since", "2026-11-25")
    assert since.output.splitlines()[-1].endswith("1 new (wrote), 0 already pulled, 1 older than --since")
    assert files(letter) == [PASSKEYS]
    assert feed_cli("feed", "pull").output.splitlines()[0].startswith(f"wrote issues/{DNS}")
    out = one_error(feed_cli("feed", "pull", "--since", "last week"), 2)
    assert "--since: 'last week' is not a date" in out


def test_two_posts_with_one_title_get_two_files(feed_cli: Cli, letter: Path, served: FeedServer) -> None:
    feed = served.root / "wordpress.xml"
    twin = NEW_ITEM.replace("Recovery codes, printed", "A short note on DNS over HTTPS").replace("Sat, 28", "Tue, 24")
    feed.write_text(feed.read_text().replace("<item>", twin + "\t<item>", 1))
    assert feed_cli("feed", "pull").exit_code == 0
    assert files(letter) == ["2026-11-24-a-short-note-on-dns-over-https-2.md", DNS, PASSKEYS]
