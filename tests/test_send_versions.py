"""Edited issues: a sent issue is never sent again by editing it, and no one gets two versions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .helpers import Cli
from .smtpd import SmtpServer

pytestmark = pytest.mark.usefixtures("database")

WELCOME = "2026-11-23-welcome"
LIST = ["ada@example.com", "grace@example.org", "renee@example.net", "alan@example.com"]


def edit(folder: Path, text: str) -> None:
    article = folder / "issues" / f"{WELCOME}.md"
    article.write_text(article.read_text() + f"\n{text}\n")


def test_editing_a_sent_issue_does_not_send_it_again(cli: Cli, folder: Path) -> None:
    assert cli("send", WELCOME, "--yes").exit_code == 0
    outbox = folder / "outbox" / WELCOME
    first = {p.name: p.read_bytes() for p in outbox.glob("*.eml")}
    assert len(first) == len(LIST)
    edit(folder, "A typo fixed after sending.")
    again = cli("send", WELCOME, "--yes")
    assert again.exit_code == 2
    assert "was already sent (an earlier version: the issue was edited since)" in again.stderr
    assert {p.name: p.read_bytes() for p in outbox.glob("*.eml")} == first  # nothing new, nothing overwritten
    dry = cli("send", WELCOME, "--dry-run")
    assert dry.exit_code == 2 and "already sent" in dry.stderr
    resend = cli("send", WELCOME, "--yes", "--resend")
    assert resend.exit_code == 0, resend.output
    assert "sent 4," in resend.output


def test_two_edits_during_partial_sends_never_give_anyone_two_copies(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    cli.env.update(smtp_server.env())
    cli.env.update({"NEWSLETTER_SMTP_MAX_ATTEMPTS": "1", "NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.01"})
    handler = smtp_server.handler

    def accept_only(*allowed: str) -> None:
        handler.rcpt_reply = lambda address: None if address in allowed else "451 4.7.1 try again later"

    accept_only("ada@example.com")  # version A reaches Ada only; the others are deferred
    assert cli("send", WELCOME, "--yes").exit_code == 0
    edit(folder, "Version B.")
    accept_only("ada@example.com", "grace@example.org")  # Ada would accept B too: she must be skipped
    assert cli("send", WELCOME, "--yes").exit_code == 0
    edit(folder, "Version C.")
    accept_only(*LIST)
    final = cli("send", WELCOME, "--yes")
    assert final.exit_code == 0, final.output
    assert "campaign 2026-11-23-welcome finished" in final.output

    received = Counter(handler.recipients())
    assert received == Counter(LIST), received  # everyone exactly once, whichever version
    versions = {item.rcpt_tos[0]: item.message.get_body(("plain",)).get_content() for item in handler.received}
    assert "Version B." not in versions["ada@example.com"]
    assert "Version B." in versions["grace@example.org"] and "Version C." not in versions["grace@example.org"]
    assert "Version C." in versions["renee@example.net"]


@pytest.mark.e2e
def test_hourly_cap_is_a_relay_quota_not_an_outbox_limit(cli: Cli, folder: Path) -> None:
    """[smtp] max_per_hour limits what goes to the relay; writing .eml files is not held back by it."""
    cli.env["NEWSLETTER_SMTP_MAX_PER_HOUR"] = "1"
    result = cli.subprocess("send", WELCOME, "--yes", timeout=60)  # held back, it would wait an hour
    assert result.returncode == 0, result.stderr
    assert "sent 4," in result.stdout
    assert len(list((folder / "outbox" / WELCOME).glob("*.eml"))) == len(LIST)
