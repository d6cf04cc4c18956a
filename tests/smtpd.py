"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording what it receives.

Faults are injected by the handler (4xx/5xx replies per recipient, dropped connections), so the
client code under test talks to a real server over a real socket.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """Stores every accepted message; `rcpt_reply(address)` may return an SMTP reply to refuse it."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: Callable[[str], str | None] | None = None
    data_reply: Callable[[Envelope], str | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            reply = self.rcpt_reply(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            reply = self.data_reply(envelope)
            if reply:
                return reply
        with self.lock:
            self.received.append(
                Received(envelope.mail_from or "", list(envelope.rcpt_tos), bytes(envelope.original_content or b""))
            )
        return "250 Message accepted for delivery"

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for item in self.received for r in item.rcpt_tos]


# A production-like set-up for sends to these servers: `send` refuses a list send over SMTP from an
# example domain, with the example postal address (newsletter doctor's errors).
SENDER_ADDRESS = "newsletter@privacy-notes.news"
PRODUCTION = {
    "NEWSLETTER_NEWSLETTER_FROM": f"Privacy Notes <{SENDER_ADDRESS}>",
    "NEWSLETTER_NEWSLETTER_POSTAL_ADDRESS": "Privacy Notes, 12 Chausseestraße, 10115 Berlin, Germany",
    "NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org",
    "NEWSLETTER_SECRET_KEY": "smtp-tests-secret-0123456789abcdef",
}


@dataclass
class SlowHandler(RecordingHandler):
    """Takes a while to accept each message: a kill lands while messages are in flight."""

    delay: float = 0.03

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """Start/stop an aiosmtpd Controller on a free port of 127.0.0.1."""

    def __init__(self, handler: RecordingHandler | None = None, **smtp_kwargs: object) -> None:
        self.handler = handler or RecordingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port(), **smtp_kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def env(self) -> dict[str, str]:
        """Environment that points newsletter at this server (plain SMTP, no TLS), set up as for production."""
        return {
            **PRODUCTION,
            "NEWSLETTER_DELIVERY_BACKEND": "smtp",
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(self.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
        }


class ConnectionLimit:
    """A front for an SmtpServer that greets connections beyond `limit` with `421 too many connections`.

    Runs its own event loop in a thread; point the client at `port`.
    """

    def __init__(self, server: SmtpServer, limit: int) -> None:
        self.server = server
        self.limit = limit
        self.active = 0
        self.refused = 0
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.limit:
            self.refused += 1
            writer.write(b"421 4.7.0 too many connections from your host\r\n")
            await writer.drain()
            writer.close()
            return
        self.active += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.server.port)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
        finally:
            self.active -= 1

    def __enter__(self) -> ConnectionLimit:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._server = started.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def env(self) -> dict[str, str]:
        return {**self.server.env(), "NEWSLETTER_SMTP_PORT": str(self.port)}
