"""Test sends: one issue to any addresses, subject prefixed [TEST], no campaign recorded.

The CLI's `send-test` and the preview's "Send test" button both call `send_test`; it goes through
the same pool and transports as a list send (one connection, one attempt per address).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ..config import Config
from ..content.addresses import normalize_address
from ..content.issue import Issue
from ..content.subscribers import Subscriber
from ..errors import DeliveryError, NewsletterError
from ..render.issue import render_issue
from ..render.mime import MessageFactory
from .pool import DeliveryPool, Job
from .ratelimit import RateLimiter
from .transport import Attempt, AttemptKind
from .transports import transport_for, wire_form
from .verp import verp_for

TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class SendResult:
    """Where one test message went: the transport and its answer (a server reply, a file)."""

    recipient: str
    detail: str


async def send_test(config: Config, issue: Issue, addresses: Sequence[str]) -> list[SendResult]:
    """Render once, send to each address, personalized with that address and `sample_name` only."""
    # The list's own rule: addresses it could send to (ASCII local parts), in its normal form.
    recipients = [normalize_address(a, "--to") for a in addresses]
    if not recipients:
        raise NewsletterError("send-test needs at least one --to ADDRESS")
    verp = verp_for(config)  # bounces of test sends come back to the bounce address too
    rendered = render_issue(issue, config, subject_prefix=TEST_PREFIX)
    factory = MessageFactory(rendered, config, wire=wire_form(config))
    # A test goes to anyone: it carries no subscriber's data, only [newsletter] sample_name (empty by
    # default, so the greeting falls back: "Hi there,").
    sample_name = config.newsletter.sample_name
    _size, connect = transport_for(config, f"test-{dt.datetime.now():%Y%m%d-%H%M%S}")
    transport = connect()
    answers: dict[int, Attempt] = {}

    def build(job: Job) -> bytes:
        return factory.build(Subscriber.of(job.recipient, sample_name))

    def report(job: Job, attempt: Attempt, final: bool) -> None:
        answers[job.id] = attempt

    async def jobs() -> AsyncIterator[Job]:
        for index, address in enumerate(recipients):
            yield Job(id=index, recipient=address, sender=verp.test_sender(address) if verp else "")

    pool = DeliveryPool(
        lambda: transport,
        size=1,
        sender=factory.envelope_from,
        build=build,
        report=report,
        limiter=RateLimiter(0, 0),
        max_attempts=1,
        base_delay=0,
        stop=asyncio.Event(),
    )
    await pool.run(jobs())
    if pool.fatal is not None:
        raise pool.fatal
    results = []
    for index, address in enumerate(recipients):
        attempt = answers.get(index)
        if attempt is None or attempt.kind != AttemptKind.SENT:
            kind, reply = (attempt.kind, attempt.reply) if attempt else ("no", "not attempted")
            raise DeliveryError(f"{address}: not delivered, {kind} failure ({reply})")
        results.append(SendResult(address, f"{transport.describe()}: {attempt.reply}"))
    return results
