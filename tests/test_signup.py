"""Signup with double opt-in end to end: `serve` under a real uvicorn, the confirmation through a real aiosmtpd.

Every test runs on SQLite and on PostgreSQL. The server and the CLI share the folder's state
database exactly as `serve` and `send` share it in production.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from newsletter.config import Config, load_config
from newsletter.render.confirm_token import Signup, make_confirm_token, read_confirm_token
from newsletter.render.mime import list_id
from newsletter.state.engine import engine_for
from newsletter.state.subscribers import find
from newsletter.state.suppressions import reason_for, suppress

from .helpers import FAST, TLS, Cli
from .live import LiveServer
from .smtpd import SmtpServer, free_port

pytestmark = pytest.mark.usefixtures("database")

SECRET = "signup-test-secret-0123456789abcdef"
BASE = "https://news.example.org"


@pytest.fixture
def config(cli: Cli, smtp_server: SmtpServer) -> Config:
    cli.env.update(
        {
            **smtp_server.env(),
            **FAST,
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_NEWSLETTER_BASE_URL": BASE,
            "NEWSLETTER_PATHS_SUBSCRIBERS": "none.csv",  # the list is what signs up
        }
    )
    return load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})


@pytest.fixture
def server(config: Config) -> Iterator[LiveServer]:
    with LiveServer(config) as live:
        yield live


def subscribe(server: LiveServer, email: str, name: str = "", **extra: str) -> httpx.Response:
    return httpx.post(f"{server.url}/subscribe", data={"email": email, "name": name, **extra}, follow_redirects=False)


def mails(smtp: SmtpServer, count: int, timeout: float = 10) -> list[EmailMessage]:
    """The messages received so far, once there are `count` (the confirmation goes out after the answer)."""
    deadline = time.monotonic() + timeout
    while len(smtp.handler.received) < count:
        assert time.monotonic() < deadline, f"expected {count} mails, got {len(smtp.handler.received)}"
        time.sleep(0.02)
    time.sleep(0.2)  # and no more than that
    return [r.message for r in smtp.handler.received]


def confirm_link(message: EmailMessage, server: LiveServer) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (url,) = re.findall(r"https://news\.example\.org/confirm/[A-Za-z0-9_-]+", text)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{url}"' in html  # the button carries the same link
    return server.url + url.removeprefix(BASE)


def status_of(config: Config, email: str) -> str | None:
    row = find(engine_for(config), email)
    return row.effective if row else None


def test_signup_confirm_then_send_reaches_the_address(
    cli: Cli, config: Config, server: LiveServer, smtp_server: SmtpServer
) -> None:
    form = httpx.get(f"{server.url}/subscribe")
    assert form.status_code == 200
    assert '<form class="signup" method="post" action="subscribe">' in form.text
    assert '<label for="email">' in form.text and 'autocomplete="email"' in form.text
    answer = subscribe(server, "Ada@Example.com", "Ada Lovelace")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert "set-cookie" not in answer.headers
    (mail,) = mails(smtp_server, 1)
    assert smtp_server.handler.received[0].rcpt_tos == ["Ada@example.com"]
    assert mail["To"] == "Ada Lovelace <Ada@example.com>"
    assert mail["Subject"] == "Confirm your subscription to Privacy Notes"
    assert mail["List-Unsubscribe"] is None and mail["Auto-Submitted"] == "auto-generated"
    assert "Hi Ada," in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = confirm_link(mail, server)
    assert status_of(config, "ada@example.com") == "pending"
    # A GET (a link scanner, a preview) shows a button and changes nothing.
    for _ in range(3):
        page = httpx.get(link)
        assert page.status_code == 200 and "Yes, subscribe me" in page.text
    assert status_of(config, "ada@example.com") == "pending"
    assert httpx.post(link).status_code == 200
    assert status_of(config, "ada@example.com") == "active"
    again = httpx.post(link)  # confirming twice is harmless
    assert again.status_code == 200 and "You are subscribed" in again.text
    row = find(engine_for(config), "ada@example.com")
    assert row is not None and row.source == "signup" and row.first_name == "Ada"
    assert row.consent_how == "signup" and row.confirmed_at is not None
    listed = cli("subscribers", "list").stdout
    assert "Ada@example.com\tAda Lovelace\tactive\tsignup\t\tsignup " in listed and ", confirmed " in listed
    assert "127.0.0.1" not in listed
    # The next send reaches the address.
    smtp_server.handler.received.clear()
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    assert smtp_server.handler.recipients() == ["Ada@example.com"]
    assert "Hi Ada," in smtp_server.handler.received[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_the_answer_is_the_same_whoever_signs_up(config: Config, server: LiveServer, smtp_server: SmtpServer) -> None:
    engine = engine_for(config)
    assert subscribe(server, "pending@example.com").status_code == 200  # pending from here on
    link = confirm_link(mails(smtp_server, 1)[0], server)
    subscribe(server, "active@example.com")
    link = confirm_link(mails(smtp_server, 2)[1], server)
    assert httpx.post(link).status_code == 200
    suppress(engine, "left@example.com", "unsubscribed")
    smtp_server.handler.received.clear()

    def normalized(email: str) -> tuple[int, str, list[tuple[str, str]]]:
        answer = subscribe(server, email, "Someone")
        headers = sorted((k, v) for k, v in answer.headers.items() if k not in ("date", "content-length"))
        return answer.status_code, answer.text.replace(email, "EMAIL"), headers

    answers = {who: normalized(f"{who}@example.com") for who in ("new", "pending", "active", "left")}
    assert len(set(map(repr, answers.values()))) == 1, answers
    # Mail went to the new address and to the suppressed one (it may come back by confirming), not to
    # the active one, nor again to the pending one within the hour.
    mails(smtp_server, 2)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.received) == ["left@example.com", "new@example.com"]
    assert reason_for(engine, "left@example.com") == "unsubscribed"


def test_a_suppressed_address_comes_back_only_through_the_link(
    config: Config, server: LiveServer, smtp_server: SmtpServer
) -> None:
    engine = engine_for(config)
    suppress(engine, "back@example.com", "unsubscribed", "one-click")
    subscribe(server, "back@example.com", "Back Again")
    link = confirm_link(mails(smtp_server, 1)[0], server)
    assert reason_for(engine, "back@example.com") == "unsubscribed"  # the form alone changes nothing
    assert httpx.get(link).status_code == 200 and reason_for(engine, "back@example.com") == "unsubscribed"
    assert httpx.post(link).status_code == 200
    assert reason_for(engine, "back@example.com") is None and status_of(config, "back@example.com") == "active"


def test_forged_confirmation_tokens_are_400_and_change_nothing(config: Config, server: LiveServer) -> None:
    signup = Signup(list_id(config), "eve@example.com", "", "", dt.datetime.now(dt.UTC).replace(tzinfo=None), "x")
    good = make_confirm_token(SECRET, signup)
    middle = len(good) // 2
    forged = {
        "tampered": good[:middle] + ("x" if good[middle] != "x" else "y") + good[middle + 1 :],
        "truncated": good[:30],
        "garbage": "%3Cscript%3E",
        "other-secret": make_confirm_token("another-secret-0123456789abcdefgh", signup),
        "other-list": make_confirm_token(
            SECRET, Signup("other.example.com", "eve@example.com", "", "", signup.requested_at, "x")
        ),
    }
    for kind, token in forged.items():
        for response in (httpx.get(f"{server.url}/confirm/{token}"), httpx.post(f"{server.url}/confirm/{token}")):
            assert response.status_code == 400, kind
            assert "not valid" in response.text and "<script>" not in response.text
    assert status_of(config, "eve@example.com") is None


def test_an_expired_link_is_410_with_a_way_back(config: Config, server: LiveServer) -> None:
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=7, minutes=1)
    token = make_confirm_token(SECRET, Signup(list_id(config), "late@example.com", "Late", "Late", old, "x"))
    assert read_confirm_token(SECRET, token, dt.timedelta(days=8), old + dt.timedelta(days=7))[0] == "ok"
    for response in (httpx.get(f"{server.url}/confirm/{token}"), httpx.post(f"{server.url}/confirm/{token}")):
        assert response.status_code == 410
        assert "expired" in response.text and 'href="../subscribe"' in response.text
    assert status_of(config, "late@example.com") is None


def test_one_confirmation_mail_per_address_per_hour(
    config: Config, server: LiveServer, smtp_server: SmtpServer
) -> None:
    for _ in range(3):
        assert subscribe(server, "twice@example.com").status_code == 200
    assert len(mails(smtp_server, 1)) == 1


def test_the_honeypot_gets_the_same_page_and_nothing_happens(
    config: Config, server: LiveServer, smtp_server: SmtpServer
) -> None:
    answer = subscribe(server, "bot@example.com", "Bot", website="http://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    time.sleep(0.5)
    assert smtp_server.handler.received == [] and status_of(config, "bot@example.com") is None


def test_bad_input_shows_the_form_again(config: Config, server: LiveServer, smtp_server: SmtpServer) -> None:
    bad = subscribe(server, "not an address", "<b>Name</b>")
    assert bad.status_code == 400 and "does not look like an email address" in bad.text
    assert 'value="not an address"' in bad.text and "&lt;b&gt;Name&lt;/b&gt;" in bad.text
    injected = subscribe(server, "eve@example.com", "Eve\r\nBcc: victim@example.com")
    assert injected.status_code == 400 and "line breaks" in injected.text
    big = httpx.post(f"{server.url}/subscribe", data={"email": "a@example.com", "name": "x" * 20_000})
    assert big.status_code == 413
    multipart = httpx.post(f"{server.url}/subscribe", files={"email": (None, "multi@example.com")})
    assert multipart.status_code == 200
    mails(smtp_server, 1)
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["multi@example.com"]]


def test_the_form_works_cross_origin_as_a_plain_html_form(config: Config, server: LiveServer) -> None:
    answer = httpx.post(
        f"{server.url}/subscribe",
        content=b"email=reader%40example.org&name=Reader",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://blog.example.net",
            "Referer": "https://blog.example.net/about",
        },
    )
    assert answer.status_code == 200 and "reader@example.org" in answer.text


def test_the_client_rate_limit_answers_429(cli: Cli, smtp_server: SmtpServer, config: Config) -> None:
    cli.env["NEWSLETTER_SIGNUP_RATE_LIMIT"] = "3"
    limited = load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})
    # Two replicas on one state database: the limit is shared.
    with LiveServer(limited) as one, LiveServer(limited) as two:
        codes = [subscribe(s, f"r{i}@example.com").status_code for i, s in enumerate([one, two, one])]
        assert codes == [200, 200, 200]
        refused = subscribe(two, "r9@example.com")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
    assert "Too many signups" in refused.text
    assert status_of(config, "r9@example.com") is None


def test_signups_are_closed_without_a_secret_or_base_url(cli: Cli) -> None:
    closed = load_config(cli.folder / "newsletter.toml", env={"NEWSLETTER_SECRET_KEY": SECRET})  # no base_url
    with LiveServer(closed) as live:
        assert httpx.get(f"{live.url}/subscribe").status_code == 404
        assert subscribe(live, "a@example.com").status_code == 404


def test_pending_signups_expire_and_are_purged(config: Config, server: LiveServer, smtp_server: SmtpServer) -> None:
    from newsletter.state.signups import purge_pending

    subscribe(server, "never@example.com")
    mails(smtp_server, 1)
    engine = engine_for(config)
    assert purge_pending(engine, dt.timedelta(days=7)) == 0
    assert purge_pending(engine, dt.timedelta(seconds=0)) == 1
    assert status_of(config, "never@example.com") is None


@pytest.mark.e2e
def test_two_serve_processes_share_the_rate_limit(cli: Cli, config: Config) -> None:
    """Two `newsletter serve` replicas (separate processes) on one state database: one limit between them."""
    env = {**os.environ, **cli.env, "NEWSLETTER_SIGNUP_RATE_LIMIT": "2"}
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
            cwd=cli.folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                    time.sleep(0.1)
        codes = [
            httpx.post(f"http://127.0.0.1:{port}/subscribe", data={"email": f"p{i}@example.com"}).status_code
            for i, port in enumerate([ports[0], ports[1], ports[0]])
        ]
        assert codes == [200, 200, 429]
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=20)


def test_the_confirmation_mail_comes_from_the_folders_theme(
    cli: Cli, config: Config, server: LiveServer, smtp_server: SmtpServer
) -> None:
    (cli.folder / "templates" / "confirm.txt").write_text(
        '{% set subject = "Bitte bestätigen: " ~ newsletter.name %}Hallo {{ subscriber.first_name | default("du") }},\n'
        "bitte bestätige: {{ confirm_url }}\n(gültig {{ expires }})\n",
        encoding="utf-8",
    )
    subscribe(server, "jonas@example.de", "Jonas Weber")
    (mail,) = mails(smtp_server, 1)
    assert mail["Subject"] == "Bitte bestätigen: Privacy Notes"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hallo Jonas,\r\n") and "(gültig 7 days)" in text
    assert httpx.post(confirm_link(mail, server)).status_code == 200
