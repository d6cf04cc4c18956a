"""`newsletter send-test`: any address, [TEST] subject, through the configured backend, no campaign."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from .helpers import Cli
from .smtpd import SENDER_ADDRESS, SmtpServer

TLS = "2026-11-09-tls-certificates"


def test_send_test_over_smtp_to_a_real_server(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    cli.env.update(smtp_server.env())
    result = cli("send-test", TLS, "--to", "editor@example.net", "--to", "Second@Example.org")
    assert result.exit_code == 0, result.output
    assert f"sent test of {TLS} to editor@example.net: smtp 127.0.0.1:{smtp_server.port}" in result.output
    received = smtp_server.handler.received
    assert [r.rcpt_tos for r in received] == [["editor@example.net"], ["Second@example.org"]]
    assert all(r.mail_from == SENDER_ADDRESS for r in received)
    msg = received[0].message
    assert msg["Subject"] == "[TEST] How TLS certificates really get checked"
    # A stranger gets no subscriber's data: only the address and the template's fallback greeting.
    assert msg["To"] == "editor@example.net"
    assert "Hi there," in msg.get_body(("plain",)).get_content()
    assert "Hi Ada" not in received[0].data.decode()
    assert msg["From"] == f"Privacy Notes <{SENDER_ADDRESS}>"
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    assert "Café – “quotes” 🙂" in html and "editor@example.net" in html
    # The raw subject header is RFC 2047 encoded only when needed; here it is plain ASCII.
    assert b"Subject: [TEST] How TLS" in received[0].data
    # No campaign: the state database was not even created.
    assert not (folder / "newsletter.db").exists()


def test_send_test_default_outbox(cli: Cli, folder: Path) -> None:
    result = cli("send-test", "latest", "--to", "you@example.com")
    assert result.exit_code == 0, result.output
    files = list((folder / "outbox").glob("test-*/*.eml"))
    assert len(files) == 1 and str(files[0].relative_to(folder)) in result.output
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "[TEST] Welcome to Privacy Notes"
    assert msg["To"] == "you@example.com"


def test_send_test_uses_sample_name_never_a_subscriber(cli: Cli, folder: Path) -> None:
    cli.env["NEWSLETTER_NEWSLETTER_SAMPLE_NAME"] = "Sam Sample"
    result = cli("send-test", "latest", "--to", "stranger@example.org")
    assert result.exit_code == 0, result.output
    (path,) = (folder / "outbox").glob("test-*/*.eml")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "Sam Sample <stranger@example.org>"
    text = msg.get_body(("plain",)).get_content()
    assert "Hi Sam," in text and "Hi Ada" not in text


def test_non_ascii_subject_is_encoded(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    cli.env.update(smtp_server.env())
    article = folder / "issues" / f"{TLS}.md"
    article.write_text(article.read_text().replace("subject: How TLS", "subject: Café – How TLS"))
    assert cli("send-test", TLS, "--to", "a@example.com").exit_code == 0
    data = smtp_server.handler.received[0].data
    assert b"Subject: [TEST] =?utf-8?" in data
    assert smtp_server.handler.received[0].message["Subject"] == "[TEST] Café – How TLS certificates really get checked"


def test_bad_address_and_unreachable_server(cli: Cli) -> None:
    bad = cli("send-test", "latest", "--to", "not-an-address")
    assert bad.exit_code == 2
    assert "--to: 'not-an-address' is not a valid email address" in bad.stderr
    cli.env.update(
        {
            "NEWSLETTER_DELIVERY_BACKEND": "smtp",
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": "9",
            "NEWSLETTER_SMTP_SECURITY": "none",
        }
    )
    down = cli("send-test", "latest", "--to", "a@example.com")
    assert down.exit_code == 1
    assert "cannot connect to SMTP server 127.0.0.1:9" in down.stderr
    assert "Traceback" not in down.output


def test_refused_test_address_is_one_line_with_the_reply(cli: Cli, smtp_server: SmtpServer) -> None:
    """send-test reads replies as the send engine does (delivery/replies.py)."""
    cli.env.update(smtp_server.env())
    smtp_server.handler.rcpt_reply = lambda address: "550 5.1.1 no such mailbox"
    result = cli("send-test", "latest", "--to", "gone@example.com")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "newsletter: error: gone@example.com: not delivered, permanent failure (550 5.1.1 no such mailbox)"
    )
