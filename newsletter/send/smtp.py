"""The SMTP transport over aiosmtplib: connect, STARTTLS or TLS, login, send; replies read by replies.py.

aiosmtplib has no pipelining and no auto-reconnect: after a 421, a timeout or a drop the pool
resets the transport and the next message opens a fresh connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiosmtplib

from ..config import Config
from .replies import classify, connect_error
from .smtp_wire import envelope_address, send_wire
from .transport import Attempt, AttemptKind


def client_for(config: Config) -> aiosmtplib.SMTP:
    """A configured (not yet connected) client; one per connection."""
    smtp = config.smtp
    return aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        timeout=smtp.timeout,
        use_tls=smtp.security == "tls",
        start_tls=smtp.security == "starttls",
        username=smtp.username or None,
        password=(config.smtp_password or None) if smtp.username else None,
    )


class SmtpTransport:
    """`wire=True`: messages come in wire form (CRLF, dot-stuffed) and go out as they are (smtp_wire.py)."""

    def __init__(self, config: Config, *, wire: bool = False) -> None:
        self.config = config
        self.wire = wire
        self.client: aiosmtplib.SMTP | None = None
        self._mail_from: tuple[str, bytes] = ("", b"")

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    def describe(self) -> str:
        return f"smtp {self.config.smtp.host}:{self.config.smtp.port}"

    async def open(self) -> None:
        client = client_for(self.config)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise connect_error(self.config, exc) from None
        self.client = client

    async def send(self, sender: str, recipient: str, data: bytes) -> Attempt:
        if not self.connected:
            try:
                client = client_for(self.config)
                await client.connect()
            except Exception as exc:
                attempt = classify(exc, self.config)
                return replace(attempt, at_connect=True)
            self.client = client
        try:
            assert self.client is not None
            if self.wire:
                if self._mail_from[0] != sender:
                    self._mail_from = (sender, envelope_address(sender))
                reply = await send_wire(self.client, self._mail_from[1], recipient, data)
            else:
                _refused, reply = await self.client.sendmail(sender, [recipient], data)
        except Exception as exc:
            return classify(exc, self.config)
        return Attempt(AttemptKind.SENT, reply)

    async def reset(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                await asyncio.wait_for(self.client.quit(), timeout=5)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                self.client.close()
        self.client = None
