"""One-click unsubscribe end to end: tokens, a real uvicorn server on 127.0.0.1 (httpx), a real send after.

The server runs `newsletter.web.public.create_app` under uvicorn in a thread; the state is the
folder's real SQLite file, shared with the CLI exactly as `serve` and `send` share it in production.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.config import Config, load_config
from newsletter.render.mime import list_id
from newsletter.render.unsubscribe import base_url_warnings, make_token, read_token, require_secret_for_list
from newsletter.state.engine import engine_for
from newsletter.state.suppressions import reason_for, suppress

from .helpers import Cli, write_article
from .live import LiveServer
from .smtpd import SmtpServer, free_port

pytestmark = pytest.mark.usefixtures("database")

SECRET = "test-secret-0123456789abcdefghijklmnop"
BASE = "https://news.example.org"
ENV = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_NEWSLETTER_BASE_URL": BASE}
TLS = "2026-11-09-tls-certificates"


@pytest.fixture
def config(cli: Cli) -> Config:
    cli.env.update(ENV)
    return load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})


@pytest.fixture
def server(config: Config) -> Iterator[LiveServer]:
    with LiveServer(config) as live:
        yield live


def token_for(config: Config, address: str) -> str:
    return make_token(SECRET, list_id(config), address)


def local(url: str, server: LiveServer) -> str:
    """The public https URL from an email, pointed at the test server."""
    assert url.startswith(BASE + "/")
    return server.url + url[len(BASE) :]


# --- tokens ----------------------------------------------------------------------------------


def test_token_round_trip_is_opaque_and_scoped_to_the_secret() -> None:
    token = make_token(SECRET, "privacy-notes.example.com", "Ada@Example.com")
    assert read_token(SECRET, token) == ("privacy-notes.example.com", "ada@example.com")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert "ada" not in token.lower() and "example" not in token.lower()  # the address is not readable
    assert token == make_token(SECRET, "privacy-notes.example.com", "ada@example.com")  # stable links
    assert read_token("another-secret-of-enough-length", token) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t[:10],
        lambda t: t[: len(t) // 2] + ("A" if t[len(t) // 2] != "A" else "B") + t[len(t) // 2 + 1 :],
        lambda t: t + "A",
        lambda t: "",
        lambda t: "not a token at all!",
        lambda t: "A" * 5000,
    ],
    ids=["last-char-cut", "truncated", "one-char-changed", "char-added", "empty", "garbage", "huge"],
)
def test_forged_tokens_are_refused(mangle: Callable[[str], str]) -> None:
    token = make_token(SECRET, "list", "ada@example.com")
    assert read_token(SECRET, mangle(token)) is None


def test_sending_with_base_url_but_no_secret_is_refused(cli: Cli) -> None:
    config = load_config(cli.folder / "newsletter.toml", env={"NEWSLETTER_NEWSLETTER_BASE_URL": BASE})
    with pytest.raises(Exception, match="NEWSLETTER_SECRET_KEY is not set"):
        require_secret_for_list(config)
    cli.env["NEWSLETTER_NEWSLETTER_BASE_URL"] = BASE
    result = cli("send", "latest", "--yes")
    assert result.exit_code == 2 and "NEWSLETTER_SECRET_KEY is not set" in result.stderr
    assert not list((cli.folder / "outbox").glob("**/*.eml"))


def test_http_base_url_warns_https_does_not(cli: Cli) -> None:
    http = load_config(
        None, env={"NEWSLETTER_NEWSLETTER_BASE_URL": "http://localhost:8000", **{"NEWSLETTER_SECRET_KEY": SECRET}}
    )
    https = load_config(None, env=ENV)
    assert any("local testing" in w for w in base_url_warnings(http))
    assert base_url_warnings(https) == []


def test_message_headers_and_footer_carry_the_same_one_click_url(cli: Cli, config: Config) -> None:
    cli.env.update({"NEWSLETTER_NEWSLETTER_UNSUBSCRIBE_MAILTO": "leave@example.com"})
    assert cli("render", TLS).exit_code == 0
    message = email.message_from_bytes((cli.folder / "build" / f"{TLS}.eml").read_bytes(), policy=email.policy.default)
    header = message["List-Unsubscribe"]
    url = re.fullmatch(r"<(https://[^>]+)>, <mailto:leave@example.com\?subject=unsubscribe>", header)
    assert url, header
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert len(message.get_all("List-Unsubscribe")) == 1
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert f'href="{url.group(1)}"' in html and url.group(1) in text
    assert read_token(SECRET, url.group(1).rsplit("/", 1)[1]) == (list_id(config), "ada@example.com")


def test_http_base_url_gets_no_one_click_header(cli: Cli) -> None:
    cli.env.update({"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_NEWSLETTER_BASE_URL": "http://localhost:8000"})
    assert cli("render", TLS).exit_code == 0
    message = email.message_from_bytes((cli.folder / "build" / f"{TLS}.eml").read_bytes(), policy=email.policy.default)
    assert message["List-Unsubscribe"].startswith("<http://localhost:8000/unsubscribe/")
    assert message["List-Unsubscribe-Post"] is None


# --- the live server -------------------------------------------------------------------------


def test_one_click_post_form_urlencoded_as_a_mail_provider_sends_it(
    cli: Cli, config: Config, server: LiveServer
) -> None:
    assert cli("render", TLS).exit_code == 0
    message = email.message_from_bytes((cli.folder / "build" / f"{TLS}.eml").read_bytes(), policy=email.policy.default)
    url = local(message["List-Unsubscribe"].strip("<>"), server)
    engine = engine_for(config)
    assert reason_for(engine, "ada@example.com") is None
    # RFC 8058 section 3.2: a POST to the URL, body "List-Unsubscribe=One-Click", no cookies.
    response = httpx.post(
        url,
        content=message["List-Unsubscribe-Post"].encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "You are unsubscribed" in response.text
    assert reason_for(engine, "ada@example.com") == "unsubscribed"
    again = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    assert again.status_code == 200 and reason_for(engine, "ada@example.com") == "unsubscribed"


def test_one_click_post_multipart(config: Config, server: LiveServer) -> None:
    token = token_for(config, "grace@example.org")
    response = httpx.post(
        f"{server.url}/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
    )
    assert response.status_code == 200
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert reason_for(engine_for(config), "grace@example.org") == "unsubscribed"


def test_get_shows_a_confirm_page_and_changes_nothing(config: Config, server: LiveServer) -> None:
    token = token_for(config, "renee@example.net")
    for _ in range(3):  # a link scanner may follow it several times
        page = httpx.get(f"{server.url}/unsubscribe/{token}", follow_redirects=False)
        assert page.status_code == 200
    assert reason_for(engine_for(config), "renee@example.net") is None
    assert '<form method="post" action="' + token + '">' in page.text
    assert '<button type="submit">Unsubscribe</button>' in page.text
    assert "renee@example.net" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    head = httpx.head(f"{server.url}/unsubscribe/{token}")
    assert head.status_code == 200 and reason_for(engine_for(config), "renee@example.net") is None


def test_confirm_button_then_resubscribe(config: Config, server: LiveServer) -> None:
    token = token_for(config, "alan@example.com")
    engine = engine_for(config)
    done = httpx.post(f"{server.url}/unsubscribe/{token}", data={"confirm": "yes"})
    assert done.status_code == 200 and reason_for(engine, "alan@example.com") == "unsubscribed"
    assert f'action="../resubscribe/{token}"' in done.text
    back = httpx.post(f"{server.url}/resubscribe/{token}")
    assert back.status_code == 200 and "Welcome back" in back.text
    assert reason_for(engine, "alan@example.com") is None
    # A bounce is not undone from the web page.
    suppress(engine, "alan@example.com", "bounced", "550 5.1.1")
    refused = httpx.post(f"{server.url}/resubscribe/{token}")
    assert refused.status_code == 200 and "cannot resubscribe" in refused.text
    assert reason_for(engine, "alan@example.com") == "bounced"


@pytest.mark.parametrize("kind", ["tampered", "truncated", "garbage", "other-secret"])
def test_bad_token_is_400_and_changes_nothing(config: Config, server: LiveServer, kind: str) -> None:
    good = token_for(config, "ada@example.com")
    middle = len(good) // 2
    token = {
        "tampered": good[:middle] + ("x" if good[middle] != "x" else "y") + good[middle + 1 :],
        "truncated": good[:20],
        "garbage": "%3Cscript%3E",
        "other-secret": make_token("a-different-secret-0123456789", list_id(config), "ada@example.com"),
    }[kind]
    engine = engine_for(config)
    for response in (
        httpx.post(f"{server.url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}),
        httpx.get(f"{server.url}/unsubscribe/{token}"),
        httpx.post(f"{server.url}/resubscribe/{token}"),
    ):
        assert response.status_code == 400
        assert "not valid" in response.text and "<script>" not in response.text
    assert reason_for(engine, "ada@example.com") is None


def test_healthz(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


def test_archive_shows_published_issues_without_personal_data(
    cli: Cli, folder: Path, config: Config, server: LiveServer
) -> None:
    page = httpx.get(f"{server.url}/archive/{TLS}")
    assert page.status_code == 200
    assert "how TLS certificates really get checked" in page.text
    assert "__NL" not in page.text and "ada@example.com" not in page.text
    assert "img-src 'self' https:" in page.headers["content-security-policy"]
    assert "/unsubscribe/" not in page.text  # no personal unsubscribe link
    assert "Hi there," not in page.text  # the web version, not the email (tests/test_site.py)
    index = httpx.get(f"{server.url}/archive")
    assert index.status_code == 200 and f'href="archive/{TLS}"' in index.text
    write_article(folder, "2026-12-24-secret.md", "---\ntitle: Secret draft\ndate: 2026-12-24\ndraft: true\n---\nx\n")
    assert httpx.get(f"{server.url}/archive/2026-12-24-secret").status_code == 404
    assert "Secret draft" not in httpx.get(f"{server.url}/archive").text
    write_article(folder, "2099-01-01-future.md", "---\ntitle: Not yet\ndate: 2099-01-01\n---\nx\n")
    assert httpx.get(f"{server.url}/archive/2099-01-01-future").status_code == 404
    assert "Not yet" not in httpx.get(f"{server.url}/archive").text
    scheduled = "---\ntitle: Scheduled\ndate: 2026-01-01\nsend_at: 2099-01-01 08:00\n---\nx\n"
    write_article(folder, "2026-01-01-scheduled.md", scheduled)  # dated in the past, sent in the future
    assert httpx.get(f"{server.url}/archive/2026-01-01-scheduled").status_code == 404
    assert "Scheduled" not in httpx.get(f"{server.url}/archive").text
    write_article(folder, "2026-01-02-broken.md", "---\ntitle: [broken\ndate: 2026-01-02\n---\nx\n")
    broken = httpx.get(f"{server.url}/archive/2026-01-02-broken")
    assert broken.status_code == 500 and "issues/" not in broken.text  # no internals on a public page
    assert httpx.get(f"{server.url}/archive/no-such-issue").status_code == 404
    assert httpx.get(f"{server.url}/archive/..%2Fnewsletter").status_code == 404


def test_send_after_one_click_unsubscribe_skips_that_address(
    cli: Cli, config: Config, server: LiveServer, smtp_server: SmtpServer
) -> None:
    cli.env.update({**smtp_server.env(), **ENV, "NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.01"})
    token = token_for(config, "grace@example.org")
    response = httpx.post(f"{server.url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    recipients = smtp_server.handler.recipients()
    assert sorted(recipients) == ["ada@example.com", "alan@example.com", "renee@example.net"]
    # Each message's List-Unsubscribe is that recipient's own working link.
    for received in smtp_server.handler.received:
        (address,) = received.rcpt_tos
        header = received.message["List-Unsubscribe"].strip("<>")
        assert read_token(SECRET, header.rsplit("/", 1)[1])[1] == address


@pytest.mark.e2e
def test_serve_command_runs_uvicorn_and_warns_about_http(cli: Cli) -> None:
    """`newsletter serve` as a real process: the warning once, then /healthz and an unsubscribe over TCP."""
    port = free_port()
    env = {**os.environ, **cli.env, "NEWSLETTER_SECRET_KEY": SECRET}
    env["NEWSLETTER_NEWSLETTER_BASE_URL"] = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
        cwd=cli.folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert health.status_code == 200 and "server" not in health.headers
        config = load_config(cli.folder / "newsletter.toml", env=env)
        token = token_for(config, "ada@example.com")
        response = httpx.post(f"http://127.0.0.1:{port}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert reason_for(engine_for(config), "ada@example.com") == "unsubscribed"
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=20)
    assert err.count("warning: [newsletter] base_url is http://127.0.0.1") == 1
    assert "local testing" in err


def test_list_unsubscribe_is_a_plain_ascii_header_on_the_wire(cli: Cli, config: Config) -> None:
    """The parsed header looks right either way (the parser decodes encoded words); the raw bytes must too."""
    assert cli("render", TLS).exit_code == 0
    raw = (cli.folder / "build" / f"{TLS}.eml").read_bytes()
    (line,) = [ln for ln in raw.split(b"\r\n") if ln.startswith(b"List-Unsubscribe:")]
    assert re.fullmatch(rb"List-Unsubscribe: <https://news\.example\.org/unsubscribe/[A-Za-z0-9_-]+>", line), line
