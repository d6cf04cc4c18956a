"""One contract for every transport (outbox, SMTP against a real aiosmtpd, memory), and the pool on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from newsletter.config import Config, load_config
from newsletter.errors import DeliveryError
from newsletter.send.memory import MemoryOutbox, MemoryTransport
from newsletter.send.outbox import OutboxTransport
from newsletter.send.pool import DeliveryPool, Job
from newsletter.send.ratelimit import RateLimiter
from newsletter.send.smtp import SmtpTransport
from newsletter.send.transport import Attempt, AttemptKind, Transport

from .helpers import run_async
from .smtpd import SmtpServer, free_port

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


@dataclass
class Harness:
    """A transport factory plus a way to see what arrived and to break the destination."""

    make: object
    arrived: object
    refuse: object  # refuse(address, reply): the destination refuses that recipient with that reply
    broken: object  # a factory whose open() cannot succeed
    cleanup: list[object] = field(default_factory=list)


def _smtp_config(port: int) -> Config:
    return load_config(
        None,
        env={
            "NEWSLETTER_DELIVERY_BACKEND": "smtp",
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(port),
            "NEWSLETTER_SMTP_SECURITY": "none",
            "NEWSLETTER_SMTP_TIMEOUT": "5",
        },
    )


@pytest.fixture(params=["outbox", "smtp", "memory"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind = request.param
    if kind == "smtp":
        with SmtpServer() as server:
            config = _smtp_config(server.port)
            refusals: dict[str, str] = {}
            server.handler.rcpt_reply = refusals.get
            yield Harness(
                make=lambda: SmtpTransport(config),
                arrived=lambda: [(r.rcpt_tos[0], r.data) for r in server.handler.received],
                refuse=refusals.__setitem__,
                broken=lambda: SmtpTransport(_smtp_config(free_port())),
            )
        return
    if kind == "outbox":
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("a file where the outbox folder should be")

        def arrived() -> list[tuple[str, bytes]]:
            return sorted((p.name.rsplit("-", 1)[0], p.read_bytes()) for p in (tmp_path / "out" / "t").glob("*.eml"))

        yield Harness(
            make=lambda: OutboxTransport(tmp_path / "out", "t"),
            arrived=arrived,
            refuse=None,
            broken=lambda: OutboxTransport(blocked, "t"),
        )
        return
    outbox = MemoryOutbox()
    refusals_memory: dict[str, str] = {}

    def faults(recipient: str, _delivered: int) -> Attempt | None:
        reply = refusals_memory.get(recipient)
        if reply is None:
            return None
        kind_ = AttemptKind.TRANSIENT if reply.startswith("4") else AttemptKind.PERMANENT
        return Attempt(kind_, reply, suppress=kind_ == AttemptKind.PERMANENT)

    outbox.faults = faults
    yield Harness(
        make=lambda: MemoryTransport(outbox),
        arrived=lambda: [(r, d) for _s, r, d in outbox.delivered],
        refuse=refusals_memory.__setitem__,
        broken=lambda: MemoryTransport(MemoryOutbox(open_error="cannot connect to memory (refused)")),
    )


def test_open_send_reset_close(harness: Harness) -> None:
    async def go() -> list[Attempt]:
        transport: Transport = harness.make()  # type: ignore[operator]
        assert not transport.connected
        await transport.open()
        assert transport.connected
        first = await transport.send("a@example.com", "b@example.org", MESSAGE)
        await transport.reset()
        assert not transport.connected
        second = await transport.send("a@example.com", "c@example.org", MESSAGE)  # opens again by itself
        assert transport.connected
        await transport.close()
        assert not transport.connected
        return [first, second]

    attempts = run_async(go())
    assert [a.kind for a in attempts] == [AttemptKind.SENT, AttemptKind.SENT]
    arrived = harness.arrived()  # type: ignore[operator]
    assert len(arrived) == 2
    assert all(data.replace(b"\r\n", b"\n").endswith(b"Hello.\n") for _who, data in arrived)


def test_a_destination_that_cannot_be_used_is_a_one_line_delivery_error(harness: Harness) -> None:
    async def go() -> None:
        transport: Transport = harness.broken()  # type: ignore[operator]
        await transport.open()

    with pytest.raises(DeliveryError) as caught:
        run_async(go())
    assert "\n" not in str(caught.value) and str(caught.value)


def test_refusals_come_back_as_attempts_not_exceptions(harness: Harness) -> None:
    if harness.refuse is None:
        pytest.skip("the outbox accepts every recipient")
    harness.refuse("gone@example.org", "550 5.1.1 no such mailbox")  # type: ignore[operator]
    harness.refuse("busy@example.org", "451 4.7.1 try again later")  # type: ignore[operator]

    async def go() -> list[Attempt]:
        transport: Transport = harness.make()  # type: ignore[operator]
        try:
            return [
                await transport.send("a@example.com", to, MESSAGE)
                for to in ("gone@example.org", "busy@example.org", "fine@example.org")
            ]
        finally:
            await transport.close()

    gone, busy, fine = run_async(go())
    assert gone.kind == AttemptKind.PERMANENT and gone.suppress and gone.reply.startswith("550")
    assert busy.kind == AttemptKind.TRANSIENT and not busy.suppress and busy.reply.startswith("451")
    assert fine.kind == AttemptKind.SENT
    assert [who for who, _data in harness.arrived()] == ["fine@example.org"]  # type: ignore[operator]


# --- the pool on the memory transport: retries, fatal stops, waiting for the record -----------------


def _pool(outbox: MemoryOutbox, report, *, size: int = 2, max_attempts: int = 3) -> DeliveryPool:  # type: ignore[no-untyped-def]
    return DeliveryPool(
        lambda: MemoryTransport(outbox),
        size=size,
        sender="a@example.com",
        build=lambda job: MESSAGE,
        report=report,
        limiter=RateLimiter(0, 0),
        max_attempts=max_attempts,
        base_delay=0.001,
        stop=asyncio.Event(),
    )


async def _jobs(addresses: list[str]) -> AsyncIterator[Job]:
    for i, address in enumerate(addresses):
        yield Job(id=i, recipient=address)


def test_pool_retries_transient_failures_and_delivers_each_once() -> None:
    outbox = MemoryOutbox()
    tries: dict[str, int] = {}

    def faults(recipient: str, _delivered: int) -> Attempt | None:
        tries[recipient] = tries.get(recipient, 0) + 1
        if recipient.startswith("flaky") and tries[recipient] < 3:
            return Attempt(AttemptKind.TRANSIENT, "421 closing", reconnect=True)
        if recipient.startswith("gone"):
            return Attempt(AttemptKind.PERMANENT, "550 5.1.1 gone", suppress=True)
        return None

    outbox.faults = faults
    final: dict[str, AttemptKind] = {}

    def report(job: Job, attempt: Attempt, is_final: bool) -> None:
        if is_final:
            final[job.recipient] = attempt.kind

    addresses = [f"r{i}@example.org" for i in range(20)] + ["flaky@example.org", "gone@example.org"]
    pool = _pool(outbox, report)
    run_async(pool.run(_jobs(addresses)))
    assert sorted(outbox.recipients()) == sorted(a for a in addresses if not a.startswith("gone"))
    assert final["flaky@example.org"] == AttemptKind.SENT and tries["flaky@example.org"] == 3
    assert final["gone@example.org"] == AttemptKind.PERMANENT and tries["gone@example.org"] == 1
    assert pool.reconnects == 2 and pool.fatal is None


def test_pool_stops_everything_on_a_fatal_attempt() -> None:
    outbox = MemoryOutbox()
    error = DeliveryError("the relay refuses the sender")
    outbox.faults = lambda recipient, delivered: (
        Attempt(AttemptKind.FATAL, "553 sender refused", error=error) if delivered >= 5 else None
    )
    pool = _pool(outbox, lambda job, attempt, is_final: None, size=1)
    run_async(pool.run(_jobs([f"r{i}@example.org" for i in range(50)])))
    assert pool.fatal is error and len(outbox.delivered) == 5


def test_pool_waits_for_the_record_before_a_connection_sends_again() -> None:
    """A report that returns an awaitable (a group commit) holds its connection until it completes."""
    outbox = MemoryOutbox()
    events: list[str] = []

    async def commit(recipient: str) -> None:
        events.append(f"commit {recipient}")
        await asyncio.sleep(0.01)
        events.append(f"durable {recipient}")

    def report(job: Job, attempt: Attempt, is_final: bool) -> asyncio.Task[None]:
        events.append(f"sent {job.recipient}")
        return asyncio.ensure_future(commit(job.recipient))

    outbox.faults = lambda recipient, delivered: events.append(f"send {recipient}") or None  # type: ignore[func-returns-value]
    run_async(_pool(outbox, report, size=1).run(_jobs(["a@x.org", "b@x.org", "c@x.org"])))
    for first, then in (("a@x.org", "b@x.org"), ("b@x.org", "c@x.org")):
        assert events.index(f"durable {first}") < events.index(f"send {then}")


def test_pool_raises_when_the_first_connection_cannot_open() -> None:
    outbox = MemoryOutbox(open_error="cannot connect to memory (refused)")
    with pytest.raises(DeliveryError, match="cannot connect to memory"):
        run_async(_pool(outbox, lambda *a: None).run(_jobs(["a@x.org"])))
