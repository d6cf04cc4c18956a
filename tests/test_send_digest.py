"""`newsletter send --digest [--if-due]`: the cron alternative to `newsletter schedule`."""

from __future__ import annotations

from pathlib import Path

from .helpers import LINKS, Cli
from .smtpd import SmtpServer

LIST = ["ada@example.com", "grace@example.org", "renee@example.net", "alan@example.com"]


def test_send_digest_if_due_sends_once_per_period(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    cli.env.update(smtp_server.env())
    cli.env.update(LINKS)
    # Tuesdays 09:00 Berlin, in crontab numbering (2 = Tuesday).
    cli.env.update({"NEWSLETTER_SCHEDULE_CRON": "0 9 * * 2", "NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin"})

    early = cli("send", "--digest", "--if-due", "--yes", "--now", "2026-11-24T08:30")
    assert early.exit_code == 0, early.output
    assert "no digest due (next run: Tue 2026-11-24 09:00 CET" in early.output
    assert smtp_server.handler.received == []

    due = cli("send", "--digest", "--if-due", "--yes", "--now", "2026-11-24T10:00")
    assert due.exit_code == 0, due.output
    assert "sent digest 2026-11-24 to 4 subscribers (1 article)" in due.output
    received = smtp_server.handler.received
    assert sorted(r for item in received for r in item.rcpt_tos) == sorted(LIST)
    message = received[0].message
    assert message["Subject"] == "Privacy Notes: week 48"
    assert "Welcome to Privacy Notes" in message.get_body(("plain",)).get_content()

    again = cli("send", "--digest", "--if-due", "--yes", "--now", "2026-11-24T10:15")
    assert again.exit_code == 0 and "no digest due" in again.output
    forced = cli("send", "--digest", "--yes", "--now", "2026-11-24T10:20")
    assert "no digest to send" in forced.output
    assert len(smtp_server.handler.received) == len(LIST)

    status = cli("status", "digest-2026-11-24")
    assert "digest-2026-11-24" in status.output and "4 sent of 4" in status.output


def test_send_digest_when_nothing_is_new_records_the_skip(cli: Cli, smtp_server: SmtpServer) -> None:
    cli.env.update(smtp_server.env())
    cli.env.update({"NEWSLETTER_SCHEDULE_CRON": "0 9 * * mon", "NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin"})
    result = cli("send", "--digest", "--if-due", "--yes", "--now", "2027-03-01T09:30")
    assert result.exit_code == 0, result.output
    assert "nothing new: skipped" in result.output
    assert "no digest due" in cli("send", "--digest", "--if-due", "--yes", "--now", "2027-03-01T09:45").output
    assert smtp_server.handler.received == []


def test_send_argument_errors(cli: Cli) -> None:
    assert "send needs ISSUE" in cli("send").stderr
    assert "--if-due goes with --digest" in cli("send", "latest", "--if-due").stderr
    assert "no ISSUE" in cli("send", "latest", "--digest").stderr
    assert "no ISSUE" in cli("send", "latest", "--due").stderr
    assert "not both" in cli("send", "--digest", "--due").stderr
