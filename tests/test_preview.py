"""`newsletter preview` end to end: a real server process, driven by a real headless Chromium.

The server runs as `python -m newsletter preview` in a folder made by `newsletter init`; files are
edited on disk and the test only watches the page change by itself. Send-test goes to a real aiosmtpd.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .helpers import Cli, write_article
from .smtpd import PRODUCTION, SENDER_ADDRESS, SmtpServer, free_port

pytestmark = pytest.mark.browser

TLS = "2026-11-09-tls-certificates"
WAIT_MS = 15_000  # upper bound for "updates by itself" on a loaded 2-core machine (not a speed goal)


@dataclass
class PreviewServer:
    url: str
    port: int
    proc: subprocess.Popen[str]
    stderr: list[str]


def start_preview(folder: Path, env: dict[str, str], port: int | None = None) -> PreviewServer:
    """Run `newsletter preview` as a real process; wait for the URL line it prints."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "--port", str(port)],
        cwd=folder,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    threading.Thread(target=lambda: [stderr.append(line) for line in proc.stderr or []], daemon=True).start()
    try:
        first = lines.get(timeout=60)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"preview printed no URL; stderr: {''.join(stderr)}")
    match = re.match(r"Preview at (http://127\.0\.0\.1:(\d+)/)", first)
    assert match, f"unexpected first line {first!r}; stderr: {''.join(stderr)}"
    return PreviewServer(match.group(1), int(match.group(2)), proc, stderr)


@pytest.fixture
def server(folder: Path, smtp_server: SmtpServer) -> Iterator[PreviewServer]:
    running = start_preview(folder, smtp_server.env())
    yield running
    running.proc.terminate()
    try:
        running.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        pytest.fail("preview did not stop on SIGTERM")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def wait_until(page: Page, expression: str, timeout_ms: int = WAIT_MS) -> None:
    """Poll a JS expression (page.wait_for_function would need eval, which the page's CSP forbids)."""
    for _ in range(timeout_ms // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_ms} ms: {expression}")


FRAME_AT_400 = "document.getElementById('email-frame').contentWindow.scrollY === 400"


def container_width(page: Page) -> float:
    """Width of the email's 600px container table as laid out inside the preview's iframe."""
    frame = page.frame_locator("#email-frame")
    return float(frame.locator("table.container").evaluate("el => el.getBoundingClientRect().width"))


def test_index_lists_articles_newest_first_with_drafts_and_warnings(
    folder: Path, smtp_server: SmtpServer, page: Page
) -> None:
    write_article(
        folder,
        "2026-12-01-draft-notes.md",
        "---\ntitle: Draft notes\ndate: 2026-12-01\ndraft: true\n---\n\nSee [this](http://example.org/plain) "
        "and ![](https://example.org/x.png).\n",
    )
    running = start_preview(folder, smtp_server.env())
    try:
        page.goto(running.url)
        rows = page.locator("tr.article-row")
        expect(rows).to_have_count(4)
        assert [rows.nth(i).get_attribute("data-slug") for i in range(4)] == [
            "2026-12-01-draft-notes",
            "2026-11-23-welcome",
            "2026-11-16-password-managers",
            TLS,
        ]
        draft = rows.nth(0)
        expect(draft.locator(".badge.draft")).to_have_text("draft")
        # http: link, image without alt, no summary: three lint warnings.
        expect(draft.locator(".badge.warn")).to_have_text("3 warnings")
        expect(rows.nth(1).locator(".badge.draft")).to_have_count(0)
        expect(rows.nth(3)).to_contain_text("how TLS certificates really get checked")

        # A new article appears on the open index by itself.
        write_article(folder, "2026-12-08-later.md", "---\ntitle: Written later\ndate: 2026-12-08\n---\nHello.\n")
        expect(rows).to_have_count(5, timeout=WAIT_MS)
        expect(rows.nth(0)).to_contain_text("Written later")
    finally:
        running.proc.terminate()
        running.proc.wait(timeout=15)


def test_index_shows_the_next_digest_and_why_it_cannot_go_to_the_list(
    folder: Path, smtp_server: SmtpServer, page: Page
) -> None:
    yesterday = dt.datetime.now() - dt.timedelta(days=1)
    write_article(
        folder,
        f"{yesterday:%Y-%m-%d}-fresh.md",
        f"---\ntitle: Fresh this week\ndate: {yesterday:%Y-%m-%d %H:%M}\nsummary: New.\n---\n\nHello.\n",
    )
    no_base_url = {k: v for k, v in smtp_server.env().items() if k != "NEWSLETTER_NEWSLETTER_BASE_URL"}
    running = start_preview(folder, no_base_url)
    try:
        page.goto(running.url)
        digest = page.locator("#digest")
        expect(digest).to_contain_text("Next digest digest-")
        expect(digest.locator("li", has_text="Fresh this week")).to_have_count(1)
        # No base_url in this folder: the digest's entries would link to nothing, and the card says so.
        expect(digest.locator("#digest-warnings")).to_contain_text("digest entries have nothing to link to")
        digest.locator("a[href='/issue/_digest']").click()
        frame = page.frame_locator("#email-frame")
        expect(frame.locator("body")).to_contain_text("Fresh this week")
        expect(page.locator("#summary")).to_contain_text("Articles")
    finally:
        running.proc.terminate()
        running.proc.wait(timeout=15)


def test_email_page_widths_tabs_and_headers(server: PreviewServer, page: Page) -> None:
    page.goto(server.url)
    page.get_by_role("link", name=re.compile("how TLS certificates")).click()
    expect(page).to_have_url(f"{server.url}issue/{TLS}")
    frame = page.frame_locator("#email-frame")
    expect(frame.locator("h1")).to_contain_text("how TLS certificates really get checked")
    expect(frame.locator("body")).to_contain_text("Hi Ada,")  # personalized for the sample subscriber

    desktop = container_width(page)
    assert desktop == 600
    page.get_by_role("button", name="Mobile (375 px)").click()
    expect(page.locator("#frame-box")).to_have_class(re.compile(r"\bmobile\b"))
    assert page.locator("#email-frame").evaluate("el => el.contentWindow.innerWidth") == 375
    mobile = container_width(page)
    assert mobile == 375, "the @media rule did not make the container fill the phone's width"
    assert page.locator("#email-frame").evaluate("el => el.contentDocument.documentElement.scrollWidth") == 375
    page.get_by_role("button", name="Desktop").click()
    assert container_width(page) == 600

    page.get_by_role("tab", name="Plain text").click()
    expect(page.locator("#pane-text")).to_be_visible()
    expect(page.locator("#pane-email")).to_be_hidden()
    expect(page.locator("#pane-text")).to_contain_text("Hi Ada,")
    page.get_by_role("tab", name="HTML source").click()
    expect(page.locator("#pane-source")).to_contain_text('<table role="presentation" class="container"')
    page.get_by_role("tab", name="Headers").click()
    headers = page.locator("#pane-headers")
    for name in ("From", "Subject", "To", "Message-ID", "List-Unsubscribe", "List-Id", "Date", "MIME-Version"):
        expect(headers.locator("th", has_text=re.compile(f"^{name}$"))).to_have_count(1)
    expect(headers).to_contain_text(f"Privacy Notes <{SENDER_ADDRESS}>")
    expect(headers).to_contain_text(f"<{PRODUCTION['NEWSLETTER_NEWSLETTER_BASE_URL']}/unsubscribe/")

    expect(page.locator("#html-size")).to_contain_text("KB")
    expect(page.locator("#warnings")).to_have_text("No warnings.")


def test_preview_is_byte_for_byte_what_render_writes(server: PreviewServer, cli: Cli, folder: Path) -> None:
    cli.env.update(PRODUCTION)  # the preview runs with the SMTP server's set-up
    assert cli("render", TLS, "--out", "out").exit_code == 0
    html = httpx.get(f"{server.url}issue/{TLS}/email.html")
    assert html.status_code == 200
    assert html.content == (folder / "out" / f"{TLS}.html").read_bytes()
    text = httpx.get(f"{server.url}issue/{TLS}/email.txt")
    assert text.content == (folder / "out" / f"{TLS}.txt").read_bytes()
    eml = httpx.get(f"{server.url}issue/{TLS}/message.eml")
    assert eml.headers["content-type"] == "message/rfc822"
    # Same message apart from the two headers that differ in every message.
    varying = re.compile(rb"^(Date|Message-ID): .*\r\n|boundary=\"?=_nl_\w+|--=_nl_\w+", re.M)
    assert varying.sub(b"", eml.content) == varying.sub(b"", (folder / "out" / f"{TLS}.eml").read_bytes())
    assert httpx.get(f"{server.url}issue/no-such-article").status_code == 404


def test_live_reload_edits_errors_and_recovery(server: PreviewServer, page: Page, folder: Path) -> None:
    article = folder / "issues" / f"{TLS}.md"
    original = article.read_text()
    template = folder / "templates" / "email.html"
    good_template = template.read_text()
    page.goto(f"{server.url}issue/{TLS}")
    expect(page.locator("#live-status")).to_have_text("live")
    frame = page.frame_locator("#email-frame")
    expect(frame.locator("body")).to_contain_text("Hi Ada,")
    iframe = page.locator("#email-frame")
    iframe.evaluate("el => el.contentWindow.scrollTo(0, 400)")
    wait_until(page, FRAME_AT_400)
    page.evaluate("window.__notReloaded = true")

    # 1. Save the article: the new text appears, the frame keeps its scroll, the page was not reloaded.
    article.write_text(original + "\nA sentence written while the preview was open.\n")
    expect(frame.locator("body")).to_contain_text("A sentence written while the preview was open.", timeout=WAIT_MS)
    wait_until(page, FRAME_AT_400)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#pane-text")).to_contain_text("A sentence written while the preview was open.")

    # 2. A template syntax error is shown with file and line; the server keeps running.
    template.write_text(good_template.replace("{% endblock %}", "{% endblock %}{% if %}", 1))
    error = page.locator("#render-error")
    expect(error).to_contain_text("email.html:", timeout=WAIT_MS)
    expect(error).to_contain_text("fix the template")
    expect(page.locator("#frame-box")).to_be_hidden()
    assert server.proc.poll() is None

    # 3. A missing variable names the template line too.
    template.write_text(good_template.replace("{{ body_html }}", "{{ body_html }}{{ no_such_variable }}"))
    expect(error).to_contain_text("'no_such_variable' is undefined", timeout=WAIT_MS)
    line = good_template.splitlines().index(next(x for x in good_template.splitlines() if "body_html" in x)) + 1
    expect(error).to_contain_text(f"email.html:{line}")

    # 4. Fixing the template recovers by itself, scroll position included.
    template.write_text(good_template)
    expect(page.locator("#render-error")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#frame-box")).to_be_visible()
    expect(frame.locator("body")).to_contain_text("A sentence written while the preview was open.")
    wait_until(page, FRAME_AT_400)

    # 5. Broken front matter: the error names the article file and line; fixing it recovers.
    article.write_text(original.replace("title:", "title: [unclosed", 1))
    expect(error).to_contain_text(re.compile(rf"issues/{TLS}\.md:\d+: "), timeout=WAIT_MS)
    expect(error).to_contain_text("front matter is not valid YAML")
    article.write_text(original.replace("Check the validity dates.", "Check the expiry dates."))
    expect(frame.locator("body")).to_contain_text("Check the expiry dates.", timeout=WAIT_MS)

    # 6. The config file is watched too; a broken one is shown, and fixing it recovers.
    config = folder / "newsletter.toml"
    good_config = config.read_text()
    config.write_text(good_config.replace('name = "Privacy Notes"', 'name = "Renamed Notes"', 1))
    expect(frame.locator("td.masthead")).to_have_text("Renamed Notes", timeout=WAIT_MS)
    assert "port = 587" in good_config
    config.write_text(good_config.replace("port = 587", 'port = "many"'))
    expect(error).to_contain_text("[smtp] port", timeout=WAIT_MS)
    config.write_text(good_config)
    expect(frame.locator("td.masthead")).to_have_text("Privacy Notes", timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    assert server.proc.poll() is None


def test_send_test_form_delivers_to_a_real_smtp_server(
    server: PreviewServer, page: Page, smtp_server: SmtpServer
) -> None:
    page.goto(f"{server.url}issue/{TLS}")
    page.get_by_label("To").fill("tester@example.net")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#send-result")).to_contain_text(
        f"sent test to tester@example.net: smtp 127.0.0.1:{smtp_server.port}", timeout=WAIT_MS
    )
    received = smtp_server.handler.received
    assert [r.rcpt_tos for r in received] == [["tester@example.net"]]
    msg = received[0].message
    assert msg["Subject"] == "[TEST] How TLS certificates really get checked"
    assert msg["To"] == "tester@example.net"  # a test carries no subscriber's name

    # A bad address is a one-line error in the page, nothing sent.
    page.get_by_label("To").fill("not-an-address@")
    page.get_by_label("To").evaluate("el => el.type = 'text'")  # get past the browser's own check
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#send-result")).to_contain_text("is not a valid email address", timeout=WAIT_MS)
    assert len(smtp_server.handler.received) == 1


def test_send_test_refuses_cross_site_requests(server: PreviewServer, smtp_server: SmtpServer) -> None:
    page_html = httpx.get(f"{server.url}issue/{TLS}").text
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page_html)
    assert token, "no CSRF token in the form"
    url = f"{server.url}issue/{TLS}/send-test"
    origin = server.url.rstrip("/")
    form = {"to": "victim@example.net", "csrf": token.group(1)}

    no_token = httpx.post(url, data={"to": "victim@example.net"}, headers={"Origin": origin})
    assert no_token.status_code == 403 and "token" in no_token.text
    wrong_token = httpx.post(url, data={**form, "csrf": "0" * 64}, headers={"Origin": origin})
    assert wrong_token.status_code == 403
    foreign = httpx.post(url, data=form, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "Origin" in foreign.text
    foreign_referer = httpx.post(url, data=form, headers={"Referer": "http://evil.example/page"})
    assert foreign_referer.status_code == 403
    neither = httpx.post(url, data=form)
    assert neither.status_code == 403
    # DNS rebinding: a foreign name resolving to 127.0.0.1 is not served at all.
    rebound = httpx.post(url, data=form, headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert rebound.status_code == 400
    assert httpx.get(server.url, headers={"Host": f"evil.example:{server.port}"}).status_code == 400
    assert smtp_server.handler.received == []

    # The same request from the page's own origin with its token is accepted.
    ok = httpx.post(url, data=form, headers={"Origin": origin, "Accept": "application/json"})
    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert smtp_server.handler.recipients() == ["victim@example.net"]


def test_busy_port_moves_to_the_next_free_one(folder: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        running = start_preview(folder, {}, port=port)
        try:
            assert running.port != port
            assert running.port > port
            assert httpx.get(running.url).status_code == 200
            running.proc.terminate()
            running.proc.wait(timeout=15)  # stderr is complete once the process is gone
            assert any(f"port {port} on 127.0.0.1 is busy" in line for line in running.stderr), running.stderr
        finally:
            running.proc.terminate()
            running.proc.wait(timeout=15)
