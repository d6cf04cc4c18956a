"""`newsletter render` end to end: the files a writer gets, and what is inside them."""

from __future__ import annotations

import email
import email.policy
import re
from html.parser import HTMLParser
from pathlib import Path

from .helpers import Cli, write_article

TLS = "2026-11-09-tls-certificates"


class LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.styled: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
        if a.get("style"):
            self.styled[tag] = self.styled.get(tag, 0) + 1


def test_render_writes_html_text_and_eml(cli: Cli, folder: Path) -> None:
    result = cli("render", TLS, "--out", "out")
    assert result.exit_code == 0, result.output
    out = folder / "out"
    for suffix in (".html", ".txt", ".eml"):
        path = out / f"{TLS}{suffix}"
        assert path.is_file()
        assert f"{path.relative_to(folder)}  {path.stat().st_size:,} bytes" in result.output

    html = (out / f"{TLS}.html").read_text()
    parser = LinkParser()
    parser.feed(html)
    # premailer inlined the stylesheet into the body's elements...
    for tag in ("p", "h2", "table", "blockquote", "pre", "td"):
        assert parser.styled.get(tag), f"<{tag}> has no inline style"
    # ...and kept the responsive and dark-mode rules, with the !important they need.
    style_blocks = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    kept = "".join(style_blocks)
    assert "@media only screen and (max-width: 620px)" in kept
    assert "width: 100% !important" in kept
    assert "prefers-color-scheme: dark" in kept
    assert "<!--[if mso]>" in html and 'role="presentation"' in html and 'lang="en"' in html
    # Non-ASCII and smart quotes survive.
    assert "Café – “quotes” 🙂" in html
    # No placeholder is left over; the sample subscriber's values are in.
    assert "__NL" not in html and "Hi Ada," in html and "ada@example.com" in html

    text = (out / f"{TLS}.txt").read_text()
    body_links = [h for h in parser.hrefs if h.startswith("https://")]
    assert len(body_links) >= 2
    for href in body_links:
        assert href in text, f"{href} missing from the text part"
    assert "NET::ERR_CERT_DATE_INVALID" in text  # the table
    assert "    openssl s_client" in text  # the code block stays verbatim, indented
    assert "[image: A certificate chain" in text

    msg = email.message_from_bytes((out / f"{TLS}.eml").read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # Exactly what `render` wrote (MIME text travels with CRLF line ends).
    assert parts[1].get_content().replace("\r\n", "\n").rstrip("\n") == html.rstrip("\n")
    assert parts[0].get_content().replace("\r\n", "\n").rstrip("\n") == text.rstrip("\n")
    assert msg["Subject"] == "How TLS certificates really get checked"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["From"] == "Privacy Notes <newsletter@example.com>"
    assert msg["List-Id"] == "Privacy Notes <privacy-notes.example.com>"
    assert re.fullmatch(r"<[0-9a-f]+@example\.com>", msg["Message-ID"])
    assert msg["Date"] and msg["List-Unsubscribe"]
    assert not msg.defects and not any(p.defects for p in parts)


def test_render_warns_about_email_pitfalls(cli: Cli, folder: Path) -> None:
    write_article(
        folder,
        "2026-12-01-sloppy.md",
        "---\ntitle: Sloppy\ndate: 2026-12-01\n---\n\n![](https://example.org/x.png)\n\n"
        "[old](http://example.org/plain) and [here](/relative/page).\n",
    )
    result = cli("render", "2026-12-01-sloppy")
    assert result.exit_code == 0
    err = result.stderr
    assert "image without alt text: https://example.org/x.png" in err
    assert "insecure http: link: http://example.org/plain" in err
    assert "relative link: /relative/page" in err
    assert "no summary" in err
    assert (folder / "build" / "2026-12-01-sloppy.html").is_file()


def test_gmail_clip_warning(cli: Cli, folder: Path) -> None:
    body = "\n\n".join(f"Paragraph {i} " + "lorem ipsum dolor sit amet " * 40 for i in range(120))
    write_article(folder, "2026-12-02-long.md", f"---\ntitle: Long\ndate: 2026-12-02\nsummary: s\n---\n\n{body}\n")
    result = cli("render", "2026-12-02-long")
    assert "Gmail clips messages over 102 KB" in result.stderr


def test_issue_argument_forms(cli: Cli, folder: Path) -> None:
    by_path = cli("render", f"issues/{TLS}.md", "--out", "a")
    by_slug = cli("render", TLS, "--out", "b")
    assert by_path.exit_code == by_slug.exit_code == 0
    latest = cli("render", "latest", "--out", "c")
    assert "2026-11-23-welcome.html" in latest.output  # newest published article
    unknown = cli("render", "2026-11-09-tls-certificate")
    assert unknown.exit_code == 2
    assert "did you mean 2026-11-09-tls-certificates" in unknown.stderr


def test_drafts_are_not_latest(cli: Cli, folder: Path) -> None:
    write_article(folder, "2027-01-01-draft.md", "---\ntitle: Draft\ndate: 2027-01-01\ndraft: true\n---\nWIP\n")
    assert "2026-11-23-welcome" in cli("render", "latest").output
    assert cli("render", "2027-01-01-draft").exit_code == 0  # a draft can still be rendered


def test_unknown_front_matter_keys_reach_templates(cli: Cli, folder: Path) -> None:
    templates = folder / "templates"
    email_html = templates / "email.html"
    email_html.write_text(
        email_html.read_text().replace("{{ body_html }}", "<p>Series: {{ article.series }}</p>{{ body_html }}")
    )
    assert cli("render", TLS).exit_code == 0
    assert "Series: Plumbing" in (folder / "build" / f"{TLS}.html").read_text()


def test_personal_fields_are_escaped_in_html(cli: Cli, folder: Path) -> None:
    (folder / "subscribers.example.csv").write_text(
        'email,name,first_name\nx@example.com,Someone,"<script>alert(1)</script> O\'Hara & ""Co"""\n', encoding="utf-8"
    )
    assert cli("render", TLS).exit_code == 0
    html = (folder / "build" / f"{TLS}.html").read_text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#x27;Hara &amp; &quot;Co&quot;" in html
    text = (folder / "build" / f"{TLS}.txt").read_text()
    assert 'Hi <script>alert(1)</script> O\'Hara & "Co",' in text


def test_name_fallback(cli: Cli, folder: Path) -> None:
    (folder / "subscribers.example.csv").write_text("email,name\nanon@example.com,\n", encoding="utf-8")
    assert cli("render", TLS).exit_code == 0
    assert "Hi there," in (folder / "build" / f"{TLS}.txt").read_text()


def test_marker_like_text_in_an_article_stays_as_written(cli: Cli, folder: Path) -> None:
    write_article(
        folder,
        "2026-12-03-markers.md",
        "---\ntitle: M\ndate: 2026-12-03\nsummary: s\n---\n\nLiteral `__NL_0__` and `__NL_99__`.\n",
    )
    result = cli("render", "2026-12-03-markers")
    assert result.exit_code == 0, result.output
    assert "Literal __NL_0__ and __NL_99__." in (folder / "build" / "2026-12-03-markers.txt").read_text()


def test_oversized_style_block_warning(cli: Cli, folder: Path) -> None:
    assert "Gmail ignores it" not in cli("render", TLS).stderr  # the default theme stays well under
    style = folder / "templates" / "style.css"
    rules = "".join(f"@media (max-width: {300 + i}px) {{ .c{i} {{ width: {i}px !important; }} }}\n" for i in range(400))
    style.write_text(style.read_text() + rules)
    result = cli("render", TLS)
    assert result.exit_code == 0
    assert "Gmail ignores it over 16 KB" in result.stderr
