"""Faults of a real SMTP server during `newsletter send`: dropped connections, and the rate limit."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from .helpers import FAST, TLS, Cli, counts, write_list
from .smtpd import ConnectionLimit, RecordingHandler, SmtpServer

pytestmark = pytest.mark.usefixtures("database")


@dataclass
class DroppingHandler(RecordingHandler):
    """Closes the connection after reading a message's data, before replying (so it is not accepted)."""

    drop_for: set[str] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0]
        if rcpt in self.drop_for:
            self.drop_for.discard(rcpt)
            self.dropped.append(rcpt)
            assert server.transport is not None
            server.transport.close()
            return "421 4.3.0 closing (never seen by the client)"
        return await super().handle_DATA(server, session, envelope)


def test_connection_dropped_mid_data_reconnects_and_loses_nothing(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 40, cli)
    handler = DroppingHandler(drop_for=set(addresses[5::9]))
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST})
        result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert len(handler.dropped) == 4
    assert Counter(handler.recipients()) == Counter(addresses)  # each exactly once
    assert counts(cli) == {"sent": 40}


@dataclass
class TimingHandler(RecordingHandler):
    arrivals: list[float] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.arrivals.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


def test_rate_limit_holds_across_connections(cli: Cli, folder: Path) -> None:
    """A correctness property of the limiter (not a speed goal): measured rate ≤ configured + 10%."""
    write_list(folder, 30, cli)
    handler = TimingHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_CONNECTIONS": "4", "NEWSLETTER_SMTP_RATE": "25"})
        result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    arrivals = sorted(handler.arrivals)
    assert len(arrivals) == 30
    measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert measured <= 25 * 1.1, measured
    # And over every window of 10 consecutive messages, not only on average.
    for i in range(len(arrivals) - 10):
        assert 9 / (arrivals[i + 9] - arrivals[i]) <= 25 * 1.1 * 1.5


def test_a_relay_that_allows_fewer_connections_gets_fewer(cli: Cli, folder: Path) -> None:
    """The default connections (16) against a relay that greets the fourth with 421: three carry on."""
    addresses = write_list(folder, 80, cli)
    with SmtpServer() as server, ConnectionLimit(server, 3) as limit:
        cli.env.update({**limit.env(), "NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.01", "NEWSLETTER_SMTP_TIMEOUT": "10"})
        result = cli("send", TLS, "--yes")
        assert result.exit_code == 0, result.output
        assert "the relay refused more than 3 connections at once (421 at connect); the run went on with 3" in (
            result.stderr
        )
        assert sorted(server.handler.recipients()) == sorted(addresses)  # each exactly once
        assert limit.refused >= 13
    assert counts(cli) == {"sent": 80}
