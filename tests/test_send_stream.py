"""A big list streams into the send: the first messages go out while the rest of the CSV is still read."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from .helpers import TLS, Cli, counts, write_list
from .smtpd import RecordingHandler, SmtpServer

pytestmark = pytest.mark.e2e


@dataclass
class Watching(RecordingHandler):
    """Notes how many subscribers the state database held when the first message arrived."""

    state: Path = Path()
    listed_at_first: list[int] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.listed_at_first:
            with sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=30) as conn:
                self.listed_at_first.append(conn.execute("SELECT count(*) FROM subscribers").fetchone()[0])
        return await super().handle_DATA(server, session, envelope)


def test_the_first_messages_leave_before_the_list_is_read_and_each_goes_once(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 10_000, cli)
    cli.env["NEWSLETTER_DELIVERY_STREAM_FROM"] = "1000"
    handler = Watching(state=folder / "newsletter.db")
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), "NEWSLETTER_SMTP_CONNECTIONS": "4"})
        result = cli.subprocess("send", TLS, "--yes", timeout=600)
        assert result.returncode == 0, result.stderr
    assert handler.listed_at_first and handler.listed_at_first[0] < len(addresses) // 2, handler.listed_at_first
    received = Counter(handler.recipients())
    assert set(received) == set(addresses) and max(received.values()) == 1
    assert counts(cli) == {"sent": len(addresses)}


def test_a_resume_sends_an_earlier_runs_rows_only_once_the_list_confirms_them(cli: Cli, folder: Path) -> None:
    """Rows left pending by a stopped run go out after the new run has read the list; one who left never does."""
    addresses = write_list(folder, 3_000, cli)
    cli.env["NEWSLETTER_DELIVERY_STREAM_FROM"] = "1000"
    first = set(addresses[:1_000])
    with SmtpServer() as server:
        server.handler.rcpt_reply = lambda a: None if a in first else "451 4.3.0 come back later"
        cli.env.update({**server.env(), "NEWSLETTER_SMTP_MAX_ATTEMPTS": "1", "NEWSLETTER_SMTP_MAX_FAILURE_RATIO": "1"})
        assert cli.subprocess("send", TLS, "--yes", timeout=300).returncode == 0  # the rest left deferred
        gone = addresses[2_500]
        lines = (folder / "subscribers.csv").read_text(encoding="utf-8").splitlines()
        (folder / "subscribers.csv").write_text(
            "\n".join(line for line in lines if not line.startswith(gone + ",")) + "\n", encoding="utf-8"
        )
        server.handler.rcpt_reply = None
        again = cli.subprocess("send", TLS, "--yes", timeout=300)
        assert again.returncode == 0, again.stderr
    received = Counter(server.handler.recipients())
    assert gone not in received
    assert set(received) == set(addresses) - {gone} and max(received.values()) == 1
    assert counts(cli) == {"sent": 2_999, "skipped": 1}
