"""A relay that refuses for its own reasons, or stops answering: the campaign pauses, nobody is suppressed.

Against a real aiosmtpd on 127.0.0.1: a daily quota reply after N messages (at RCPT and at DATA), a
run of bare 550s after many successes (the sliding-window brake), and a server that takes the
connection but never answers DATA (the stall timeout). Each time: exit status 1, one line that says
what the relay said and how to resume, no suppression, the campaign still sending; once the relay
is fixed, the same command finishes it and everyone has the issue exactly once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.send.memory import MemoryOutbox, MemoryTransport
from newsletter.send.pool import DeliveryPool, Job
from newsletter.send.ratelimit import RateLimiter
from newsletter.send.replies import classify
from newsletter.send.transport import Attempt, AttemptKind
from newsletter.state.engine import engine_for
from newsletter.state.suppressions import counts_by_reason

from .helpers import FAST, TLS, Cli, config_of, counts, run_async, write_list
from .smtpd import RecordingHandler, SmtpServer

pytestmark = pytest.mark.usefixtures("database")
QUOTA = "550 5.4.5 Daily user sending quota exceeded"


@dataclass
class QuotaHandler(RecordingHandler):
    """Takes `limit` messages, then answers `reply` at RCPT or at DATA until `lifted`."""

    limit: int = 0
    reply: str = QUOTA
    at: str = "rcpt"
    lifted: bool = False

    def over(self) -> bool:
        return not self.lifted and len(self.received) >= self.limit

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.at == "rcpt" and self.over():
            return self.reply
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.at == "data" and self.over():
            return self.reply
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("at", ["rcpt", "data"])
def test_a_quota_reply_mid_list_pauses_the_campaign_and_suppresses_nobody(cli: Cli, folder: Path, at: str) -> None:
    addresses = write_list(folder, 60, cli)
    handler = QuotaHandler(limit=36, at=at)
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST})
        result = cli("send", TLS, "--yes")
        assert result.exit_code == 1, result.output
        error = [line for line in result.stderr.splitlines() if line.startswith("newsletter: error:")]
        assert len(error) == 1, result.stderr
        assert QUOTA in error[0] and "not the addresses" in error[0] and "nobody was suppressed" in error[0]
        assert f"run `newsletter send {TLS}` again to resume" in result.stderr
        assert counts_by_reason(engine_for(config_of(cli))) == {}
        state = counts(cli)
        assert state.get("failed", 0) == 0 and state["sent"] == len(handler.received) < 60
        assert "sending" in cli("status", TLS).output
        handler.lifted = True  # the quota resets the next day
        again = cli("send", TLS, "--yes")
        assert again.exit_code == 0, again.output + again.stderr
    assert Counter(handler.recipients()) == Counter(addresses)  # each exactly once
    assert counts(cli) == {"sent": 60}


def test_a_run_of_bare_refusals_after_many_successes_trips_the_window_brake(cli: Cli, folder: Path) -> None:
    """A 550 without an enhanced code reads as the mailbox's, until a run of them says it is the relay's.

    150 accepted, then every message refused: over the whole run that stays at 50% (the old brake
    never tripped and suppressed 150 good addresses); the last 100 outcomes are almost all refusals.
    """
    write_list(folder, 300, cli)
    handler = QuotaHandler(limit=150, reply="550 Requested action not taken")
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST})
        result = cli("send", TLS, "--yes")
    assert result.exit_code == 1, result.output
    assert "550 Requested action not taken" in result.stderr and "of the last 100" in result.stderr
    assert counts_by_reason(engine_for(config_of(cli))) == {}
    assert counts(cli).get("failed", 0) == 0


def test_a_genuine_dead_mailbox_among_successes_is_still_suppressed(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 30, cli)
    handler = RecordingHandler(rcpt_reply=lambda a: "550 5.1.1 no such user" if a == addresses[7] else None)
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST})
        result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert counts_by_reason(engine_for(config_of(cli))) == {"bounced": 1}


@dataclass
class NeverAnswersData(RecordingHandler):
    """Greets, takes MAIL and RCPT, then never answers DATA (until `answering`)."""

    answering: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        while not self.answering.is_set():
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_a_relay_that_never_answers_data_ends_the_run_after_the_stall_timeout(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 40, cli)
    handler = NeverAnswersData()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_TIMEOUT": "1", "NEWSLETTER_SMTP_STALL_TIMEOUT": "3s"})
        result = cli("send", TLS, "--yes")
        assert result.exit_code == 1, result.output
        assert "no message was delivered for 3s ([smtp] stall_timeout)" in result.stderr
        assert f"run `newsletter send {TLS}` again to resume" in result.stderr
        assert counts_by_reason(engine_for(config_of(cli))) == {}
        handler.answering.set()
        cli.env["NEWSLETTER_SMTP_TIMEOUT"] = "10"
        again = cli("send", TLS, "--yes")
        assert again.exit_code == 0, again.output + again.stderr
    assert Counter(handler.recipients()) == Counter(addresses)


@pytest.mark.parametrize(
    ("reply", "kind", "suppress"),
    [
        ("550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", AttemptKind.PERMANENT, True),
        ("550 5.2.1 Mailbox disabled", AttemptKind.PERMANENT, True),
        ("550 No such user here", AttemptKind.PERMANENT, True),
        ("552 5.2.2 Mailbox full", AttemptKind.TRANSIENT, False),
        ("550 5.4.5 Daily user sending quota exceeded", AttemptKind.RELAY, False),
        ("554 5.7.1 Message rejected as spam", AttemptKind.RELAY, False),
        ("552 5.3.4 Message size exceeds fixed limit", AttemptKind.RELAY, False),
        ("550 5.1.8 Sender address rejected: Domain not found", AttemptKind.RELAY, False),
        ("553 5.5.4 Invalid command arguments", AttemptKind.RELAY, False),
        ("451 4.7.1 Greylisted", AttemptKind.TRANSIENT, False),
    ],
)
def test_replies_are_read_by_their_enhanced_status_codes(reply: str, kind: AttemptKind, suppress: bool) -> None:
    import aiosmtplib

    code, _, message = reply.partition(" ")
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(int(code), message, "a@example.org")])
    attempt = classify(refused)
    assert (attempt.kind, attempt.suppress) == (kind, suppress)


def test_a_bare_5xx_at_data_is_the_relays_not_the_mailboxs() -> None:
    import aiosmtplib

    attempt = classify(aiosmtplib.SMTPDataError(550, "Message rejected"))
    assert attempt.kind == AttemptKind.RELAY and not attempt.suppress


class SlowMemory(MemoryTransport):
    """The memory transport with a pause per message, as a network has: timers fire between sends."""

    async def send(self, sender: str, recipient: str, data: bytes) -> Attempt:
        await asyncio.sleep(0.001)
        return await super().send(sender, recipient, data)


def test_a_retry_goes_out_when_it_is_due_not_after_the_whole_queue() -> None:
    outbox = MemoryOutbox()
    tries: Counter[str] = Counter()

    def faults(recipient: str, _delivered: int) -> Attempt | None:
        tries[recipient] += 1
        return Attempt(AttemptKind.TRANSIENT, "451 4.3.0 later") if recipient == "r0@x.org" and tries[recipient] == 1 else None

    outbox.faults = faults
    order: list[str] = []

    async def jobs() -> AsyncIterator[Job]:
        for i in range(300):
            yield Job(id=i, recipient=f"r{i}@x.org")

    def report(job: Job, attempt: Attempt, final: bool) -> None:
        order.append(job.recipient)

    pool = DeliveryPool(
        lambda: SlowMemory(outbox),
        size=1,
        sender="a@example.com",
        build=lambda job: b"x",
        report=report,
        limiter=RateLimiter(0, 0),
        max_attempts=3,
        base_delay=0.005,
        stop=asyncio.Event(),
    )
    run_async(pool.run(jobs()))
    second = order.index("r0@x.org", 1)
    assert second < 100, f"the retry waited behind {second} fresh messages"
    assert sorted(outbox.recipients()) == sorted(f"r{i}@x.org" for i in range(300))
