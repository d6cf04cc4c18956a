"""The one transport interface: where messages go, one connection at a time.

In the spirit of Django's mail backends and httpx's transports: `open`, `send` one message (sender,
recipient, bytes) and get an `Attempt` back, `reset` after trouble, `close`. Each transport reads
its own failures (the SMTP transport its replies), so the pool that drives them never sees a
library's exceptions: it only acts on the attempt's kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ..errors import NewsletterError


class AttemptKind(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"  # try again later (4xx, 552, connection trouble)
    PERMANENT = "permanent"  # never again for this message (a 5xx about the mailbox)
    RELAY = "relay"  # the relay's own refusal (quota, rate, policy, content, system): pause, suppress nobody
    FATAL = "fatal"  # the campaign cannot go on (refused login, refused sender, unwritable outbox)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one try."""

    kind: AttemptKind
    reply: str
    reconnect: bool = False  # the connection is unusable (421, drop, timeout): reset it
    suppress: bool = False  # a permanent refusal of this mailbox: never mail it again
    error: NewsletterError | None = None  # for fatal attempts: what to tell the user
    at_connect: bool = False  # it failed while opening the connection (a 421 there: too many connections)


class Transport(Protocol):
    """One connection; the pool opens, reuses and replaces it."""

    @property
    def connected(self) -> bool: ...

    def describe(self) -> str: ...

    async def open(self) -> None:
        """Connect (and log in); a DeliveryError, one line, when the destination cannot be used."""

    async def send(self, sender: str, recipient: str, data: bytes) -> Attempt:
        """Deliver one message; opens the connection first when it is not; never raises for the message's trouble."""

    async def reset(self) -> None:
        """Drop the connection after trouble; the next `send` opens a fresh one."""

    async def close(self) -> None: ...
